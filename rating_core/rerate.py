"""Rerating: re-rate committed calls of a period under another catalog
version, write one adjustment per changed call and the balance corrections
in ONE ledger write transaction.

The rules (README "Rerating"):

* Selection: the committed calls whose start lies in the local
  (Asia/Shanghai) days ``day_from`` .. ``day_to`` inclusive, of one account,
  of one 400 number, or all.
* Sequence: every committed call of each selected account in the period is
  replayed in chronological order (start, then call id) through the
  kernel's sequential pass (``Rater``) from the catalog's opening state, so
  prepaid credit consumption, arrears and bundle use are recomputed as the
  sequence they are; adjustments are written only for the selected calls.
  A period should therefore start at the package start (prepaid) or a month
  start (bundle). Top-ups, credit adjustments and refunds of the customer
  layer made inside the period are replayed in their place: an event is in
  the balance of the calls that end at or after it (``_replay``), and a
  package change or renewal inside the period opens the replay's credit on
  what the change recorded (its carry already holds the money before it);
  only a debit made under a prepaid package is refused. A call
  of a bundle period that has ended is replayed with its period's calls on
  that period's own allowance (``_replay_ended_bundles``), as the commit
  settled it (the ledger's usage per period-month): the same version
  rerates on-time and late calls to no change, whatever package came after.
* Old charge: the committed charge, or the latest earlier adjustment's new
  charge. A call whose charge and balance part are unchanged gets no row.
* Ledger: the account's credit changes by ``-sum(ledger_delta_minor)``
  (prepaid: credit consumed; pay-as-you-go: the charge; bundle: the
  overage). A prepaid account is never taken below zero: such a rerating is
  refused whole (``InsufficientCredit``), nothing is written.
* Counted spend: each adjustment's charge delta moves the month's counted
  spend of the call's 400 number (``ledger.usage``, the month of the call's
  start, which the monthly spend cap reads) and the account's day (typical
  daily use), in the same transaction as the adjustment. The calls count counts a
  call while its billable seconds AS LAST RATED are > 0: a rerating that
  takes them to 0 takes the call out of the number's month (and the
  account's day), one that makes them > 0 puts it in, same transaction; a
  call rerated to a charge of 0 with billable seconds still counts (the
  line was answered and used). Such a count change is an adjustment row
  even when no money moves (its new billable seconds are stored, so the
  next rerating starts from them).
* Exactly once: a call's adjustments are numbered per call
  (``ledger.adjustments``). A run moves each call from its latest state to
  the target version's outcome, so every run applies once, also a run back
  to an earlier version (v1 -> v2 -> v3 -> v2); a call whose newest
  adjustment is already under the target version with the same outcome is
  ``skipped`` (a repeated or retried run writes nothing, charges nothing).
* Calls the target version cannot rate (e.g. a number it does not know) are
  counted in ``not_rerated`` and left as they are.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from . import layout
from .errors import InvalidInput
from .ledger import (AccountTerms, InsufficientCredit, Ledger, LedgerTxn, adjustments, call_key, formats,
                     month_opening_kinds, prepaid_follows_in_month, records, usage)
from .ledger.adjustments import Adjustment
from .rater import Rater
from .store.snapshot import package_kinds

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The reason written on each adjustment: free text an operator reads on a
# statement, bounded (gRPC and CLI alike) and without control characters.
MAX_REASON_CHARS = 1000

_BUNDLE = layout.PACKAGE_KIND.index("bundle")
_INPUTS = ("call_id", "caller", "number", "forwarded_to", "start", "ivr_answer", "agent_answer", "end",
           "hangup_cause")


@dataclass
class RerateResult:
    """What a rerating did (or would do, ``dry_run``).

    adjustments: one per changed call. seen: selected committed calls.
    unchanged / skipped (already where an earlier run under the version
    put them: a repeated run) / not_rerated
    (the version could not rate them) counts. ledger_change_minor: credit
    change per account, 1/10000 yuan (``-sum(ledger_delta_minor)``)."""

    version: int
    adjustments: list[Adjustment] = field(default_factory=list)
    seen: int = 0
    unchanged: int = 0
    skipped: int = 0
    not_rerated: int = 0
    ledger_change_minor: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    package_kind: dict[str, str] = field(default_factory=dict)
    # account -> the kind the month of the rerating is billed as (with the
    # kind now, it decides each adjustment's ``credit_delta_minor``).
    billed_as: dict[str, str] = field(default_factory=dict)

    def by_account(self) -> dict[str, AccountChange]:
        """Each adjusted account's share (``AccountChange``), by account id."""
        charge: dict[str, int] = {}
        credit: dict[str, int] = {}
        for a in self.adjustments:
            charge[a.account] = charge.get(a.account, 0) + a.delta_minor
            # A prepaid account's credit moves by the ledger's correction: a
            # rerated postpaid call's may hold, beyond its credit part, what
            # its statement pays among the month's charges from the credit
            # (``_follow_statement``), which is then not due.
            moved = a.ledger_delta_minor if self.package_kind[a.account] == "prepaid" else a.credit_delta_minor
            credit[a.account] = credit.get(a.account, 0) - (moved or 0)
        return {acct: AccountChange(self.package_kind[acct], charge[acct], credit[acct], charge[acct] + credit[acct],
                                    self.ledger_change_minor[acct])
                for acct in sorted(charge)}


