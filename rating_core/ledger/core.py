"""``Ledger``: the two environments, balances and credit operations."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import lmdb
import numpy as np

from .. import layout
from . import envs, formats
from .formats import BALANCE, COUNT, HOLD, PERIOD_MONTH

# The credit limit of a package that names none (catalog ``credit_limit``):
# postpaid usage (payg, bundle overage) may run this far before calls are
# refused; prepaid credit has no overdraft. 1000 yuan is about two months of
# a busy service desk at 0.12 yuan/min -- enough for a monthly bill cycle,
# small enough that an unpaid account is stopped.
DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR = 1000 * 10_000


class InsufficientCredit(Exception):
    """A debit that would take the available balance below zero.

    ``account``, ``available_minor`` (before the debit), ``debit_minor``."""

    reason = "insufficient_credit"

    def __init__(self, account: str, available_minor: int, debit_minor: int):
        self.account, self.available_minor, self.debit_minor = account, available_minor, debit_minor
        from ..money import in_yuan

        super().__init__(f"{account}: a debit of {in_yuan(debit_minor)} exceeds the available "
                         f"{in_yuan(available_minor)} (credit + credit limit - open reservations)")


@dataclass(frozen=True, slots=True)
class AccountTerms:
    """What a balance means for one account, from its package (the catalog
    snapshot today; live account data when the customer layer owns it).

    kind: ``layout.PACKAGE_KIND`` name. package_start_ms: epoch ms, the period
    the balance belongs to (a new start is a renewal: the opening applies).
    expiry_ms: prepaid credit expiry (epoch ms; ``layout.NEVER`` none).
    opening_credit_minor: credit at package start, 1/10000 yuan.
    credit_limit_minor: how far below zero credit may go (postpaid), >= 0.
    included_seconds: bundle seconds per calendar month (0 none).
    overage_rate: bundle overage, the rate id of the seconds beyond the bundle (-1: no overage sold).
    """

    kind: str
    package_start_ms: int
    expiry_ms: int
    opening_credit_minor: int
    credit_limit_minor: int
    included_seconds: int
    overage_rate: int

    @classmethod
    def from_snapshot(cls, snapshot, account: int | str) -> "AccountTerms":
        """Terms of an account (row index or name) in a catalog snapshot.
        Raises ``KeyError`` for an unknown name."""
        t = snapshot.tables
        i = account if isinstance(account, (int, np.integer)) else snapshot.meta["accounts"].index(account)
        p = int(t["account_package"][i])
        return cls(
            kind=layout.PACKAGE_KIND[int(t["package_kind"][p])],
            package_start_ms=int(t["account_start_ms"][i]),
            expiry_ms=int(t["account_expiry_ms"][i]),
            opening_credit_minor=int(t["account_opening_credit"][i]),
            credit_limit_minor=int(package_credit_limits(t)[p]),
            included_seconds=int(t["package_included_seconds"][p]),
            overage_rate=int(t["package_overage_rate"][p]),
        )


def package_credit_limits(tables) -> np.ndarray:
    """Credit limit per package (int64 minor units): the catalog's
    ``package_credit_limit`` table, or for snapshots compiled before it, the
    default by kind (prepaid 0, postpaid ``DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR``)."""
    if "package_credit_limit" in tables:
        return tables["package_credit_limit"]
    prepaid = tables["package_kind"] == layout.PACKAGE_KIND.index("prepaid")
    return np.where(prepaid, 0, DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR).astype(np.int64)


def month_of(at_ms: int) -> int:
    """Bundle period id (year * 12 + month - 1) of an instant, Asia/Shanghai."""
    days = (at_ms + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY
    d = np.datetime64(int(days), "D")
    y = d.astype("datetime64[Y]").astype(int) + 1970
    m = d.astype("datetime64[M]").astype(int) % 12
    return int(y * 12 + m)


def month_opening_kinds(tables, accounts: np.ndarray, start_ms: np.ndarray) -> np.ndarray:
    """The kind each row's calendar month is billed as: the
    ``layout.PACKAGE_KIND`` index (int8 per row) of the package period in
    force at the first instant of the month (Asia/Shanghai) of ``start_ms``
    (int64 epoch ms per row) for account row ``accounts`` (int64 per row),
    as ``billing.statements`` bills a month (its minimum and kind are those
    of the package in force at its start); the first period's kind for a
    month before it (a first month is billed under the package it starts).
    -1 for every row of a view without package-period history (a catalog
    store: no change was recorded, so no month changed kind)."""
    return _kinds_at(tables, accounts, _month_first_ms(start_ms, 0))


def prepaid_follows_in_month(tables, accounts: np.ndarray, start_ms: np.ndarray) -> np.ndarray:
    """Whether a prepaid package period of account row ``accounts`` (int64
    per row) starts after each ``start_ms`` (int64 epoch ms per row) and
    before the first instant of the next calendar month (Asia/Shanghai):
    bool per row, False for a view without package-period history. A
    bundle call's overage in a month billed as prepaid is paid from the
    credit when one does -- its bundle stretch is a postpaid interval inside
    the month (README "Money rules") -- and billed when not: the stretch the
    month ends on, whose overage the statement bills and the change back to
    prepaid gives back (``statements``, ``AccountOps._overage_billed_due``;
    breaker7 F4: pre_b -> bun_a -> pre_a -> bun_a -> pre_b at 12-01 00:00, the
    first stretch's late overage was not taken). For a month that ends
    prepaid this is every bundle call of it. A period starting at the next
    month's first instant is not this month's, as the statement reads the
    month's own changes (breaker6 F1: pre_b -> bun_a -> pay in November and
    pre_a at 12-01 00:00 read November as ending prepaid, and a bundle
    overage the statement billed was also taken from the credit)."""
    out = np.zeros(len(accounts), bool)
    if "account_period_first" not in tables or not len(accounts):
        return out
    first, count = tables["account_period_first"], tables["account_period_count"]
    starts, packages, kinds = tables["period_start_ms"], tables["period_package"], tables["package_kind"]
    prepaid = layout.PACKAGE_KIND.index("prepaid")
    at = np.asarray(start_ms, np.int64)
    end = _month_first_ms(at, 1)
    for i, acc in enumerate(np.asarray(accounts, np.int64)):
        lo, n = int(first[acc]), int(count[acc])
        s = starts[lo:lo + n]
        after = (s > at[i]) & (s < end[i])
        out[i] = bool(np.any(kinds[packages[lo:lo + n][after]] == prepaid))
    return out


def _month_first_ms(start_ms: np.ndarray, months_after: int) -> np.ndarray:
    """The first instant (epoch ms, Asia/Shanghai) of the calendar month
    ``months_after`` months after that of each of ``start_ms``."""
    local_day = (np.asarray(start_ms, np.int64) + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY
    month = local_day.astype("datetime64[D]").astype("datetime64[M]") + months_after
    return month.astype("datetime64[D]").astype(np.int64) * layout.MS_PER_DAY - layout.LOCAL_OFFSET_MS


def _kinds_at(tables, accounts: np.ndarray, at_ms: np.ndarray) -> np.ndarray:
    """The kind of the package period in force at ``at_ms`` (a period
    starting at that instant included), or the first period's before it;
    -1 for every row without package-period history."""
    out = np.full(len(accounts), -1, np.int8)
    if "account_period_first" not in tables or not len(accounts):
        return out
    first, count = tables["account_period_first"], tables["account_period_count"]
    starts, packages, kinds = tables["period_start_ms"], tables["period_package"], tables["package_kind"]
    for i, acc in enumerate(np.asarray(accounts, np.int64)):
        lo, n = int(first[acc]), int(count[acc])
        if n:
            p = lo + max(0, int(np.searchsorted(starts[lo:lo + n], at_ms[i], "right")) - 1)
            out[i] = kinds[packages[p]]
    return out


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's balance in its own units.

    credit_minor: credit left, 1/10000 yuan (below zero: postpaid usage owed).
    reserved_minor: credit held by open reservations.
    credit_limit_minor: how far below zero credit may go.
    available_minor = credit_minor + credit_limit_minor - reserved_minor
      (0 once prepaid credit has expired): what the next call may reserve.
    bundle_left_seconds: bundle seconds left this month, before reservations.
    reserved_seconds: bundle seconds held by open reservations.
    available_seconds = bundle_left_seconds - reserved_seconds.
    open_reservations: calls holding a reservation.
    package_start_ms: the period the balance belongs to.
    """

    account: str
    kind: str
    credit_minor: int
    reserved_minor: int
    available_minor: int
    credit_limit_minor: int
    bundle_left_seconds: int
    reserved_seconds: int
    available_seconds: int
    open_reservations: int
    package_start_ms: int


