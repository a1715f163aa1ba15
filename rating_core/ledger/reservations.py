"""Credit reservations: one per authorised call, in ``live.lmdb``.

A reservation holds money (1/10000 yuan) or bundle seconds for a call's
grant. ``holds`` keeps each account's sum, changed in the same transaction
as the reservation itself, so the available balance is one read. Every
function here takes the caller's ``live`` write transaction: LMDB serialises
those across threads and processes, which is what makes "available = credit
+ credit limit - open reservations" true at every commit.

The rules (reserve, extend, settle, expire) are in ``rating_core.router``'s
module doc and the README; this module is their storage.
"""
from __future__ import annotations

import functools
import struct
from typing import Callable, NamedTuple, cast

import lmdb

from . import envs, formats
from .formats import HOLD, LINE

# reserved_minor, reserved_seconds, granted_seconds, authorized_ms,
# deadline_ms, answered_ms (0 none), catalog_version, package,
# billing_start (layout.BILLING_START id), money (1: money, 0: bundle
# seconds), caller_class, n_classes; then n_classes int32 destination class
# ids, then the account name, then NUL + the 400 number's key (``>q``; absent in a
# reservation written before every reservation named its number), then, for an
# ended hold, its held_seconds (``<q``; absent in one ended before 2026-12-01).
_HEAD = struct.Struct("<qqqqqqiibbbb")
_HELD = struct.Struct("<q")
_AMOUNTS = struct.Struct("<qq")  # reserved_minor, reserved_seconds: the head's first two
_N_AT = _HEAD.size - 1  # the head's last byte: how many destination classes follow


class Reservation(NamedTuple):
    """One call's hold. ``package``, ``caller_class`` and ``classes`` (the
    listed destinations' classes) are ids of ``catalog_version``: the hold is
    the dearest class's cost of the grant from ``authorized_ms``.
    ``number_key``: the 400 number's key (``numbers.key``); every hold is
    also summed per number (``number_hold``), whether or not the number has
    a monthly cap now, so a cap set while the call is in progress counts it
    (0: a reservation written before reservations named their number). A
    named tuple: Authorize builds one per call, and a tuple costs a fraction
    of a frozen dataclass to build."""

    account: str
    reserved_minor: int
    reserved_seconds: int
    granted_seconds: int
    authorized_ms: int
    deadline_ms: int
    answered_ms: int
    catalog_version: int
    billing_start: int
    money: bool
    package: int
    caller_class: int
    classes: tuple[int, ...]
    number_key: int = 0
    # Set by the call's ``ended`` (the hold then waits for the CDR): a second
    # ``ended`` finds it and changes nothing. Stored in the money byte's
    # second bit, so holds written before read as not ended.
    ended: bool = False
    # An ended hold: the billable seconds it still covers (the time the call
    # can have used by its end), while ``granted_seconds`` stays the grant the
    # call was given. None while the call runs; for a hold ended before this
    # was recorded (2026-12-01) the grant was overwritten by it, so
    # ``granted_seconds`` reads 0 (not known) and this holds that figure.
    held_seconds: int | None = None

    def pack(self) -> bytes:
        classes = self.classes
        return (_HEAD.pack(self.reserved_minor, self.reserved_seconds, self.granted_seconds, self.authorized_ms,
                           self.deadline_ms, self.answered_ms, self.catalog_version, self.package,
                           self.billing_start, (1 if self.money else 0) | (2 if self.ended else 0), self.caller_class, len(classes))
                + _classes(len(classes)).pack(*classes) + self.account.encode()
                + (b"\0" + LINE.pack(self.number_key) if self.number_key or self.held_seconds is not None else b"")
                + (_HELD.pack(self.held_seconds) if self.held_seconds is not None else b""))

    @classmethod
    def unpack(cls, raw: bytes | memoryview) -> "Reservation":
        (minor, seconds, granted, authorized, deadline, answered, version, package, billing, money, caller_class,
         n) = _HEAD.unpack_from(raw)
        classes = _classes(n).unpack_from(raw, _HEAD.size)
        account, number_key, held = _names(raw, n)
        ended = bool(money & 2)
        if ended and held is None:  # ended before held_seconds was recorded: the grant was overwritten
            granted, held = 0, granted
        return cls(account.decode(), minor, seconds, granted, authorized, deadline, answered, version, billing,
                   bool(money & 1), package, caller_class, classes, number_key, ended, held)

    def with_(self, **kw) -> "Reservation":
        return self._replace(**kw)


def _names(raw: bytes | memoryview, n: int) -> tuple[bytes, int, int | None]:
    """(account name as stored, 400 number key or 0, held seconds of an
    ended hold or None) of a packed reservation with ``n`` destination classes."""
    account, _, rest = bytes(raw[_HEAD.size + 4 * n:]).partition(b"\0")
    number = LINE.unpack_from(rest)[0] if rest else 0
    return account, number, _HELD.unpack_from(rest, LINE.size)[0] if len(rest) > LINE.size else None