@dataclass(frozen=True, slots=True)
class AccountChange:
    """One account's share of a rerating, int64 minor units, signed (+ the
    enterprise owes more). ``charge_minor``: the calls' charge change (sum
    of ``delta_minor``); ``credit_minor``: the prepaid credit's change
    (minus the sum of the adjustments' ``credit_delta_minor``, + given
    back; 0 when none of it is prepaid credit; on an account prepaid now
    their ``ledger_delta_minor``, which for a rerated postpaid call also
    holds what its statement pays from the credit among the month's
    charges, ``_follow_statement``);
    ``billed_minor``: the rest, on the bill (a prepaid account's arrears,
    or a pay-as-you-go / bundle account's charges), so charge = billed -
    credit, as the statement splits it (``billing.events.from_adjustments``);
    ``balance_minor``: the ledger balance's change (``ledger_change_minor``)."""

    kind: str
    charge_minor: int
    credit_minor: int
    billed_minor: int
    balance_minor: int


def day_bounds(day_from: str, day_to: str) -> tuple[int, int]:
    """Epoch ms [lo, hi) of local days ``day_from`` .. ``day_to`` (YYYY-MM-DD,
    inclusive). Raises ``InvalidInput`` naming ``from``/``to``."""
    from .cdr import excerpt

    out = []
    for name, text, extra in (("from", day_from, 0), ("to", day_to, 1)):
        # Only YYYY-MM-DD in ASCII digits: ``date.fromisoformat`` also takes
        # 20261001 and 2026-W40-1, which an operator never means as a day.
        if not isinstance(text, str) or not _DAY.fullmatch(text):
            raise InvalidInput(name, f"not a date (YYYY-MM-DD): {excerpt(text)}")
        try:
            d = dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(name, f"not a date (YYYY-MM-DD): {excerpt(text)}") from None
        days = (d - dt.date(1970, 1, 1)).days + extra
        out.append(days * layout.MS_PER_DAY - layout.LOCAL_OFFSET_MS)
    if out[1] <= out[0]:
        raise InvalidInput("to", f"{day_to} is before {day_from}")
    return out[0], out[1]


def check_reason(reason: str) -> str:
    """A rerating reason: at most ``MAX_REASON_CHARS`` characters, no control
    characters (``cdr.FORBIDDEN_TEXT``: NUL, ESC, newlines, DEL, C1, bidi
    controls, zero-width characters) and no lone surrogates, as it is stored
    and shown on statements. Raises ``InvalidInput`` naming ``reason``."""
    from .cdr import excerpt, forbidden_characters

    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput("reason", f"{len(reason)} characters: at most {MAX_REASON_CHARS}")
    bad = forbidden_characters(reason) + sorted({repr(c) for c in reason if unicodedata.category(c) == "Cs"})
    if bad:
        raise InvalidInput("reason", f"contains a control character {bad[0]}: {excerpt(reason)}")
    return reason


def _committed_in(ledger: Ledger, txn, lo: int, hi: int) -> list[dict]:
    """Every committed record (dict) whose start is in [lo, hi)."""
    out = []
    for key, blob in txn.cursor(db=ledger.db[formats.CALL_BATCHES]):
        table = records.read_batch(blob, formats.BATCH_KEY.unpack(key)[0])
        start = table.column("start").to_numpy()
        rows = np.flatnonzero((start >= lo) & (start < hi))
        if len(rows):
            out.extend(table.take(pa.array(rows)).to_pylist())
    return out


@contextlib.contextmanager
def _read_only(ledger: Ledger) -> Iterator[LedgerTxn]:
    with ledger.env.begin() as txn:
        yield LedgerTxn(txn, None)  # type: ignore[arg-type]


def _moved_credit(kind_now: str, kind: str, rec: dict, month_kind: str, ends_kind: str = "prepaid") -> int:
    """What a call rated under a package of ``kind`` moved the balance of
    an account whose package is of ``kind_now``, as the commit moved it
    (``engine._debit_postpaid``), ``month_kind`` being the kind its month is
    billed as (``ledger.month_opening_kinds``): on an account prepaid now, a
    pay-as-you-go call of a month billed as prepaid its charge and a
    bundle call there its overage when a prepaid period follows it in the
    month (``ends_kind`` "prepaid", ``_stretch_ends_kind``; breaker5 F7,
    breaker7 F4) (paid from
    the carried credit; read as fully paid: when the credit ran out first
    the commit took less, and the rerating of that call moves the credit by
    the whole change -- a known corner, README "Late CDRs"), any other
    pay-as-you-go or bundle call none (the statement bills it as due; the
    part of a rebate the customer had paid is given back by ``_rebates``);
    on any other account ``_ledger_money``."""
    if kind_now == "prepaid" and kind != "prepaid":
        if month_kind != "prepaid":
            return 0
        if kind == "bundle":
            return int(rec["overage_minor"]) if ends_kind == "prepaid" else 0
        return int(rec["charge_minor"]) if kind == "payg" else 0
    return _ledger_money(kind, rec)


