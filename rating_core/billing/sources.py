"""Committed calls from the ledger, for statements, advice and reports.

The ledger keeps every committed rated record in ``call_batches`` (one
Arrow IPC stream per commit, times as int64 epoch ms; see
``rating_core.ledger.formats``). This reads them in one read transaction
(for one account only the batches its (account, month) index names,
``ledger.records.account_batches``, not every batch), keeps the calls
whose start lies in [lo_ms, hi_ms) (and of one account),
and returns them either as the rater's columns (``committed_records``, for
the advisor, which rates them again) or as ``CALLS_SCHEMA``
(``committed_calls``). Records written by older versions as JSON are not
read here.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..ledger import formats, month_opening_kinds, records
from .calls import CALLS_SCHEMA, combine, from_rated_table

_PREPAID = layout.PACKAGE_KIND.index("prepaid")


def _plain(t: pa.Table) -> pa.Table:
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns]
    return pa.Table.from_arrays(cols, names=t.column_names)


def committed_records(ledger, lo_ms: int | None = None, hi_ms: int | None = None,
                      account: str | None = None, txn=None) -> pa.Table | None:
    """The committed rated records (rater columns, this version's names:
    ``records.read_batch``; times int64 ms) of calls starting in [lo_ms,
    hi_ms), optionally of one account; None when there are none. ``txn``:
    a transaction of the ledger's to read in (an operation's write
    transaction); default a read transaction of its own."""
    parts = []
    with (contextlib.nullcontext(txn) if txn is not None else ledger.env.begin()) as txn:
        db = ledger.db[formats.CALL_BATCHES]
        if account is None:
            blobs = ((formats.BATCH_KEY.unpack(key)[0], blob) for key, blob in txn.cursor(db=db))
        else:  # only the batches the (account, month) index names
            blobs = ((b, txn.get(formats.BATCH_KEY.pack(b), db=db))
                     for b in records.account_batches(ledger, txn, account, lo_ms, hi_ms))
        for batch, blob in blobs:
            t = _plain(records.read_batch(bytes(blob), batch))
            mask = None
            start = t.column("start")
            for cond in ((pc.greater_equal(start, lo_ms) if lo_ms is not None else None),
                         (pc.less(start, hi_ms) if hi_ms is not None else None),
                         (pc.equal(t.column("account"), account) if account is not None else None)):
                if cond is not None:
                    mask = cond if mask is None else pc.and_(mask, cond)
            if mask is not None:
                t = t.filter(mask)
            if t.num_rows:
                parts.append(t)
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")


def committed_calls(ledger, lo_ms: int | None = None, hi_ms: int | None = None,
                    account: str | None = None, txn=None) -> pa.Table:
    """``committed_records`` as ``CALLS_SCHEMA`` (one row per call id,
    sorted by start; ``txn`` as there)."""
    t = committed_records(ledger, lo_ms, hi_ms, account, txn)
    if t is None:
        return CALLS_SCHEMA.empty_table()
    return combine([("ledger", from_rated_table(t, "ledger"))]).table


def ledger_events(ops, snapshot, account: str | None = None) -> list:
    """The money events a statement from the live ledger shows: the
    accounts layer's audited top-ups, credit adjustments and refunds
    (``events.from_account_events``), the ledger's rerating adjustments
    (``events.from_adjustments``, the prepaid part from credit) and the
    package periods (``events.from_package_starts``), of every
    account or only ``account``. ``ops``: ``rating_core.accounts.Accounts``
    on the store's ledger; ``snapshot``: the live view (which accounts are
    prepaid). One reader for ``bill --ledger`` and gRPC GetStatement, so
    both show the same statement. One account's audit events are read
    through its event index (``Accounts.account_events``), the same events
    in the same order as the every-event listing holds of it, so a
    statement of one account (`accounts balance`, GetBalance, GetStatement,
    a refund's or reversal's bound) does not read every customer's log.
    -> list[AccountEvent]."""
    from ..ledger import adjustments
    from .events import from_account_events, from_adjustments, from_cut_overs, from_package_starts

    raw: list[dict] = []
    if account is not None:
        raw = ops.account_events(account)
    else:
        after = 0
        while True:  # every audited event, in pages
            page = ops.events(after_seq=after, limit=10_000)
            if not page:
                break
            raw += page
            after = page[-1]["seq"]
    with ops.ledger.env.begin() as txn:
        rerated = [a for a in adjustments.all_rows(ops.ledger, txn) if account is None or a.account == account]
    t = snapshot.tables
    row = {a: i for i, a in enumerate(snapshot.meta["accounts"])}
    prepaid_now = {a for a, i in row.items()
                   if layout.PACKAGE_KIND[int(t["package_kind"][int(t["account_package"][i])])] == "prepaid"}
    rows = np.array([row.get(a.account, -1) for a in rerated], np.int64).reshape(-1)
    known = rows >= 0
    billed_as = np.full(len(rerated), -1, np.int8)
    billed_as[known] = month_opening_kinds(t, rows[known], np.array([a.rerated_at_ms for a in rerated],
                                                                    np.int64)[known])
    # The credit part of a rerating follows the kind its month is billed as
    # (the statement's rule, and what the ledger's correction means there:
    # breaker 2026-12-02 F4, a prepaid call rerated after a change to
    # pay-as-you-go was taken from the credit and billed as due too); a view
    # without package history: the account's kind now.
    prepaid = {id(a) for a, k in zip(rerated, billed_as)
               if (k == _PREPAID if k >= 0 else a.account in prepaid_now)}
    return (from_account_events(raw) + from_adjustments(rerated, lambda a: id(a) in prepaid)
            + from_package_starts(raw) + from_cut_overs(raw))


def statement_position(ops, account: str, snapshot=None) -> dict | None:
    """The current month's statement of ``account`` from the live ledger
    (``live_statements``, as `bill --ledger` and gRPC GetStatement build
    it), the figures `accounts balance` and gRPC GetBalance show beside the
    ledger's balance, which never holds rental and feature fees (newcomer
    N11 F10): ``month`` (``YYYY-MM``, Asia/Shanghai); ``unpaid_minor``, what
    earlier statements leave unpaid plus this month's amount due so far
    (its rental and fees count from the 1st); ``credit_minor``, the
    statements' closing credit (prepaid: the credit; postpaid: payments no
    bill has applied); ``payments_carried_out_minor``, the bill payments
    (``accounts pay``) no statement applied, carried to later bills: what
    ``Accounts.reverse_payment`` may take back now (newcomer N13 F3: only
    `bill --ledger` showed it). Amounts in minor units (1/10000 yuan).
    None when no statement bills the account yet (before its billing
    start). One statement build; the caller checks the account has a
    package (its balance read)."""
    got = live_statements(ops, account, None, snapshot)
    if not got:
        return None
    s = got[-1]
    return {"month": s.month,
            "unpaid_minor": s.outstanding,
            "credit_minor": s.closing_credit,
            "payments_carried_out_minor": s.payments_carried_out}


def unapplied_payments(ops, account: str, at_ms: int) -> tuple[int, str] | None:
    """What the statements of a postpaid ``account`` (pay-as-you-go or
    bundle) left unapplied from ``at_ms``'s month (Asia/Shanghai) to the
    current one: the least credit they carry at the end of any of those
    months (payments and credit adjustments not applied to any bill; minor
    units, >= 0; ``Statement.closing_credit``, the statements `bill
    --ledger` and gRPC GetStatement show), and that month (``YYYY-MM``, the
    latest of the least); None when no statement bills the account by then
    (a time before its billing start: nothing applied). Money taken out at
    ``at_ms`` lowers the closing credit of its month and of every later
    one, so anything above the least was applied to a bill of that month or
    before it: the least of them is what no bill applied, not the credit at
    the end of ``at_ms``'s month (breaker N11 F13: 201.00 refunded dated in
    October while 3.00 was refundable, re-opening November's and December's
    paid rentals). The ledger's balance is larger by the statement-only
    charges (rental, features) the payments paid, as fees are never debited
    from it, so a refund is bounded by this too (newcomer N10-2 finding 6).
    ``ops``: ``rating_core.accounts.Accounts``. One statement build."""
    return _least_from(live_statements(ops, account, at_ms), at_ms, lambda s: max(0, s.closing_credit))


def unapplied_bill_payments(ops, account: str, at_ms: int) -> tuple[int, str, int] | None:
    """The bill payments (``accounts pay``) of ``account`` that no
    statement applied, from ``at_ms``'s month to the current one: the least
    ``payments_carried_out`` of those months (minor units) and that month
    (``YYYY-MM``); None when no statement bills the account by then. A
    payment reversed at ``at_ms`` lowers what every later month carries, so
    this bounds a reversal (``Accounts.reverse_payment``) as
    ``unapplied_payments`` bounds a refund. Third: the bill money of the
    last month built (the later of ``at_ms``'s and the current one), its
    ``payments_carried_in`` plus its payments (minor units; below zero
    when a reversal re-opened bills): a reversal there beyond it re-opens
    bills of earlier months (``Statement.payments_reopened``). One
    statement build."""
    statements = live_statements(ops, account, at_ms)
    found = _least_from(statements, at_ms, lambda s: s.payments_carried_out)
    if found is None:
        return None
    last = statements[-1]
    return found[0], found[1], last.payments_carried_in + last.payments_total


class RefundBound(NamedTuple):
    """What the statements allow a refund to pay back (minor units):
    ``unapplied``, a postpaid account's least closing credit from the
    refund's month on and that month (``unapplied_payments``' figure; None
    when no statement bills the account by then); ``unpaid``, what the
    bills of the months that have ended leave unpaid after every payment so
    far (the current month's statement's earlier unpaid less what its
    payments paid of it), ``last_ended``, the last month ended (``YYYY-MM``),
    and ``closing_credit``, the current month's closing credit so far."""

    unapplied: tuple[int, str] | None
    unpaid: int
    last_ended: str
    closing_credit: int


