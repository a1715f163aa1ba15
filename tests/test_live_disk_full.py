"""live.lmdb on a full disk (README "When live.lmdb fills"): the map is
``writemap``, so an unbacked page of its sparse file would be a SIGBUS that
kills the worker; the file's blocks are allocated ahead of the writes
(``envs.reserve_live``), so a full disk refuses the next call with
``LiveDiskFull`` (a ``LiveLedgerFull``: gRPC RESOURCE_EXHAUSTED) instead,
queries are still answered, and once there is room calls are allowed again.

On a real 16 MiB tmpfs (skipped where mounting is not allowed); the calls
run in a child process, so a SIGBUS shows as its exit status instead of
killing the test run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from rating_core.ledger import envs
from test_ledger_full import small_disk, store_dir  # noqa: F401  (fixtures)

CHILD = r"""
import sys, uuid
from pathlib import Path
from rating_core.engine import Engine
from rating_core.ledger.envs import LiveDiskFull, LiveLedgerFull
from test_live_full import AT, CALLER, NUMBER

filler = Path(sys.argv[2])
if len(sys.argv) > 3:  # the check of this test: without the reservation
    import rating_core.ledger.envs as E
    E.reserve_live = lambda env: None
engine = Engine.open(sys.argv[1])
allowed = 0
refused = None
for k in range(200_000):
    try:
        engine.authorize(NUMBER, CALLER, AT, call_id=str(uuid.UUID(int=k)))
    except LiveLedgerFull as e:
        refused = e
        break
    allowed += 1
assert isinstance(refused, LiveDiskFull), (allowed, refused)
assert refused.reason == "live_ledger_full" and "disk holding" in str(refused) and "Free space" in str(refused)
assert engine.authorize(NUMBER, CALLER, AT).allow  # a query writes nothing: still answered
filler.unlink()  # room again: the same engine takes new calls
assert engine.authorize(NUMBER, CALLER, AT, call_id="after-room").allow
engine.close()
print("refused after", allowed, "calls:", refused)
"""


def fill_live(store_dir, small_disk, *extra: str) -> subprocess.CompletedProcess:  # noqa: F811
    """Run CHILD on a copy of the store on the small disk, 3 MiB left free."""
    store = small_disk / "store"
    shutil.copytree(store_dir, store)
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - (3 << 20)))  # leave 3 MiB for live.lmdb to fill
    env = dict(os.environ, **{envs.LIVE_MAP_ENV: "64"},  # a map far larger than the disk
               PYTHONPATH=os.pathsep.join([str(os.path.dirname(__file__)), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", CHILD, str(store), str(filler), *extra], env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_full_disk_refuses_new_calls_with_an_error_not_sigbus(store_dir, small_disk):  # noqa: F811
    proc = fill_live(store_dir, small_disk)
    assert proc.returncode != -signal.SIGBUS, "the worker died of SIGBUS"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the disk holding" in proc.stdout


def test_without_the_reservation_the_same_calls_die_of_sigbus(store_dir, small_disk):  # noqa: F811
    """What the reservation prevents, shown on the same disk: the child with
    ``reserve_live`` turned off is killed by SIGBUS when the disk fills."""
    assert fill_live(store_dir, small_disk, "without").returncode == -signal.SIGBUS