def _rebates(store, ledger: Ledger, snapshot, result: "RerateResult", rebate_rows: list[bool], now_ms: int,
             given: list[int] | None = None, available: Callable[[str], int] | None = None) -> None:
    """The credit part of a rebate on postpaid calls of an account prepaid
    now (``rebate_rows[i]``: ``result.adjustments[i]`` is such a call's,
    rated under pay-as-you-go or a bundle in a month billed as postpaid,
    whose ledger move is 0): the statement of the rerating's month applies
    the customer's payments to the calls' new charges, so what the customer
    had paid beyond them is money back, to the prepaid credit, and the rest
    of the rebate lowers the bill (README "Money rules", Rerating; money2,
    breaker R2: the statement gave a 0.60 rebate on a paid 1.20 call back to
    the credit, the ledger did not). Per account, the net change of those
    rows, when below zero, gives back ``billing.sources.rebate_to_credit``
    (the statements as committed before this run), shared over its rows that
    lower a charge, in order: each such adjustment's ``credit_delta_minor``
    and ``ledger_delta_minor`` are minus its share (the ledger's credit goes
    up by it). A higher charge of such a call is billed as due, as before:
    the money carried into the prepaid credit pays calls, not bills --
    except what earlier reratings of the account's rows here gave back to
    the credit (``given[i]``: the credit parts row i's earlier adjustments
    recorded, minus their sum: + given back; the account's rows netted, as
    its statement sums them): a net increase takes that back first, from
    the credit (shared over its rows that raise a charge, in order), the
    rest due. So the credit parts, and the statement, depend on the prices,
    not the path (breaker5 F3: 0.12 -> 0.06 -> 0.24 -> 0.12 on a paid 1.20
    call left 699.40 of credit and 0.60 due instead of 698.80 and 0; fixf23:
    read from the ledger moves, which may hold more than the credit part
    since ``_follow_statement``, 0.24 -> 0.06 -> 0.24 took back 1.80 of
    the 2.40 given). Never more than the credit the account has available
    (``available(account)``, less what the run's other rows take): what
    that leaves is due, as before. The ledger's move then follows the
    statement (``_follow_statement``)."""
    from .accounts.operations import Accounts
    from .billing.sources import rebate_to_credit

    net: dict[str, int] = {}
    for a, rebate in zip(result.adjustments, rebate_rows):
        if rebate:
            net[a.account] = net.get(a.account, 0) + a.delta_minor
    back = {acct: rebate_to_credit(Accounts(store, ledger), acct, now_ms, d, snapshot)
            for acct, d in net.items() if d < 0}
    if given is not None:
        returned: dict[str, int] = {}
        for a, rebate, g in zip(result.adjustments, rebate_rows, given):
            if rebate:
                returned[a.account] = returned.get(a.account, 0) + g
        take = {acct: min(d, max(0, returned.get(acct, 0))) for acct, d in net.items() if d > 0}
        if available is not None:
            others: dict[str, int] = {}  # the run's ledger moves per account, summed once
            for a in result.adjustments:
                if a.account in take:
                    others[a.account] = others.get(a.account, 0) + a.ledger_delta_minor
            for acct in take:
                take[acct] = max(0, min(take[acct], available(acct) - others.get(acct, 0)))
        for i, (a, rebate) in enumerate(zip(result.adjustments, rebate_rows)):
            share = min(take.get(a.account, 0), a.delta_minor) if rebate and a.delta_minor > 0 else 0
            if share:
                take[a.account] -= share
                result.adjustments[i] = dataclasses.replace(a, ledger_delta_minor=a.ledger_delta_minor + share,
                                                            credit_delta_minor=(a.credit_delta_minor or 0) + share)
    for i, (a, rebate) in enumerate(zip(result.adjustments, rebate_rows)):
        share = min(back.get(a.account, 0), -a.delta_minor) if rebate and a.delta_minor < 0 else 0
        if share:
            back[a.account] -= share
            result.adjustments[i] = dataclasses.replace(a, ledger_delta_minor=a.ledger_delta_minor - share,
                                                        credit_delta_minor=(a.credit_delta_minor or 0) - share)
    _follow_statement(Accounts(store, ledger), snapshot, result, rebate_rows, now_ms, available)


