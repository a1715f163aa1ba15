"""Post-call work kept on disk until the engine has it.

After a call the switch owes the engine a ``CallEvent`` (answered, ended) and
the CDR (``RateCdr``). They are written here first and sent after, so an
engine that is down, restarting or slow never loses a CDR: the spool is
flushed again by a timer until it is empty. Sending more than once is safe
by the contract: ``RateCdr`` commits a call id exactly once (a repeat is
answered ``replayed`` with the first result, nothing charged again) and call
events are idempotent per call id.

Layout: one JSON file per call (``<hex of call id>.json``: a list of
operations, oldest first), so a call's events and CDR stay in order, and
``rejected/`` for operations the engine refused for good (INVALID_ARGUMENT,
NOT_FOUND, FAILED_PRECONDITION), kept with the error for the operator.
Several processes share the directory: a file is only read or changed
under its ``flock``; a file unlinked while another process waited for its
lock is detected (no links left) and opened again.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Callable

# send(op) -> True (done), False (retry later), or an error text (refused
# for good: moved to rejected/).
Sender = Callable[[dict], "bool | str"]


class Spool:
    """A directory of pending operations per call (see module doc)."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rejected").mkdir(exist_ok=True)

    def _path(self, call_id: str) -> Path:
        return self.dir / (call_id.encode().hex()[:200] + ".json")

    def _open_locked(self, path: Path, blocking: bool = True, create: bool = True):
        """An fd of ``path`` holding its exclusive lock, or None."""
        while True:
            try:
                fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o640)
            except FileNotFoundError:
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            if os.fstat(fd).st_nlink > 0:
                return fd
            os.close(fd)  # drained and unlinked while we waited: start again
            if not create:
                return None

    @staticmethod
    def _read(fd: int) -> list:
        os.lseek(fd, 0, os.SEEK_SET)
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
        return json.loads(data) if data.strip() else []

    @staticmethod
    def _write(fd: int, ops: list, sync: bool) -> None:
        data = json.dumps(ops, separators=(",", ":")).encode()
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)
        if sync:
            os.fsync(fd)

    def add(self, call_id: str, ops: list[dict], send: Sender | None = None) -> bool:
        """Append ``ops`` to the call's queue (durably when one is a CDR),
        then, with ``send``, try to drain the queue now. True when drained."""
        path = self._path(call_id)
        fd = self._open_locked(path)
        try:
            queue = self._read(fd) + list(ops)
            self._write(fd, queue, sync=any(op.get("op") == "cdr" for op in ops))
            if send is None:
                return False
            return self._drain(fd, path, queue, send)
        finally:
            os.close(fd)

    def _drain(self, fd: int, path: Path, queue: list, send: Sender) -> bool:
        done = 0
        for op in queue:
            result = send(op)
            if result is False:
                break
            if result is not True:
                self._reject(path, op, str(result))
            done += 1
        if done == len(queue):
            os.unlink(path)  # under the lock: a waiter sees st_nlink == 0
            return True
        if done:
            self._write(fd, queue[done:], sync=True)
        return False

    def _reject(self, path: Path, op: dict, error: str) -> None:
        target = self.dir / "rejected" / path.name
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps({"op": op, "error": error}, separators=(",", ":")) + "\n")

    def flush(self, send: Sender) -> int:
        """Try every queue not locked by another process; returns how many
        calls are still pending afterwards."""
        left = 0
        for path in sorted(self.dir.glob("*.json")):
            fd = self._open_locked(path, blocking=False, create=False)
            if fd is None:
                left += path.exists()
                continue
            try:
                if not self._drain(fd, path, self._read(fd), send):
                    left += 1
            finally:
                os.close(fd)
        return left

    def pending(self) -> int:
        """Calls with operations not yet accepted by the engine."""
        return sum(1 for _ in self.dir.glob("*.json"))

    def rejected(self) -> list[dict]:
        """Operations the engine refused for good, with the error."""
        out = []
        for path in sorted((self.dir / "rejected").glob("*.json")):
            out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        return out


class LiveCalls:
    """Answered calls with a granted maximum, for the interim timer: one
    small JSON file per call under ``<spool_dir>/live`` (call id, number,
    caller, the dialog's hash ids, billing start, grant, cut time), written
    atomically (rename). The worker that sees the answer adds it, the one
    that sees the end removes it; the timer reads and updates them."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory) / "live"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, call_id: str) -> Path:
        return self.dir / (call_id.encode().hex()[:200] + ".json")

    def put(self, record: dict) -> None:
        path = self._path(record["call_id"])
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)

    def drop(self, call_id: str) -> None:
        self._path(call_id).unlink(missing_ok=True)

    def records(self) -> list[dict]:
        out = []
        for path in self.dir.glob("*.json"):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # removed or being replaced meanwhile
        return out
