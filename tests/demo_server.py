"""The demo gRPC server the service tests share: the demo catalog's numbers,
one demo CDR, a compiled demo store, and ``Server`` (``python -m
rating400_server``, supervisor + workers, in a subprocess on loopback). The
module-scoped ``store`` / ``server`` / ``client`` fixtures over them are in
conftest.py; a test file that needs another catalog or server defines its own."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from rating_core.demo import write_demo_catalog

ACTIVE = "4008593431"  # jinghua_appliances, prepaid credit, IVR
PAYG = "4000589196"  # yuehai_logistics, pay as you go
SUSPENDED = "4001997558"  # pearl_river_travel
UNKNOWN = "4008000001"
CALLER = "13812345678"


def cdr_row(call_id, number=ACTIVE, minute=0, talk_s=185) -> dict:
    """One answered demo CDR (epoch ms, Asia/Shanghai 2026-10-10 09:00 + ``minute``)
    of ``number``, talking ``talk_s`` seconds after the agent answers."""
    base = 1_791_615_600_000 + minute * 60_000  # 2026-10-10 09:00+08:00
    return {"call_id": call_id, "caller": CALLER, "number": number, "forwarded_to": "02088886666",
            "start": base, "ivr_answer": base + 2_000, "agent_answer": base + 9_000,
            "end": base + 9_000 + talk_s * 1000, "hangup_cause": "normal_clearing"}


def copy_store(src, dst) -> None:
    """A copy of a store (or of a directory holding one, a demo's) without
    its ``live.*`` files: ``live.lmdb`` is a sparse 1 GiB file that
    ``shutil.copytree`` writes whole (about 6 s); the copy's ledger makes a
    fresh one (calls in progress belong to the running platform:
    ``ledger.envs``)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("live.*"))


def make_store(root):
    """The demo catalog compiled and activated in ``root/store``: (store dir, catalog path)."""
    from rating_core.store import Store

    catalog = write_demo_catalog(root / "catalog")
    store = Store(root / "store")
    store.activate(store.compile(catalog))
    del store
    return root / "store", catalog


class Server:
    """``python -m rating400_server`` in its own session (so kill -9 can take
    the whole process group, as a crash would)."""

    def __init__(self, store, tmp, workers=2, env=None):
        self.store, self.tmp, self.workers = store, tmp, workers
        self.env = dict(os.environ, **(env or {}))  # e.g. RATING400_SWEEP_SECONDS for tests that sweep
        self.proc = None
        self.info = None
        # More server arguments (TLS, tokens, limits). Tests call admin methods
        # on a plaintext loopback server, so it allows them (--local-admin).
        self.extra: list[str] = ["--local-admin"]

    def start(self, port=0):
        ready = self.tmp / f"ready-{time.monotonic_ns()}.json"
        self.log = open(self.tmp / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rating400_server", "--store", str(self.store), "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(self.workers), "--metrics-port", "0",
             "--ready-file", str(ready), "--grace", "5", *self.extra],
            stdout=self.log, stderr=self.log, start_new_session=True, env=self.env,
        )
        deadline = time.monotonic() + 120  # a loaded 2-core machine can take a minute to spawn two workers
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                if self.proc.poll() is None:  # never leave a half-started server behind
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
                raise RuntimeError("server did not start:\n" + self.logs()[-4000:])
            time.sleep(0.05)
        self.info = json.loads(ready.read_text())
        return self

    @property
    def target(self):
        return f"127.0.0.1:{self.info['port']}"

    def logs(self) -> str:
        return (self.tmp / "server.log").read_text(errors="replace")

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