@functools.lru_cache(maxsize=None)
def _classes(n: int) -> struct.Struct:
    """The packed destination class ids of a reservation with ``n`` of them."""
    return struct.Struct(f"<{n}i")


def _sum(live: lmdb.Transaction, db, key: bytes) -> tuple[int, int, int]:
    raw = live.get(key, db=db)
    return HOLD.unpack(raw) if raw is not None else (0, 0, 0)


def _add(live: lmdb.Transaction, db, key: bytes, minor: int, seconds: int, n: int) -> None:
    """Add to one ``HOLD`` sum (an account's in ``holds``, a number's in
    ``number_holds``); the record goes when no reservation is left."""
    raw = live.get(key, db=db)  # ``_sum``, inline: Authorize adds to two sums per hold
    m, s, k = HOLD.unpack(raw) if raw is not None else (0, 0, 0)
    if k + n <= 0:
        live.delete(key, db=db)
    else:
        live.put(key, HOLD.pack(m + minor, s + seconds, k + n), db=db)


def hold(ledger, live: lmdb.Transaction, account: str) -> tuple[int, int, int]:
    """(reserved_minor, reserved_seconds, open reservations) of an account."""
    return _sum(live, ledger.live_db[formats.HOLDS], account.encode())


def hold_of(ledger, live: lmdb.Transaction, account_key: bytes) -> tuple[int, int, int]:
    """``hold`` of an account by its key (the name, UTF-8)."""
    return _sum(live, ledger.live_db[formats.HOLDS], account_key)


def number_hold(ledger, live: lmdb.Transaction, number_key: int) -> tuple[int, int, int]:
    """(reserved_minor, reserved_seconds, open reservations) of the calls
    on a 400 number (by its key, ``numbers.key``), capped or not."""
    return _sum(live, ledger.live_db[formats.NUMBER_HOLDS], LINE.pack(number_key))


