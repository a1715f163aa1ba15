"""README's bulk section runs as written: the shell commands (a real Dask
scheduler and worker in the background) and the Python example."""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent


def section():
    text = README.read_text()
    start = text.index("<!-- bulk-example")
    sh = re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)
    py = re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)
    return sh, py


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_bulk_commands_and_api(tmp_path):
    sh, py = section()
    port = str(free_port())
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    background = []
    try:
        for line in sh.strip().splitlines():
            cmd = line.split("#", 1)[0].strip().replace("8786", port)
            if cmd.endswith("&"):
                argv = shlex.split(cmd[:-1]) + (["--no-dashboard"] if "scheduler" in cmd else [])
                # Each worker starts in a directory of its own, as on another
                # machine: the job must hand it absolute paths.
                where = tmp_path / f"elsewhere-{len(background)}"
                where.mkdir()
                background.append(subprocess.Popen(argv, cwd=where, env=env, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
                if "scheduler" in cmd:  # wait until it listens
                    deadline = time.time() + 60
                    while time.time() < deadline:
                        try:
                            socket.create_connection(("127.0.0.1", int(port)), 1).close()
                            break
                        except OSError:
                            time.sleep(0.2)
                continue
            proc = subprocess.run(shlex.split(cmd), cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
            assert "rated" in proc.stdout or "demo" in cmd
    finally:
        for p in background:
            p.terminate()
        for p in background:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    days = sorted(p.name for p in (tmp_path / "month").iterdir())
    assert days[0].startswith("day=")
    rated = pq.read_table(tmp_path / "month").num_rows
    assert rated == pq.read_table(tmp_path / "rated-dask").num_rows == pq.read_table(tmp_path / "rerated.parquet").num_rows
    proc = subprocess.run([sys.executable, "-c", py], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["stream", str(rated)]
