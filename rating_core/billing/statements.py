"""Monthly statements: what the enterprise is sent for each calendar month.

One ``Statement`` per account and calendar month (Asia/Shanghai local
time) in the period asked for, including months without calls (a monthly
minimum and the rental still apply). Inputs: rated calls (``calls.py``,
one row per call id), the catalog snapshot the calls were rated with, and
account events (``events.py``). All amounts are int64 minor units
(1/10000 yuan); nothing here rounds except feature proration, whose one
rounding point is stated below, and the amount payable (``to_fen``: the
amount due rounded once to the fen, half up; the amount due stays exact). People read yuan with 2 decimals
(``render.py``).

Rules (README, "Monthly statements", states them for operators):

- usage: the sum of the month's call charges; credit_consumed: the part
  paid from prepaid credit; overage: prepaid arrears or bundle overage.
- minimum top-up: max(0, monthly_minimum - usage), except in the month the
  package starts, which is charged at actual usage, and in a month with no
  package in force (a prepaid period ended by its first instant and not
  renewed in it), which has no minimum. A month billed as postpaid that
  changed to prepaid counts only its calls under postpaid packages (the
  prepaid ones are paid by the prepaid credit; the shortfall is the one the
  change settled from the payments).
- rental: the package's monthly rental, in full for every month the package
  runs, the starting month included.
- add-on features held under the catalog run from the package start:
  monthly fees in full every month, yearly fees in the month of each
  package-start anniversary (the other months list the feature with the
  months it was and will be billed in, amount 0), missed-call SMS per
  unanswered call (a line of 0 when none).
  A feature added or removed by an account event mid-month: a monthly fee
  is prorated by days held (the day added counts, the day removed does
  not): fee x days / days in month, rounded down to the minor unit (the
  only rounding here, in the enterprise's favour); a yearly fee is charged
  in full in the month added and in each anniversary month of that date,
  never refunded; missed-call SMS counts only calls while held.
- top-ups and credit adjustments go to the prepaid credit; adjustments and
  rerating differences go on the bill (positive charges more, negative is
  a credit). A rerating of a prepaid call takes its ``credit_minor`` part
  from the credit (the ledger's correction) and bills only the rest.
- credit: opening + package credit (the month the package starts) +
  top-ups + credit adjustments - credit consumed - rerating credit -
  expired = closing. Each
  top-up and credit adjustment counts at its own ``at_ms``, a call at its
  start. The opening of the first month: from the live ledger
  (``events_in_balances``), 0 in the month the package starts (its opening
  credit is that month's package credit) and the package's opening credit
  in a later month, so the last closing is the ledger's balance whatever
  order calls and top-ups were committed in; from rated files, the credit
  before the account's first rated call in the input (less any package
  credit of that month), or the catalog's opening credit when the account
  has no calls. Later months open with the previous closing. Credit left
  when the prepaid period ends expires.
- charges = usage - credit consumed + minimum top-up + rental + features
  + adjustments + rerating - rerating credit; amount due = charges - the
  payments applied to them.
- postpaid payments (pay-as-you-go and bundle, ``layout.POSTPAID_KINDS``):
  a ``top_up`` of a postpaid month is a payment (the ledger credits it
  against what was charged). The month's money to apply is the credit
  carried in (payments not yet used, or credit carried from a package
  change) plus the month's payments and credit adjustments (a goodwill
  credit, less a refund; those before a change to a prepaid package in the
  month: later ones belong to the new package). It settles first what
  earlier statements left unpaid (``earlier_unpaid``: of every kind, e.g. a
  prepaid month's arrears before a change to a bundle), then the month's
  charges, never below zero; what is left is the closing credit, applied to
  the next months' charges. What decides is the kind the account had when
  the money came (``_postpaid_windows``), not the kind the month is billed
  as: a month billed as prepaid (its package at its start) and changed to
  payg or a bundle applies the top-ups made after the change the same way,
  the customer's payment of that month's bill (breaker 12-02 F3: counted
  as call credit while the month kept asking for the whole amount), as far
  as the credit holds them (``_money_while_postpaid``: not the prepaid
  credit carried in, which pays bills from the next month on); a month
  billed as postpaid and changed to prepaid and back applies those after
  the return. In a month billed as postpaid that changed to prepaid, the
  money dated before the change pays only what was unpaid and charged
  before it (the ledger applied it so at the change and carried the rest
  into the prepaid credit): what arose while prepaid (the prepaid calls'
  arrears, the prepaid package's rental, adjustments and rerating dated
  then, bills re-opened by a payment bounced then) is paid by bill payments
  and money received after a change back to postpaid, else due
  (``_after_prepaid``; breaker2 B3, B4: closing credit below zero, the
  arrears never billed). A refund or debit adjustment after the change
  back is taken from the prepaid credit carried back first, as the ledger
  takes it (that credit is no money of the month's: breaker3 R1, a 600.00
  refund re-opened 600.00 of bills). That money below zero (a debit adjustment
  larger than the credit carried in and the month's payments: a bounced
  top-up, bounded by the ledger's balance, which holds what bills applied)
  took back money earlier bills were paid with: it re-opens them, as a
  bounced bill payment does (``payments_reopened`` below), so the closing
  credit is never below zero. A prepaid top-up is credit for calls, not a
  payment; a prepaid month's charges below zero (a rerating refund of
  arrears) are applied the same way: to earlier unpaid first, the rest back
  to the credit, so no amount due is negative; every kind's
  ``earlier_unpaid`` is set.
- bill payments (``payment`` events: ``accounts pay``, accounts prepaid
  when they pay, whatever kind the bill's month was billed as; a postpaid
  account pays every bill with a top-up, above): never credit. Every month applies the bill payments carried in
  (``payments_carried_in``) plus the month's (``payments``) after the money
  above: to earlier unpaid first, then the month's charges; the rest is
  ``payments_carried_out``, applied to later months' bills, never to the
  credit. The credit's sum holds them as terms that cancel (+ payments +
  carried in - carried out - the part of paid_to_earlier / paid_to_charges
  they paid), so the closing credit stays the ledger's balance. A
  reversal (a negative payment, ``accounts pay --reverse``) larger than the
  bill payments carried in plus the month's (``pay --reverse --reopen``: a
  payment that bounced after bills applied it) re-opens what it had paid:
  ``payments_reopened``, added to ``earlier_unpaid`` (those bills are
  unpaid again) and to the credit's sum as a term, so the credit does not
  move. It holds both kinds of money taken back: the part beyond what the
  month carries in and receives, i.e. what statements of earlier months
  applied (the part the month's own charges had applied shows as less
  paid on them, and a payment made and taken back in one month nets to
  0); ``Accounts.reverse_payment``'s ``reopened_minor`` is what it grows
  by.
- cut-over (live ledger: a ``billing_from`` event, ``accounts import``): a
  migrated account is billed from the month of its cut-over, or from the
  first month in which the ledger holds one of its calls or money events if
  that is earlier (nothing the ledger holds is left off a statement); the
  months before it were the old platform's, so no rental, minimum, feature
  fee or earlier unpaid of theirs is carried. The first month billed opens
  with the credit of the package period in force then (the import's).
- package periods (live ledger: ``package_start`` events): a month is billed
  under the package in force at its start (minimum, rental, kind); the
  package credit of a period starting in the month is its new money only
  (the carried credit is already on the statements); a bundle's allowance
  counts for every bundle period that ran in the month (``_period_terms``).
"""
from __future__ import annotations

import calendar
from collections.abc import Sequence
import re
import gc
import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import cdr, layout
from ..ledger.customers import NEVER_MS as _NEVER_MS  # a package period without an end
from .events import AccountEvent

