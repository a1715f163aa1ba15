"""Child process of the Compile RPC: ``python -m rating400_server._compile
STORE_DIR CATALOG_PATH MEMORY_BYTES``. Prints one JSON line:
{"version": N}, {"problems": [...]}, {"not_found": path} or
{"memory": MEMORY_BYTES}.

Its data segment is capped at MEMORY_BYTES (RLIMIT_DATA: heap and private
mappings, not the LMDB file mappings), so a catalog that would grow without
bound ends in MemoryError here instead of in the server's memory.
"""
from __future__ import annotations

import json
import os
import resource
import sys


def main(argv: list[str]) -> int:
    store_dir, path, memory = argv
    limit = int(memory)
    # One native thread per pool: each thread's stack and arena count against
    # the cap, so with pools sized by the machine the cap was met in native
    # code at a point that varied from run to run (an abort, no answer).
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        import pyarrow

        pyarrow.set_cpu_count(1)
        pyarrow.set_io_thread_count(1)
        from rating_core.errors import CatalogError
        from rating_core.store import Store

        try:
            version = Store(store_dir).compile(path)
        except CatalogError as e:
            print(json.dumps({"problems": e.problems or [str(e)]}))
            return 0
        except FileNotFoundError as e:
            print(json.dumps({"not_found": str(e)}))
            return 0
    except MemoryError:
        print(json.dumps({"memory": limit}))
        return 0
    print(json.dumps({"version": int(version)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
