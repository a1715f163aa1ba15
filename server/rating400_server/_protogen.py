"""Regenerate the checked-in gRPC stubs in ``proto/rating400/v1``.

    python -m rating400_server._protogen            # rewrite the stubs
    python -m rating400_server._protogen --check    # exit 1 if they are stale

The stubs are generated with ``-Iproto`` so their imports read
``from rating400.v1 import x_pb2``. ``tests/test_service_stubs.py`` runs the
same generation into a temporary directory and compares.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import sys
import tempfile

# Lines that only record the generator's version: a newer grpcio-tools that
# produces the same code is not "stale".
_VERSION_LINES = re.compile(
    rb"^(# Protobuf Python Version: .*|GRPC_GENERATED_VERSION = .*"
    rb"|\s+\d+,\s*$)",
    re.M,
)


def repo_root() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(os.path.dirname(here))


def generate(proto_root: str, out_dir: str) -> list[str]:
    """Run grpc_tools.protoc over every .proto under rating400/v1."""
    from grpc_tools import protoc

    import grpc_tools

    protos = sorted(glob.glob(os.path.join(proto_root, "rating400", "v1", "*.proto")))
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root}/rating400/v1")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc})")
    gen_dir = os.path.join(out_dir, "rating400", "v1")
    return sorted(
        os.path.relpath(p, gen_dir)
        for p in glob.glob(os.path.join(gen_dir, "*_pb2*.py*"))
    )


def normalise(data: bytes) -> bytes:
    return _VERSION_LINES.sub(b"", data)


def stale_files(proto_root: str) -> list[str]:
    """Generated files that differ from (or are missing in) the checked-in set."""
    target = os.path.join(proto_root, "rating400", "v1")
    with tempfile.TemporaryDirectory() as tmp:
        names = generate(proto_root, tmp)
        stale = []
        for name in names:
            fresh = open(os.path.join(tmp, "rating400", "v1", name), "rb").read()
            path = os.path.join(target, name)
            if not os.path.exists(path) or normalise(open(path, "rb").read()) != normalise(fresh):
                stale.append(name)
        existing = {os.path.basename(p) for p in glob.glob(os.path.join(target, "*_pb2*.py*"))}
        stale += sorted(existing - set(names))  # stubs of a deleted .proto
        return stale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale stubs")
    ap.add_argument("--proto-root", default=os.path.join(repo_root(), "proto"))
    a = ap.parse_args(argv)
    if a.check:
        stale = stale_files(a.proto_root)
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    target = os.path.join(a.proto_root, "rating400", "v1")
    with tempfile.TemporaryDirectory() as tmp:
        names = generate(a.proto_root, tmp)
        for old in glob.glob(os.path.join(target, "*_pb2*.py*")):
            os.remove(old)
        for name in names:
            shutil.copy(os.path.join(tmp, "rating400", "v1", name), os.path.join(target, name))
            print(f"wrote {os.path.join(target, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