LOCAL = layout.LOCAL_TZ
# The years a statement month may fall in: those of the edge's time range
# (cdr.MIN_TIME_MS .. MAX_TIME_MS, UTC): a later month has no calls, and
# 9999-12 has no next month to end at. MONTH_RULE is how errors state it.
FIRST_YEAR = dt.datetime.fromtimestamp(cdr.MIN_TIME_MS // 1000, dt.timezone.utc).year
LAST_YEAR = dt.datetime.fromtimestamp((cdr.MAX_TIME_MS - 1) // 1000, dt.timezone.utc).year
MONTH_RULE = f"YYYY-MM from {FIRST_YEAR}-01 to {LAST_YEAR}-12"

def month_index(ms: np.ndarray) -> np.ndarray:
    """Epoch ms -> year * 12 + month - 1 of the Asia/Shanghai local date."""
    days = (np.asarray(ms, np.int64) + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)  # since 1970-01
    return months + 1970 * 12


def month_label(m: int) -> str:
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def month_not_begun(m: int, now_ms: int) -> str | None:
    """Why month ``m`` (``month_index``) has no statement at ``now_ms``
    (epoch ms): it comes after now's month (Asia/Shanghai), so nothing of
    it has accrued (breaker N13 F5: 28 statements of 2027-01 billed on
    2026-12-01, "total due 695.00"); None for the current month or an
    earlier one. The one rule for ``bill --month`` and gRPC GetStatement."""
    now = int(month_index(np.array([now_ms], np.int64))[0])
    if m <= now:
        return None
    return (f"{month_label(m)} has not begun (Asia/Shanghai; the current month is {month_label(now)}): a month "
            "not begun has no statement, nothing of it has accrued; bill it once it has begun")


def parse_month(text: str) -> int:
    """'2026-10' -> month index. Raises ValueError for anything but
    ``MONTH_RULE`` (YYYY-MM from 1970-01 to 2199-12, the edge's time range)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", text):  # ASCII: \d took "２０２６-１０" (breaker)
        raise ValueError(text)
    y, mo = int(text[:4]), int(text[5:])
    if not (1 <= mo <= 12 and FIRST_YEAR <= y <= LAST_YEAR):
        raise ValueError(text)
    return y * 12 + mo - 1


def month_bounds(m: int) -> tuple[dt.date, dt.date, int, int]:
    """(first day, last day, start ms, end ms exclusive) of month ``m``."""
    y, mo = divmod(m, 12)
    first = dt.date(y, mo + 1, 1)
    last = dt.date(y, mo + 1, calendar.monthrange(y, mo + 1)[1])
    nxt = last + dt.timedelta(days=1)
    return first, last, _midnight_ms(first), _midnight_ms(nxt)


def _midnight_ms(d: dt.date) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=LOCAL).timestamp() * 1000)


def local_date(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, LOCAL).date()


def day_after(end_ms: int) -> dt.date:
    """The first whole day after a period cut short by a change at ``end_ms``
    (epoch ms, exclusive): its date at local midnight, else the next day,
    since the period ran part of that day (breaker 12-02 F8: a package
    changed at 12:00 on 12-01 read last day 11-30 while December's minimum
    was billed under it)."""
    day = local_date(end_ms)
    return day if _midnight_ms(day) == end_ms else day + dt.timedelta(days=1)


def period_last_day(start: dt.date, first_after: dt.date) -> dt.date:
    """The last day (inclusive) of a package period from ``start`` whose
    first whole day after is ``first_after`` (its expiry's day; a change's:
    ``day_after``): the day before, never before ``start`` (a period changed
    on the day it began ran that day only; newcomer 2026-12-02 F6: 12-02 ..
    12-01). ``Statement.package_last_day``, each ``package_changes`` entry's
    and the printable statement's (``render.package_periods``)."""
    return max(start, first_after - dt.timedelta(days=1))


@dataclass(slots=True)
class UsageLine:
    """Calls of one statement grouped by ``key`` (a 400 number, or
    destination class / caller class / time band). Seconds and minor units."""

    key: tuple
    calls: int
    answered: int
    billed_seconds: int
    charge: int


@dataclass
class FeatureLine:
    """One add-on feature held in the month and its charge: ``basis`` says
    how it was computed (``month``, ``prorated``, ``year``, ``missed_call``,
    or ``year_held``: a yearly fee billed in another month, amount 0, with
    ``billed_month`` the last month it was billed in and ``next_month`` the
    next, YYYY-MM), ``quantity`` is days held (prorated), missed calls
    (missed_call, 0 when none), 0 (year_held) or 1. A held feature always
    has its line, so a month without its fee does not read as not held."""

    feature: str
    name: str
    basis: str
    quantity: int
    unit_fee: int
    amount: int
    billed_month: str = ""
    next_month: str = ""


@dataclass(frozen=True, slots=True)
class RerateRun:
    """One rerating as a statement prints it: the ``rerating`` events made
    at the same time under the same catalog ``version`` (one ``rerate``
    run). ``calls``: how many events (calls, for a ledger rerating);
    ``amount_minor`` / ``credit_minor``: their sums (minor units, signed;
    the credit part as in ``AccountEvent.credit_minor``); ``reason``: the
    operator's reason, "" when it was the default one (the version says
    it). A rerating row of an ``--events`` CSV (``version`` 0) is a run of
    its own, its note as the reason."""

    at_ms: int
    version: int
    calls: int
    amount_minor: int
    credit_minor: int
    reason: str


def rerate_runs(events: Sequence[AccountEvent]) -> list[RerateRun]:
    """``rerating`` events grouped into runs (``RerateRun``), by time."""
    from ..ledger.adjustments import default_reason

    runs: dict[tuple, list[AccountEvent]] = {}
    for i, e in enumerate(events):
        # A ledger adjustment's note is "call id: reason" (events.from_adjustments).
        reason = e.note[len(e.call_id) + 2:] if e.version else e.note
        runs.setdefault((e.at_ms, e.version, reason) if e.version else (e.at_ms, 0, reason, i), []).append(e)
    out = []
    for key, group in runs.items():
        at_ms, version, reason = key[:3]
        out.append(RerateRun(at_ms, version, len(group), sum(e.amount_minor for e in group),
                             sum(e.credit_minor for e in group),
                             "" if version and reason == default_reason(version) else reason))
    return sorted(out, key=lambda r: (r.at_ms, r.version))


FEN = 100  # minor units (1/10000 yuan) in a fen, the smallest amount a customer pays


def to_fen(minor: int) -> int:
    """Minor units (int, 1/10000 yuan) rounded to a whole fen, half up (a
    half fen away from zero), as ``rater.yuan`` shows yuan: 11302920 ->
    11302900, 49546980 -> 49547000, 150 -> 200. The one rounding point of
    a statement's amount due (README "Monthly statements", Amount payable)."""
    q = (abs(int(minor)) + FEN // 2) // FEN * FEN
    return q if minor >= 0 else -q


@dataclass
class Statement:
    """A month's statement for one account. Money: int64 minor units;
    time: local dates; seconds for durations."""

    account: str
    company: str
    month: str
    # Dates are days, both ends inclusive (README "One figure, one name"),
    # except package_end: the day the prepaid credit expires, the first day
    # after the period (kept so, as clients read it); package_last_day is
    # the period's last day.
    period_start: dt.date
    period_end: dt.date  # last day, inclusive
    package: str
    package_name: str
    package_kind: str
    package_start: dt.date  # first day, inclusive
    package_end: dt.date | None  # prepaid: the day the credit expires (exclusive)
    first_month: bool
    calls: int = 0
    answered: int = 0
    billable_seconds: int = 0
    billed_seconds: int = 0
    usage: int = 0
    credit_consumed: int = 0
    overage: int = 0
    by_number: list[UsageLine] = field(default_factory=list)
    by_class: list[UsageLine] = field(default_factory=list)
    bundle_included_seconds: int = 0
    bundle_used_seconds: int = 0
    bundle_overage_seconds: int = 0
    monthly_minimum: int = 0
    minimum_topup: int = 0
    rental: int = 0  # the month's rental: the sum of ``rentals``
    # Each package that ran in the month, once, with its rental: package,
    # name (the catalog's), from (ISO: the start of its first period running
    # in the month) and rental_minor (README "Monthly statements": rental).
    rentals: list[dict] = field(default_factory=list)
    features: list[FeatureLine] = field(default_factory=list)
    top_ups: list[AccountEvent] = field(default_factory=list)
    adjustments: list[AccountEvent] = field(default_factory=list)
    rerating: list[AccountEvent] = field(default_factory=list)
    credit_adjustments: list[AccountEvent] = field(default_factory=list)
    # Credit paid back to the customer (``accounts refund``; amounts < 0):
    # cash paid out, apart from the credit adjustments (newcomer N13 F1).
    refunds: list[AccountEvent] = field(default_factory=list)
    opening_credit: int = 0
    package_credit: int = 0
    expired_credit: int = 0
    # Package periods that started in the month after the first (renewals,
    # changes; live ledger only): at_ms, at (local date), from, to,
    # carried_minor, package_credit_minor, renewal (from == to: the same
    # package again), package_last_day (ISO, None for no end).
    package_changes: list[dict] = field(default_factory=list)
    # Payments (module doc): what earlier statements left unpaid at the
    # month's start (every kind), and the part of the credit carried in plus
    # the month's payments (payg), or of charges below zero (every kind),
    # applied to it and to the month's charges.
    earlier_unpaid: int = 0
    paid_to_earlier: int = 0
    paid_to_charges: int = 0
    # Bill payments (``payment`` events, never credit; module doc): the
    # month's, and those not yet applied carried in from earlier months and
    # out to later ones.
    # The parts of paid_to_earlier / paid_to_charges they paid are
    # payments_to_earlier / payments_to_charges.
    payments: list[AccountEvent] = field(default_factory=list)
    payments_carried_in: int = 0
    payments_to_earlier: int = 0
    payments_to_charges: int = 0
    payments_carried_out: int = 0
    # Money taken back beyond what the month carries in and receives:
    # earlier months' bills it had paid, unpaid again (part of
    # earlier_unpaid; a + term of the credit's sum; minor units, >= 0). A
    # bill payment's reversal beyond the bill payments carried in plus the
    # month's (a bounced payment, ``pay --reverse --reopen``), and a
    # postpaid month's money below zero (a debit adjustment, e.g. a bounced
    # top-up, beyond the credit carried in plus the month's payments).
    payments_reopened: int = 0
    # A month billed as postpaid whose money before its first change to
    # prepaid (epoch ms, the first item) is bounded by what that change
    # carried of it and is still there (``_Prepaid.carry_lost``): what it
    # can still pay (minor units), which the ledger's late-call take reads
    # (``sources.postpaid_money_left``); None otherwise. Not printed.
    pre_change_money_left: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    @property
    def missed(self) -> int:
        return self.calls - self.answered

    @property
    def bundle_left_seconds(self) -> int:
        return max(0, self.bundle_included_seconds - self.bundle_used_seconds)

    @property
    def features_total(self) -> int:
        return sum(f.amount for f in self.features)

    @property
    def top_ups_total(self) -> int:
        return sum(e.amount_minor for e in self.top_ups)

    @property
    def payments_total(self) -> int:
        """The month's bill payments (``accounts pay``), minor units."""
        return sum(e.amount_minor for e in self.payments)

    @property
    def adjustments_total(self) -> int:
        return sum(e.amount_minor for e in self.adjustments)

    @property
    def credit_events(self) -> list[AccountEvent]:
        """The month's events that move the credit, each with its signed
        ``amount_minor``: top-ups, credit adjustments and refunds."""
        return self.top_ups + self.credit_adjustments + self.refunds

    @property
    def rerating_total(self) -> int:
        return sum(e.amount_minor for e in self.rerating)

    @property
    def rerating_credit_total(self) -> int:
        """The part of the rerating taken from (or given back to) prepaid credit."""
        return sum(e.credit_minor for e in self.rerating)

    @property
    def rerating_runs(self) -> list[RerateRun]:
        """The rerating events as one line per rerating run (``rerate_runs``)."""
        return rerate_runs(self.rerating)

    @property
    def credit_adjustments_total(self) -> int:
        return sum(e.amount_minor for e in self.credit_adjustments)

    @property
    def refunds_total(self) -> int:
        """The month's refunds as the credit they took (minor units, <= 0)."""
        return sum(e.amount_minor for e in self.refunds)

    @property
    def closing_credit(self) -> int:
        return (self.opening_credit + self.package_credit + self.top_ups_total + self.credit_adjustments_total
                + self.refunds_total
                + self.payments_total + self.payments_carried_in - self.payments_carried_out + self.payments_reopened
                - self.credit_consumed - self.rerating_credit_total - self.expired_credit
                - self.paid_to_earlier - self.paid_to_charges)

    @property
    def charges(self) -> int:
        """The month's bill before pay-as-you-go payments (minor units)."""
        return (self.usage - self.credit_consumed + self.minimum_topup + self.rental + self.features_total
                + self.adjustments_total + self.rerating_total - self.rerating_credit_total)

    @property
    def postpaid(self) -> bool:
        """The month's package bills its customer, who pays the bill (a
        top-up is a payment): pay-as-you-go and bundle."""
        return self.package_kind in layout.POSTPAID_KINDS

    @property
    def amount_due(self) -> int:
        return self.charges - self.paid_to_charges

    @property
    def package_last_day(self) -> dt.date | None:
        """The prepaid package period's last day (inclusive), the day before
        ``package_end`` (a change's day: the day before it), never before
        ``package_start`` (a period changed on the day it began ran that day
        only; newcomer 2026-12-02 F6: 12-02 .. 12-01); None without one.
        The printable statement prints it."""
        if not self.package_end:
            return None
        return period_last_day(self.package_start, self.package_end)

    @property
    def package_sequence(self) -> list[tuple[str, dt.date | None]]:
        """The packages of the month as the statement names them: (package,
        None) for the one in force at its start (the month is billed under
        it), then (package, first day) for each other package changed to in
        the month (a renewal, or a change at the month's first instant,
        which the package in force already is, adds none)."""
        out: list[tuple[str, dt.date | None]] = [(self.package, None)]
        if not self.package_changes:
            return out
        m_lo = month_bounds(parse_month(self.month))[2]
        for c in self.package_changes:
            if c["at_ms"] > m_lo and c["to"] != out[-1][0]:
                out.append((c["to"], dt.date.fromisoformat(c["at"])))
        return out

    def package_text(self, names=None, then: str = "{before}, then {package} from {date}") -> str:
        """The month's packages in one phrase: "pre_a, then bun_r from
        2026-11-15" (``then``: the wording, ``names``: package -> label;
        default the ids), the package alone in a month without a change."""
        names = names or {}
        seq = self.package_sequence
        text = names.get(seq[0][0], seq[0][0])
        for package, day in seq[1:]:
            text = then.format(before=text, package=names.get(package, package), date=day.isoformat() if day else "")
        return text

    @property
    def package_label(self) -> str:
        """``package_text`` with the package ids, in English."""
        return self.package_text()

    @property
    def outstanding(self) -> int:
        """What the account still owes after this month, minor units, exact:
        what earlier statements left unpaid (re-opened bills included) less
        what was paid towards it, plus this month's amount due; after the
        last month billed, `accounts balance`'s unpaid (newcomer 2026-12-02
        F7: the amount due alone, this month's, read as what is owed)."""
        return self.earlier_unpaid - self.paid_to_earlier + max(0, self.amount_due)

    @property
    def amount_payable(self) -> int:
        """The amount due rounded once to a whole fen (``to_fen``, half up):
        what the customer is asked to pay, minor units (a multiple of 100)."""
        return to_fen(self.amount_due)

    @property
    def rounding(self) -> int:
        """amount_payable - amount_due, minor units (-50 < rounding <= 50).
        Not booked: the ledger keeps the exact amount, so paying the
        payable amount leaves -rounding to the next statement (earlier
        unpaid when rounded down, credit when rounded up)."""
        return self.amount_payable - self.amount_due

    @property
    def charges_below_zero(self) -> int:
        """Charges below zero (a credit), applied to earlier unpaid and the
        credit, as a positive amount (minor units; 0 in any other month).
        ``paid_to_charges`` is then its negative, the term the two sums use;
        this is the printable statement's reading of it (newcomer N10: a
        negative "payment" in the CSV and JSON)."""
        return max(0, -self.paid_to_charges)

    def as_dict(self) -> dict:
        """JSON-ready: money as ``*_minor`` ints (exact), dates ISO."""
        d = asdict(self)
        del d["pre_change_money_left"]
        d["package_last_day"] = self.package_last_day
        d["package_label"] = self.package_label
        for k in ("period_start", "period_end", "package_start", "package_end", "package_last_day"):
            d[k] = d[k].isoformat() if d[k] else None
        for k in ("missed", "bundle_left_seconds"):
            d[k] = getattr(self, k)
        for k in ("features_total", "top_ups_total", "adjustments_total", "rerating_total",
                  "rerating_credit_total", "credit_adjustments_total", "refunds_total", "closing_credit", "charges",
                  "amount_due", "amount_payable", "rounding", "charges_below_zero", "payments_total", "outstanding"):
            d[k] = getattr(self, k)
        d["rerating_calls"] = len(self.rerating)
        money = {"usage", "credit_consumed", "overage", "monthly_minimum", "minimum_topup", "rental",
                 "opening_credit", "package_credit", "expired_credit", "features_total", "top_ups_total",
                 "adjustments_total", "rerating_total", "rerating_credit_total", "credit_adjustments_total",
                 "refunds_total",
                 "closing_credit", "charges", "amount_due", "earlier_unpaid", "paid_to_earlier", "paid_to_charges",
                 "amount_payable", "rounding", "charges_below_zero", "payments_total", "payments_carried_in",
                 "payments_to_earlier", "payments_to_charges", "payments_carried_out", "payments_reopened",
                 "outstanding"}
        d = {(f"{k}_minor" if k in money else k): v for k, v in d.items()}
        for group in ("by_number", "by_class"):
            d[group] = [{"key": list(x["key"]), "calls": x["calls"], "answered": x["answered"],
                         "billed_seconds": x["billed_seconds"], "charge_minor": x["charge"]} for x in d[group]]
        d["features"] = [{**{k: v for k, v in f.items() if k not in ("unit_fee", "amount")},
                          "unit_fee_minor": f["unit_fee"], "amount_minor": f["amount"]} for f in d["features"]]
        for group in ("top_ups", "adjustments", "rerating", "credit_adjustments", "refunds", "payments"):
            d[group] = [{"at_ms": e["at_ms"], "kind": e["kind"], "amount_minor": e["amount_minor"],
                         "note": e["note"], **({"credit_minor": e["credit_minor"]} if group == "rerating" else {})}
                        for e in d[group]]
        return d


# One of ``Statement.rentals`` in the Parquet summary: its keys, as the JSON's.
RENTAL_TYPE = pa.struct([("package", pa.string()), ("name", pa.string()), ("from", pa.string()),
                         ("rental_minor", pa.int64())])

SUMMARY_SCHEMA = pa.schema([
    ("account", pa.string()), ("company", pa.string()), ("month", pa.string()),
    ("period_start", pa.string()), ("period_end", pa.string()), ("package", pa.string()),
    ("calls", pa.int64()), ("answered", pa.int64()), ("missed", pa.int64()), ("billed_seconds", pa.int64()),
    ("usage_minor", pa.int64()), ("credit_consumed_minor", pa.int64()), ("overage_minor", pa.int64()),
    ("bundle_used_seconds", pa.int64()), ("bundle_left_seconds", pa.int64()),
    ("minimum_topup_minor", pa.int64()), ("rental_minor", pa.int64()), ("features_minor", pa.int64()),
    ("top_ups_minor", pa.int64()), ("adjustments_minor", pa.int64()), ("rerating_minor", pa.int64()),
    ("opening_credit_minor", pa.int64()), ("closing_credit_minor", pa.int64()), ("amount_due_minor", pa.int64()),
    ("rerating_calls", pa.int64()), ("rerating_credit_minor", pa.int64()),
    ("earlier_unpaid_minor", pa.int64()), ("paid_to_earlier_minor", pa.int64()), ("paid_to_charges_minor", pa.int64()),
    # The rest of the credit's sum, so a row reconciles (``Statement.closing_credit``; newcomer: a
    # credit adjustment made opening - consumed != closing with nothing to say why).
    ("package_credit_minor", pa.int64()), ("credit_adjustments_minor", pa.int64()),
    ("expired_credit_minor", pa.int64()),
    # The amount due rounded to the fen (``Statement.amount_payable``) and that rounding.
    ("amount_payable_minor", pa.int64()), ("rounding_minor", pa.int64()),
    # Charges below zero as the credit it is (``paid_to_charges_minor`` is then its negative).
    ("charges_below_zero_minor", pa.int64()),
    # Bill payments (``accounts pay``; never credit): the month's, and those carried in and out.
    ("payments_minor", pa.int64()), ("payments_carried_in_minor", pa.int64()),
    ("payments_carried_out_minor", pa.int64()),
    # Credit paid back to the customer (``accounts refund``, <= 0), a term of the credit's sum.
    ("refunds_minor", pa.int64()),
    # Earlier bills a reversed (bounced) bill payment had paid, unpaid again: a term of the credit's sum.
    ("payments_reopened_minor", pa.int64()),
    # What the account still owes after the month (``Statement.outstanding``), the month's packages in
    # one phrase (``Statement.package_label``) and the parts of rental_minor (``Statement.rentals``, as
    # the JSON's: "from" the ISO first day of the package's first period running in the month).
    ("outstanding_minor", pa.int64()), ("package_label", pa.string()),
    ("rentals", pa.list_(RENTAL_TYPE)),
])


def summary_table(statements: list[Statement]) -> pa.Table:
    """One row per statement (``SUMMARY_SCHEMA``; money in minor units)."""
    s = statements
    cols = {
        "account": [x.account for x in s], "company": [x.company for x in s], "month": [x.month for x in s],
        "period_start": [x.period_start.isoformat() for x in s], "period_end": [x.period_end.isoformat() for x in s],
        "package": [x.package for x in s], "calls": [x.calls for x in s], "answered": [x.answered for x in s],
        "missed": [x.missed for x in s], "billed_seconds": [x.billed_seconds for x in s],
        "usage_minor": [x.usage for x in s], "credit_consumed_minor": [x.credit_consumed for x in s],
        "overage_minor": [x.overage for x in s], "bundle_used_seconds": [x.bundle_used_seconds for x in s],
        "bundle_left_seconds": [x.bundle_left_seconds for x in s],
        "minimum_topup_minor": [x.minimum_topup for x in s], "rental_minor": [x.rental for x in s],
        "features_minor": [x.features_total for x in s], "top_ups_minor": [x.top_ups_total for x in s],
        "adjustments_minor": [x.adjustments_total for x in s], "rerating_minor": [x.rerating_total for x in s],
        "opening_credit_minor": [x.opening_credit for x in s],
        "closing_credit_minor": [x.closing_credit for x in s], "amount_due_minor": [x.amount_due for x in s],
        "rerating_calls": [len(x.rerating) for x in s], "rerating_credit_minor": [x.rerating_credit_total for x in s],
        "earlier_unpaid_minor": [x.earlier_unpaid for x in s], "paid_to_earlier_minor": [x.paid_to_earlier for x in s],
        "paid_to_charges_minor": [x.paid_to_charges for x in s],
        "package_credit_minor": [x.package_credit for x in s],
        "credit_adjustments_minor": [x.credit_adjustments_total for x in s],
        "expired_credit_minor": [x.expired_credit for x in s],
        "amount_payable_minor": [x.amount_payable for x in s], "rounding_minor": [x.rounding for x in s],
        "charges_below_zero_minor": [x.charges_below_zero for x in s],
        "payments_minor": [x.payments_total for x in s],
        "payments_carried_in_minor": [x.payments_carried_in for x in s],
        "payments_carried_out_minor": [x.payments_carried_out for x in s],
        "refunds_minor": [x.refunds_total for x in s],
        "payments_reopened_minor": [x.payments_reopened for x in s],
        "outstanding_minor": [x.outstanding for x in s], "package_label": [x.package_label for x in s],
        "rentals": [x.rentals for x in s],
    }
    return pa.table(cols, schema=SUMMARY_SCHEMA)


def _codes(col) -> tuple[np.ndarray, list]:
    """A string column -> (int64 codes, the values they stand for; null ->
    None). Grouping on small integers is several times faster than on strings."""
    enc = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    codes = enc.indices.to_numpy(zero_copy_only=False)
    values = enc.dictionary.to_pylist()
    if enc.indices.null_count:  # nulls get their own code, one past the values
        codes = np.where(np.isnan(codes), len(values), codes) if codes.dtype.kind == "f" else codes
        values = values + [None]
    return codes.astype(np.int64), values


MEASURES = ("calls", "answered", "billable_seconds", "billed_seconds", "charge", "credit_consumed", "overage",
            "bundle_seconds_consumed")


class _Lines:
    """Usage lines of every (account, month), from ``fine`` (NumPy int64
    columns, one row per account code ``a``, month ``m``, number code ``n``,
    class code ``c``, with the ``MEASURES`` summed) summed over ``key``
    (``"n"``, ``"c"``, or None for the totals). One stable sort on an int64
    (slot, rank of the key's value) and ``np.add.reduceat`` (exact int64):
    rows come sorted by account, month and key value, so a statement's lines
    are one slice (``span``) in the order it shows them, and the
    per-account work is a slice, not a search. ``key_values`` maps key
    codes to key tuples."""

    def __init__(self, fine: dict[str, np.ndarray], lo: int, months: int, key: str | None = None,
                 key_values: list | None = None):
        slot = fine["a"] * months + (fine["m"] - lo)
        values = key_values or []
        rank = _ranks(values) if key is not None else np.zeros(0, np.int64)
        n_vals = max(len(values), 1)
        k = slot if key is None else slot * n_vals + rank[fine[key]]
        order = np.argsort(k, kind="stable")
        ks = k[order]
        first = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]]) if len(ks) else np.zeros(0, np.int64)
        self.cols = [np.add.reduceat(fine[c][order], first).tolist() if len(first) else [] for c in MEASURES]
        group = ks[first]
        if key is None:
            g_slot = group
            self.keys: list = [()] * len(first)
        else:
            g_slot, r = np.divmod(group, n_vals)
            code_of_rank = np.argsort(rank)
            self.keys = [values[j] for j in code_of_rank[r].tolist()]
        self.starts = np.searchsorted(g_slot, np.arange(g_slot[-1] + 2 if len(g_slot) else 1)).tolist()

    def usage(self) -> list[list[UsageLine]]:
        """The lines of each slot (slot -> list; a slot past the last: use
        ``[]``). The UsageLines are made in one pass and each slot's list is
        a slice of them: no per-statement loop."""
        keys, (calls, answered, _billable, billed, charge) = self.keys, self.cols[:5]
        every = list(map(UsageLine, keys, calls, answered, billed, charge))
        starts = self.starts
        return [every[a:z] for a, z in zip(starts, starts[1:])]

    def rows(self) -> list[int]:
        """slot -> its one row (the totals, ``key`` None), -1 for none."""
        starts = self.starts
        return [a if z > a else -1 for a, z in zip(starts, starts[1:])]


