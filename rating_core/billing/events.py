"""Account events a statement shows: money received and changes of service.

Kinds (``KINDS``):

- ``top_up``: money paid into the account's prepaid credit (amount > 0, whole fen).
- ``adjustment``: a manual correction on the bill, signed: positive
  charges the enterprise more, negative is a credit note.
- ``rerating``: the difference a rerating made to calls already billed
  (new charge - old charge), signed like ``adjustment``; from the ledger,
  one per rerated call (``from_adjustments``), with the part of it that
  prepaid credit paid in ``credit_minor``.
- ``credit_adjustment``: a signed change of the prepaid credit other than a
  top-up or a refund (the accounts layer's ``adjust``; from the ledger
  only, never from a file: ``FILE_KINDS``).
- ``refund``: credit paid back to the customer in cash (the accounts
  layer's ``refund``; amount < 0, the credit it takes; the note its
  reason; ledger only). A line and a sum of its own on the statement, so
  cash paid out is told apart from a credit adjustment (newcomer N13 F1:
  it was a ``credit_adjustment`` noted "refund").
- ``payment``: a prepaid account's payment of its bills (the accounts
  layer's ``pay``, or a file's row, amount > 0 in whole fen): never call
  credit, applied to the oldest bill first (``statements._apply_payments``;
  newcomer N11 F15: a file had no way to show a prepaid account's payment
  of its arrears).
- ``feature_added`` / ``feature_removed``: an add-on (``feature``) starts
  or stops at ``at_ms``; amount unused.
- ``package_start`` (from the live ledger only, ``from_package_starts``):
  a package period starts at ``at_ms`` (subscribe, import, renewal, package
  change): ``package`` (and ``from_package``, "" for the first),
  ``amount_minor`` the new money it brings (a prepaid package's fee;
  the opening credit less what was carried), ``credit_minor`` the credit
  carried over from the period before. Not a line of its own: it tells a
  statement which package a month runs under.
- ``billing_from`` (from the live ledger only, ``from_cut_overs``): a
  migrated account's cut-over (``accounts import``): ``at_ms`` the first
  instant this ledger bills; no statement shows a month before it (unless
  the ledger holds a call or money of that month). Not a line of its own.

An operator who rates offline writes them in a CSV
(``account,at,kind,amount,feature,note``; ``amount`` in yuan, at most 4
decimals, exact); the live system reads them from the ledger's account
events. Both become ``AccountEvent`` values.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .. import cdr, layout
from ..errors import InvalidInput
from ..money import MAX_AMOUNT_MINOR, in_yuan, parse_yuan
from .calls import MAX_BALANCE_MINOR

KINDS = ("top_up", "adjustment", "rerating", "credit_adjustment", "refund", "payment", "feature_added",
         "feature_removed")
# The kinds an events file may hold (README "bill --events"): a
# ``credit_adjustment`` and ``refund`` are the ledger's (``accounts adjust`` / ``refund``,
# checked against the credit there); from a file it took prepaid credit
# below zero and a payg credit settled nothing (breaker).
FILE_KINDS = ("top_up", "adjustment", "rerating", "feature_added", "feature_removed", "payment")
# Kinds that move money: one dated before the account's package start would
# be on no statement (``read_events`` ``starts``).
MONEY_KINDS = ("top_up", "adjustment", "rerating", "credit_adjustment", "refund", "payment")
FEATURE_KINDS = ("feature_added", "feature_removed")
# The accounts layer's operations (audit events not of a number) that move
# money, and the kind of event each is on a statement (``from_account_events``).
# The one list: ``Accounts._first_held`` (is there money of an account
# before its cut-over?) reads it too, so an operation the statements count
# is never left out of that check (breaker N11 F1: a ``pay`` was not, and a
# cut-over moved past it left its month billed anyway).
LEDGER_MONEY_OPERATIONS = {"top_up": "top_up", "pay": "payment", "reverse_payment": "payment",
                           "adjust": "credit_adjustment", "refund": "refund"}
assert set(LEDGER_MONEY_OPERATIONS.values()) <= set(MONEY_KINDS)
# The package kinds (``layout.PACKAGE_KIND``) whose accounts take a bill
# payment (kind ``payment``): a prepaid account's. A pay-as-you-go or bundle
# account's payment is its top-up, credited against what was charged (README
# "Money rules", Pay: one meaning per word). The one rule for ``accounts
# pay`` (the operation ``pay`` -> ``payment``, refused ``not_prepaid``) and an
# events file's ``payment`` row (its error naming ``kind``; breaker N13 F3: a
# file's payment of a pay-as-you-go account was taken, ``accounts pay``
# refused it): ``payment_refusal``.
BILL_PAYMENT_KINDS = ("prepaid",)


def payment_refusal(account: str, package_kind: str) -> str | None:
    """Why ``account``, under a package of ``package_kind``
    (``layout.PACKAGE_KIND``), takes no bill payment (kind ``payment``), in
    the words of ``accounts pay``'s ``not_prepaid`` refusal; None when it
    takes one (``BILL_PAYMENT_KINDS``)."""
    if package_kind in BILL_PAYMENT_KINDS:
        return None
    return f"account {account!r} is postpaid: its payment is a top-up, credited against what was charged"


@dataclass(frozen=True)
class AccountEvent:
    """One event: ``account`` id, ``at_ms`` (epoch ms), ``kind`` (KINDS),
    ``amount_minor`` (int64 minor units; signed for adjustment/rerating),
    ``feature`` (for feature events), ``note`` (free text),
    ``credit_minor`` (rerating of a prepaid call: the signed part of
    ``amount_minor`` taken from prepaid credit, the ledger's correction; 0
    otherwise), ``version`` (a ledger rerating: the catalog version it
    rated under, and ``call_id`` the rerated call; 0 and "" otherwise);
    ``package`` / ``from_package`` / ``until_ms`` (the period's end: prepaid
    credit left then expires) / ``carried_after_minor`` (of ``credit_minor``,
    the money dated at or after the start, shown as the period's own) for
    ``package_start``; ``from_file``: read
    from an events CSV (``read_events``), not held by the ledger, so it
    never moves a migrated account's billing before its cut-over
    (``statements.billed_from``)."""

    account: str
    at_ms: int
    kind: str
    amount_minor: int = 0
    feature: str | None = None
    note: str = ""
    credit_minor: int = 0
    version: int = 0
    call_id: str = ""
    package: str = ""
    from_package: str = ""
    until_ms: int = 0
    from_file: bool = False
    carried_after_minor: int = 0


AT_FORMS = ("ISO 8601 with a time, e.g. 2026-10-20T10:00:00+08:00; a bare date, 2026-10-20, "
            "is that day's 00:00 Asia/Shanghai; or epoch milliseconds")
_DATE = re.compile(r"\s*([0-9]{4})-([0-9]{2})-([0-9]{2})\s*")  # ASCII: \d took full-width digits (breaker N11 F12)


def _day_start_ms(text) -> int | None:
    """A bare date (``2026-10-20``, what a finance clerk writes for a
    top-up) -> that day's 00:00 Asia/Shanghai in epoch ms; None for
    anything else (the row's ``at`` is then refused)."""
    m = _DATE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return None
    try:
        day = dt.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=layout.LOCAL_TZ)
    except ValueError:
        return None
    return int(day.timestamp()) * 1000


def yuan_to_minor(text: str, where: str, signed: bool = True) -> int:
    """'12.5' -> 125000 (``money.parse_yuan``: plain decimal, exact, at
    most ``MAX_AMOUNT_MINOR`` in magnitude, what one account operation may
    move). Raises InvalidInput naming ``amount`` and ``where``."""
    try:
        return parse_yuan(text, signed=signed, most_minor=MAX_AMOUNT_MINOR)
    except ValueError as e:
        raise InvalidInput("amount", str(e), where) from None


def read_events(path: str | Path, accounts=None, features=None,
                starts: dict[str, int] | None = None,
                before_cut_over: Callable[[str, int], str | None] | None = None,
                package_kinds: dict[str, str] | None = None,
                held: dict[str, list[str]] | None = None) -> list[AccountEvent]:
    """Events from a CSV file (see the module doc; kinds ``FILE_KINDS``),
    each ``from_file``.
    ``accounts`` / ``features``: the catalog's ids, when given an event
    naming another is an error of its row. ``starts``: account -> its
    package start (epoch ms, the first statement's); a money event
    (``MONEY_KINDS``) dated before it is an error of its row (no statement
    shows a month before the start). ``before_cut_over(account, at_ms)``
    (``Accounts.money_before_cut_over``, the ledger's rule): why money of a
    migrated account dated ``at_ms`` is before the first month this ledger
    bills it, or None; a money row it names is an error of its row naming
    ``at`` in those words (breaker N13 F9: a file's 0.01 top-up dated June
    re-billed June..September, the old platform's months, 396.00 of
    rentals). ``package_kinds``: account -> its package's kind
    (``layout.PACKAGE_KIND``); a ``payment`` row of an account that takes
    none (``payment_refusal``: a postpaid one, whose payment is a top-up)
    is an error of its row naming ``kind``, as ``accounts pay`` refuses it
    ``not_prepaid`` (breaker N13 F3). A cell the row's kind does not use
    (``feature`` on a money row, ``amount`` on a feature row) is an error of
    its row naming it (breaker N13 F4). An account's money events may move
    at most ``MAX_BALANCE_MINOR`` (10^15 minor units) in all, counted in
    magnitude: the row that passes it is an error naming ``amount`` (README
    "Bounds": no balance passes 10^15, so every total a statement forms
    stays inside int64; breaker N11 F14: 9,300 top-ups of 10^11 yuan gave a
    closing credit past int64 and ``--out x.parquet`` crashed). Raises
    InvalidInput naming ``FILE row N`` (N: the data row, 1 = the line after
    the header) and the field. A row dated more than
    ``accounts.operations.AHEAD_MS`` (10 minutes) after now
    (``operations.now_ms``) is an error of its row naming ``at``, as the
    operations refuse such a date (breaker N14 F4: a payment dated 24 days
    ahead lowered December's amount due by 100.00; money not yet received
    settles no bill). A ``feature_added`` or ``feature_removed`` naming a
    feature the catalog (``features``) lacks is an error of its row naming
    ``feature`` (breaker N14 F5: removing 'Recording' or 'nosuch' was
    taken and removed nothing). ``held``: account -> the features it holds
    from its start (the catalog's or the live account's); when given, the
    file's feature rows are taken in time order (a tie in file order) and a
    ``feature_removed`` of a feature the account does not hold then is an
    error of its row naming ``feature`` (``feature_not_held``), a
    ``feature_added`` of one it holds already likewise
    (``feature_already_held``): either changes nothing while the clerk
    believes a fee stopped or started (issue 12 breaker)."""
    from ..accounts import operations
    from .statements import LAST_YEAR, MONTH_RULE, month_index, month_label

    now = operations.now_ms()  # the accounts' clock, once for the file
    path = Path(path)
    try:
        t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in ("account", "at", "kind", "amount", "feature", "note")},
            strings_can_be_null=True, null_values=[""]))  # only an empty cell is null, as in cdr
    except pa.ArrowInvalid as e:
        if "invalid UTF8" in str(e):  # a GBK export: say so, not pyarrow's column number
            raise InvalidInput("file", "not UTF-8 text (an events file is read as UTF-8: save it as "
                                       "\"CSV UTF-8\")", str(path)) from None
        raise InvalidInput("file", f"not a CSV: {cdr.excerpt(e, 200)}", str(path)) from None
    twice = sorted({c for c in t.column_names if t.column_names.count(c) > 1})
    if twice:  # which of the two would be read is no choice to make silently
        raise InvalidInput(twice[0], "column named twice in the header", str(path))
    for col in ("account", "at", "kind"):
        if col not in t.column_names:
            raise InvalidInput(col, "no such column (need account,at,kind[,amount,feature,note])", str(path))
    at, present, valid = cdr.parse_times(t.column("at"))
    rows = t.to_pylist()
    events = []
    moved: dict[str, int] = {}  # account -> sum of |amount| of its money rows so far (minor units)
    for i, row in enumerate(rows):
        where = f"{path} row {i + 1}"
        for field in ("account", "kind", "amount", "feature", "note"):
            if isinstance(row.get(field), str):  # statements print these raw
                cdr.check_characters(field, row[field], where)
        if not row.get("account"):
            raise InvalidInput("account", "missing", where)
        if accounts is not None and row["account"] not in accounts:
            raise InvalidInput("account", f"no such account in the catalog: {cdr.excerpt(row['account'])}", where)
        at_ms = int(at[i]) if valid[i] and at[i] != layout.NO_TIME else _day_start_ms(row.get("at"))
        if at_ms is None:
            raise InvalidInput("at", f"not a time: {cdr.excerpt(row.get('at') or '')} ({AT_FORMS})", where)
        if not cdr.MIN_TIME_MS <= at_ms < cdr.MAX_TIME_MS:  # as the edge bounds a call's time
            raise InvalidInput("at", f"{cdr.excerpt(row.get('at') or '')}: {cdr.REASONS[cdr.TIME_OUT_OF_RANGE]}",
                               where)
        # The edge's range is UTC; a statement month is local: 2200-01-01
        # Asia/Shanghai is 2199-12-31 UTC, in range, in a month no run bills
        # (breaker 2 F9: a warning said to bill 2200-01 with --month, which refuses it).
        month = int(month_index(np.array([at_ms]))[0])
        if month > LAST_YEAR * 12 + 11:
            raise InvalidInput("at", f"{cdr.excerpt(row.get('at') or '')}: in {month_label(month)} (Asia/Shanghai), "
                                     f"after the last month a statement bills ({MONTH_RULE})", where)
        ahead = operations.too_far_ahead(at_ms, now)  # the operations' rule and words
        if ahead:
            raise InvalidInput("at", f"{ahead}: date an event when it happened (`accounts pay`, `top-up` refuse such "
                                     "a date too)", where)
        kind = row["kind"]
        if kind not in FILE_KINDS:
            ledger_only = " (credit adjustments come from the ledger: accounts adjust / refund, bill --ledger)" \
                if kind in ("credit_adjustment", "refund") else ""
            raise InvalidInput("kind", f"{kind!r} is not one of {', '.join(FILE_KINDS)}{ledger_only}", where)
        postpaid = (payment_refusal(row["account"], package_kinds[row["account"]])
                    if kind == "payment" and package_kinds and row["account"] in package_kinds else None)
        if postpaid:
            raise InvalidInput("kind", f"'payment': {postpaid} (write it as kind top_up; `accounts pay` refuses "
                                       "it not_prepaid)", where)
        start = None if starts is None else starts.get(row["account"])
        # A feature's fee is billed from the month it is added in: one added
        # before the start would be billed in a month no statement shows
        # (breaker: a yearly recording fee added the day before was lost).
        if (kind in MONEY_KINDS or kind in FEATURE_KINDS) and start is not None and at_ms < start:
            day = dt.datetime.fromtimestamp(start / 1000, layout.LOCAL_TZ).date()
            raise InvalidInput("at", f"{cdr.excerpt(row.get('at') or '')} is before the account's package start "
                                     f"{day.isoformat()}: no statement shows money or a feature's fee before "
                                     f"it (date it on or after the start)", where)
        if kind in MONEY_KINDS and before_cut_over is not None:
            why = before_cut_over(row["account"], at_ms)
            if why:
                raise InvalidInput("at", f"{cdr.excerpt(row.get('at') or '')}: {why}", where)
        amount = 0
        feature = row.get("feature") or None
        # A cell its kind does not use is the row's error, not ignored: a
        # feature on a top-up (the clerk may have meant feature_added), an
        # amount on a feature row (a fee comes from the catalog), breaker N13 F4.
        unused = ("feature" if kind in MONEY_KINDS and feature else
                  "amount" if kind in FEATURE_KINDS and row.get("amount") else None)
        if unused:
            why = ("a feature is added or removed by a row of its own, kind feature_added / feature_removed"
                   if unused == "feature" else "a feature's fee is the catalog's; money is a row of its own")
            raise InvalidInput(unused, f"{cdr.excerpt(row[unused])}: a {kind} row does not use {unused} ({why})",
                               where)
        if kind in MONEY_KINDS:
            if not row.get("amount"):
                raise InvalidInput("amount", "missing", where)
            amount = yuan_to_minor(row["amount"], where, signed=kind not in ("top_up", "payment"))
            if kind in ("top_up", "payment") and amount == 0:
                raise InvalidInput("amount", f"a {kind.replace('_', '-')} must be more than 0", where)
            if kind in ("top_up", "payment") and amount % 100:  # as `accounts top-up` / `pay` (newcomer 12-02 F3)
                raise InvalidInput("amount", f"{row['amount']}: a {kind.replace('_', '-')} is whole fen (money "
                                             "received is never finer than 0.01 yuan)", where)
            total = moved.get(row["account"], 0) + abs(amount)
            if total > MAX_BALANCE_MINOR:
                raise InvalidInput("amount", f"the money rows of account {row['account']!r} to this one move "
                                             f"{in_yuan(total)} in all, more than an account's balance may "
                                             f"reach ({in_yuan(MAX_BALANCE_MINOR)})", where)
            moved[row["account"]] = total
        elif not feature:
            raise InvalidInput("feature", f"missing (needed for {kind})", where)
        elif features is not None and feature not in features:  # added or removed alike (breaker N14 F5)
            raise InvalidInput("feature", f"no such feature in the catalog: {cdr.excerpt(feature)}", where)
        events.append(AccountEvent(row["account"], at_ms, kind, amount, feature, row.get("note") or "",
                                   from_file=True))
    if held is not None:
        _check_feature_changes(events, held, path)
    return events