def _follow_statement(ops, snapshot, result: "RerateResult", rebate_rows: list[bool], now_ms: int,
                      available: Callable[[str], int] | None = None) -> None:
    """The ledger's move of the rebate rows (``_rebates``) of each account:
    exactly what the run's rows, as they will be written (each with its
    ``credit_delta_minor``), move the closing credit of the account's
    statements (``billing.sources.closing_credit_change``, the run's other
    rows of the account built in on both sides), one rule for a higher and
    a lower charge. The statement pays the month's postpaid charges from
    the money the account had for them, a later pay span's from the
    credit carried back from the prepaid period (``statements._after_prepaid``,
    ``from_carry``; breaker6 F2, a late call there is taken from it): so a
    rise of such a call is taken from the credit as far as that money
    holds, beyond the credit part the row records, and the way back
    returns exactly what the way up took (breaker7 F2: pay -> pre_b ->
    pay -> pre_a, the 11-02 and 11-22 calls 1.20 -> 2.40: the statement
    billed 1.20 and took 1.20 from the credit, 1175.40, while the ledger
    moved 0, 1176.60; F3: back at 1.20 each, the ledger was given 1.20 the
    way up never took, 1177.80). Where the row's credit part and the
    statement agree (a paid call's rebate, a rise billed as due, a take
    back of what earlier rebates gave) this is the credit part itself.

    Bounded by the run's rows (never more taken than their rises, never
    more given back than their rebates) and by the credit available
    (``available(account)`` less the run's other rows of the account: a
    prepaid credit never goes below zero; what that leaves is due, as
    before). The difference from the credit parts is shared over the rows
    whose charge moves the same way, latest first (the later span's
    carried credit pays last), each up to its delta; any rest on the
    latest rebate row. An account no statement bills keeps its rows'
    credit parts as their ledger moves."""
    from .billing.events import AccountEvent
    from .billing.sources import closing_credit_change

    rows: dict[str, list[int]] = {}
    for i, (a, rebate) in enumerate(zip(result.adjustments, rebate_rows)):
        if rebate:
            rows.setdefault(a.account, []).append(i)

    def event(a: Adjustment) -> AccountEvent:
        return AccountEvent(a.account, a.rerated_at_ms, "rerating", a.delta_minor, note=f"{a.call_id}: {a.reason}",
                            credit_minor=a.credit_delta_minor or 0, version=a.version, call_id=a.call_id)

    for acct, mine in rows.items():
        own = [result.adjustments[i] for i in mine]
        others = [a for a, rebate in zip(result.adjustments, rebate_rows) if a.account == acct and not rebate]
        moved = closing_credit_change(ops, acct, now_ms, [event(a) for a in own], [event(a) for a in others],
                                      snapshot=snapshot)
        if moved is None:  # no statement bills the account: the credit parts stand
            continue
        taken = -moved
        taken = max(-sum(max(0, -a.delta_minor) for a in own), min(sum(max(0, a.delta_minor) for a in own), taken))
        if taken > 0 and available is not None:
            taken = min(taken, max(0, available(acct) - sum(a.ledger_delta_minor for a in others)))
        rest = taken - sum(a.ledger_delta_minor for a in own)
        for i in reversed(mine):
            a = result.adjustments[i]
            if rest > 0 and a.delta_minor > 0:
                share = min(rest, max(0, a.delta_minor - a.ledger_delta_minor))
            elif rest < 0 and a.delta_minor < 0:
                share = -min(-rest, max(0, a.ledger_delta_minor - a.delta_minor))
            else:
                continue
            rest -= share
            result.adjustments[i] = dataclasses.replace(a, ledger_delta_minor=a.ledger_delta_minor + share)
        if rest:
            a = result.adjustments[mine[-1]]
            result.adjustments[mine[-1]] = dataclasses.replace(a, ledger_delta_minor=a.ledger_delta_minor + rest)


def _credit_part_sum(ledger: Ledger, txn, key: bytes) -> int:
    """The sum of the credit parts (``credit_delta_minor``; a row written
    before it was recorded: its ledger move) of the call ``key``'s
    adjustments so far, minor units (+ taken from the credit)."""
    return sum(a.ledger_delta_minor if a.credit_delta_minor is None else a.credit_delta_minor
               for a in adjustments.of_call(ledger, txn, key))


def _month_kind(snapshot, row: int, start_ms: int) -> str:
    """The ``layout.PACKAGE_KIND`` name the month of ``start_ms`` (epoch ms)
    is billed as for account row ``row`` (``ledger.month_opening_kinds``),
    "" for a view without period history."""
    k = int(month_opening_kinds(snapshot.tables, np.array([row], np.int64), np.array([start_ms], np.int64))[0])
    return layout.PACKAGE_KIND[k] if k >= 0 else ""


def _stretch_ends_kind(snapshot, row: int, start_ms: int) -> str:
    """``_moved_credit``'s ``ends_kind`` for a call of account row ``row``
    starting at ``start_ms`` (epoch ms): "prepaid" when a prepaid period
    follows it in its month (``ledger.prepaid_follows_in_month``: its bundle
    stretch is a postpaid interval inside the month, whose overage the
    commit took from the credit), else "" (the stretch the month ends on,
    whose overage the statement bills; breaker7 F4), as
    ``engine._debit_postpaid`` reads it."""
    follows = prepaid_follows_in_month(snapshot.tables, np.array([row], np.int64), np.array([start_ms], np.int64))
    return "prepaid" if bool(follows[0]) else ""


def _ledger_money(kind: str, rec: dict) -> int:
    """The part of a rated call that moved the balance (see module doc),
    minor units; ``kind``: that of the package the call was rated under."""
    if kind == "prepaid":
        return int(rec["credit_consumed_minor"])
    if kind == "bundle":
        return int(rec["overage_minor"])
    return int(rec["charge_minor"])