class Stored(NamedTuple):
    """A ``balances`` record as stored (see ``formats.BALANCE``). A named
    tuple: Authorize reads one per call."""

    credit_minor: int
    bundle_period: int
    bundle_used_seconds: int
    package_start_ms: int


def usage_table(table: tuple[np.ndarray, ...] | None = None) -> dict[str, np.ndarray]:
    """The kernel's state entries for bundle usage per period-month
    (``kernels.rating.rate``): ``table`` (``Ledger.bundle_usage``, default
    empty); ``missed_*`` and ``rolled_*`` empty until a rating sizes them."""
    key, start, used = table if table is not None else (np.zeros(0, np.int64),) * 3
    empty = np.zeros(0, np.int64)
    return {"late_key": key, "late_start": start, "late_used": used, "late_used_before": used.copy(),
            "missed_key": empty, "missed_start": empty, "missed_n": np.zeros(1, np.int64),
            "rolled_acc": empty, "rolled_month": empty, "rolled_used": empty, "rolled_n": np.zeros(1, np.int64)}


class LedgerTxn:
    """A write on both environments: ``txn`` (ledger.lmdb, durable) and
    ``live`` (live.lmdb). Holding ``live`` serialises the operation with
    every reservation, so a debit and a concurrent Authorize never both
    count the same credit."""

    __slots__ = ("txn", "live")

    def __init__(self, txn: lmdb.Transaction, live: lmdb.Transaction):
        self.txn, self.live = txn, live


