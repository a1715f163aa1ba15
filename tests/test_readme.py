"""The READMEs' commands and code, run as a user would copy them: the
Quickstart, the client example (against a running server on the demo
store), the server's command line, the security section's serve commands."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def blocks(readme: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)


def section(readme: Path, title: str) -> str:
    text = readme.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def commands(text: str) -> list[str]:
    """The `rating400 ...` lines of the sh blocks in ``text``, comments cut."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("rating400 "):
                out.append(shlex.join(shlex.split(line, comments=True)))
    return out


def run(line: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    args = shlex.split(line)
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("readme")
    proc = run("rating400 demo --cdrs 2000 --dir demo-out", cwd)  # `make demo`, smaller
    assert proc.returncode == 0, proc.stderr
    return cwd


def serve(line: str, cwd: Path, extra: list[str]):
    """Start a README serve line with a free port and a ready file -> (process, info)."""
    args = [a for a in shlex.split(line)]
    if "--port" in args:
        i = args.index("--port")
        del args[i:i + 2]
    ready = cwd / f"ready-{time.monotonic_ns()}.json"
    proc = subprocess.Popen([str(BIN / args[0]), *args[1:], "--port", "0", "--workers", "1",
                             "--ready-file", str(ready), *extra], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 90
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{line}: did not start: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def stop(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def test_quickstart(demo_dir):
    text = section(ROOT / "README.md", "Quickstart")
    lines = commands(text)
    # The rejects file's example: its second input, and the rejects shown.
    (more,) = re.findall(r"```csv\n(.*?)```", text, re.S)
    (demo_dir / "demo-out" / "more.csv").write_text(more, encoding="utf-8")
    (shown,) = re.findall(r"```text\n(.*?)```", text, re.S)
    assert any(x.startswith("rating400 serve") for x in lines)
    for line in lines:
        if line.startswith("rating400 serve"):
            proc, info = serve(line, demo_dir, [])
            stop(proc)
            assert info["port"] > 0
            continue
        if line.startswith("rating400 demo"):
            continue  # the fixture ran it, smaller
        proc = run(line, demo_dir)
        assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, line
    rejects = (demo_dir / "several.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert [x for x in rejects if "more.csv" in x] == shown.splitlines()
    # The Quickstart rates into the file its bill line reads.
    rated = demo_dir / "demo-out" / "rated.parquet"
    assert pq.read_table(rated).num_rows > 0 and (demo_dir / "bills.csv").exists()


def test_client_readme_example(demo_dir):
    code = blocks(ROOT / "clients" / "README.md", "python")[0]
    proc, info = serve("rating400 serve --store demo-out/store", demo_dir, [])
    try:
        code = code.replace("localhost:50051", f"127.0.0.1:{info['port']}")
        cdr_table = pq.read_table(demo_dir / "demo-out" / "cdrs.parquet").slice(0, 500)
        scope = {"cdr_table": cdr_table}
        exec(compile(code, "clients/README.md", "exec"), scope)  # noqa: S102 - the README's own example
        assert scope["d"].allow and scope["hunt"]
        assert scope["r"].rated_cdr.charge_minor > 0 and not scope["r"].replayed  # billed from the IVR answer
        assert scope["r"].rated_cdr.billable_seconds == 192  # 09:00:02 -> 09:03:14
        assert scope["res"].rated.num_rows + scope["res"].rejects.num_rows == 500
    finally:
        stop(proc)


def test_server_readme_command_line(demo_dir):
    block = blocks(ROOT / "server" / "README.md", "")[0]
    line = next(x for x in block.splitlines() if x.startswith("python -m rating400_server"))
    line = line.replace("STORE_DIR", "demo-out/store").split(" [")[0]
    args = shlex.split(line)
    assert args[:3] == ["python", "-m", "rating400_server"]
    proc, info = serve("rating400 serve " + " ".join(args[3:]), demo_dir, [])
    stop(proc)
    assert info["port"] > 0


def test_contents_links_every_section_and_only_sections():
    """README's Contents links each `## ` section once in "Every section",
    and every link of Contents reaches a heading (GitHub's anchors: lower
    case, punctuation dropped, spaces as hyphens)."""
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    heads = [line[3:] for line in text.splitlines() if line.startswith("## ") and line != "## Contents"]
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}
    contents = section(readme, "Contents")
    links = re.findall(r"\]\(#([^)]+)\)", contents)
    assert set(links) <= anchors, set(links) - anchors
    every = contents[contents.index("Every section:"):]
    assert re.findall(r"\]\(#([^)]+)\)", every) == [re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
                                                   for h in heads]