def _credit_events(store, ledger: Ledger, accounts: list[str], lo: int, hi: int) -> dict[str, list]:
    """account -> its top-ups, credit adjustments and refunds with effective
    time in [lo, hi), oldest first (``billing.events.AccountEvent``, signed
    ``amount_minor``), from the customer layer's audit log; {} when the
    layer is not in use (catalog accounts have no such events)."""
    from .accounts import Accounts
    from .accounts.view import layer_in_use
    from .billing.events import from_account_events
    from .errors import NotFound

    if not layer_in_use(ledger.env):
        return {}
    ops = Accounts(store, ledger)
    out = {}
    for acct in accounts:
        try:
            raw = ops.events(acct, lo, hi, limit=1 << 30)
        except NotFound:
            continue  # a catalog account the layer does not hold
        events = [e for e in from_account_events(raw) if e.amount_minor]
        if events:
            out[acct] = events
    return out


def _package_periods(store, ledger: Ledger, accounts: list[str]) -> dict[str, list]:
    """account -> its package periods in force (``accounts.periods.Period``,
    ascending by start), from the customer layer's audit log; {} when the
    layer is not in use, [] for an account it does not hold."""
    from .accounts import Accounts
    from .accounts import periods as P
    from .accounts.view import layer_in_use

    if not layer_in_use(ledger.env):
        return {}
    ops = Accounts(store, ledger)
    return {acct: P.in_force(P.package_periods(ops.account_events(acct))) for acct in accounts}


def _rerating_moves(ledger: Ledger, accounts: set[str], lo: int, hi: int, periods: dict[str, list],
                    kinds: dict[str, str], prepaid_calls: set[str]) -> dict[str, list]:
    """account -> the credit moves of earlier reratings made in [lo, hi)
    inside a prepaid period (``billing.events.AccountEvent`` of kind
    "rerating", amount minus the adjustment's ``ledger_delta_minor``),
    oldest first: money a rerating gave to (or took from) the prepaid
    credit, which the period's recorded opening credit does not hold and
    the replay does not recompute -- except a prepaid call's of this
    replay, whose new consumption it replays in the call's place. So a
    debit of that money is replayed on it (breaker5: 1.20 given back by a
    rebate, then refunded). Never refused itself."""
    from .accounts.periods import period_at
    from .billing.events import AccountEvent

    out: dict[str, list] = {}
    with ledger.env.begin() as txn:
        rows = [a for a in adjustments.all_rows(ledger, txn)
                if a.account in accounts and lo <= a.rerated_at_ms < hi and a.ledger_delta_minor]
    for a in sorted(rows, key=lambda a: a.rerated_at_ms):
        p = period_at(periods.get(a.account) or [], a.rerated_at_ms)
        if p is None or kinds.get(p.package) != "prepaid" or a.call_id in prepaid_calls:
            continue
        out.setdefault(a.account, []).append(
            AccountEvent(a.account, a.rerated_at_ms, "rerating", -a.ledger_delta_minor, call_id=a.call_id))
    return out