class Ledger:
    """The ledger of one store directory: ``ledger.lmdb`` (money, durable)
    and ``live.lmdb`` (calls in progress). See ``formats`` for every database
    and record. ``Ledger(root)`` in the same process shares the environments;
    ``close`` releases this user."""

    def __init__(self, root: str | Path, map_size: int | None = None):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "ledger.lmdb"
        self.live_path = root / "live.lmdb"
        self.env = envs.acquire(self.path, live=False, map_size=map_size or envs.ledger_map_size())
        self.live = envs.acquire(self.live_path, live=True, map_size=envs.live_map_size())
        self.db = {name: self.env.open_db(name) for name in formats.DURABLE_DBS}
        self.live_db = {name: self.live.open_db(name) for name in formats.LIVE_DBS}
        self.balances = self.db[formats.BALANCES]
        self._closed = False

    # -- transactions ------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[LedgerTxn]:
        """One operation on money: the live environment's write lock first
        (orders it with reservations), then a durable write transaction.
        Both commit when the block ends without an exception (durable first:
        a crash between leaves a reservation, never a lost debit). A full
        map or disk aborts both: ``LedgerFull`` / ``LiveLedgerFull``."""
        with envs.live_write(self) as live:
            with envs.durable_errors(self, live=True), self.env.begin(write=True) as txn:
                yield LedgerTxn(txn, live)

    @contextlib.contextmanager
    def durable(self) -> Iterator[lmdb.Transaction]:
        """A write transaction on ``ledger.lmdb`` alone (a commit of rated
        calls, a CRM edit, caller memory, the webhook cursor): committed
        when the block ends without an exception, else aborted. A full map
        or disk (MDB_MAP_FULL, ENOSPC, the EIO of a short page write) is
        raised as ``LedgerFull`` with nothing of it kept. Every durable
        write goes through here or ``write`` (``tests/test_ledger_full_writes.py``
        checks no other module opens one), so none answers INTERNAL."""
        with envs.durable_errors(self, live=False), self.env.begin(write=True) as txn:
            yield txn

    # -- balances -----------------------------------------------------------
    def stored(self, account: str, txn: lmdb.Transaction | None = None) -> Stored | None:
        """The ``balances`` record of an account, or None when none was written."""
        raw: bytes | memoryview | None
        if txn is None:
            with self.env.begin() as t:
                raw = t.get(account.encode(), db=self.balances)
        else:
            raw = txn.get(account.encode(), db=self.balances)
        return None if raw is None else Stored(*BALANCE.unpack(raw))

    def _hold(self, live: lmdb.Transaction, account: str) -> tuple[int, int, int]:
        raw = live.get(account.encode(), db=self.live_db[formats.HOLDS])
        return HOLD.unpack(raw) if raw is not None else (0, 0, 0)

    def _current(self, account: str, stored: Stored | None, terms: AccountTerms,
                 txn: lmdb.Transaction | None) -> Stored:
        """The record that applies under ``terms``: the stored one, or the
        opening balance when none was stored for this package start (its
        bundle month carried on where the period kept one, ``_resumed``)."""
        if stored is None or stored.package_start_ms != terms.package_start_ms:
            if txn is None:
                with self.env.begin() as own:
                    resumed = self._resumed(own, account, terms.package_start_ms)
            else:
                resumed = self._resumed(txn, account, terms.package_start_ms)
            month, used = resumed if resumed is not None else (-1, 0)
            return Stored(terms.opening_credit_minor, month, used, terms.package_start_ms)
        return stored

    def balance(self, account: str, terms: AccountTerms, at_ms: int,
                txn: lmdb.Transaction | None = None, live: lmdb.Transaction | None = None) -> Balance:
        """The balance of ``account`` at ``at_ms`` (epoch ms: credit expiry and
        the bundle month). Holds are read before credit: a settlement that
        lands between the two reads is then counted twice (safe), never not
        at all."""
        own_live = live is None
        live = live or self.live.begin()
        try:
            reserved_minor, reserved_seconds, n_open = self._hold(live, account)
        finally:
            if own_live:
                live.abort()
        cur = self._current(account, self.stored(account, txn), terms, txn)
        credit = cur.credit_minor
        if terms.kind == "prepaid" and at_ms >= terms.expiry_ms:
            credit = 0  # unused credit expires with the period
        used = cur.bundle_used_seconds if cur.bundle_period == month_of(at_ms) else 0
        left = max(0, terms.included_seconds - used) if terms.kind == "bundle" else 0
        return Balance(
            account=account, kind=terms.kind, credit_minor=credit, reserved_minor=reserved_minor,
            available_minor=credit + terms.credit_limit_minor - reserved_minor,
            credit_limit_minor=terms.credit_limit_minor, bundle_left_seconds=left,
            reserved_seconds=reserved_seconds, available_seconds=left - reserved_seconds,
            open_reservations=n_open, package_start_ms=cur.package_start_ms,
        )

    def apply_credit(self, w: LedgerTxn, account: str, delta_minor: int, terms: AccountTerms, at_ms: int,
                     allow_below_available: bool = False) -> Balance:
        """Add ``delta_minor`` (1/10000 yuan; > 0 top-up or credit adjustment,
        < 0 debit adjustment or refund) to the account's credit inside ``w``
        (``Ledger.write``). A debit that would take the available balance
        (credit + limit - open reservations) below zero raises
        ``InsufficientCredit`` unless ``allow_below_available`` (a finance
        correction that must book arrears). Returns the balance after."""
        delta_minor = int(delta_minor)
        before = self.balance(account, terms, at_ms, txn=w.txn, live=w.live)
        if delta_minor < 0 and not allow_below_available and before.available_minor + delta_minor < 0:
            raise InsufficientCredit(account, before.available_minor, -delta_minor)
        stored = self.stored(account, w.txn)
        self._keep_ended(w.txn, account, stored, terms.package_start_ms)
        cur = self._current(account, stored, terms, w.txn)
        w.txn.put(account.encode(), BALANCE.pack(cur.credit_minor + delta_minor, cur.bundle_period,
                                                 cur.bundle_used_seconds, cur.package_start_ms),
                  db=self.balances)
        return self.balance(account, terms, at_ms, txn=w.txn, live=w.live)

    # -- bundle usage per period and month (late CDRs) ------------------------
    def _keep_ended(self, txn: lmdb.Transaction, account: str, stored: Stored | None, start_ms: int) -> None:
        """Before the ``balances`` record of an account is replaced by one of
        a new package period (``start_ms``): keep the month of bundle use it
        holds in ``bundle_usage`` (unless kept already), so that a late CDR of
        the ended period draws from what its allowance had left."""
        if stored is None or stored.package_start_ms == start_ms or stored.bundle_period < 0 \
                or stored.bundle_used_seconds <= 0:
            return
        key = account.encode() + b"\0" + PERIOD_MONTH.pack(stored.package_start_ms, stored.bundle_period)
        db = self.db[formats.BUNDLE_USAGE]
        kept = txn.get(key, db=db)
        # The larger count is the whole: one kept before the record was
        # written only grows by late calls (the record is then behind it);
        # a record of a period resumed (a catalog rollback, ``_resumed``)
        # started from the one kept and only grew.
        if kept is None or COUNT.unpack(kept)[0] < stored.bundle_used_seconds:
            txn.put(key, COUNT.pack(stored.bundle_used_seconds), db=db)

    def _resumed(self, txn: lmdb.Transaction, account: str, start_ms: int) -> tuple[int, int] | None:
        """(month id, seconds used) of the last month kept in ``bundle_usage``
        of the package period starting ``start_ms``, or None: where a period
        ended before (its month kept, ``_keep_ended``) and made current again
        (an older catalog version active again) carries on, so its allowance
        is not granted twice."""
        prefix = account.encode() + b"\0" + PERIOD_MONTH.pack(start_ms, 0)[:8]
        cursor = txn.cursor(db=self.db[formats.BUNDLE_USAGE])
        found = cursor.prev() if cursor.set_range(prefix + b"\xff" * 4) else cursor.last()
        if not found or not bytes(cursor.key()).startswith(prefix) or len(cursor.key()) != len(prefix) + 4:
            return None
        return PERIOD_MONTH.unpack(cursor.key()[len(prefix) - 8:])[1], COUNT.unpack(cursor.value())[0]

    def bundle_usage(self, snapshot, accounts, txn: lmdb.Transaction | None = None) -> tuple[np.ndarray, ...]:
        """Bundle seconds used per package period and month of ``accounts``
        (account rows of ``snapshot``) other than their current month: the
        ``bundle_usage`` records, and the ``balances`` record of a period
        that has ended (a change not yet written over by a commit).

        Returns the kernel's table (``kernels.rating.rate``, state
        ``late_key`` / ``late_start`` / ``late_used``): int64 arrays sorted by
        (account row << 16 | month id, period start ms)."""
        names = snapshot.meta["accounts"]
        starts = snapshot.tables["account_start_ms"]
        rows: dict[tuple[int, int], int] = {}
        own = txn is None
        txn = txn or self.env.begin()
        try:
            cursor = txn.cursor(db=self.db[formats.BUNDLE_USAGE])
            for i in (int(a) for a in accounts):
                prefix = names[i].encode() + b"\0"
                if cursor.set_range(prefix):
                    for key, value in cursor:
                        if bytes(key[:len(prefix)]) != prefix:
                            break
                        start, month = PERIOD_MONTH.unpack(key[len(prefix):])
                        rows[(i << 16 | month, start)] = COUNT.unpack(value)[0]
                raw = txn.get(names[i].encode(), db=self.balances)
                if raw is not None:
                    _credit, month, used, start = BALANCE.unpack(raw)
                    if start != starts[i] and month >= 0:
                        rows.setdefault((i << 16 | month, start), used)
        finally:
            if own:
                txn.abort()
        ordered = sorted(rows)
        return (np.array([k for k, _ in ordered], np.int64), np.array([s for _, s in ordered], np.int64),
                np.array([rows[k] for k in ordered], np.int64))

    def _keep_usage(self, snapshot, state: dict[str, np.ndarray], txn: lmdb.Transaction) -> None:
        """Write the bundle usage a rating left in ``state`` (the months its
        accounts' current periods left behind, ``rolled_*``; the period-months
        its late calls drew from, ``late_*``) to ``bundle_usage``."""
        if "late_key" not in state:
            return
        names = snapshot.meta["accounts"]
        starts = snapshot.tables["account_start_ms"]
        db = self.db[formats.BUNDLE_USAGE]
        n = int(state["rolled_n"][0])
        for acc, month, used in zip(state["rolled_acc"][:n].tolist(), state["rolled_month"][:n].tolist(),
                                    state["rolled_used"][:n].tolist()):
            txn.put(names[acc].encode() + b"\0" + PERIOD_MONTH.pack(int(starts[acc]), month), COUNT.pack(used),
                    db=db)
        changed = np.flatnonzero(state["late_used"] != state["late_used_before"])
        for j in changed.tolist():
            key = int(state["late_key"][j])
            txn.put(names[key >> 16].encode() + b"\0" + PERIOD_MONTH.pack(int(state["late_start"][j]), key & 0xFFFF),
                    COUNT.pack(int(state["late_used"][j])), db=db)

    # -- rating state (the kernels' arrays) -----------------------------------
    def opening_state(self, snapshot, txn: lmdb.Transaction | None = None,
                      accounts: np.ndarray | None = None, usage: bool = False) -> dict[str, np.ndarray]:
        """Per-account state arrays, in snapshot account order, for the rating
        kernel: ``credit_left`` int64 (minor units), ``bundle_period`` int32,
        ``bundle_used`` int64 (seconds). An account with no record for its
        package start gets the catalog's opening balance.

        ``accounts``: the account rows to read balances for (int array, e.g.
        ``Rater.accounts_of`` a batch; None: every account). The others keep
        the catalog's opening, which the kernel never reads for a batch whose
        numbers do not reach them, so a commit reads what it touches, not
        every live account's balance.

        ``usage`` (a commit, and the engine's dry rating): with the kernel's
        usage table for late CDRs (``usage_table``, empty: a rating that
        meets a late bundle call loads it, ``Rater.rate_prepared`` with
        ``bundle_usage``), and ``ended``: the balances of ended periods
        about to be replaced; ``write_state`` keeps what they hold in
        ``bundle_usage``. Without it a late bundle call pays overage for all
        its seconds."""
        t = snapshot.tables
        names = snapshot.meta["accounts"]
        state = {
            "credit_left": t["account_opening_credit"].copy(),
            "bundle_period": np.full(len(names), -1, np.int32),
            "bundle_used": np.zeros(len(names), np.int64),
        }
        if usage:
            state.update(usage_table())
        own = txn is None
        txn = txn or self.env.begin()
        try:
            starts = t["account_start_ms"]
            ended: list[tuple[int, int, int, int, int]] = []
            if usage:
                state["ended"] = ended  # type: ignore[assignment]  # rows, not an array
            rows = range(len(names)) if accounts is None else np.unique(accounts[accounts >= 0]).tolist()
            for i in rows:
                raw = txn.get(names[i].encode(), db=self.balances)
                if raw is None:
                    continue
                credit, period, used, start = BALANCE.unpack(raw)
                if start != starts[i]:
                    # Renewed or changed since: the catalog's opening applies;
                    # ``write_state`` keeps the ended period's month. A period
                    # current again carries on from the month it kept.
                    if period >= 0 and used > 0:
                        ended.append((i, credit, period, used, start))
                    resumed = self._resumed(txn, names[i], int(starts[i]))
                    if resumed is not None:
                        state["bundle_period"][i], state["bundle_used"][i] = resumed
                    continue
                state["credit_left"][i] = credit
                state["bundle_period"][i] = period
                state["bundle_used"][i] = used
        finally:
            if own:
                txn.abort()
        return state

    def write_state(self, snapshot, state: dict[str, np.ndarray], txn: lmdb.Transaction,
                    accounts: np.ndarray | None = None) -> None:
        """Store closing balances (all accounts, or the row ids in ``accounts``)."""
        names = snapshot.meta["accounts"]
        starts = snapshot.tables["account_start_ms"]
        ids = range(len(names)) if accounts is None else np.unique(accounts[accounts >= 0])
        for i, credit, month, used, start in state.get("ended", ()):
            # The record about to be replaced was of an ended period: keep its month.
            self._keep_ended(txn, names[i], Stored(credit, month, used, start), int(starts[i]))
        for i in ids:
            txn.put(
                names[i].encode(),
                BALANCE.pack(int(state["credit_left"][i]), int(state["bundle_period"][i]),
                             int(state["bundle_used"][i]), int(starts[i])),
                db=self.balances,
            )
        self._keep_usage(snapshot, state, txn)

    def committed_calls(self) -> int:
        """How many calls the ledger holds committed (the ``calls``
        database's entries; O(1))."""
        with self.env.begin() as txn:
            return txn.stat(self.db[formats.CALLS])["entries"]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            envs.release(self.env)
            envs.release(self.live)