def refund_bound(ops, account: str, at_ms: int) -> RefundBound | None:
    """``RefundBound`` of ``account`` for a refund dated ``at_ms`` (epoch
    ms); None when no statement bills the account yet. The month in
    progress is no bill yet: its minimum depends on the calls still to
    come. One statement build (two only for a refund dated into a month
    after the current one)."""
    from ..accounts.operations import now_ms
    from .statements import month_index, month_label, parse_month

    statements = live_statements(ops, account, at_ms)
    if int(month_index(np.array([at_ms], np.int64))[0]) > int(month_index(np.array([now_ms()], np.int64))[0]):
        current = live_statements(ops, account, None)  # built to the current month, as its bills stand
    else:
        current = statements
    if not current:
        return None
    s = current[-1]
    return RefundBound(_least_from(statements, at_ms, lambda s: max(0, s.closing_credit)),
                       s.earlier_unpaid - s.paid_to_earlier, month_label(parse_month(s.month) - 1), s.closing_credit)


def _least_from(statements: list, at_ms: int, figure) -> tuple[int, str] | None:
    """The least ``figure(statement)`` over ``statements`` (oldest first)
    of ``at_ms``'s month and later, and the latest month holding it; None
    when there are none (a time before the billing start counts from the
    first month billed)."""
    from .statements import month_index, parse_month

    month = int(month_index(np.array([at_ms], np.int64))[0])
    later = [s for s in statements if parse_month(s.month) >= month]
    if not later:
        return None
    least = min(figure(s) for s in later)
    return least, [s.month for s in later if figure(s) == least][-1]