def _replay(rater: Rater, calls: list[dict], credit_events: dict[str, list], index: dict[str, int],
            periods: dict[str, list] | None = None, lo: int = 0) -> list[dict]:
    """Rate ``calls`` (sorted by start, call id) as one sequence per account
    from the opening state, each account's credit events applied in their
    place: an event at time t is in the balance of every call that ends at
    or after t (a call is rated when it ends), not of the calls that ended
    before. Accounts without events or package changes inside the period
    are rated in one pass. ``index``: account id -> row of the rater's
    snapshot (``rerate_in`` builds it once).

    The credit is each package period's (``periods``: account -> its
    periods in force, ``_package_periods``; ``lo``: the rerating period's
    start, epoch ms): the replay opens on the credit of the period in force
    at ``lo`` and, at each period starting inside the rerating period,
    on that period's recorded opening credit (its change carried the
    month's earlier money into it, as it stood then: replaying the earlier
    events on the opening credit of the account's period now counted them
    twice -- fixrr: a 698.00 refund made under pay-as-you-go, replayed
    after a later change to prepaid, was refused against 580.80), less the
    money dated at or after its start that it already holds
    (``carried_after_minor``, replayed in its place), plus what the replay
    consumed more (or less) than the commit of the prepaid credit the
    period before carried into it (a dearer sequence carries less). Raises
    ``InsufficientCredit`` when a debit event made under a prepaid period
    finds less credit than it takes in the replayed sequence, like any
    prepaid debit; a debit made under a postpaid package is bounded by that
    package's rules (README "Money rules", Refund) and the statement bills
    what the dearer sequence leaves unpaid, so it never refuses."""
    from .accounts.periods import period_at

    state = rater.opening_state()
    periods = periods or {}
    kinds = package_kinds(rater.snapshot)

    def rate(rows: list[dict]) -> list[dict]:
        if not rows:
            return []
        table = pa.Table.from_pylist([{c: r.get(c) for c in _INPUTS} for r in rows])
        return rater.rate(table, state).rated.to_pylist()

    def changes(acct: str) -> list:
        return [p for p in periods.get(acct) or [] if lo < p.start_ms]

    def prepaid_at(acct: str, at_ms: int) -> bool:
        own = periods.get(acct)
        if not own:
            return True  # no package history: as before, every debit is checked
        p = period_at(own, at_ms)
        return p is None or kinds.get(p.package) == "prepaid"

    replayed = [acct for acct in sorted({r["account"] for r in calls}) if acct in credit_events or changes(acct)]
    rated = rate([r for r in calls if r["account"] not in replayed])
    for acct in replayed:
        own = [r for r in calls if r["account"] == acct]
        ends = [r["end"] if r.get("end") is not None else r["start"] for r in own]
        starts = [int(r["start"]) for r in own]
        done = [False] * len(own)
        row = index[acct]
        history = periods.get(acct) or []
        first = period_at(history, lo) if history else None
        if first is not None:
            state["credit_left"][row] = first.opening_credit_minor - (
                first.carried_after_minor if first.start_ms >= lo else 0)
        # (time, 0: a period start / 1: a money event, the item): a period's
        # opening credit is set before the money dated at its first instant.
        marks = sorted([(p.start_ms, 0, p) for p in changes(acct)] +
                       [(e.at_ms, 1, e) for e in credit_events.get(acct, [])], key=lambda m: (m[0], m[1]))
        drift = 0  # the prepaid credit the replay consumed less than the commit, since the last period start
        for at_ms, what, item in marks:
            # The calls before the mark (a period start: those starting before
            # it, under the period before; an event: those ended before it).
            take = [k for k in range(len(own)) if not done[k] and (starts[k] if what == 0 else ends[k]) < at_ms]
            out = rate([own[k] for k in take])
            rated += out
            for k, new in zip(take, out):
                done[k] = True
                if kinds.get(new.get("package") or "") == "prepaid":
                    drift += int(own[k].get("credit_consumed_minor") or 0) - int(new["credit_consumed_minor"])
            credit = int(state["credit_left"][row])
            if what == 0:
                before = period_at(history, at_ms - 1)
                carried = drift if before is not None and kinds.get(before.package) == "prepaid" else 0
                # A dearer sequence carries less, never less than nothing.
                carried = max(carried, -item.carried_minor) if carried < 0 else carried
                state["credit_left"][row] = item.opening_credit_minor - item.carried_after_minor + carried
                drift = 0
                continue
            if credit + item.amount_minor < 0 and item.amount_minor < 0 and item.kind != "rerating" \
                    and prepaid_at(acct, at_ms):
                # A debit (refund, negative adjustment) the dearer sequence
                # leaves no credit for: refused whole, like any prepaid debit.
                raise InsufficientCredit(acct, credit, -item.amount_minor)
            state["credit_left"][row] = credit + item.amount_minor
        rated += rate([r for k, r in enumerate(own) if not done[k]])
    return rated


def _ended_bundle_periods(snapshot, calls: list[dict], index: dict[str, int]) -> dict[str, tuple[int, int]]:
    """call id -> (account row, period row) of each call in ``calls`` whose
    package period in force at its start (``accounts.view``'s history of the
    account named on the committed record) is a bundle period that has
    ended: the rerating's replay holds every call of the period in order and
    reproduces its allowance from the period's start
    (``_replay_ended_bundles``), as the commit drew it from the ledger's
    usage of that period-month. {} for a view without history. ``index``:
    account id -> row of ``snapshot``."""
    tables = snapshot.tables
    if "period_start_ms" not in tables:
        return {}
    first, count = tables["account_period_first"], tables["account_period_count"]
    starts, packages = tables["period_start_ms"], tables["period_package"]
    kind = tables["package_kind"]
    out = {}
    for r in calls:
        acc = index.get(r["account"])
        if acc is None or int(count[acc]) < 2:
            continue
        lo, hi = int(first[acc]), int(first[acc]) + int(count[acc])
        p = lo + int(np.searchsorted(starts[lo:hi], int(r["start"]), "right")) - 1
        if lo <= p < hi - 1 and kind[packages[p]] == _BUNDLE:
            out[r["call_id"]] = (acc, p)
    return out


def _replay_ended_bundles(rater: Rater, calls: list[dict], ended: dict[str, tuple[int, int]]) -> list[dict]:
    """Rate the calls of ended bundle periods (``ended``, from
    ``_ended_bundle_periods``; ``calls`` sorted by start, call id): each
    period's calls as one sequence from a fresh allowance, with that period
    as the account's last (the view's period count cut there), so its
    allowance is consumed in order, month by month, exactly as when the calls
    were committed on time. Such a call moves no credit, so it is rated
    apart from the account's other calls."""
    groups: dict[tuple[int, int], list[dict]] = {}
    for r in calls:
        if r["call_id"] in ended:
            groups.setdefault(ended[r["call_id"]], []).append(r)
    out: list[dict] = []
    for (acc, p), rows in groups.items():
        count = rater.tables["account_period_count"].copy()
        count[acc] = p - int(rater.tables["account_period_first"][acc]) + 1
        cut = copy.copy(rater)
        cut.tables = {**rater.tables, "account_period_count": count}
        table = pa.Table.from_pylist([{c: r.get(c) for c in _INPUTS} for r in rows])
        out += cut.rate(table, cut.opening_state()).rated.to_pylist()
    return out


