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
file of ``live_map_size()`` (1 GiB: about 4 million authorised calls) that
takes only the pages written; copies of a store should leave ``live.lmdb``
out (calls in progress belong to the running platform). LMDB does not let
processes with and without ``writemap`` share an environment, so stop every
process of an older version before starting this one on the same store. It only holds calls
in progress (reservations, live calls, cursors), which a reboot ends anyway, so the file
remembers the boot it was written in (``live.boot``) and is discarded when
opened after a reboot.

**A full map** (README "Credit reservation: when live.lmdb fills"): new
calls (a reservation, a live call not yet known) may fill at most
``NEW_CALL_SHARE`` of the map; past that they are refused with
``LiveLedgerFull`` (gRPC RESOURCE_EXHAUSTED) while every write that settles
a call (events of known calls, expiry, releases after a commit, account
operations) still runs in the rest. LMDB copies every page it changes, so
a delete in a map with no free page fails too: without that reserve a full
map could never be emptied. The map size is ``RATING400_LIVE_MAP_MB``
(default 1024); an environment is never opened smaller than its file (with
``writemap`` LMDB truncates the file to the map, and a process whose map
reaches past the end of the file dies of SIGBUS on its next write there).

**A full disk under live.lmdb** (README "When live.lmdb fills"): with
``writemap`` a transaction writes straight into the mapped file, and a page
of a sparse file that the filesystem cannot back is a SIGBUS that kills the
process, not an error. So the file's blocks are allocated ahead of the
writes (``posix_fallocate``, ``reserve_live``): as every live write
transaction begins (inside LMDB's write lock, before it writes), up to the map's high-water mark plus ``LIVE_HEADROOM`` (1 MiB,
or an eighth of the high-water mark when larger; never past the map). A
disk that cannot give them lets writes go on while a quarter of the headroom
is still allocated past the mark (a transaction of calls in progress takes a
few pages), then refuses every live write with ``LiveDiskFull`` (a
``LiveLedgerFull``: gRPC RESOURCE_EXHAUSTED) before it writes anything.
Residual: one transaction that grows the file past the allocated room (an
expiry sweep of thousands of calls at once, on a disk already full) could
still meet an unbacked page.
Dropping ``writemap`` instead (write() reports ENOSPC) was measured: p50
2.0 -> 7.2 us and p99 3 -> 40..110 us per small live commit, against
Authorize's 50 us p99 target.

**ledger.lmdb full** (README "When the ledger or its disk fills"): the
durable ledger's map is ``RATING400_LEDGER_MAP_MB`` (default 256 GiB of
address space; the file grows as it is written). A write that finds the
map used up (MDB_MAP_FULL) or the disk full (ENOSPC; LMDB reports the short
write of its pages as EIO, so an LMDB error with under DISK_FULL_BYTES free
counts too) is aborted whole -- LMDB commits a transaction or nothing -- and raised as ``LedgerFull``
(gRPC RESOURCE_EXHAUSTED, CLI one line and exit 2) saying what to do;
the process keeps serving (reads, and every write once there is room).
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import resource
import shutil
import threading
from pathlib import Path
from typing import Literal, Mapping

import lmdb

from ..errors import StoreError
from . import formats

_envs: dict[tuple[int, str], list] = {}  # (pid, path) -> [env, users]
_lock = threading.Lock()
LIVE_MAP_SIZE = 1 << 30  # live.lmdb (see above): a sparse file this size, unless LIVE_MAP_ENV says
LIVE_MAP_ENV = "RATING400_LIVE_MAP_MB"
MAX_LIVE_MAP_MB = 1 << 20  # 1 TiB of address space: beyond it a typo, not a plan
LEDGER_MAP_SIZE = 1 << 38  # ledger.lmdb: 256 GiB of address space, unless LEDGER_MAP_ENV says
LEDGER_MAP_ENV = "RATING400_LEDGER_MAP_MB"
MAX_LEDGER_MAP_MB = 1 << 24  # 16 TiB
NEW_CALL_SHARE = 0.8  # of the map new calls may fill; the rest is settling's (see above)