def _check_feature_changes(events: list[AccountEvent], held: dict[str, list[str]], path: Path) -> None:
    """Raise InvalidInput naming ``feature`` and the row of the first (in
    time) feature row of ``events`` (a file's rows, in file order) that
    changes nothing: a removal of a feature its account does not hold then
    (``feature_not_held``), an add of one it holds (``feature_already_held``),
    a second change of one feature of one account at the same instant
    (``feature_changed_twice``). ``held``: account -> the features it holds
    from its start."""
    rows = sorted((e.at_ms, i) for i, e in enumerate(events) if e.kind in FEATURE_KINDS)
    holding = {a: set(fs) for a, fs in held.items()}
    changed: dict[tuple[str, str], int] = {}  # (account, feature) -> the file row that changed it last, at this instant
    for at_ms, i in rows:
        e = events[i]
        assert e.feature is not None  # a feature row without one is its error before (read_events)
        now = holding.setdefault(e.account, set())
        when = dt.datetime.fromtimestamp(at_ms / 1000, layout.LOCAL_TZ).isoformat(timespec="seconds")
        first = changed.get((e.account, e.feature))
        if first is not None and events[first].at_ms == at_ms:
            # A removal and an add (or the reverse) at one instant change
            # nothing, yet billed a second year of a yearly fee, or a year
            # for a feature held 0 ms (breaker 12-02 F4).
            raise InvalidInput("feature", f"{e.feature!r}: account {e.account!r} changes it twice at {when} "
                                          f"(feature_changed_twice; row {first + 1} and this one): together they "
                                          "change nothing. Drop both rows, or date them apart",
                               f"{path} row {i + 1}")
        changed[(e.account, e.feature)] = i
        has = ", ".join(sorted(now)) or "none"
        if e.kind == "feature_removed" and e.feature not in now:
            raise InvalidInput("feature", f"{e.feature!r}: account {e.account!r} does not hold it at {when} "
                                          f"(feature_not_held): a removal stops nothing (features held then: {has}). "
                                          "Check the account, the feature id and the date (on or after the row "
                                          "or catalog entry that adds it), or drop the row", f"{path} row {i + 1}")
        if e.kind == "feature_added" and e.feature in now:
            raise InvalidInput("feature", f"{e.feature!r}: account {e.account!r} already holds it at {when} "
                                          f"(feature_already_held): an add starts nothing, and its fee runs from the "
                                          "first add. Drop the row, or remove the feature first (a feature_removed "
                                          "row dated before it)", f"{path} row {i + 1}")
        (now.discard if e.kind == "feature_removed" else now.add)(e.feature)