def rerate(store_dir: str | Path, version: int, day_from: str, day_to: str, account: str | None = None,
           number: str | None = None, dry_run: bool = False, reason: str | None = None,
           now_ms: int | None = None) -> RerateResult:
    """Rerate (see the module doc) in the store directory ``store_dir``.
    Raises ``InvalidInput`` naming ``version``/``from``/``to``/``account``/
    ``number`` for a bad value, ``InsufficientCredit`` when a prepaid
    account would go below zero (nothing is then written)."""
    from .store import Store

    store = Store(store_dir, create=False)
    ledger = Ledger(store_dir)
    try:
        return rerate_in(store, ledger, version, day_from, day_to, account=account, number=number,
                         dry_run=dry_run, reason=reason, now_ms=now_ms)
    finally:
        ledger.close()


def rerate_in(store, ledger: Ledger, version: int, day_from: str, day_to: str, account: str | None = None,
              number: str | None = None, dry_run: bool = False, reason: str | None = None,
              now_ms: int | None = None) -> RerateResult:
    """``rerate`` on an open ``Store`` and ``Ledger`` (the gRPC server's
    engine holds both; same errors)."""
    from .accounts.view import open_view
    from .cdr import check_text, excerpt
    from .errors import StoreError
    from .numbers import normalize

    if account is not None and number is not None:
        raise InvalidInput("account", "give an account or a number, not both")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= layout.MAX_CATALOG_VERSION:
        raise InvalidInput("version", f"{version!r}: {layout.CATALOG_VERSION_BOUND}")
    lo, hi = day_bounds(day_from, day_to)
    if number is not None:
        if isinstance(number, str):  # the edge's text rule, as route: no zero-width or bidi character stripped
            check_text("number", number)
        number = normalize(number, "number")
    if reason is not None:
        check_reason(reason)
    reason = reason or adjustments.default_reason(version)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        snapshot = open_view(store, ledger.env, version)
    except StoreError as e:
        raise InvalidInput("version", str(e)) from None
    # The snapshot is shared process-wide (``open_snapshot``; the server's
    # engine may be rating with it): never closed here.
    if account is not None and account not in snapshot.meta["accounts"]:
        raise InvalidInput("account", f"{excerpt(account)}: no such account in catalog version {version}")
    result = RerateResult(version=version, dry_run=dry_run)
    with ledger.env.begin() as txn:
        recs = _committed_in(ledger, txn, lo, hi)
    selected = [r for r in recs if (account is None or r["account"] == account)
                and (number is None or r["number"] == number)]
    accounts = {r["account"] for r in selected}
    # The whole period of every selected account, in order: the sequence.
    replay = sorted((r for r in recs if r["account"] in accounts), key=lambda r: (r["start"], r["call_id"]))
    result.seen = len(selected)
    if not selected:
        return result
    credit_events = _credit_events(store, ledger, sorted(accounts), lo, hi)
    periods = _package_periods(store, ledger, sorted(accounts))
    kinds_of = package_kinds(snapshot)
    moves = _rerating_moves(ledger, accounts, lo, hi, periods, kinds_of,
                            {r["call_id"] for r in replay if kinds_of.get(r.get("package") or "") == "prepaid"})
    for acct, more in moves.items():
        credit_events[acct] = sorted(credit_events.get(acct, []) + more, key=lambda e: e.at_ms)
    rater = Rater(snapshot, threads=1)
    # Calls of an ended bundle period are replayed on that period's own
    # allowance (README "Rerating", "Package periods"), the rest as one sequence.
    # account id -> row of the snapshot, built once (the replay, the ended bundles, the adjustments)
    row_of = {a: i for i, a in enumerate(snapshot.meta["accounts"])}
    ended = _ended_bundle_periods(snapshot, replay, row_of)
    rated = _replay(rater, [r for r in replay if r["call_id"] not in ended], credit_events, row_of, periods, lo)
    rated += _replay_ended_bundles(rater, replay, ended)
    new_of = {r["call_id"]: r for r in rated}
    kind_of = {}
    row_kind = package_kinds(snapshot)
    # (number, start ms, charge delta, account, calls change) of each adjustment
    moved: list[tuple[str, int, int, str, int]] = []
    # (adjustment key, a rebate row (``_rebates``), number, start ms, calls change) per adjustment, in order
    pending: list[tuple[bytes, bool, str, int, int]] = []
    given: list[int] = []  # per adjustment: the credit its call's earlier reratings gave back (``_rebates``)
    with (_read_only(ledger) if dry_run else ledger.write()) as w:
        for rec in selected:
            key = call_key(rec["call_id"])
            new = new_of.get(rec["call_id"])
            if new is None or new["account"] != rec["account"]:
                result.not_rerated += 1
                continue
            acct = rec["account"]
            if acct not in kind_of:
                kind_of[acct] = AccountTerms.from_snapshot(snapshot, acct)
                result.package_kind[acct] = kind_of[acct].kind
                result.billed_as[acct] = _month_kind(snapshot, row_of[acct], now_ms) or kind_of[acct].kind
            # What a row moved is decided by the kind of the package it was
            # rated under, as the commit debited it (README "Late CDRs"), not
            # by the account's current kind (a late payg call of a prepaid-now account).
            kind = kind_of[acct].kind
            month_kind = _month_kind(snapshot, row_of[acct], int(rec["start"]))
            ends_kind = _stretch_ends_kind(snapshot, row_of[acct], int(rec["start"]))
            old_charge, old_money = int(rec["charge_minor"]), _moved_credit(
                kind, row_kind.get(rec.get("package") or "", kind), rec, month_kind, ends_kind)
            old_billable = int(rec["billable_seconds"])
            prior = adjustments.latest(ledger, w.txn, key)
            if prior is not None:
                old_charge, old_money = prior.new_charge_minor, old_money + prior.ledger_sum_minor
                old_billable = prior.new_billable_seconds if prior.new_billable_seconds >= 0 else old_billable
            new_charge, new_money = int(new["charge_minor"]), _moved_credit(
                kind, row_kind.get(new.get("package") or "", kind), new, month_kind, ends_kind)
            # A postpaid call of a month billed as postpaid on an account
            # prepaid now: its charge is on a bill, which the customer's
            # payments pay; what a rebate returns to the credit is decided
            # below for the account's rows together (``_rebates``), never
            # by the money moved before (a rerun moves nothing again).
            rebate_row = kind == "prepaid" and month_kind not in ("prepaid", "") and \
                row_kind.get(rec.get("package") or "", kind) != "prepaid"
            if rebate_row:
                new_money = old_money
            new_billable = int(new["billable_seconds"])
            counted = int(new_billable > 0) - int(old_billable > 0)  # the calls count's change
            if new_charge == old_charge and new_money == old_money and not counted:
                # Where the version puts it already: by this version's earlier run, or as it stands.
                if prior is not None and prior.version == version:
                    result.skipped += 1
                else:
                    result.unchanged += 1
                continue
            # The part of the correction that is prepaid credit: on an
            # account prepaid now (the ledger keeps it from going below
            # zero), or in a month billed as prepaid (its statement pays
            # calls from the credit); else it is on the bill, as postpaid
            # charges are (breaker 12-02 F4, breaker2 B1: split by the month
            # alone, a prepaid call of a month billed as pay-as-you-go was
            # taken from the credit and billed as due too).
            prepaid_money = kind == "prepaid" or result.billed_as[acct] == "prepaid"
            a = Adjustment(rec["call_id"], acct, version, old_charge, new_charge, new_charge - old_charge,
                           new_money - old_money, now_ms, reason, new_billable,
                           seq=1 if prior is None else prior.count + 1,
                           credit_delta_minor=new_money - old_money if prepaid_money else 0)
            result.adjustments.append(a)
            pending.append((key, rebate_row, rec["number"], int(rec["start"]), counted))
            given.append(-_credit_part_sum(ledger, w.txn, key) if rebate_row and prior is not None else 0)
        _rebates(store, ledger, snapshot, result, [p[1] for p in pending], now_ms, given,
                 lambda acct: ledger.balance(acct, kind_of[acct], now_ms, txn=w.txn, live=w.live).available_minor)
        for a, (key, _, number_, start, counted) in zip(result.adjustments, pending):
            result.ledger_change_minor[a.account] = result.ledger_change_minor.get(a.account, 0) - a.ledger_delta_minor
            if not dry_run:
                adjustments.put(ledger, w.txn, key, a)
                moved.append((number_, start, a.delta_minor, a.account, counted))
        if moved:
            # The caps' counted spend and calls move with the call, in this transaction.
            numbers, starts, deltas, accts, calls = zip(*moved)
            usage.record(ledger, w.txn, pa.array(numbers, pa.string()), np.array(starts, np.int64),
                         np.array(deltas, np.int64), np.zeros(len(moved), np.int64), pa.array(accts, pa.string()),
                         calls=np.array(calls, np.int64))
        if not dry_run:  # a dry run's transaction is read only
            for acct, change in result.ledger_change_minor.items():
                terms = kind_of[acct]
                # Postpaid corrections may book arrears (down to any
                # level: the call happened); prepaid never below zero.
                ledger.apply_credit(w, acct, change, terms, now_ms,
                                    allow_below_available=terms.kind != "prepaid")
    return result


def adjustments_table(result: RerateResult) -> pa.Table:
    """The adjustment rows as a table (money int64 minor units; new_billable_seconds:
    the call's billable seconds under the version, which the calls count follows)."""
    rows = result.adjustments
    return pa.table({
        "call_id": pa.array([a.call_id for a in rows], pa.string()),
        "account": pa.array([a.account for a in rows], pa.string()),
        "version": pa.array([a.version for a in rows], pa.int32()),
        "old_charge_minor": pa.array([a.old_charge_minor for a in rows], pa.int64()),
        "new_charge_minor": pa.array([a.new_charge_minor for a in rows], pa.int64()),
        "delta_minor": pa.array([a.delta_minor for a in rows], pa.int64()),
        "ledger_delta_minor": pa.array([a.ledger_delta_minor for a in rows], pa.int64()),
        "reason": pa.array([a.reason for a in rows], pa.string()),
        "new_billable_seconds": pa.array([a.new_billable_seconds for a in rows], pa.int64()),
    })