class LiveLedgerFull(StoreError):
    """``live.lmdb`` has no room for another call in progress (gRPC
    RESOURCE_EXHAUSTED; CLI exit 2). Nothing of the refused write is kept.
    ``used_bytes`` / ``map_bytes``: the pages in use and the map."""

    reason = "live_ledger_full"

    def __init__(self, used_bytes: int, map_bytes: int, open_calls: int):
        self.used_bytes, self.map_bytes, self.open_calls = used_bytes, map_bytes, open_calls
        mb = map_bytes >> 20
        super().__init__(
            f"live.lmdb is full: {100 * used_bytes // max(1, map_bytes)}% of its {mb} MiB map in use, "
            f"{open_calls} calls in progress; "
            f"new calls are refused, calls in progress still settle. Raise {LIVE_MAP_ENV} (now {mb}) "
            f"and restart the server (calls in progress are kept), or look for calls whose ended event "
            f"never arrives")


class LiveDiskFull(LiveLedgerFull):
    """The disk holding ``live.lmdb`` cannot back the pages the next live
    write may take (``reserve_live``): the write is refused before it starts
    (gRPC RESOURCE_EXHAUSTED, CLI exit 2), nothing of it is kept."""

    def __init__(self, path: Path, need_bytes: int, detail: str):
        self.used_bytes, self.map_bytes, self.open_calls = need_bytes, 0, 0
        StoreError.__init__(
            self, f"the disk holding {path} is full ({detail}): it cannot reserve the {need_bytes >> 20} MiB "
                  f"live.lmdb may use next, so this call is refused and nothing of it was written. Free space "
                  f"on that filesystem (or move the store to a larger one); calls in progress are kept")


class LedgerFull(StoreError):
    """A write to ``ledger.lmdb`` found its map used up (``disk`` False) or
    the disk full (``disk`` True): gRPC RESOURCE_EXHAUSTED, CLI exit 2.
    The write's transaction was aborted: nothing of it is kept."""

    reason = "ledger_full"

    def __init__(self, disk: bool, detail: str = ""):
        self.disk = disk
        if disk:
            what = (f"the disk holding ledger.lmdb is full ({detail or 'No space left on device'}); "
                    "nothing of this write was committed. Free space on that filesystem (or move the store "
                    "to a larger one), then send it again: committed calls are kept")
        else:
            mb = ledger_map_size() >> 20
            what = (f"ledger.lmdb is full: its {mb} MiB map is used up; nothing of this write was committed. "
                    f"Raise {LEDGER_MAP_ENV} (now {mb}) and restart the server or command "
                    "(committed calls are kept)")
        super().__init__(what)


def ledger_full(exc: BaseException) -> LedgerFull | None:
    """The ``LedgerFull`` an exception from a durable write is (MDB_MAP_FULL,
    LMDB's ENOSPC, an OSError ENOSPC), else None. A MapFullError of
    ``live.lmdb`` never reaches here: ``live_write`` turns it into
    ``LiveLedgerFull``."""
    if isinstance(exc, LedgerFull):
        return exc
    if isinstance(exc, lmdb.MapFullError):
        return LedgerFull(False)
    if isinstance(exc, lmdb.DiskError) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return LedgerFull(True, os.strerror(errno.ENOSPC))
    return None


class durable_errors:
    """``with durable_errors(ledger, live):`` around a ``ledger.lmdb`` write
    transaction (``Ledger.durable`` / ``Ledger.write``, the only users): its
    map or disk running full is raised as ``LedgerFull`` (the transaction
    aborted by its own ``with``). ``live``: a live transaction is open too
    (``Ledger.write``): a MapFullError is then the live map's when
    ``live.lmdb`` is past ``NEW_CALL_SHARE`` (below it settling writes
    always have room), and is left to ``live_write``."""

    __slots__ = ("ledger", "live")

    def __init__(self, ledger, live: bool):
        self.ledger, self.live = ledger, live

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> Literal[False]:
        if exc is None or isinstance(exc, LedgerFull):
            return False
        if self.live and isinstance(exc, lmdb.MapFullError):
            info = self.ledger.live.info()
            if (info["last_pgno"] + 1) * _PAGE > info["map_size"] * NEW_CALL_SHARE:
                return False
        full = ledger_full(exc)
        if full is None and isinstance(exc, lmdb.Error) and _disk_full(self.ledger.path):
            # LMDB reports a short write of its pages (a disk filled) as EIO.
            full = LedgerFull(True, os.strerror(errno.ENOSPC))
        if full is not None:
            raise full from None
        return False