def _ranks(values: list) -> np.ndarray:
    """Rank of each key value in the order statements list them (None
    first, then by value). Many single strings (400 numbers) are ranked by
    Arrow's sort (UTF-8 byte order is code point order, as Python's)."""
    if len(values) > 64 and all(isinstance(v, tuple) and len(v) == 1 and (v[0] is None or isinstance(v[0], str))
                                for v in values):
        order = pc.array_sort_indices(pa.array([v[0] for v in values], pa.string()),
                                      null_placement="at_start").to_numpy()
    else:
        order = np.array(sorted(range(len(values)), key=lambda j: _sort_key(values[j])), np.int64)
    rank = np.empty(len(values), np.int64)
    rank[order] = np.arange(len(values))
    return rank


def _sort_key(value) -> tuple:
    """Sort key of a line key value (a string, or a tuple of strings; None
    sorts first instead of failing to compare)."""
    parts = value if isinstance(value, tuple) else (value,)
    return tuple((p is not None, p or "") for p in parts)


class _Feature:
    """When an account holds a feature: [from_ms, until_ms) intervals and the
    anchor date of its yearly fee for each interval."""

    def __init__(self):
        self.spans: list[list] = []  # [from_ms, until_ms, anchor date, prorate]

    def add(self, at_ms: int, anchor: dt.date, prorate: bool):
        if not self.spans or self.spans[-1][1] is not None:
            self.spans.append([at_ms, None, anchor, prorate])

    def remove(self, at_ms: int):
        if self.spans and self.spans[-1][1] is None:
            self.spans[-1][1] = at_ms
            self.spans[-1][3] = True