def live_statements(ops, account: str, at_ms: int | None, snapshot=None, calls_before_ms: int | None = None,
                    extra_events: list | None = None) -> list:
    """The statements of ``account`` from the live ledger (as `bill
    --ledger` builds them, ``events_in_balances``), every month from its
    first call or event (months before its billing start get none, so the
    chain of credit and unpaid bills is whole) to the later of ``at_ms``'s
    month and the current one (``at_ms`` None: the current one), oldest
    first, in one build. ``ops``: ``rating_core.accounts.Accounts``;
    ``snapshot``: the live view to build with (default: opened here; the
    server passes its engine's). Reads every audited event (pages) and the
    account's committed calls up to that month (only those starting
    before ``calls_before_ms``, epoch ms, when given: a change to prepaid
    reads the statements without the calls its package owns). ``extra_events``
    (``AccountEvent``): events not yet committed, built in as if they were
    (``rebate_to_credit``)."""
    from ..accounts.operations import now_ms
    from ..accounts.view import open_view
    from .fees import MonthlyFees
    from .statements import build_statements, month_bounds, month_index

    def month_of(ms: int) -> int:
        return int(month_index(np.array([ms], np.int64))[0])

    if snapshot is None:
        snapshot = open_view(ops.store, ops.ledger.env)
    month = max(month_of(now_ms()), month_of(at_ms) if at_ms is not None else 0)
    hi = month_bounds(month)[3]
    calls = committed_calls(ops.ledger, hi_ms=hi if calls_before_ms is None else min(hi, calls_before_ms),
                            account=account)
    events = ledger_events(ops, snapshot, account) + list(extra_events or ())
    first = min([month_of(e.at_ms) for e in events]
                + ([month_of(pc.min(calls.column("start_ms")).as_py())] if calls.num_rows else []) + [month])
    return build_statements(calls, snapshot, events, list(range(max(first, 0), month + 1)), [account],
                            events_in_balances=True, fees=MonthlyFees(ops.store, snapshot))