def _add_holds(ledger, live, r: "Reservation", sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) reservation ``r`` from its sums."""
    minor, seconds = sign * r.reserved_minor, sign * r.reserved_seconds
    _add(live, ledger.live_db[formats.HOLDS], r.account.encode(), minor, seconds, sign)
    if r.number_key:
        _add(live, ledger.live_db[formats.NUMBER_HOLDS], LINE.pack(r.number_key), minor, seconds, sign)


def get(ledger, live: lmdb.Transaction, key: bytes) -> Reservation | None:
    raw = live.get(key, db=ledger.live_db[formats.RESERVATIONS])
    return None if raw is None else Reservation.unpack(raw)


def put(ledger, live: lmdb.Transaction, key: bytes, r: Reservation) -> None:
    """Open the reservation of call ``key`` (it must hold none)."""
    dbs = ledger.live_db
    live.put(key, r.pack(), db=dbs[formats.RESERVATIONS])
    live.put(LINE.pack(r.deadline_ms) + key, b"", db=dbs[formats.RESERVATION_DEADLINE])
    _add(live, dbs[formats.HOLDS], r.account.encode(), r.reserved_minor, r.reserved_seconds, 1)
    if r.number_key:
        _add(live, dbs[formats.NUMBER_HOLDS], LINE.pack(r.number_key), r.reserved_minor, r.reserved_seconds, 1)


def take_open(ledger, live: lmdb.Transaction, key: bytes) -> Reservation | None:
    """``drop`` the reservation of call ``key`` unless the call's ``ended``
    settled it already (then it stays, waiting for the CDR); returns it, or
    None when there is none or it is ended."""
    r = get(ledger, live, key)
    if r is None or r.ended:
        return None
    close(ledger, live, key, r)
    return r


def drop(ledger, live: lmdb.Transaction, key: bytes) -> Reservation | None:
    """Close the reservation of call ``key``; returns it (None: it had none)."""
    r = get(ledger, live, key)
    if r is not None:
        close(ledger, live, key, r)
    return r


def close(ledger, live: lmdb.Transaction, key: bytes, r: Reservation) -> None:
    """Close reservation ``r`` of call ``key``, as ``get`` read it in this
    same transaction ``live`` (``drop`` without reading it again)."""
    live.delete(key, db=ledger.live_db[formats.RESERVATIONS])
    live.delete(LINE.pack(r.deadline_ms) + key, db=ledger.live_db[formats.RESERVATION_DEADLINE])
    _add_holds(ledger, live, r, -1)


def expire(ledger, live: lmdb.Transaction, at_ms: int) -> int:
    """Close every reservation whose deadline is before ``at_ms``: a scan
    of ``reservation_deadline`` from its start, so only stale entries are
    read (one key when none is stale). Returns how many."""
    cur = live.cursor(db=ledger.live_db[formats.RESERVATION_DEADLINE])
    if not cur.first() or LINE.unpack_from(cur.key())[0] >= at_ms:
        return 0  # the common case: nothing is stale
    # Each stale hold leaves its account's and number's sums; the sums are
    # written once per account and number (stale holds come in bursts).
    # Cursors delete where they stand: one B-tree search per entry (``pop``
    # reads and deletes the reservation in one). Only what the sums need is
    # read of a reservation: its two held amounts, its account and number
    # (the stale tail of a burst costs the Authorize that sweeps it; issue 12).
    # bytes: the live transactions are begun without buffers
    pop = cast("Callable[[bytes | memoryview], bytes | None]", live.cursor(db=ledger.live_db[formats.RESERVATIONS]).pop)
    accounts: dict[bytes, list[int]] = {}
    numbers: dict[int, list[int]] = {}
    stale = 0
    k = cur.key()
    while k and LINE.unpack_from(k)[0] < at_ms:
        raw = pop(k[8:])
        stale += 1
        cur.delete()  # and on to the next entry
        k = cur.key()
        if raw is None:
            continue
        minor, seconds = _AMOUNTS.unpack_from(raw)
        start = _HEAD.size + 4 * raw[_N_AT]
        end = raw.find(b"\0", start)
        account = raw[start:] if end < 0 else raw[start:end]
        t = accounts.get(account)
        if t is None:
            accounts[account] = [minor, seconds, 1]
        else:
            t[0] += minor
            t[1] += seconds
            t[2] += 1
        if end >= 0 and len(raw) >= end + 1 + LINE.size:
            number_key = LINE.unpack_from(raw, end + 1)[0]
            if number_key:
                t = numbers.get(number_key)
                if t is None:
                    numbers[number_key] = [minor, seconds, 1]
                else:
                    t[0] += minor
                    t[1] += seconds
                    t[2] += 1
    holds = ledger.live_db[formats.HOLDS]
    for account, (minor, seconds, n) in accounts.items():
        _add(live, holds, account, -minor, -seconds, -n)
    if numbers:
        number_holds = ledger.live_db[formats.NUMBER_HOLDS]
        for number_key, (minor, seconds, n) in numbers.items():
            _add(live, number_holds, LINE.pack(number_key), -minor, -seconds, -n)
    return stale


def release(ledger, keys: list[bytes]) -> int:
    """Close the reservations of calls whose CDR was committed (their true
    charge is in ``balances`` now). One live write transaction; nothing to
    do (no write) when no reservation is open at all. A ``live.lmdb`` with
    no page left for the release (it keeps a reserve for settling, so only
    when that is spent too) releases nothing: the charges are committed
    already, the holds stay counted (the safe side) and expire at their
    deadlines."""
    with ledger.live.begin() as t:
        if t.stat(ledger.live_db[formats.RESERVATIONS])["entries"] == 0:
            return 0
    n = 0
    try:
        with envs.live_write(ledger) as live:
            found = dict(live.cursor(db=ledger.live_db[formats.RESERVATIONS]).getmulti(keys))
            for key in found:
                n += drop(ledger, live, bytes(key)) is not None
    except envs.LiveLedgerFull:
        return 0
    return n


def record_settled(ledger, txn: lmdb.Transaction, keys: list[bytes]) -> int:
    """Inside the durable write ``txn`` committing calls ``keys``: copy the
    reservation each of them holds (if any) to ``settlements``, so the
    explanation of the call can name the hold its charge replaced (``release``
    then closes it). Nothing is read beyond one count when no reservation is
    open. Returns how many were recorded."""
    with ledger.live.begin() as live:
        if live.stat(ledger.live_db[formats.RESERVATIONS])["entries"] == 0:
            return 0
        found = live.cursor(db=ledger.live_db[formats.RESERVATIONS]).getmulti(keys)
        db = ledger.db[formats.SETTLEMENTS]
        n = 0
        for key, value in found:
            txn.put(bytes(key), bytes(value), db=db)
            n += 1
    return n


def settled(ledger, txn: lmdb.Transaction, key: bytes) -> Reservation | None:
    """The reservation recorded when call ``key`` was committed, or None
    (it held none, or was committed before settlements were recorded)."""
    raw = txn.get(key, db=ledger.db[formats.SETTLEMENTS])
    return None if raw is None else Reservation.unpack(raw)


def open_reservations(ledger, live: lmdb.Transaction | None = None) -> list[tuple[bytes, Reservation]]:
    """Every open reservation (call key, reservation); for tests and tools."""
    own = live is None
    live = live or ledger.live.begin()
    try:
        return [(bytes(k), Reservation.unpack(v)) for k, v in live.cursor(db=ledger.live_db[formats.RESERVATIONS])]
    finally:
        if own:
            live.abort()