def _disk_full(path: Path) -> bool:
    """Less than DISK_FULL_BYTES free on the filesystem holding ``path``."""
    try:
        return shutil.disk_usage(path.parent).free < DISK_FULL_BYTES
    except OSError:
        return False


DISK_FULL_BYTES = 1 << 20  # after a failed commit's pages took what was left


def _map_mb(env: str, default: int, most: int, what: str) -> int:
    """``env``'s value: ASCII digits only (``str.isdigit`` would also take
    full-width ``１`` or ``²``), surrounding ASCII spaces and tabs ignored (a
    shell's quoting leaves them), 1..``most`` MiB -> bytes; unset or blank:
    ``default``. StoreError naming the variable otherwise."""
    raw = os.environ.get(env, "").strip(" \t")
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw) or not 1 <= int(raw) <= most:
        raise StoreError(f"{env}={raw[:40]!r}: the {what} map in MiB, a whole number 1..{most}")
    return int(raw) << 20


def live_map_size() -> int:
    """The live map size in bytes: ``RATING400_LIVE_MAP_MB`` MiB (1 ..
    ``MAX_LIVE_MAP_MB``), else ``LIVE_MAP_SIZE``. Raises ``StoreError``
    naming the variable for another value."""
    return _map_mb(LIVE_MAP_ENV, LIVE_MAP_SIZE, MAX_LIVE_MAP_MB, "live.lmdb")


def ledger_map_size() -> int:
    """The ``ledger.lmdb`` map size in bytes: ``RATING400_LEDGER_MAP_MB`` MiB
    (1 .. ``MAX_LEDGER_MAP_MB``), else ``LEDGER_MAP_SIZE``. Raises
    ``StoreError`` naming the variable for another value. LMDB never maps
    less than the file's data, so a value below it leaves a full map."""
    return _map_mb(LEDGER_MAP_ENV, LEDGER_MAP_SIZE, MAX_LEDGER_MAP_MB, "ledger.lmdb")


def _pages(st) -> int:
    return st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]


def room_for_new_call(ledger, txn: lmdb.Transaction) -> None:
    """Raise ``LiveLedgerFull`` when ``live.lmdb`` holds more than
    ``NEW_CALL_SHARE`` of its map (inside the live write ``txn`` that would
    add a call in progress). Costs one ``env.info()`` (~0.5 us) while the
    file's high-water mark is under the share (none inside a ``live_write``:
    the one ``reserve_live`` read as the transaction began, which no other
    writer can change before it ends); above it the pages holding
    data are counted (free pages below the mark are reused): every live
    database's, the main database's and the two meta pages."""
    seen = _write_info.get(id(ledger.live))
    info = seen[1] if seen is not None and seen[0] is txn and seen[1] is not None else ledger.live.info()
    limit = int(info["map_size"] * NEW_CALL_SHARE)
    if (info["last_pgno"] + 1) * _PAGE <= limit:
        return
    used = 2 + _pages(ledger.live.stat()) + sum(_pages(txn.stat(db)) for db in ledger.live_db.values())
    if used * _PAGE > limit:
        raise LiveLedgerFull(used * _PAGE, info["map_size"], open_calls(ledger, txn))


_PAGE = resource.getpagesize()  # LMDB's page size: the OS page


def open_calls(ledger, txn: lmdb.Transaction) -> int:
    """Calls in progress known to ``live.lmdb``: the larger of the open
    reservations and the live calls (one call may have both)."""
    return max(txn.stat(ledger.live_db[name])["entries"] for name in (formats.RESERVATIONS, formats.ROUTE_CALLS))