def postpaid_money_left(ops, account: str, change_ms: int, snapshot=None) -> int:
    """What the money ``account`` received before its change to a prepaid
    package at ``change_ms`` (epoch ms) still leaves unapplied after the
    bills of the month the change falls in (minor units, >= 0): the closing
    credit of that month's statement built from the events dated before the
    change and the committed calls starting before it, i.e. the month as its
    postpaid package bills it (``Accounts._unapplied_at_change``' figure, as
    the calls stand now). A late postpaid call of that month is paid from
    it by the statement (``statements._apply_payments``: the money before
    the change pays the month's postpaid charges first), so the ledger
    takes it from the prepaid credit that carried it
    (``engine._debit_postpaid``). 0 when no statement bills the account.

    When that money was carried into prepaid credit that has since left
    the account in the month (a return to postpaid, a refund; the month's
    statement as it stands now bounds the money by what is still there,
    ``Statement.pre_change_money_left``), at most that bound: the statement
    bills the rest as due, so the ledger takes no more (breaker7 F1b: pay
    -> pre_b -> pay, 690.00 refunded of the 698.80 carried back, pre_a,
    then a late 12.00 call of the first pay span: the ledger took 12.00
    from the prepaid credit, 476.80, now 8.80: 480.00 and 3.20 due)."""
    from ..accounts.view import open_view
    from .fees import MonthlyFees
    from .statements import build_statements, month_index

    if snapshot is None:
        snapshot = open_view(ops.store, ops.ledger.env)
    month = int(month_index(np.array([change_ms - 1], np.int64))[0])
    calls = committed_calls(ops.ledger, hi_ms=change_ms, account=account)
    every = ledger_events(ops, snapshot, account)
    events = [e for e in every if e.at_ms < change_ms]
    first = min([int(month_index(np.array([e.at_ms], np.int64))[0]) for e in events]
                + ([int(month_index(np.array([pc.min(calls.column("start_ms")).as_py()], np.int64))[0])]
                   if calls.num_rows else []) + [month])
    statements = build_statements(calls, snapshot, events, list(range(max(first, 0), month + 1)), [account],
                                  events_in_balances=True, fees=MonthlyFees(ops.store, snapshot))
    left = max(0, statements[-1].closing_credit) if statements else 0
    # Only a later package change of the change's month can bound it (a return to postpaid).
    if not left or not any(e.kind == "package_start" and e.at_ms > change_ms
                           and int(month_index(np.array([e.at_ms], np.int64))[0]) == month for e in every):
        return left
    return min([left, *[s.pre_change_money_left[1] for s in live_statements(ops, account, change_ms, snapshot)
                        if s.pre_change_money_left is not None and s.pre_change_money_left[0] == change_ms]])


def rebate_to_credit(ops, account: str, at_ms: int, delta_minor: int, snapshot=None) -> int:
    """What a rerating that lowers the charges of ``account``'s postpaid
    calls by ``-delta_minor`` (minor units, < 0), made at ``at_ms`` (epoch
    ms) with no credit part, gives back to the credit its statement closes
    on: the closing credit of ``at_ms``'s month with that rerating less the
    one without it, in [0, -delta_minor]. A statement applies the money the
    customer paid to the calls' new charges, so what it had paid beyond them
    returns to the credit, and the rest of the rebate lowers the bill
    (``rerate.rerate_in``: on an account prepaid now, the ledger's credit
    follows; README "Money rules", Rerating). 0 for ``delta_minor`` >= 0 or
    when no statement bills the account."""
    from .events import AccountEvent

    if delta_minor >= 0:
        return 0
    moved = closing_credit_change(ops, account, at_ms, [
        AccountEvent(account, at_ms, "rerating", delta_minor, note="rebate", credit_minor=0)], snapshot=snapshot)
    return min(-delta_minor, max(0, moved or 0))


def closing_credit_change(ops, account: str, at_ms: int, events: list, base: list | tuple = (),
                          snapshot=None) -> int | None:
    """How far ``events`` (``AccountEvent``s not yet committed, e.g. the
    ``rerating`` rows a rerating made at ``at_ms`` is about to write, each
    with the credit part it will record) move the closing credit of
    ``account``'s last statement (``live_statements``: ``at_ms``'s month or
    the current one, whichever is later), minor units, signed (+ the credit
    goes up): that closing with ``base`` and ``events`` built in, less the
    one with ``base`` alone (``base``: other uncommitted events, e.g. the
    same run's other rows). None when no statement bills the account. The
    ledger's credit follows it for a rerating of postpaid calls on an
    account prepaid now (``rerate._rebates``; breaker7 F2, F3)."""
    before = live_statements(ops, account, at_ms, snapshot, extra_events=list(base))
    after = live_statements(ops, account, at_ms, snapshot, extra_events=list(base) + list(events))
    if not before or not after:
        return None
    return after[-1].closing_credit - before[-1].closing_credit