def _day_of(ms: int) -> int:
    return (ms + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY


def unknown_accounts(calls: pa.Table, snapshot) -> tuple[list[str], int, int]:
    """Calls (``CALLS_SCHEMA``) whose account is not in ``snapshot``'s
    catalog -> (the account ids, in first-seen order; rows; their charge in
    minor units). ``build_statements`` has no statement to put them on, so
    the caller must report them: revenue never disappears silently."""
    known = pa.array(list(snapshot.meta["accounts"]), pa.string())
    mask = pc.invert(pc.is_in(calls.column("account"), value_set=known))
    rows = int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
    if not rows:
        return [], 0, 0
    stray = calls.filter(mask)
    ids = pc.unique(stray.column("account")).to_pylist()
    return ids, rows, int(pc.sum(stray.column("charge")).as_py() or 0)


def package_starts(snapshot, events: Sequence[AccountEvent] = ()) -> dict[str, int]:
    """Account id -> the start (epoch ms) of the package its first
    statement is under: its first ``package_start`` event (the live
    ledger's periods), else the catalog's package start (local midnight,
    ``account_start_ms``). No statement shows a month before it."""
    starts = dict(zip(snapshot.meta["accounts"], snapshot.tables["account_start_ms"].tolist()))
    firsts: dict[str, int] = {}
    for e in events:
        if e.kind == "package_start" and e.at_ms < firsts.get(e.account, e.at_ms + 1):
            firsts[e.account] = e.at_ms
    starts.update(firsts)
    return starts


def billed_from(calls: pa.Table, events: Sequence[AccountEvent]) -> dict[str, int]:
    """Migrated account id -> the first instant (epoch ms) this ledger bills
    it from: its cut-over (the ``billing_from`` event), or the start of its
    first call in ``calls`` (``CALLS_SCHEMA``) or its first money event
    (``events.MONEY_KINDS``) the ledger holds if earlier, so nothing the
    ledger holds is on no statement. A money event of an events file
    (``from_file``) never moves it: ``read_events`` refuses one dated
    before it, and one let through is on the first statement at its own
    date, never the reason the old platform's months are billed again
    (breaker N13 F9). Accounts without a cut-over are not in it."""
    from .events import MONEY_KINDS

    cuts = {e.account: e.at_ms for e in events if e.kind == "billing_from"}
    if not cuts:
        return {}
    firsts = calls.select(["account", "start_ms"]).group_by("account").aggregate([("start_ms", "min")])
    for a, first in zip(firsts.column("account").to_pylist(), firsts.column("start_ms_min").to_pylist()):
        if a in cuts and first is not None:
            cuts[a] = min(cuts[a], int(first))
    for e in events:
        if e.kind in MONEY_KINDS and e.account in cuts and not e.from_file:
            cuts[e.account] = min(cuts[e.account], e.at_ms)
    return cuts


def build_statements(calls: pa.Table, snapshot, events: Sequence[AccountEvent] = (), months: list[int] | None = None,
                     accounts: list[str] | None = None, events_in_balances: bool = False,
                     events_until: int | None = None, fees=None) -> list[Statement]:
    """Statements for every (account, month): ``months`` (month indexes,
    default: every month from the first to the last that holds a call or
    an event of the accounts billed; ``events_until``, a month index (the
    current month): a call or event in a later month does not widen that
    default, so one payment or call dated years ahead (a mistyped year)
    does not bill every account for every month up to it, breaker N11 F4;
    and with ``events_in_balances`` (the live ledger) the default runs to
    it when an account billed has a package started by then, since its
    rental and monthly minimum accrue without calls, newcomer N11 F5),
    ``accounts`` (ids, default: all of
    the catalog), from ``calls`` (``CALLS_SCHEMA``, one row per call id,
    sorted by start) rated with ``snapshot``; give every call up to the
    last month asked for (earlier months carry the credit: a month's
    statement opens at the previous one's close). Months before an
    account's package start, or before a migrated account's cut-over
    (``billed_from``: a ``billing_from`` event), get no statement. ``events_in_balances``: the
    calls and events are the live ledger's, every one since the package
    start: the first month opens from the package's opening credit, not
    from a call's stored balance (which depends on commit order).
    ``fees`` (``billing.fees.MonthlyFees``): each month's rental, monthly
    minimum, feature fees and bundle allowance (included seconds) from the
    catalog version in force at its start; None: ``snapshot``'s for every
    month.
    Raises ValueError for an unknown account."""
    meta = snapshot.meta
    b = meta["billing"]
    ids = {a: i for i, a in enumerate(meta["accounts"])}
    names = b.get("account_names") or meta["accounts"]
    pkg_names = meta.get("package_names") or meta["packages"]
    wanted = list(ids) if accounts is None else list(accounts)
    for a in wanted:
        if a not in ids:
            raise ValueError(f"unknown account {a!r}")
    start_ms = calls.column("start_ms").to_numpy()
    call_months = month_index(start_ms) if len(start_ms) else np.zeros(0, np.int64)
    cuts = billed_from(calls, events)
    # A migrated account's package periods before its cut-over were billed
    # elsewhere: they neither widen the run nor start its chain.
    dated = [e for e in events if e.kind != "billing_from"
             and not (e.kind == "package_start" and e.at_ms < cuts.get(e.account, e.at_ms))]
    # A migrated account is billed from its cut-over (``billed_from``; its
    # package start when later): the run and the chain of unpaid bills start
    # there, whatever the other accounts hold (newcomer N12 F1-F3: after a
    # cut-over with no call or payment, `--account X` started in the current
    # month and dropped the unpaid rentals of the months before, and the
    # default run depended on which other accounts had an October top-up).
    # An account opened live chains from its package_start event (``dated``).
    keep = set(wanted)
    first_starts = package_starts(snapshot, events)
    billing_starts = [max(cut, first_starts.get(a, cut)) for a, cut in cuts.items() if a in keep]
    first_billed = int(month_index(np.array(billing_starts, np.int64)).min()) if billing_starts else None
    in_run_last = None  # a default run's last month holding a call (``_own_spans``)
    asked_default = months is None
    if months is None:
        # Every month with calls, account events or rerating adjustments of
        # the accounts billed: a month holding only a rerating (made after
        # the calls) or a top-up still gets its statement, so no amount
        # leaves the bill run unbilled.
        keep = set(wanted)
        in_run = call_months if events_until is None else call_months[call_months <= events_until]
        seen = [int(m) for m in (in_run.min(), in_run.max())] if len(in_run) else []
        in_run_last = seen[-1] if seen else None
        # A package change or renewal counts (new credit, a new minimum and
        # rental); the account's first package start (an import dated years
        # back) does not, or a bill run would reach back to it.
        at = np.array([e.at_ms for e in dated
                       if e.account in keep and (e.kind != "package_start" or e.from_package)], np.int64)
        at_months = month_index(at)
        if events_until is not None:
            at_months = at_months[at_months <= events_until]
        seen += [int(m) for m in (at_months.min(), at_months.max())] if len(at_months) else []
        if events_in_balances and events_until is not None:
            # The first package of an account billed (the ledger's periods,
            # else the catalog's start; one before a cut-over too: months
            # before the cut-over still get no statement).
            started = np.array([ms for a, ms in first_starts.items() if a in keep and 0 < ms != layout.NO_TIME],
                               np.int64)
            if len(started) and int(month_index(started).min()) <= events_until:
                seen.append(events_until)
            if first_billed is not None and first_billed <= events_until:
                seen.append(first_billed)
        months = list(range(min(seen), max(seen) + 1)) if seen else []
    if not months:
        return []
    # A month's opening credit is the previous month's closing credit, so
    # the statements are chained from the first month with a call or an
    # event, even when fewer months are asked for: November billed alone
    # must open where October closed, not at the package's opening credit.
    # From the live ledger the chain starts at the account's first package
    # period (its ``package_start`` event), whose month opens at 0.
    asked = None
    before = [int(call_months.min())] if len(call_months) else []
    before += [first_billed] if first_billed is not None else []
    at = np.array([e.at_ms for e in dated if e.account in keep], np.int64)
    before += [int(month_index(at).min())] if len(at) else []
    first_asked = None if asked_default else min(months)
    if before and min(before) < min(months):
        asked = {month_label(m) for m in months}
        months = list(range(min(before), max(months) + 1))
    spans = None if events_in_balances else _own_spans(dated, keep, call_months, first_asked, in_run_last)
    # Millions of small objects are built below and none forms a cycle: the
    # cyclic GC would only rescan them (it doubled the time at 10M calls).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        out = _build(calls, snapshot, events, months, wanted, events_in_balances, call_months, ids, names,
                     pkg_names, cuts, fees, spans)
        return out if asked is None else [st for st in out if st.month in asked]
    finally:
        if was_enabled:
            gc.enable()


def _own_spans(dated: Sequence[AccountEvent], keep: set[str], call_months: np.ndarray, first_asked: int | None,
               in_run_last: int | None) -> dict[str, tuple[int | None, int | None]]:
    """Rated files (not the live ledger): account -> the first and last
    month (month indexes; None: the run's) its statements chain over. The
    first: the earliest of the first month asked (``first_asked``, with
    --month; None in a default run), the first month holding a call of the
    files (``call_months``) and the first month holding one of the
    account's OWN events (``dated``). The last, in a default run: the later
    of ``in_run_last`` (the last month holding a call, up to the current
    month) and its own last event's month; with --month (``in_run_last``
    None), every month asked. So one account's events row widens only that
    account's months (newcomer N14 F6: a 0.01 top-up of one account dated
    June added June..September statements for every account, 28 -> 130
    statements and 2162.99 yuan of other accounts' rentals; with ``--month
    2026-10``, as their unpaid months before it). With no call and no event
    of its own, an account follows the run's months."""
    own: dict[str, list[int]] = {}
    for e in dated:
        if e.account in keep:
            m = int(month_index(np.array([e.at_ms]))[0])
            lo_hi = own.setdefault(e.account, [m, m])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], m), max(lo_hi[1], m)
    base_lo = [int(call_months.min())] if len(call_months) else []
    base_lo += [first_asked] if first_asked is not None else []
    base_hi = [in_run_last] if in_run_last is not None else []
    spans: dict[str, tuple[int | None, int | None]] = {}
    for a in keep:
        mine = own.get(a)
        lows = base_lo + ([mine[0]] if mine else [])
        highs = base_hi + ([mine[1]] if mine and base_hi else [])
        spans[a] = (min(lows) if lows else None, max(highs) if highs else None)
    return spans


