"""Opening the two ledger environments, once per process.

LMDB allows one open of an environment per process (a second open of the
same file breaks its locks), and never across fork(); so environments are
shared by path and pid, with a count of the ``Ledger`` objects using them.

``live.lmdb`` is opened with ``sync=False`` and ``writemap=True``: a commit
costs about a microsecond (no fsync, and no write() of each dirty page:
transactions write into the shared map, which is the page cache), a
process crash loses nothing (the pages are in the page cache; pages a dead
transaction wrote are unreferenced and reused), but an OS crash may leave
it torn. With ``writemap`` LMDB sizes the file to the whole map: a sparse
file of ``LIVE_MAP_SIZE`` (1 GiB, about 2 million calls in progress) that
takes only the pages written; copies of a store should leave ``live.lmdb``
out (calls in progress belong to the running platform). LMDB does not let
processes with and without ``writemap`` share an environment, so stop every
process of an older version before starting this one on the same store. It only holds calls
in progress (reservations, live calls, cursors), which a reboot ends anyway, so the file
remembers the boot it was written in (``live.boot``) and is discarded when
opened after a reboot.
"""
from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import lmdb

from . import formats

_envs: dict[tuple[int, str], list] = {}  # (pid, path) -> [env, users]
_lock = threading.Lock()
LIVE_MAP_SIZE = 1 << 30  # live.lmdb (see above): a sparse file this size


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux: keep the file (no reboot detection)
        return "unknown"


def _discard_after_reboot(path: Path) -> None:
    """Delete ``live.lmdb`` when it was written before the last boot; under a
    file lock so two processes starting together agree."""
    boot = _boot_id()
    marker = path.with_suffix(".boot")
    with open(path.with_suffix(".guard"), "a+") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            seen = marker.read_text().strip() if marker.exists() else None
            if seen != boot:
                for p in (path, Path(str(path) + "-lock")):
                    p.unlink(missing_ok=True)
                marker.write_text(boot + "\n")
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)


def acquire(path: Path, live: bool, map_size: int) -> lmdb.Environment:
    key = (os.getpid(), str(path.resolve()))
    with _lock:
        entry = _envs.get(key)
        if entry is None:
            if live:
                _discard_after_reboot(path)
                env = lmdb.open(key[1], subdir=False, max_dbs=len(formats.LIVE_DBS) + 4, map_size=map_size,
                                max_readers=1024, sync=False, writemap=True)
            else:
                # map_size is address space, not an allocation: the file grows
                # as it is written.
                env = lmdb.open(key[1], subdir=False, max_dbs=32, map_size=map_size, max_readers=1024)
            entry = _envs[key] = [env, 0]
        entry[1] += 1
        return entry[0]


def release(env: lmdb.Environment) -> None:
    with _lock:
        for key, entry in list(_envs.items()):
            if entry[0] is env:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _envs[key]
                    env.close()
                return