def from_account_events(events: list[dict]) -> list[AccountEvent]:
    """The accounts layer's audit events (``Accounts.events``) that a
    statement shows: ``top_up`` -> top_up; ``pay`` -> payment;
    ``reverse_payment`` -> payment, negative (its reason as the note);
    ``adjust`` -> credit_adjustment (its reason as the note); ``refund`` ->
    refund, negative (its reason as the note; none before refunds took one).
    Other operations (real-name, numbers, lifecycle) are not money. A
    top-up or payment has no note (the operation takes none; the actor who
    recorded it is the audit log's, not a note: newcomer N11 F1)."""
    out = []
    for e in events:
        op, detail = e.get("operation"), e.get("detail") or {}
        if op not in LEDGER_MONEY_OPERATIONS or e.get("number"):
            continue
        amount = int(detail.get("amount_minor", 0))
        if op == "reverse_payment":
            out.append(AccountEvent(e["account"], int(e["at_ms"]), "payment", -amount,
                                    note=str(detail.get("reason", ""))))
            continue
        if op in ("top_up", "pay"):
            out.append(AccountEvent(e["account"], int(e["at_ms"]), LEDGER_MONEY_OPERATIONS[op], amount,
                                    note=""))
        elif op == "adjust":
            out.append(AccountEvent(e["account"], int(e["at_ms"]), "credit_adjustment", amount,
                                    note=str(detail.get("reason", ""))))
        else:
            out.append(AccountEvent(e["account"], int(e["at_ms"]), "refund", -amount,
                                    note=str(detail.get("reason", ""))))
    return out