def _build(calls, snapshot, events, months, wanted, events_in_balances, call_months, ids, names, pkg_names, cuts,
           fees, spans=None):
    meta, tables = snapshot.meta, snapshot.tables
    b = meta["billing"]
    acc_codes, acc_names = _codes(calls.column("account"))
    acc_codes_all = acc_codes
    num_codes, num_values = _codes(calls.column("number"))
    dest, dest_v = _codes(calls.column("destination_class"))
    caller, caller_v = _codes(calls.column("caller_class"))
    band, band_v = _codes(calls.column("time_band"))
    nc, nb = len(caller_v), len(band_v)
    class_codes = (dest * nc + caller) * nb + band
    class_values = [(d, c, x) for d in dest_v for c in caller_v for x in band_v]
    lo, hi = min(months), max(months)
    month_codes = call_months - lo
    measures = {"answered": pc.cast(calls.column("answered"), pa.int64()),
                **{c: calls.column(c) for c in MEASURES[2:]}}
    if len(call_months) and (call_months.min() < lo or call_months.max() > hi):
        keep = (call_months >= lo) & (call_months <= hi)
        mask = pa.array(keep)
        measures = {k: v.filter(mask) for k, v in measures.items()}
        acc_codes, num_codes, class_codes, month_codes = (
            acc_codes[keep], num_codes[keep], class_codes[keep], month_codes[keep])
    # One hash aggregation over the calls, on one int64 key (account, month,
    # number, class); totals, per-number and per-class lines are sums of its
    # far fewer rows.
    span, n_num, n_cls = hi - lo + 1, max(len(num_values), 1), max(len(class_values), 1)
    key = ((acc_codes * span + month_codes) * n_num + num_codes) * n_cls + class_codes
    g = pa.table({"k": key, **measures}).group_by("k", use_threads=True).aggregate(
        [("answered", "count")] + [(c, "sum") for c in MEASURES[1:]])
    k = g.column("k").to_numpy()
    rest, c_code = np.divmod(k, n_cls)
    rest, n_code = np.divmod(rest, n_num)
    a_code, m_off = np.divmod(rest, span)
    fine = {"a": a_code, "m": m_off + lo, "n": n_code, "c": c_code,
            "calls": g.column("answered_count").to_numpy().astype(np.int64),
            **{c: g.column(c + "_sum").to_numpy().astype(np.int64, copy=False) for c in MEASURES[1:]}}
    totals = _Lines(fine, lo, span)
    per_number = _Lines(fine, lo, span, "n", [(v,) for v in num_values])
    per_class = _Lines(fine, lo, span, "c", class_values)
    code_of = {a: j for j, a in enumerate(acc_names)}  # account -> its code in the calls
    t_calls, t_answered, t_billable, t_billed, t_usage, t_credit, t_overage, t_bundle = totals.cols
    total_row, number_lines, class_lines = totals.rows(), per_number.usage(), per_class.usage()
    n_slots = len(total_row)
    opening_at_first = _credit_before_first_call(calls, acc_codes_all, acc_names)
    consumed_before_expiry = _consumed_before_expiry(calls, snapshot, wanted, lo, hi)

    by_account: dict[str, list[AccountEvent]] = {}
    for e in sorted(events, key=lambda e: e.at_ms):
        if e.account not in ids:
            raise ValueError(f"an event for unknown account {e.account!r}")
        by_account.setdefault(e.account, []).append(e)

    # Per-account facts as Python lists once: indexing NumPy arrays one
    # scalar at a time, 100k accounts x a dozen fields, cost seconds.
    kinds = [layout.PACKAGE_KIND[k] for k in tables["package_kind"].tolist()]
    acc_package = tables["account_package"].tolist()
    acc_expiry = tables["account_expiry_ms"].tolist()
    acc_start_ms = tables["account_start_ms"].tolist()
    acc_opening = tables["account_opening_credit"].tolist()
    included = tables["package_included_seconds"].tolist()
    minimum, rental = list(b["package_monthly_minimum"]), list(b["package_rental"])
    packages = meta["packages"]
    pkg_index = {name: j for j, name in enumerate(packages)}
    payg_packages = [name for name in packages if kinds[pkg_index[name]] == "payg"]
    bundle_packages = [name for name in packages if kinds[pkg_index[name]] == "bundle"]
    postpaid_packages = payg_packages + bundle_packages
    prepaid_packages = [name for name in packages if kinds[pkg_index[name]] == "prepaid"]
    month_facts = {m: (*month_bounds(m), month_label(m)) for m in sorted(months)}
    month_fees = {m: fees.of(m) for m in month_facts} if fees is not None else {}
    # Each month's bundle allowance by package index, from the same version
    # (a term of the package like the rental: newcomer N14 F2).
    month_included = {m: [fm.included[name] for name in packages] for m, fm in month_fees.items() if fm}
    out: list[Statement] = []
    for account in wanted:
        i = ids[account]
        p = int(acc_package[i])
        kind = kinds[p]
        start_day = dt.date.fromisoformat(b["account_package_start"][i])
        expiry_ms = int(acc_expiry[i])
        package_end = local_date(expiry_ms) if kind == "prepaid" else None
        acc_events = by_account.get(account, [])
        # The live ledger's package periods (import, subscribe, renewals,
        # changes), oldest first: the months before the current period are
        # billed under the package they ran under (``_period_terms``).
        periods = [e for e in acc_events if e.kind == "package_start" and e.package in pkg_index]
        if periods:
            start_day = local_date(periods[0].at_ms)
        start_month = start_day.year * 12 + start_day.month - 1
        # The first month billed: a migrated account's cut-over month, else the package start's.
        cut_day = local_date(cuts[account]) if account in cuts else start_day
        from_month = max(start_month, cut_day.year * 12 + cut_day.month - 1)
        # Rated files: the account's own months (``_own_spans``), not every account's.
        own_lo, own_hi = spans.get(account, (None, None)) if spans is not None else (None, None)
        if own_lo is not None:
            from_month = max(from_month, own_lo)
        feats = _feature_spans(b, i, start_day, acc_events) if b["account_features"][i] or acc_events else {}
        code = code_of.get(account)
        credit = None  # chained month to month
        own = len(out)  # the account's statements start here in ``out``
        payg_from_credit: dict[int, int] = {}  # id(statement): pay-as-you-go calls paid from its credit
        unpaid = 0  # what the statements left unpaid, chained too (settled by payg payments)
        unapplied = 0  # bill payments not yet applied (``accounts pay``), chained too
        for m, (first, last, m_lo, m_hi, label) in month_facts.items():
            if m < from_month or (own_hi is not None and m > own_hi):
                continue
            changes: list[dict] = []
            included_at = month_included.get(m, included)  # the version's in force at the month's start
            if periods:
                p, in_force_start, included_m, period_credit, changes, in_force_end, rented = _period_terms(
                    periods, pkg_index, kinds, included_at, m_lo, m_hi)
                kind = kinds[p]
                # The in-force package's own end (cut short by a change in the month), not the current one's.
                # Cut short by a change during a day: it ran that day too; a
                # period's own end (its months) keeps its day (from 11-10 for
                # a month: to 12-09).
                cut = any(e.at_ms == in_force_end for e in periods)
                package_end = (None if in_force_end >= _NEVER_MS else
                               day_after(in_force_end) if cut else local_date(in_force_end))
            s = Statement(account=account, company=names[i], month=label, period_start=first,
                          period_end=last, package=packages[p], package_name=pkg_names[p],
                          package_kind=kind, package_start=local_date(in_force_start) if periods else start_day,
                          package_end=package_end if kind == "prepaid" else None,
                          first_month=m == start_month, package_changes=changes)
            slot = -1 if code is None else code * span + (m - lo)
            if 0 <= slot < n_slots:
                j = total_row[slot]
                if j >= 0:
                    (s.calls, s.answered, s.billable_seconds, s.billed_seconds, s.usage, s.credit_consumed,
                     s.overage, s.bundle_used_seconds) = (t_calls[j], t_answered[j], t_billable[j], t_billed[j],
                                                          t_usage[j], t_credit[j], t_overage[j], t_bundle[j])
                if slot < len(number_lines):
                    s.by_number = number_lines[slot]
                if slot < len(class_lines):
                    s.by_class = class_lines[slot]
            if kind == "bundle" or (periods and included_m):  # a change to a bundle in the month counts too
                s.bundle_included_seconds = included_m if periods else int(included_at[p])
                # Seconds beyond the allowance are those of the calls rated under a
                # bundle: in a month changed to (or from) a bundle, the other
                # package's calls draw on no allowance (newcomer N9 A13: the prepaid
                # half's 38,820 s read as overage of a bundle that used 600 of 1000 min).
                billed_in_bundle = (s.billed_seconds if kind == "bundle" and not changes else
                                    _charged_under(calls, account, bundle_packages, m_lo, m_hi, "billed_seconds"))
                s.bundle_overage_seconds = billed_in_bundle - s.bundle_used_seconds
            # A minimum spend is a term of the package, owed for months it is
            # in force: a prepaid period that ended by the month's first
            # instant, with no period starting in the month (a renewal), is
            # no package, so no minimum (newcomer N10-2 finding 5: 40.00
            # charged for a December after the period ended, suspended as
            # expired). The rental, for holding the number, still runs.
            lapsed = (kind == "prepaid" and (in_force_end if periods else expiry_ms) <= m_lo
                      and not any(m_lo <= e.at_ms < m_hi for e in periods))
            fm = month_fees.get(m)  # the fees of the version in force at the month's start
            s.monthly_minimum = 0 if lapsed else fm.minimum[packages[p]] if fm else int(minimum[p])
            counted = s.usage
            if kind in layout.POSTPAID_KINDS and any(
                    c["to"] in pkg_index and kinds[pkg_index[c["to"]]] == "prepaid" for c in changes):
                # A month billed as postpaid that changed to prepaid: its
                # minimum counts the calls rated under postpaid packages; the
                # prepaid package's calls are paid by its own credit. The
                # shortfall is then what it was at the change, which the
                # ledger applied from the payments then (``Accounts.
                # _apply_change``: what the statements leave unapplied is
                # carried), so the two agree (f2carry: a 10.00 prepaid call
                # after the change lowered the statement's shortfall, not
                # the ledger's: 660.00 against 650.00).
                counted = _charged_under(calls, account, postpaid_packages, m_lo, m_hi)
            s.minimum_topup = 0 if s.first_month else max(0, s.monthly_minimum - counted)
            # Rental: in full for every package that ran in the month (the
            # starting month included), once each; priced by the version in
            # force at the month's start (newcomer 2026-12-02 F2: a change to
            # a bundle got its minutes without its rental).
            s.rentals = [{"package": name, "name": pkg_names[pkg_index[name]], "from": local_date(since_ms).isoformat(),
                          "rental_minor": fm.rental[name] if fm else int(rental[pkg_index[name]])}
                         for name, since_ms in (rented if periods else [(packages[p], _midnight_ms(start_day))])]
            s.rental = sum(r["rental_minor"] for r in s.rentals)
            if feats:
                s.features = _feature_lines(fm.features if fm else b["features"], feats, m, first, last, m_lo,
                                            m_hi, calls, account, s.missed)
            if acc_events:
                # Money dated before the start (a ledger written before such
                # operations were refused) is on the first statement, at its
                # own date: never on none (breaker: credited, shown nowhere).
                since = -(2**63) if m == from_month else m_lo
                month_events = [e for e in acc_events if since <= e.at_ms < m_hi]
                s.top_ups = [e for e in month_events if e.kind == "top_up"]
                s.adjustments = [e for e in month_events if e.kind == "adjustment"]
                s.rerating = [e for e in month_events if e.kind == "rerating"]
                s.credit_adjustments = [e for e in month_events if e.kind == "credit_adjustment"]
                s.refunds = [e for e in month_events if e.kind == "refund"]
                s.payments = [e for e in month_events if e.kind == "payment"]
            # Prepaid credit, chained month to month.
            pkg_credit_at = int(acc_start_ms[i]) if kind == "prepaid" else None
            if periods:  # each prepaid period's new money, in the month it starts (carried credit is not new)
                s.package_credit = period_credit
            elif pkg_credit_at is not None and m_lo <= pkg_credit_at < m_hi:
                s.package_credit = int(acc_opening[i])
            if credit is None:
                if kind == "prepaid" and events_in_balances:
                    # The live ledger: the period opened at the package start
                    # with ``acc_opening`` (package credit of the start month)
                    # and every committed call and money event since is on a
                    # statement from the first month on, each at its own time.
                    # A call's stored balance is not used: it holds whatever
                    # was committed before it (a top-up timed during the call
                    # but committed first), so it counted that top-up twice.
                    # A cut-over month after the package start opens with
                    # the credit of the period then in force (the import's).
                    credit = 0 if s.first_month else (
                        _opening_at_first(periods, m_lo) if periods else int(acc_opening[i]))
                elif events_in_balances and periods and not s.first_month:
                    # A month billed as postpaid opens with the credit its
                    # period carried in (a change from prepaid before the
                    # cut-over; postpaid money before it is refused there):
                    # the ledger holds it and, chained from a billed month
                    # before, it would pay the month's charges (it opened on
                    # 0: pre_a -> pay on 11-15, December's 1.20 of calls due
                    # with 478.80 of credit in the ledger).
                    credit = _opening_at_first(periods, m_lo)
                elif kind == "prepaid" and account in opening_at_first and opening_at_first[account][0] >= m_lo:
                    credit = opening_at_first[account][1] - s.package_credit
                else:
                    credit = int(acc_opening[i]) if kind == "prepaid" and not s.first_month else 0
                if kind == "prepaid" and (in_force_end if periods else expiry_ms) < m_lo:
                    # The prepaid period in force ended before this month (one
                    # ending at its first instant expires on its statement) and
                    # was not renewed: its credit expired then (on that month's
                    # statement), so none opens this one (newcomer: a ledger
                    # statement showed it as a live balance for ever).
                    credit = 0
            s.opening_credit = credit
            s.payments_carried_in = unapplied
            expires, credit_before = (expiry_ms if kinds[int(acc_package[i])] == "prepaid" else None), s.package_credit
            if periods:  # the period that ran to its end in this month, if one did (a renewal after it)
                expires, credit_before = _period_expiry(periods, pkg_index, kinds, m_lo, m_hi)
            if kind == "prepaid" and expires is not None and m_lo <= expires < m_hi:
                used = (consumed_before_expiry.get(account, 0) if expires == expiry_ms
                        else _consumed_between(calls, account, m_lo, expires))
                topped = sum(e.amount_minor for e in s.credit_events if e.at_ms < expires)
                topped -= sum(e.credit_minor for e in s.rerating if e.at_ms < expires)
                s.expired_credit = max(0, s.opening_credit + credit_before + topped - used)
            if kind == "prepaid" and any(kinds[pkg_index[c["to"]]] == "payg" for c in changes if c["to"] in pkg_index):
                # A change to pay-as-you-go in a month billed as prepaid: the
                # ledger debits the pay-as-you-go calls after it from the
                # carried credit (one balance; README "Late CDRs"), so the
                # statement pays them from the credit too, as far as it goes,
                # and bills the rest (breaker: billed as due and debited, twice).
                from_credit = min(_charged_under(calls, account, payg_packages, m_lo, m_hi), max(0, s.closing_credit))
                s.credit_consumed += from_credit
                payg_from_credit[id(s)] = from_credit
            back_at = _last_change_to(changes, "prepaid", pkg_index, kinds)
            if kind == "prepaid" and back_at is not None and any(
                    kinds[pkg_index[c["to"]]] == "bundle" for c in changes
                    if c["to"] in pkg_index and c["at_ms"] < back_at):
                # A change to a bundle and back to prepaid in a month billed
                # as prepaid: the overage of the bundle time before the
                # month's last change to prepaid (a postpaid interval inside
                # the month) is paid from the carried credit the same way
                # (the ledger debited it on time and takes a late one so:
                # ``engine._debit_postpaid``; it counts towards the minimum
                # as a pay-as-you-go call does). Billed among the charges
                # with the credit kept, the customer paid it twice: the bill
                # is paid with ``accounts pay``, which credits nothing
                # (breaker5 F7: 1.00 overage, ledger 1079.00, statement
                # 1080.00 and 110.00 due). Only the bundle stretch a month
                # ends on (after its last change to prepaid) keeps its
                # overage billed: its payment is a top-up, and the change
                # back to prepaid gives it back to the carried credit
                # (``AccountOps._overage_billed_due``). Breaker7 F4: pre_b ->
                # bun_a 11-05 (1.00) -> pre_a 11-10 -> bun_a 11-15 (2.00) ->
                # pre_b 12-01 billed both (due 160.00, December 1680.00)
                # while the ledger took the 1.00 (1679.00); now the 1.00 is
                # paid from the credit: due 159.00, 1679.00 both.
                s.credit_consumed += min(_charged_under(calls, account, bundle_packages, m_lo, back_at, "overage"),
                                         max(0, s.closing_credit))
            # The money a month applies to bills is what was received while
            # the account was postpaid (``_postpaid_windows``), whatever kind
            # the month is billed as: a postpaid month's credit carried in
            # and its top-ups before a change to prepaid (later ones belong to
            # the prepaid package; a change between postpaid packages keeps
            # them here, breaker); a prepaid month's top-ups after a change
            # to payg or a bundle, the customer's payment of the bill, as far
            # as the credit holds them (breaker 12-02 F3: counted as call
            # credit while the month kept asking for the whole amount). A
            # prepaid month applies no other money, but what it leaves due is
            # earlier unpaid to a later postpaid month, settled before that
            # month's charges, as for any payment (breaker: after a change the
            # first payment paid its own month first). Charges below zero (a
            # rerating refund of arrears) pay earlier unpaid first, the rest
            # back to the credit, as for postpaid (newcomer: prepaid showed
            # -191.64 due beside its arrears).
            windows = _postpaid_windows(changes, kind, pkg_index, kinds)
            # A month billed as postpaid that changed to prepaid: what arose
            # while prepaid (arrears, re-opened bills, debits) is not paid
            # from the money dated before the change (``_after_prepaid``).
            late = (_after_prepaid(s, windows, calls, account, prepaid_packages, rented, periods, m_hi,
                                   payg_packages, bundle_packages)
                    if kind in layout.POSTPAID_KINDS and periods and len(windows) and windows[0][1] < m_hi else None)
            unpaid = _apply_payments(s, unpaid, _money_while_postpaid(s, windows, kind in layout.POSTPAID_KINDS), late)
            if late is not None and s.closing_credit < 0:
                # It ends prepaid, and prepaid credit is never below zero: the
                # money before the change paid a postpaid charge (a late call)
                # that the prepaid calls had already spent as carried credit.
                # The ledger could not take it (``engine._debit_postpaid``),
                # so it is due (money2: closed at -1.20 with nothing due).
                # It ends postpaid (back to a bundle): a late call of the
                # prepaid span took its credit part from the money the ledger
                # kept for the bundle's rental (the rest of the carry after a
                # refund of all the bound allows; the rental is on the
                # statement only), which the month's money paid the rental
                # with as well: the rental is paid only as far as that money
                # is still there, the rest due, never closing below zero
                # (breaker8 F7: pay -> pre_a -> bun_a, 530.00 refunded of the
                # 580.00, a late 1.20 call of the prepaid span: closed at
                # -1.20 with nothing due while the ledger read 48.80; now
                # 48.80 paid of the 50.00 rental, 1.20 due, closing 0.00).
                shift = min(-s.closing_credit, max(0, s.paid_to_charges - s.payments_to_charges))
                s.paid_to_charges -= shift
                unpaid += shift
            if kind == "prepaid" and s.closing_credit < 0:
                unpaid += _unpay_carried(out[own:], s, payg_from_credit)
            credit, unapplied = s.closing_credit, s.payments_carried_out
            out.append(s)
    return out