class live_write:
    """``with live_write(ledger) as txn``: a write transaction on ``live.lmdb``
    (committed at the end of the block, aborted on an exception, as
    ``env.begin(write=True)``) whose MDB_MAP_FULL, from any put, delete or
    the commit, is raised as ``LiveLedgerFull``: the transaction is aborted,
    so nothing of it is kept."""

    __slots__ = ("ledger", "txn")

    def __init__(self, ledger):
        self.ledger = ledger

    def __enter__(self) -> lmdb.Transaction:
        env = self.ledger.live
        txn = self.txn = env.begin(write=True)
        try:
            # Inside the write lock, before any write: the env.info() read
            # here is exact until the commit, and room_for_new_call reuses it.
            _write_info[id(env)] = (txn, reserve_live(env))
        except BaseException:
            txn.abort()
            raise
        return txn

    def __exit__(self, kind, exc, tb) -> Literal[False]:
        txn = self.txn
        if kind is None:
            try:
                txn.commit()
            except lmdb.MapFullError:
                raise self._full() from None
            return False
        txn.abort()
        if isinstance(exc, lmdb.MapFullError):
            raise self._full() from None
        return False

    def _full(self) -> LiveLedgerFull:
        info = self.ledger.live.info()
        with self.ledger.live.begin() as t:
            return LiveLedgerFull((info["last_pgno"] + 1) * _PAGE, info["map_size"], open_calls(self.ledger, t))


LIVE_HEADROOM = 1 << 20  # bytes of live.lmdb allocated past its high-water mark (at least)
_reserved: dict[int, list] = {}  # id(live env) -> [fd, bytes allocated from 0, path]
_write_info: dict[int, tuple] = {}  # id(live env) -> (its live_write's transaction, the env.info() read in it)


def reserve_live(env: lmdb.Environment) -> Mapping[str, object] | None:
    """Make sure the blocks of ``live.lmdb`` up to its high-water mark plus
    the headroom (module doc) are allocated on disk, so the next write
    transaction never touches an unbacked page of the map. One
    ``env.info()`` (~0.5 us) while they are; else ``posix_fallocate`` of the
    rest (a no-op for blocks another process already allocated). Returns
    that ``env.info()`` (None: not a live environment of ``acquire``,
    nothing read). Raises ``LiveDiskFull`` when the disk cannot give them."""
    entry = _reserved.get(id(env))
    if entry is None:
        return None  # not a live environment of ``acquire`` (nothing to reserve)
    info = env.info()
    high = (info["last_pgno"] + 1) * _PAGE
    need = min(info["map_size"], high + max(LIVE_HEADROOM, high >> 3))
    if need <= entry[1]:
        return info
    try:
        os.posix_fallocate(entry[0], entry[1], need - entry[1])
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
            entry[1] = info["map_size"]  # a filesystem without allocation: nothing to do but go on
            return info
        if high + (LIVE_HEADROOM >> 2) <= entry[1]:
            return info  # a quarter of the headroom is still backed: enough for one transaction
        raise LiveDiskFull(entry[2], need, os.strerror(e.errno or errno.ENOSPC)) from None
    entry[1] = need
    return info


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
                # Never smaller than the file (see the module doc): another
                # process may have opened it with a larger map.
                held = path.stat().st_size if path.exists() else 0
                if held > map_size and os.environ.get(LIVE_MAP_ENV, "").strip():
                    logging.getLogger("rating400.ledger").warning(
                        "%s=%s is smaller than %s (%d MiB): the map stays at the file's size; move the file away "
                        "when no call is in progress to start smaller", LIVE_MAP_ENV,
                        os.environ[LIVE_MAP_ENV].strip(), path, held >> 20)
                map_size = max(map_size, held)
                env = lmdb.open(key[1], subdir=False, max_dbs=len(formats.LIVE_DBS) + 4, map_size=map_size,
                                max_readers=1024, sync=False, writemap=True)
                # Blocks are allocated ahead of the writes (``reserve_live``).
                _reserved[id(env)] = [os.open(key[1], os.O_RDWR | os.O_CLOEXEC), 0, path]
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
                    _write_info.pop(id(env), None)
                    reserved = _reserved.pop(id(env), None)
                    if reserved is not None:
                        os.close(reserved[0])
                    env.close()
                return