def from_package_starts(events: list[dict]) -> list[AccountEvent]:
    """The package periods in the accounts layer's audit events
    (``Accounts.events``, oldest first; ``accounts.periods.package_periods``,
    the one derivation the rater's live view uses too) as ``package_start``
    events. ``amount_minor``: the new period's opening credit less
    ``credit_minor`` (``detail.carried_minor``, the credit carried over)."""
    from ..accounts.periods import package_periods

    return [AccountEvent(p.account, p.start_ms, "package_start", p.opening_credit_minor - p.carried_minor,
                         credit_minor=p.carried_minor, package=p.package, from_package=p.from_package,
                         until_ms=p.until_ms, carried_after_minor=p.carried_after_minor)
            for p in package_periods(events)]


def from_cut_overs(events: list[dict]) -> list[AccountEvent]:
    """The cut-overs in the accounts layer's audit ``events`` (dicts of
    ``C.Event`` fields, oldest first): the ``billing_from_ms`` of each
    account's latest record (``after``) that has one, as a ``billing_from``
    event; none for an account opened live (0)."""
    latest: dict[str, int] = {}
    for e in events:
        after = e.get("after") or {}
        if not e.get("number") and e.get("account") and "billing_from_ms" in after:
            latest[e["account"]] = int(after["billing_from_ms"])
    return [AccountEvent(a, ms, "billing_from") for a, ms in latest.items() if ms]


def from_adjustments(rows, prepaid) -> list[AccountEvent]:
    """The ledger's rerating adjustments (``ledger.adjustments.Adjustment``)
    as ``rerating`` events: at the rerating's time (``rerated_at_ms``: a
    bill already sent is never changed, the correction goes on the bill of
    the month it was made), amount = the charge's delta; ``credit_minor``
    = the part taken from or given back to the prepaid credit, as the
    rerating recorded it (``Adjustment.credit_delta_minor``), the rest
    being on the bill; for rows written before it was recorded, the
    ledger's correction (``ledger_delta_minor``) where ``prepaid(a)`` holds
    (``sources.live_events``: the month the rerating was made in is billed
    as prepaid), else 0."""
    return [AccountEvent(a.account, a.rerated_at_ms, "rerating", a.delta_minor,
                         note=f"{a.call_id}: {a.reason}",
                         credit_minor=(a.credit_delta_minor if a.credit_delta_minor is not None else
                                       a.ledger_delta_minor if prepaid(a) else 0),
                         version=a.version, call_id=a.call_id) for a in rows]