def _unpay_carried(before: list[Statement], s: Statement, payg_from_credit: dict[int, int]) -> int:
    """A month billed as prepaid, ``s``, closing below zero after a month
    billed as postpaid whose money paid its charges and carried the rest
    into the prepaid credit (the change to prepaid), with only months billed
    as prepaid in between (``before``: the account's statements before
    ``s``, oldest first): a late postpaid call of that postpaid month was
    paid from money that was refunded or spent by prepaid calls since (in a
    later month than the change's; the change month's own case is
    ``_build``'s). The ledger could not take it (never below zero,
    ``engine._take_from_carried_money``), so it is due on the postpaid
    month's bill: that month's paid charges are lowered by the shortfall
    (as far as its money paid them), and its closing credit and the
    openings of the prepaid months after it up to ``s`` rise by as much, so
    ``s`` closes at zero (breaker5 F2: pay, 100.00 paid, change to pre_b,
    698.80 refunded in December, a late 1.20 call of 11-12: December
    closed at -1.20 with nothing due). A month billed as prepaid with a
    pay-as-you-go time (``payg_from_credit``: by ``id`` of the statement,
    the pay-as-you-go calls it paid from its credit) is such a month too:
    its credit paid them, so as much of them is billed instead (breaker5 F2
    story D: pre_b -> pay -> pre_a, the credit refunded in December, a late
    1.20 pay-as-you-go call). Returns the amount shifted to due."""
    k = len(before) - 1
    while k >= 0 and before[k].package_kind == "prepaid" and not payg_from_credit.get(id(before[k])):
        k -= 1
    if k < 0:
        return 0
    month = before[k]
    if month.package_kind == "prepaid":
        shift = min(-s.closing_credit, payg_from_credit[id(month)])
        month.credit_consumed -= shift
        payg_from_credit[id(month)] -= shift
    else:
        shift = min(-s.closing_credit, max(0, month.paid_to_charges - month.payments_to_charges))
        month.paid_to_charges -= shift
    if shift <= 0:
        return 0
    for later in before[k + 1:] + [s]:
        later.opening_credit += shift
    return shift


def under_package_from(at_ms: int, change_ms: int) -> bool:
    """The one rule of a package change's instant (README "Money rules"):
    money (a top-up, credit adjustment, refund; epoch ms ``at_ms``) dated at
    or after a change's effective instant ``change_ms`` belongs to the
    package that starts then, money dated before it to the one that ends.
    The statement's cut (``_postpaid_windows``' spans, ``_after_prepaid``,
    ``_apply_payments``) and the carry at a change to prepaid
    (``Accounts._unapplied_at_change``) both read it here (breaker 12-02
    money F1: a top-up dated the change's very millisecond, or between its
    effective instant and its recording 90-200 ms later, was paid by the
    carry against the pay-as-you-go bill while the statement counted it as
    prepaid money: the ledger ended 10.00 below the statement)."""
    return at_ms >= change_ms


def money_from(events: Sequence[AccountEvent], change_ms: int) -> int:
    """The signed money of ``events`` (minor units) that belongs to the
    package starting at ``change_ms`` (``under_package_from``)."""
    return sum(e.amount_minor for e in events if under_package_from(e.at_ms, change_ms))


def _within(at_ms: int, lo: int, hi: int) -> bool:
    """``at_ms`` in the span [lo, hi) between two changes (``under_package_from``)."""
    return under_package_from(at_ms, lo) and not under_package_from(at_ms, hi)


def _opening_at(periods: list[AccountEvent], at_ms: int) -> int:
    """The opening credit (minor units: its new money plus the credit
    carried in) of the package period in force at ``at_ms`` (``periods``:
    ``package_start`` events, oldest first; one starts at or before it)."""
    p = [e for e in periods if e.at_ms <= at_ms][-1]
    return p.amount_minor + p.credit_minor


@dataclass(frozen=True, slots=True)
class _Prepaid:
    """What a month billed as postpaid holds after its change to prepaid
    (``_after_prepaid``; minor units, epoch ms): ``change_ms``, the first
    change to prepaid; ``charges``, the part of the month's charges that
    arose while prepaid (the prepaid calls' arrears, the prepaid package's
    rental, adjustments and rerating dated then); ``money_after``, the money
    received after a change back to postpaid (``_money_while_postpaid``'s
    part dated after ``change_ms``); ``from_credit`` (>= 0), the part of
    its debits (refunds, debit adjustments) the credit carried back from
    the prepaid period held: the ledger took them from that credit, which
    ``_money_while_postpaid`` never counted, so they take back no payment
    (breaker3 R1); ``from_carry`` (>= 0), the postpaid charges of a later
    window ending at a change to prepaid that the credit carried back held
    (the change carried what was left of it; breaker6 F2); ``carry_lost``
    (>= 0), the part of the money before the change that the change carried
    into the prepaid credit and that has left the account by the month's end
    (spent by prepaid calls, refunded, paying a later window's charges):
    that money pays nothing more (breaker7 F1)."""

    change_ms: int
    charges: int
    money_after: int
    from_credit: int = 0
    from_carry: int = 0
    carry_lost: int = 0


def _after_prepaid(s: Statement, windows: list[tuple[int, int]], calls: pa.Table, account: str,
                   prepaid_packages: list[str], rented: list[tuple[str, int]], periods: list[AccountEvent],
                   m_hi: int, payg_packages: Sequence[str] = (), bundle_packages: Sequence[str] = ()) -> _Prepaid:
    """``_Prepaid`` of a month billed as postpaid (``s``) whose account
    changed to prepaid in it: ``windows`` (``_postpaid_windows``, the first
    ending at the change) give the spans it was prepaid, up to ``m_hi``
    (the month's end, epoch ms). The ledger settled the month's bills so far
    from the payments at the change and carried the rest into the prepaid
    credit (``Accounts._apply_change``), which the prepaid calls then spent:
    what arises in those spans is the prepaid package's to bill.

    After a change back to postpaid (each later window, from ``lo``) the
    ledger holds the prepaid credit it carried (``periods``, the
    ``package_start`` event in force at ``lo``: its ``credit_minor``), which
    is credit, not the month's money (it pays bills from the next month
    on). A window's debits (refunds, debit adjustments) are taken from that
    credit first, as the ledger took them, up to what it carried:
    ``from_credit``; the payments received in the window stay the bills'
    (a 100.00 top-up after the return and a refund of the 698.80 the
    refund's bound allows: the 1.20 call paid, closing credit 0). Only the
    rest takes back money bills were paid with (breaker3 R1: pay -> pre_b ->
    pay, 600.00 carried back, a 600.00 refund re-opened 600.00 of bills
    and left the statement's credit at 600.00 against the ledger's 0).

    A later window that ends at a change to prepaid inside the month: that
    change carried the window's credit (the prepaid credit carried back,
    less the debits it held) into the new prepaid credit after the
    window's postpaid charges (pay-as-you-go charges, bundle overage;
    ``payg_packages``, ``bundle_packages``), on time or late: the ledger
    debited an on-time call from that credit and takes a late one from the
    money that change carried (``engine._take_from_carried_money``, the
    change ending the call's span; ``sources.postpaid_money_left``). So it
    pays them, as far as it holds (``from_carry``; breaker6 F2:
    pay -> pre_b 11-10 -> pay 11-20 -> pre_a 11-25, a late 12.00 call of
    11-22 was paid only from the first change's 0.80 and 11.20 billed,
    while the ledger took the 12.00 from the 600.80 carried back).

    The money before the change pays the month's charges (a late call of
    the first window, a rise by rerating, a later window's pay-as-you-go
    calls) only as far as what the change carried of it is still there
    (``carry_lost``; README "Money rules": money carried can only pay what
    is still there): the carry goes into the prepaid credit, which the
    prepaid calls spend first, so at each return to postpaid it is at most
    the credit carried back; in each later window the debits it held took
    it (a refund), and the postpaid charges a window's carry paid at a
    change to prepaid (``from_carry``). The ledger takes such a charge from
    the credit as it stands (``sources.postpaid_money_left`` reads the
    same bound): the rest is due (breaker7 F1: pay -> pre_b 11-10 -> pay
    11-20 carrying 698.80, 698.00 refunded 11-22, a late 12.00 call of
    11-05: ledger -11.20; November paid it from the whole 98.80 carried and
    closed at -11.20 with nothing due, now 0.80 paid and 11.20 due, closing
    0.00)."""
    spans = [(hi, nxt) for (_, hi), (nxt, _) in zip(windows, windows[1:])]
    if windows[-1][1] < m_hi:
        spans.append((windows[-1][1], m_hi))

    def inside(at_ms: int) -> bool:
        return any(_within(at_ms, lo, hi) for lo, hi in spans)

    arrears = sum(_charged_under(calls, account, prepaid_packages, lo, hi)
                  - _charged_under(calls, account, prepaid_packages, lo, hi, "credit_consumed") for lo, hi in spans)
    rental = sum(r["rental_minor"] for r, (_, since_ms) in zip(s.rentals, rented) if inside(since_ms))
    debits = (sum(e.amount_minor for e in s.adjustments if inside(e.at_ms))
              + sum(e.amount_minor - e.credit_minor for e in s.rerating if inside(e.at_ms)))
    change_ms = spans[0][0]
    # What the change carried of the money before it (without the money dated at or after it).
    first = [e for e in periods if e.at_ms == change_ms]
    kept = left = max(0, first[0].credit_minor - first[0].carried_after_minor) if first else 0
    money_after = from_credit = from_carry = 0
    for lo, hi in windows:
        if lo < change_ms:
            continue
        money = [e.amount_minor for e in s.credit_events if _within(e.at_ms, lo, hi)]
        carried = max([e.credit_minor for e in periods if e.at_ms <= lo][-1:] or [0])
        money_after += sum(money)
        held = min(-sum(a for a in money if a < 0), max(0, carried))
        from_credit += held
        carry = 0
        if hi < m_hi:  # ends at a change to prepaid in the month: its carry paid the window's postpaid charges
            owed = (_charged_under(calls, account, list(payg_packages), lo, hi)
                    + _charged_under(calls, account, list(bundle_packages), lo, hi, "overage"))
            carry = min(owed, max(0, carried - held))
            from_carry += carry
        left = min(left, max(0, carried - held - carry))
    return _Prepaid(change_ms, arrears + rental + debits, money_after, from_credit, from_carry, kept - left)


def _opening_at_first(periods: list[AccountEvent], m_lo: int) -> int:
    """The prepaid credit (minor units) an account's first billed month
    opens with, at its first instant ``m_lo`` (``periods``: ``package_start``
    events, oldest first; one starts at or before ``m_lo``): the credit held
    just before it. A period starting at that very instant (a change or a
    renewal effective 00:00 on the 1st) brings its fee as the month's
    package credit (``_period_terms``), so the month opens with what it
    carried in (its ``credit_minor``; the first of several starting then),
    not its opening credit (fee + carried): breaker2 B5, pre_a (480.00) ->
    pre_b (600.00) at 12-01 00:00 opened on 1080.00 and added the 600.00
    again, closing 1679.00 against the ledger's 1079.00. Otherwise the
    opening credit of the period in force (``_opening_at``): nothing was
    billed between its start and the month (the first billed month)."""
    at_start = [e for e in periods if e.at_ms == m_lo]
    # Without the money dated at or after the start that the period carried
    # (a change applied late by the sweep): the month shows it as its own.
    return at_start[0].credit_minor - at_start[0].carried_after_minor if at_start else _opening_at(periods, m_lo)


def _apply_payments(s: Statement, unpaid: int, money: int, prepaid: _Prepaid | None = None) -> int:
    """Apply the month's ``money`` (minor units, ``_money_while_postpaid``:
    what was received while the account was postpaid; 0 for a prepaid month
    without a change to payg or a bundle, whose top-ups are credit for
    calls: it applies only charges below zero) to what earlier
    statements left unpaid (``unpaid``, minor units), then to the month's
    charges, never below zero; sets ``s``'s ``earlier_unpaid``,
    ``paid_to_earlier`` and ``paid_to_charges`` and returns what is left
    unpaid after the month (earlier and this month's amount due).

    A month whose charges are negative (a credit note, an adjustment or a
    rerating refund larger than its calls and fees) owes the customer that
    money: it is applied as a payment, to earlier unpaid first, and the rest
    carried as credit (``paid_to_charges`` is then the negative charges, so
    the amount due is 0); it was shown as a negative amount due and lost at
    the next month (breaker: a 500.00 credit note on 49.05 of calls).

    Bill payments (``s.payments_carried_in`` plus ``s.payments``, every
    kind; never credit) are applied after that money, the same way
    (``s.payments_to_earlier`` / ``payments_to_charges``: their part of
    ``paid_to_earlier`` / ``paid_to_charges``); what is left of them is
    ``s.payments_carried_out`` (to later months' bills).

    Money taken back after bills applied it (module doc) re-opens them:
    the month's money below zero (postpaid: a debit adjustment beyond the
    credit carried in plus the month's payments) and bill payments below
    zero (a bounced payment's reversal) are ``s.payments_reopened``,
    added to ``unpaid`` (so ``earlier_unpaid``) and to the money (so the
    closing credit and ``payments_carried_out`` stay >= 0).

    A month billed as postpaid that changed to prepaid (``prepaid``,
    ``_after_prepaid``): the money dated before the change pays only what
    was unpaid and charged before it (the ledger applied it so at the change
    and carried the rest into the prepaid credit, which the prepaid calls
    spent; breaker2 B3, B4); what arose while prepaid (the prepaid calls'
    arrears, bills re-opened by a bounced payment's reversal, debits) is
    paid by money received after a change back to postpaid and by bill
    payments, else due."""
    owed_to_customer = max(0, -s.charges)
    bill_money = s.payments_carried_in + s.payments_total
    # A reversal beyond the bill payments there are (a payment that bounced
    # after bills applied it): the bills it had paid are unpaid again.
    bounced = max(0, -bill_money)
    if prepaid is not None:
        # Re-opened by a reversal dated after the change: not the pre-change money's to pay.
        bounced_before = max(0, -(s.payments_carried_in + sum(e.amount_minor for e in s.payments
                                                                  if not under_package_from(e.at_ms,
                                                                                            prepaid.change_ms))))
        room = unpaid + bounced_before + max(0, s.charges - prepaid.charges)
        # Debits after a return to postpaid that the carried prepaid credit held are not money taken back.
        # The money before the change pays no more than what its carry still holds (``_Prepaid.carry_lost``).
        before = money - prepaid.money_after
        before -= min(prepaid.carry_lost, max(0, before))
        if prepaid.carry_lost:
            s.pre_change_money_left = (prepaid.change_ms, max(0, before - max(0, room)))
        money = min(before, room) + prepaid.money_after + prepaid.from_credit + prepaid.from_carry
    # A postpaid month's money below zero (newcomer N14 F1: a debit
    # adjustment, bounded by the ledger's balance, which still holds what
    # bills applied) took back money earlier bills were paid with: they are
    # unpaid again, as a bounced bill payment's (its top-ups are its
    # payments), so the closing credit never goes below zero.
    taken_back = max(0, -money)
    money += taken_back + owed_to_customer
    bill_money += bounced
    s.payments_reopened = taken_back + bounced
    unpaid += s.payments_reopened
    s.earlier_unpaid = unpaid
    from_money = min(unpaid, money)
    from_bill_money = min(unpaid - from_money, bill_money)
    s.paid_to_earlier = from_money + from_bill_money
    if owed_to_customer:
        s.paid_to_charges = s.charges
        to_charges = 0
    else:
        s.paid_to_charges = min(max(0, s.charges), money - from_money + bill_money - from_bill_money)
        to_charges = max(0, s.paid_to_charges - (money - from_money))  # the part bill payments paid
    s.payments_to_earlier, s.payments_to_charges = from_bill_money, to_charges
    s.payments_carried_out = bill_money - from_bill_money - to_charges
    return unpaid - s.paid_to_earlier + max(0, s.amount_due)


def _postpaid_windows(changes: list[dict], kind: str, pkg_index: dict[str, int],
                      kinds: list[str]) -> list[tuple[int, int]]:
    """The spans [from, to) (epoch ms) of a month in which its account was
    postpaid (pay-as-you-go or bundle, ``layout.POSTPAID_KINDS``): from the
    month's start when ``kind`` (the package in force then, which the month
    is billed under) is postpaid, from each change to a postpaid package
    (``changes``: ``_period_terms``' changes, oldest first) to the next
    change to a prepaid one, or on. The first span of a month begun
    postpaid reaches back without bound (the first month billed holds money
    dated before it, ``build_statements``); the last runs on without bound."""
    def postpaid(package: str) -> bool:
        return package in pkg_index and kinds[pkg_index[package]] in layout.POSTPAID_KINDS

    windows: list[tuple[int, int]] = []
    since = -(2**63) if kind in layout.POSTPAID_KINDS else None
    for c in changes:
        if postpaid(c["to"]) and since is None:
            since = c["at_ms"]
        elif not postpaid(c["to"]) and since is not None:
            windows.append((since, c["at_ms"]))
            since = None
    if since is not None:
        windows.append((since, 2**63 - 1))
    return windows


def _money_while_postpaid(s: Statement, windows: list[tuple[int, int]], postpaid_month: bool) -> int:
    """The money a month applies to bills (``_apply_payments``; minor
    units): what its account received while postpaid (``windows``,
    ``_postpaid_windows``), where a top-up is a payment of the bill (README
    "Money rules", Top-up), whatever kind the month is billed as.

    A postpaid month (``postpaid_month``): the credit carried in (payments
    not yet applied, or credit carried from a package change) plus the
    top-ups, credit adjustments and refunds inside ``windows`` (those
    after a change to prepaid are the prepaid package's credit).

    A month billed as prepaid (the package at its start) and changed to payg
    or a bundle: its top-ups and credit adjustments inside ``windows`` (the
    customer's payment, less a debit taking it back, e.g. a bounced top-up;
    never below 0), at most the credit the month would close with without
    them applied (never below 0): its opening credit is prepaid credit
    carried into the postpaid package, applied from the next month on as
    any postpaid credit carried in, and money that left the credit (a
    refund, pay-as-you-go calls the ledger debited from it) pays no bill.
    0 without ``windows``: a prepaid month's top-ups are credit for calls."""
    def inside(e: AccountEvent) -> bool:
        return any(_within(e.at_ms, lo, hi) for lo, hi in windows)

    if postpaid_month:
        return s.opening_credit + sum(e.amount_minor for e in s.credit_events if inside(e))
    if not windows:
        return 0
    received = sum(e.amount_minor for e in s.top_ups + s.credit_adjustments if inside(e))
    # The closing credit before anything is applied (bill payments, ``accounts pay``, are never credit).
    credit = s.closing_credit - s.payments_total - s.payments_carried_in
    return min(max(0, received), max(0, credit))


def _period_terms(periods: list[AccountEvent], pkg_index: dict[str, int], kinds: list[str], included: list,
                  m_lo: int, m_hi: int) -> tuple[int, int, int, int, list[dict], int, list[tuple[str, int]]]:
    """A month [m_lo, m_hi) of an account with package periods (``periods``:
    ``package_start`` events, oldest first) -> (the package index in force
    at the month's start, which the month is billed under: its minimum,
    rental and kind (the first period's when it starts in the month); that
    period's start ms; the bundle seconds included in the month (``included``:
    seconds by package index, the version's in force at the month's start): the
    allowance of every bundle period that ran in it, since a new bundle
    starts fresh; the prepaid package credit of the periods starting in the
    month (new money only: the carried credit is the old one, already on the
    statements); the month's package changes, JSON-ready; the end ms of the
    period in force at the month's start: its ``until_ms``, or the start
    of the next period when that comes first, ``_NEVER_MS`` for none; the
    packages that ran in the month, each once with the start ms of its first
    period running in it, oldest first: each owes the month's rental once,
    a renewal or a change back to one already there adds none)."""
    # In force at the month's start: the last period started at or before
    # its first instant (a change effective at 00:00 on the 1st bills the
    # whole month under the new package). A period starting at that instant
    # is still the month's new money and change, so it is in ``starting`` too.
    at_start = [e for e in periods if e.at_ms <= m_lo]
    starting = [e for e in periods if m_lo <= e.at_ms < m_hi]
    in_force = at_start[-1] if at_start else starting[0]
    # The period in force at the start is listed before ``starting`` only
    # when it began before the month's first instant; one beginning in the
    # month (a first subscription mid-month) is already in ``starting``
    # (newcomer 2026-12-02 F1: a first month's bundle counted twice).
    running = ([in_force] if in_force.at_ms < m_lo else []) + starting
    p = pkg_index[in_force.package]
    credit = sum(e.amount_minor for e in starting if kinds[pkg_index[e.package]] == "prepaid")
    # Each change's period to its last day (the day before its expiry or the next period's start;
    # None: open-ended), and a renewal (the same package again) named so (newcomer N11 F3).
    # A period the next one cut short during a day ran part of that day, which is then its last
    # (``day_after``, as the in-force period's ``package_end``; faces 12-02: 12-05 to a change at
    # 12-10 14:00 read 12-09); its own expiry ends it the day before.
    ends = {id(e): min([e.until_ms or _NEVER_MS] + [x.at_ms for x in periods[k + 1:k + 2]])
            for k, e in enumerate(periods)}

    def last_day(e) -> str | None:
        end = ends[id(e)]
        if end >= _NEVER_MS:
            return None
        if end <= e.at_ms:  # replaced at the instant it began: it ran no day
            return (local_date(end) - dt.timedelta(days=1)).isoformat()
        first_after = local_date(end) if end == (e.until_ms or _NEVER_MS) else day_after(end)
        return period_last_day(local_date(e.at_ms), first_after).isoformat()

    changes = [{"at_ms": e.at_ms, "at": local_date(e.at_ms).isoformat(), "from": e.from_package, "to": e.package,
                "carried_minor": e.credit_minor, "package_credit_minor": e.amount_minor,
                "renewal": e.from_package == e.package, "package_last_day": last_day(e)}
               for e in starting if e.from_package]
    later = [e.at_ms for e in periods if e.at_ms > in_force.at_ms]
    end = min([in_force.until_ms or _NEVER_MS] + later[:1])
    # A period replaced at the instant it began ran in no part of the month.
    ran = [e for k, e in enumerate(running) if k + 1 == len(running) or running[k + 1].at_ms > e.at_ms]
    # Every bundle period that ran starts a fresh allowance (the ledger's
    # rule), and the month counts each; each allowance is sold by its
    # rental, so a bundle's rental is billed per period, a change back to it
    # included (breaker 12-02 F3: bundle -> payg -> bundle gave 2000 minutes
    # for one 99.00). Another package's rental is billed once however often
    # it ran (a renewal, a change back).
    bundle = sum(int(included[pkg_index[e.package]]) for e in ran if kinds[pkg_index[e.package]] == "bundle")
    rented: list[tuple[str, int]] = []
    for e in ran:
        if kinds[pkg_index[e.package]] == "bundle" or all(name != e.package for name, _ in rented):
            rented.append((e.package, e.at_ms))
    return p, in_force.at_ms, bundle, credit, changes, end, rented


def _period_expiry(periods: list[AccountEvent], pkg_index: dict[str, int], kinds: list[str], m_lo: int,
                   m_hi: int) -> tuple[int | None, int]:
    """(the end ms of the prepaid period that ran to its end in [m_lo, m_hi),
    not cut short by a renewal or change before it, or None; the package
    credit of the periods that started in the month before that end)."""
    for k, e in enumerate(periods):
        nxt = periods[k + 1].at_ms if k + 1 < len(periods) else None
        if (kinds[pkg_index[e.package]] == "prepaid" and m_lo <= e.until_ms < m_hi
                and (nxt is None or nxt >= e.until_ms)):
            credit = sum(x.amount_minor for x in periods
                         if m_lo <= x.at_ms < e.until_ms and kinds[pkg_index[x.package]] == "prepaid")
            return e.until_ms, credit
    return None, 0


def _last_change_to(changes: list[dict], kind: str, pkg_index: dict[str, int], kinds: list[str]) -> int | None:
    """The instant (epoch ms) of the last of a month's ``changes`` (its
    ``package_changes``, in order) to a package of ``kind``; None when none
    is. A month billed as prepaid pays from its credit the bundle overage of
    calls before its last change to prepaid (README "Money rules": a
    postpaid interval inside a month billed as prepaid)."""
    ats = [int(c["at_ms"]) for c in changes if c["to"] in pkg_index and kinds[pkg_index[c["to"]]] == kind]
    return ats[-1] if ats else None


def _charged_under(calls: pa.Table, account: str, packages: list[str], lo_ms: int, hi_ms: int,
                   column: str = "charge") -> int:
    """The sum of ``column`` (default the charges, minor units; or
    ``billed_seconds``) of ``account``'s calls rated under one of
    ``packages``, starting in [lo_ms, hi_ms)."""
    st = calls.column("start_ms")
    mask = pc.and_(pc.and_(pc.equal(calls.column("account"), account),
                           pc.is_in(calls.column("package"), pa.array(packages, pa.string()))),
                   pc.and_(pc.greater_equal(st, lo_ms), pc.less(st, hi_ms)))
    return int(pc.sum(calls.filter(mask).column(column)).as_py() or 0)


def _consumed_between(calls: pa.Table, account: str, lo_ms: int, hi_ms: int) -> int:
    """Prepaid credit consumed by ``account``'s calls starting in [lo_ms, hi_ms)."""
    st = calls.column("start_ms")
    mask = pc.and_(pc.equal(calls.column("account"), account),
                   pc.and_(pc.greater_equal(st, lo_ms), pc.less(st, hi_ms)))
    return int(pc.sum(calls.filter(mask).column("credit_consumed")).as_py() or 0)


def _consumed_before_expiry(calls: pa.Table, snapshot, accounts: list[str], lo: int, hi: int) -> dict[str, int]:
    """account -> credit consumed in its expiry month before the expiry, for
    the prepaid accounts whose credit expires in months [lo, hi]; one
    column-wise pass over the calls, however many accounts expire."""
    tables, ids = snapshot.tables, {a: i for i, a in enumerate(snapshot.meta["accounts"])}
    prepaid = layout.PACKAGE_KIND.index("prepaid")
    span_lo, span_hi = month_bounds(lo)[2], month_bounds(hi)[3]
    expiring = {}
    for a in accounts:
        i = ids[a]
        exp = int(tables["account_expiry_ms"][i])
        if tables["package_kind"][tables["account_package"][i]] == prepaid and span_lo <= exp < span_hi:
            expiring[a] = exp
    if not expiring or calls.num_rows == 0:
        return {}
    enc = pc.dictionary_encode(calls.column("account").combine_chunks())
    names = enc.dictionary.to_pylist()
    expiry = np.array([expiring.get(n, np.iinfo(np.int64).min) for n in names], np.int64)
    month_start = np.array([month_bounds(int(month_index(np.array([e]))[0]))[2] if n in expiring else 0
                            for n, e in zip(names, expiry)], np.int64)
    codes = enc.indices.to_numpy(zero_copy_only=False)
    start = calls.column("start_ms").to_numpy()
    mask = (start < expiry[codes]) & (start >= month_start[codes])
    if not mask.any():
        return {}
    g = calls.filter(pa.array(mask)).group_by("account").aggregate([("credit_consumed", "sum")])
    return dict(zip(g.column("account").to_pylist(), g.column("credit_consumed_sum").to_pylist()))


def _credit_before_first_call(calls: pa.Table, codes: np.ndarray, names: list) -> dict[str, tuple[int, int]]:
    """account -> (start ms, prepaid credit just before) of its first rated
    call (``calls`` sorted by start; ``codes``: its account codes, ``names``
    the accounts they stand for)."""
    if calls.num_rows == 0:
        return {}
    first = np.full(len(names), -1, np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write per code is its first row
    first = first[first >= 0]
    sub = calls.take(pa.array(first)).select(["account", "start_ms", "balance_after", "credit_consumed"])
    return {a: (s, bal + used) for a, s, bal, used in zip(
        *(sub.column(c).to_pylist() for c in ("account", "start_ms", "balance_after", "credit_consumed")))}


def _feature_spans(b: dict, i: int, start_day: dt.date, events: list[AccountEvent]) -> dict[str, _Feature]:
    feats: dict[str, _Feature] = {}
    start_ms = _midnight_ms(start_day)
    for f in b["account_features"][i]:
        feats.setdefault(f, _Feature()).add(start_ms, start_day, prorate=False)
    for e in events:
        if e.kind == "feature_added":
            if e.feature is None or e.feature not in b["features"]:
                raise ValueError(f"an event adds unknown feature {e.feature!r} to {e.account!r}")
            feats.setdefault(e.feature, _Feature()).add(e.at_ms, local_date(e.at_ms), prorate=True)
        elif e.kind == "feature_removed" and e.feature in feats:
            feats[e.feature].remove(e.at_ms)
    return feats


def _feature_lines(specs: dict, feats: dict[str, _Feature], m: int, first: dt.date, last: dt.date, m_lo: int,
                   m_hi: int, calls: pa.Table, account: str, missed: int) -> list[FeatureLine]:
    lines = []
    days_in_month = last.day
    d_lo, d_hi = _day_of(m_lo), _day_of(m_hi)
    for f, held in sorted(feats.items()):
        spec = specs[f]
        fee, per, name = int(spec["fee"]), spec["per"], spec.get("name", f)
        for lo_ms, hi_ms, anchor, prorate in held.spans:
            hi = m_hi if hi_ms is None else hi_ms
            if hi <= m_lo or lo_ms >= m_hi:
                continue
            if per == "month":
                if not prorate:
                    lines.append(FeatureLine(f, name, "month", 1, fee, fee))
                    continue
                days = min(d_hi, _day_of(hi) if hi_ms is not None else d_hi) - max(d_lo, _day_of(lo_ms))
                if days >= days_in_month:
                    lines.append(FeatureLine(f, name, "month", 1, fee, fee))
                elif days > 0:
                    # The one rounding point of proration: down, to the minor unit.
                    lines.append(FeatureLine(f, name, "prorated", days, fee, fee * days // days_in_month))
            elif per == "year":
                months_since = (first.year * 12 + first.month) - (anchor.year * 12 + anchor.month)
                if months_since % 12 == 0:
                    lines.append(FeatureLine(f, name, "year", 1, fee, fee))
                else:  # held, its fee billed in the anniversary month (newcomer: 'none' read as not held)
                    billed = m - months_since % 12
                    lines.append(FeatureLine(f, name, "year_held", 0, fee, 0, month_label(billed),
                                             month_label(billed + 12)))
            elif per == "missed_call":
                if lo_ms <= m_lo and hi >= m_hi:
                    n = missed
                else:  # held part of the month: count the missed calls in that part
                    a, z = max(lo_ms, m_lo), min(hi, m_hi)
                    mine = calls.filter(pc.equal(calls.column("account"), account))
                    st = mine.column("start_ms").to_numpy()
                    ans = mine.column("answered").to_numpy(zero_copy_only=False)
                    n = int(((st >= a) & (st < z) & ~ans).sum())
                lines.append(FeatureLine(f, name, "missed_call", n, fee, fee * n))
    return lines
