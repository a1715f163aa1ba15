"""Charge explanation: why a rated call cost what it did, in plain words.

``explain(snapshot, record)`` re-walks one rated record (a row of a rated
file, or a call committed to the ledger) over the snapshot's tables: the
account and package, the billing start and its fallback, the billable
seconds and their rule, the day kind and band(s), the rate rule that
matched, each run of increments with its tier and exact price, the exact
total before the one rounding, the rounding, the connect fee, and what the
account's credit or bundle took. It then checks its own totals against the
record's: a call rated under another catalog version says so rather than
explaining numbers it did not produce.

This is what a clerk shows an enterprise that disputes a charge, so
``Explanation.text(lang)`` reads in English (``en``) or Chinese (``zh``).
Money in an explanation is in minor units (1/10000 yuan) and printed as
yuan with 4 decimals (exact) or 2 (totals); exact fractions stay fractions.

The walk restates rules 3-10 of README "Rating rules, precisely" over the
compiled tables (the runtime never imports the reference); tests check it
against the kernel on random calls.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import MINOR_UNITS_PER_YUAN, cdr, layout
from .errors import InvalidInput
from .money import exact_yuan
from .numbers import key as number_key_of

SHANGHAI = layout.LOCAL_TZ


@dataclass
class Run:
    """Consecutive increments alike: ``count`` increments of ``seconds`` each,
    from elapsed ``start`` s, under ``rate`` tier ``tier`` (1-based) in
    ``band``, each costing ``price_minor * seconds / unit`` minor units."""

    start: int
    band: str | None
    rate: str
    tier: int
    count: int
    seconds: int
    price_minor: int
    unit: int
    cost: Fraction  # exact, minor units, the whole run


# ``Explanation.as_dict``'s names for its money fields (int or exact
# fraction, 1/10000 yuan): each says its unit, as the rated output's do.
_JSON_MINOR_NAMES = {**cdr.RATED_MINOR_NAMES, "exact_total": "exact_total_minor", "rounded": "rounded_minor",
                     "connect_fee": "connect_fee_minor", "rate_charge": "rate_charge_minor",
                     "overage_charge": "overage_charge_minor"}


@dataclass
class Explanation:
    """One rated call, explained. Times: epoch ms; money: minor units."""

    call_id: str
    number: str | None
    status: str
    account: str | None = None
    package: str | None = None
    package_name: str | None = None
    package_kind: str | None = None
    destination_class: str | None = None
    caller_class: str | None = None
    billing_start_mode: str | None = None
    billing_start_used: str | None = None  # the timestamp billing started from (ring, ivr_answer, agent_answer)
    bill_from_ms: int | None = None
    end_ms: int | None = None
    billable_rule: str | None = None
    billable_ms: int = 0
    billable_seconds: int = 0
    day_kind: str | None = None
    band_rule: str | None = None
    bands: list[str] = field(default_factory=list)  # in the order the call met them
    rule_index: int | None = None  # the package's rate rule that matched (0-based)
    rule: dict | None = None
    rate: str | None = None
    free_seconds: int = 0
    min_billable_seconds: int = 0
    runs: list[Run] = field(default_factory=list)
    billed_seconds: int = 0
    units: int = 0
    exact_total: Fraction = Fraction(0)  # minor units, before rounding
    rounding: str | None = None
    rounded: int = 0
    connect_fee: int = 0
    rate_charge: int = 0  # what the call rate charges
    overage_seconds: int = 0  # bundle: seconds beyond the bundle
    overage_rate: str | None = None
    overage_charge: int = 0
    charge: int = 0  # the record's charge
    credit_consumed: int = 0
    bundle_seconds_consumed: int = 0
    overage: int = 0
    balance_after: int = 0
    consistent: bool = True  # our walk gives the record's billed seconds, units and charge
    note: str | None = None
    # The record holds its answer and end times (a lean rated file does not:
    # billable seconds and band as recorded). Apart from ``note``, which a
    # disagreement with the catalog replaces (breaker N11 F6).
    timed: bool = True
    # The credit reservation settled when the call was committed (ledger only):
    # reservation_checked: the ledger was asked; reservation_held: it had one.
    reservation_checked: bool = False
    reservation_held: bool = False
    reserved_minor: int = 0  # money held, 1/10000 yuan (money holds)
    reserved_seconds: int = 0  # bundle seconds held (bundle holds)
    granted_seconds: int = 0  # the grant the call was given, from billing start (0: not recorded)
    held_seconds: int | None = None  # after the call's ``ended``: the seconds the shrunk hold covered
    authorized_ms: int | None = None
    settled_minor: int = 0  # what replaced a money hold: credit consumed / charge / overage
    settled_seconds: int = 0  # what replaced a bundle-seconds hold: bundle seconds consumed
    # Reratings of the committed call (ledger only), oldest first: dicts with
    # version, old_charge_minor, new_charge_minor, delta_minor (1/10000 yuan),
    # rerated_at_ms (epoch ms) and reason (``ledger.adjustments.Adjustment``).
    reratings: list[dict] = field(default_factory=list)
    # The catalog's labels of its names by language (its ``labels``): what
    # ``text`` prints for the package, bands and classes, as statements do.
    labels: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        """JSON-ready: fractions as ``"num/den"`` strings (the catalog's names
        as written). Every money field is named with its unit, 1/10000 yuan
        (``_JSON_MINOR_NAMES``: the record's ``charge``... under the rated
        output's names, ``cdr.RATED_MINOR_NAMES``; the walk's ``rate_charge``...
        as ``rate_charge_minor``...; a run's ``cost`` as ``cost_minor``), and
        the record's mixed-unit ``balance_after`` as the rated output gives
        it: ``credit_after_minor`` (prepaid) and ``bundle_left_seconds``
        (bundle), None where the package has no such balance."""
        d = {_JSON_MINOR_NAMES.get(k, k): v for k, v in asdict(self).items()}
        del d["labels"]
        balance = d.pop("balance_after")
        d["credit_after_minor"] = balance if self.package_kind == "prepaid" else None
        d["bundle_left_seconds"] = balance if self.package_kind == "bundle" else None
        # An integer where the exact figure is whole, as every other
        # ``*_minor`` field (newcomer8 F14: "14580/1" broke a script summing
        # them); a fraction of a minor unit: null, and the exact value in
        # ``*_fraction`` ("numerator/denominator", 1/10000 yuan), only then.
        d.update(_exact_minor("exact_total", self.exact_total))
        for r in d["runs"]:
            r.update(_exact_minor("cost", r.pop("cost")))
        return d

    def text(self, lang: str = "en") -> str:
        """The explanation in plain words, ``en`` or ``zh``."""
        if lang not in WORDS:
            raise InvalidInput("lang", f"{lang!r}: use en or zh")
        return "\n".join(_lines(self, WORDS[lang], self.labels.get(lang, {})))


def _exact_minor(name: str, value: Fraction) -> dict:
    """``{name}_minor``: ``value`` (1/10000 yuan) as an int when whole, else
    None beside ``{name}_fraction``, "numerator/denominator" (``as_dict``)."""
    value = Fraction(value)
    if value.denominator == 1:
        return {f"{name}_minor": int(value)}
    return {f"{name}_minor": None, f"{name}_fraction": f"{value.numerator}/{value.denominator}"}


def yuan4(minor) -> str:
    """Exact yuan with 4 decimals (a fraction of a minor unit as a fraction)."""
    if isinstance(minor, Fraction) and minor.denominator != 1:
        whole = Decimal(minor.numerator) / Decimal(minor.denominator) / MINOR_UNITS_PER_YUAN
        return f"{whole:.6f}… ({minor.numerator}/{minor.denominator} minor units)"
    return str((Decimal(int(minor)) / MINOR_UNITS_PER_YUAN).quantize(Decimal("0.0001")))


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, SHANGHAI).isoformat(timespec="milliseconds")


class _Tables:
    """The snapshot tables explain reads, with name lookups from meta."""

    def __init__(self, snapshot):
        self.t, self.meta = snapshot.tables, snapshot.meta
        self.index = {k: {n: i for i, n in enumerate(self.meta[k])}
                      for k in ("accounts", "packages", "rates", "destination_classes")}

    def band_at(self, band_set: int, at_ms: int) -> tuple[int, int, int]:
        """(band id, day kind id, ms when the band ends) at ``at_ms``."""
        local = at_ms + layout.LOCAL_OFFSET_MS
        day = local // layout.MS_PER_DAY
        kind = int(self.t["day_kind"][day - int(self.t["calendar_first_day"][0])])
        minute = (local % layout.MS_PER_DAY) // 60_000
        band = int(self.t["band_of"][band_set, kind, minute])
        until = int(self.t["band_until"][band_set, kind, minute])
        return band, kind, day * layout.MS_PER_DAY + until * 60_000 - layout.LOCAL_OFFSET_MS


def explain(snapshot, record: dict, settled=None, committed: bool = False, reratings=(),
            billing_start: str | None = None) -> Explanation:
    """``explain_record`` plus the credit reservation: with ``committed``
    (the record is the ledger's) ``settled`` is the
    ``ledger.reservations.Reservation`` recorded when the call was committed,
    or None when it held none; a rated file's record says nothing of it.
    ``reratings``: the call's ``ledger.adjustments.Adjustment`` rows
    (``rerating_adjustments``), told after the charge. ``billing_start``:
    see ``explain_record``."""
    x = explain_record(snapshot, record, billing_start)
    x.reservation_checked = committed
    x.reratings = [{"version": a.version, "old_charge_minor": a.old_charge_minor,
                    "new_charge_minor": a.new_charge_minor, "delta_minor": a.delta_minor,
                    "rerated_at_ms": a.rerated_at_ms, "reason": a.reason} for a in reratings]
    if not x.consistent and x.note == "rated_under_another_version" and x.reratings:
        # Explained under the version the call was last rerated to: the
        # committed record holds the charge before the rerating, so a
        # difference that is exactly the rerating's is no mismatch.
        computed = x.overage_charge if x.package_kind == "bundle" else x.rate_charge
        if computed == x.reratings[-1]["new_charge_minor"]:
            x.consistent, x.note = True, "as_rerated"
    if committed and settled is not None:
        x.reservation_held = True
        x.reserved_minor, x.reserved_seconds = settled.reserved_minor, settled.reserved_seconds
        x.granted_seconds, x.authorized_ms = settled.granted_seconds, settled.authorized_ms
        x.held_seconds = settled.held_seconds
        if settled.money:  # the part of the charge that moved the balance replaced the hold
            x.settled_minor = (x.credit_consumed if x.package_kind == "prepaid" else
                               x.overage if x.package_kind == "bundle" else x.charge)
        else:
            x.settled_seconds = x.bundle_seconds_consumed
    return x


def explain_record(snapshot, record: dict, billing_start: str | None = None) -> Explanation:
    """Explain one rated record (a dict with the rated columns, names as
    strings, and the CDR's ``call_id number start ivr_answer agent_answer
    end``, times as int epoch ms or None: ``record_from_file``,
    ``record_committed``) against ``snapshot``: the view that rated it (``rating_view``:
    the catalog version with the customer layer's live accounts and numbers,
    as the rater reads them). The package walked is the record's: the
    package period in force at the call's start, which the rater chose.
    ``billing_start`` (a ``layout.BILLING_START`` name): the number's
    setting when ``snapshot`` no longer holds the number (reclaimed since,
    ``layer_billing_start``); None: the number must be in ``snapshot``.
    Raises ``InvalidInput`` when the record lacks what explaining needs.
    The rated columns go by this version's names (``cdr.rated_columns``:
    ``charge_minor``, ...)."""
    from .cdr import RATED_MINOR_NAMES

    for col in ("call_id", "charge_minor"):
        if col not in record:
            raise InvalidInput(col, "missing from the rated record")
    # A lean rated file (rating400 rate's default) holds rated rows only.
    x = Explanation(call_id=str(record["call_id"]), number=record.get("number"),
                    status=str(record.get("status") or "rated"))
    for f in ("account", "package", "destination_class", "caller_class", "rate"):
        setattr(x, f, record.get(f))
    for f in ("charge", "credit_consumed", "bundle_seconds_consumed", "overage", "balance_after"):
        setattr(x, f, int(record.get(RATED_MINOR_NAMES.get(f, f)) or 0))
    tb = _Tables(snapshot)
    t, meta = tb.t, tb.meta
    x.band_rule = meta.get("band_rule", "billing_start")
    if x.account is None or x.number is None:
        return x
    p = tb.index["packages"].get(x.package)
    if p is None:
        x.consistent, x.note = False, "package_not_in_snapshot"
        return x
    x.package_name = meta["package_names"][p]
    x.labels = meta.get("labels") or {}
    x.package_kind = layout.PACKAGE_KIND[int(t["package_kind"][p])]
    row = int(np.searchsorted(t["number_key"], number_key_of(x.number)))
    if row < len(t["number_key"]) and t["number_key"][row] == number_key_of(x.number):
        mode = layout.BILLING_START[int(t["number_billing_start"][row])]
    elif billing_start in layout.BILLING_START:
        mode = billing_start
    else:
        x.consistent, x.note = False, "number_not_in_snapshot"
        return x

    # Billing start and its fallback (rule 3).
    start, end, ivr, agent = (record.get(f) for f in ("start", "end", "ivr_answer", "agent_answer"))
    if start is None:
        raise InvalidInput("start", "missing from the rated record")
    x.billing_start_mode, x.end_ms = mode, end
    timed = end is not None  # a lean rated file has no answer or end times
    x.timed = timed
    if not timed:
        x.note = "times_not_in_file"
    elif mode == "ring":
        x.bill_from_ms, x.billing_start_used = start, "ring"
    elif mode == "ivr_answer" and ivr is not None:
        x.bill_from_ms, x.billing_start_used = ivr, "ivr_answer"
    elif agent is not None:
        x.bill_from_ms, x.billing_start_used = agent, "agent_answer"
    banded_at = start if x.bill_from_ms is None else x.bill_from_ms
    band_set = int(t["package_band_set"][p])
    band, kind, _ = tb.band_at(band_set, banded_at)
    if not timed and record.get("time_band") in meta["bands"]:
        # the record's band (at the billing start, which the file does not hold)
        band = next(i for i, name in enumerate(meta["bands"]) if name == record["time_band"]
                    and i in set(int(b) for b in t["band_of"][band_set].ravel()))
    x.day_kind = layout.DAY_KIND[kind]
    x.bands = [meta["bands"][band]]
    rules = meta.get("package_rate_rules", [None] * len(meta["packages"]))[p]
    if rules is not None and x.destination_class is not None and x.caller_class is not None:
        for i, r in enumerate(rules):
            if all(r.get(k) in (None, v) for k, v in
                   (("destination", x.destination_class), ("caller", x.caller_class), ("band", x.bands[0]))):
                x.rule_index, x.rule = i, r
                break
    if x.status != "rated":
        return x
    # Names a rated file carries that the snapshot does not know (an edited
    # cell, "mobile ", an empty rate): the record does not match the tariff,
    # said as a package unknown to it is (breaker: KeyError / ValueError,
    # internal errors).
    for name, known in (("rate", tb.index["rates"]), ("destination_class", tb.index["destination_classes"]),
                        ("caller_class", layout.CALLER_CLASS)):
        if getattr(x, name) not in known:
            x.consistent, x.note = False, f"{name}_not_in_snapshot"
            return x

    r0 = tb.index["rates"][x.rate]
    x.billable_rule = layout.BILLABLE_RULE[int(t["rate_billable_rule"][r0])]
    if end is None:  # not timed
        x.billable_seconds = int(record.get("billable_seconds") or 0)
    else:
        if x.bill_from_ms is not None and end > x.bill_from_ms:
            x.billable_ms = end - x.bill_from_ms
        x.billable_seconds = {"truncate": x.billable_ms // 1000, "ceil": -(-x.billable_ms // 1000),
                              "round": (x.billable_ms + 500) // 1000}[x.billable_rule]
    x.free_seconds = int(t["rate_free_seconds"][r0])
    x.min_billable_seconds = int(t["rate_min_billable"][r0])
    x.rounding = layout.ROUNDING[int(t["rate_rounding"][r0])]
    dest = tb.index["destination_classes"][x.destination_class]
    caller = layout.CALLER_CLASS.index(x.caller_class)

    def rate_at(elapsed: int) -> tuple[int, int, int]:
        """(rate id, band id, elapsed s at which its band ends)."""
        if x.band_rule != "split" or not timed or x.bill_from_ms is None:
            return r0, band, 1 << 62
        b, _, ends = tb.band_at(band_set, x.bill_from_ms + elapsed * 1000)
        return int(t["rate_table"][p, dest, caller, b]), b, -(-(ends - x.bill_from_ms) // 1000)

    if x.billable_seconds > 0 and x.billable_seconds > x.free_seconds:
        x.runs, x.billed_seconds = _walk(t, meta, rate_at, max(x.billable_seconds, x.min_billable_seconds))
        if x.band_rule == "split":
            x.bands = list(dict.fromkeys(r.band for r in x.runs if r.band is not None)) or x.bands
        x.units = sum(r.count for r in x.runs)
        x.exact_total = sum((r.cost for r in x.runs), Fraction(0))
        x.rounded = _round(x.exact_total, x.rounding)
        x.connect_fee = int(t["rate_connect_fee"][r0])
        x.rate_charge = x.rounded + x.connect_fee
    expected = x.rate_charge
    if x.package_kind == "bundle":
        x.overage_seconds = x.billed_seconds - x.bundle_seconds_consumed
        o = int(t["package_overage_rate"][p])
        if o >= 0:
            x.overage_rate = meta["rates"][o]
            if x.overage_seconds > 0 and x.overage_seconds > int(t["rate_free_seconds"][o]):
                runs, _ = _walk(t, meta, lambda _e: (o, -1, 1 << 62),
                                max(x.overage_seconds, int(t["rate_min_billable"][o])))
                total = sum((r.cost for r in runs), Fraction(0))
                x.overage_charge = (_round(total, layout.ROUNDING[int(t["rate_rounding"][o])])
                                    + int(t["rate_connect_fee"][o]))
        expected = x.overage_charge
    got = (_whole(record.get("billed_seconds")), _whole(record.get("units")), x.charge)
    if got != (x.billed_seconds, x.units, expected):
        x.consistent, x.note = False, "rated_under_another_version"
    return x


def _whole(value) -> int | None:
    """A rated row's count cell as an int (empty: 0); None for one that is
    no whole number (an edited 'abc' or 1e400: breaker, an internal error),
    which then does not match the recomputed figure."""
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return None


def _walk(t, meta, rate_at, duration: int) -> tuple[list[Run], int]:
    """Increments until ``duration`` s, grouped into runs (rule 8). Raises
    InvalidInput beyond a rated row's bound on seconds
    (``billing.calls.MAX_ROW_SECONDS``: a call lasts less than a day)."""
    from .billing.calls import MAX_ROW_SECONDS

    if not 0 <= duration <= MAX_ROW_SECONDS:
        raise InvalidInput("billable_seconds", f"{duration} s is outside [0, {MAX_ROW_SECONDS}] seconds")
    runs: list[Run] = []
    elapsed = 0
    while elapsed < duration:
        r, b, band_end = rate_at(elapsed)
        first, n = int(t["rate_first_tier"][r]), int(t["rate_n_tiers"][r])
        starts = t["tier_start"][first:first + n]
        j = int(np.searchsorted(starts, elapsed, side="right")) - 1
        nxt = int(starts[j + 1]) if j + 1 < n else 1 << 62
        inc, price, unit = int(t["tier_increment"][first + j]), int(t["tier_price"][first + j]), int(t["tier_unit"][first + j])
        limit = min(nxt, band_end, duration)
        k = -(-(limit - elapsed) // inc)
        runs.append(Run(elapsed, meta["bands"][b] if b >= 0 else None, meta["rates"][r], j + 1, k, inc, price, unit,
                        Fraction(k * inc * price, unit)))
        elapsed += k * inc
    return runs, elapsed


def _round(total: Fraction, rounding: str) -> int:
    if rounding == "up":
        return -(-total.numerator // total.denominator)
    if rounding == "half_up":
        return (2 * total.numerator + total.denominator) // (2 * total.denominator)
    return total.numerator // total.denominator


# --- words ---------------------------------------------------------------

WORDS = {
    "en": {
        "title": "Call {call_id} to 400 number {number}",
        "status": "Not charged: {status} ({why}).",
        "why": {"unknown_number": "the 400 number is not in the catalog",
                "number_not_active": "the number was not active", "package_not_started":
                "the call was before the package started", "no_destination_class":
                "the forwarded-to number matches no destination class", "no_rate":
                "no rate rule of the package matches this call"},
        "account": "Account {account}, package {package} ({package_name}): {kind}.",
        "start": "Billing starts at the {mode} (number setting); used: {used} at {at}.",
        "fallback": "The CDR has no IVR answer, so billing starts at the agent answer instead.",
        "unanswered": "The call was not answered (no {mode} in the CDR), so billing never started.",
        "billable": "Billable seconds: {ms} ms to the end at {end}, {rule} to {s} whole seconds.",
        "rules": {"truncate": "truncated", "ceil": "rounded up", "round": "rounded to the nearest second"},
        "band": "Day kind {kind}; band {band} (band rule: {band_rule}).",
        "split": "The call crosses bands; each increment is priced in the band at its start: {bands}.",
        "rule": "Rate rule {i} of the package matched ({cond}): rate {rate}.",
        "any": "any call",
        "free": "{s} billable seconds are within the rate's {free} free seconds: nothing is charged, no connect fee.",
        "zero": "No billable time (0 s): nothing is charged, no connect fee.",
        "minimum": "The rate bills at least {m} s: the billable seconds count as {m}.",
        "run": "  {count} x {seconds} s (tier {tier} of {rate}{band}, {price} yuan per {unit} s) = {cost} yuan",
        "inband": ", band {band}",
        "total": "{units} increments: {billed} billed seconds (the billable seconds rounded up to whole increments); "
                 "exact total {exact} yuan.",
        "round": "Rounded once ({rounding}) to a whole 1/10000 yuan{whole}: {rounded} yuan; connect fee {fee} yuan; "
                 "call charge {charge} yuan (calls are charged in 1/10000 yuan; a statement's amount due is "
                 "rounded to the fen, once).",
        "whole": " (the exact total was whole already)",
        "modes": {"up": "up", "half_up": "half up", "down": "down"},
        "names": {"ring": "ring", "ivr_answer": "IVR answer", "agent_answer": "agent answer",
                  "workday": "workday", "weekend": "weekend", "holiday": "holiday",
                  "billing_start": "band at the billing start", "split": "split at band boundaries",
                  "payg": "pay as you go (the charge goes on the month's bill)",
                  "prepaid": "prepaid (drawn from the account's credit)",
                  "bundle": "bundle (included minutes each month, then overage)"},
        "prepaid": "Prepaid credit paid {credit} yuan; {overage} yuan in arrears; credit left {left} yuan.",
        "bundle": "Bundle: {used} billed seconds from the month's included minutes ({left} s left); {over} billed "
                  "seconds beyond it.",
        "overage_rate": "The {over} billed seconds beyond the bundle are charged at overage rate {rate}: {charge} yuan.",
        "no_overage": "The package sells no overage: the seconds beyond the bundle cost nothing.",
        "payg": "Pay as you go: {charge} yuan on the month's bill.",
        "charged": "Charged: {charge} yuan.",
        "as_committed": "As committed, before its rerating: ",
        "charged_rerated": "Charged when committed: {charge} yuan; {new} yuan since its rerating under catalog "
                           "version {version} (below).",
        "reservation": "A rated file records no credit reservation (explain the committed call to see it).",
        "held": "Credit reservation settled: authorised at {at} with a grant of {granted}; the hold, "
                "{amount}, stood until its CDR was committed; the call's {settled} replaced it.",
        "held_ended": "Credit reservation settled: authorised at {at} with a grant of {granted}; at the "
                      "call's end the hold shrank to {amount}, the cost of the {held} s it can have used, and "
                      "stood so until its CDR was committed; the call's {settled} replaced it.",
        "grant": "{v} s", "no_grant": "not recorded",
        "not_held": "No credit reservation was held for this call (it was not authorised with its call id, "
                    "or its hold had expired before the CDR came).",
        "held_money": "{v} yuan", "held_seconds": "{v} bundle seconds",
        "mismatch": "Note: this catalog version gives {billed} billed seconds, {units} increments, {charge} yuan, "
                    "not the record's; the call was rated under another catalog version.",
        "missing": "Note: {what} is not in this catalog version; it was rated under another one.",
        "untimed": "The rated file holds no answer or end times: billable seconds and band as recorded.",
        "recorded": "Billable seconds: {s} (as recorded).",
        "rerated": "Rerated under catalog version {version} at {at}: charge {old} -> {new} yuan "
                   "(adjustment {delta} yuan, on the bill of the month of the rerating; reason: {reason}).",
    },
    "zh": {
        "title": "通话 {call_id}，400 号码 {number}",
        "status": "未计费：{status}（{why}）。",
        "why": {"unknown_number": "该 400 号码不在资费目录中", "number_not_active": "号码未处于开通状态",
                "package_not_started": "通话发生在套餐生效之前", "no_destination_class": "转接号码不属于任何目的地类别",
                "no_rate": "套餐中没有适用于此通话的费率规则"},
        "account": "账户 {account}，套餐 {package}（{package_name}）：{kind}。",
        "start": "计费起点：{mode}（号码设置）；实际采用：{used}，时间 {at}。",
        "fallback": "话单中没有 IVR 应答时间，因此改从坐席应答时开始计费。",
        "unanswered": "通话未被应答（话单中没有{mode}时间），未开始计费。",
        "billable": "可计费时长：至结束时间 {end} 共 {ms} 毫秒，按{rule}取整为 {s} 秒。",
        "rules": {"truncate": "舍去不足一秒部分", "ceil": "不足一秒按一秒", "round": "四舍五入到秒"},
        "band": "日期类型 {kind}；时段 {band}（时段规则：{band_rule}）。",
        "split": "通话跨越时段，每个计费单元按其开始时的时段计价：{bands}。",
        "rule": "匹配套餐第 {i} 条费率规则（{cond}）：费率 {rate}。",
        "any": "任意通话",
        "free": "可计费时长 {s} 秒在费率的 {free} 秒免费时长内：不收费，也不收接通费。",
        "zero": "没有可计费时长（0 秒）：不收费，也不收接通费。",
        "minimum": "该费率最少按 {m} 秒计费：可计费时长按 {m} 秒计。",
        "run": "  {count} × {seconds} 秒（{rate} 第 {tier} 档{band}，每 {unit} 秒 {price} 元）= {cost} 元",
        "inband": "，时段 {band}",
        "total": "共 {units} 个计费单元：计费时长 {billed} 秒（可计费时长按整计费单元向上取整）；精确合计 {exact} 元。",
        "round": "统一取整一次（{rounding}）到 0.0001 元{whole}：{rounded} 元；接通费 {fee} 元；通话费用 {charge} 元"
                 "（通话按 0.0001 元计费；月结单的应付金额取整到分，只一次）。",
        "whole": "（精确合计原已是整数）",
        "modes": {"up": "向上取整", "half_up": "四舍五入", "down": "向下取整"},
        "names": {"ring": "振铃", "ivr_answer": "IVR 应答", "agent_answer": "坐席应答",
                  "workday": "工作日", "weekend": "周末", "holiday": "节假日",
                  "billing_start": "按计费起点所在时段", "split": "按时段边界拆分",
                  "payg": "按量计费（费用计入当月账单）", "prepaid": "预付费（从账户预存款中扣除）",
                  "bundle": "套餐包（每月包含分钟数，超出部分另计）"},
        "prepaid": "预存款支付 {credit} 元；欠费 {overage} 元；剩余预存款 {left} 元。",
        "bundle": "套餐包：本月包含分钟数中使用计费时长 {used} 秒（剩余 {left} 秒）；超出计费时长 {over} 秒。",
        "overage_rate": "超出套餐的 {over} 秒按超额费率 {rate} 计费：{charge} 元。",
        "no_overage": "该套餐不销售超额通话：超出部分不收费。",
        "payg": "按量计费：{charge} 元，计入当月账单。",
        "charged": "应收：{charge} 元。",
        "as_committed": "入账时（重新计费前）：",
        "charged_rerated": "入账时应收：{charge} 元；按资费版本 {version} 重新计费后为 {new} 元（见下）。",
        "reservation": "计费文件不记录额度预留（对已入账的通话进行解释可查看）。",
        "held": "额度预留结算：本通话于 {at} 授权，授权时长 {granted}；预留额 {amount} 保持至话单入账时释放，"
                "按实际的 {settled} 结算。",
        "held_ended": "额度预留结算：本通话于 {at} 授权，授权时长 {granted}；通话结束时预留额缩减为 {amount}"
                      "（其可能已使用的 {held} 秒的费用），保持至话单入账时释放，按实际的 {settled} 结算。",
        "grant": "{v} 秒", "no_grant": "未记录",
        "not_held": "本通话未持有额度预留（未以通话 ID 授权，或预留在话单到达前已过期）。",
        "held_money": "{v} 元", "held_seconds": "{v} 秒套餐时长",
        "mismatch": "注意：按当前资费版本计算为计费时长 {billed} 秒、{units} 个计费单元、{charge} 元，与记录不符；"
                    "该通话是按其他资费版本计费的。",
        "missing": "注意：当前资费版本中没有 {what}；该通话是按其他版本计费的。",
        "untimed": "该计费文件不含应答和结束时间：可计费时长和时段以记录为准。",
        "recorded": "可计费时长：{s} 秒（以记录为准）。",
        "rerated": "已于 {at} 按资费版本 {version} 重新计费：费用 {old} -> {new} 元"
                   "（调整 {delta} 元，计入重新计费当月账单；原因：{reason}）。",
    },
}


# Notes of a record naming a number, rate or class this catalog version lacks.
_NOT_RATABLE = ("number_not_in_snapshot", "rate_not_in_snapshot", "destination_class_not_in_snapshot",
                "caller_class_not_in_snapshot")


def _lines(x: Explanation, w: dict, names: dict[str, str]) -> list[str]:
    # Money as people read yuan: 2 decimals (``money.exact_yuan``: 4 only
    # when 2 would hide a fraction of a fen, so nothing is rounded away);
    # the walk's exact figures (each run's price and cost, the exact total
    # before the one rounding) with 4 (``yuan4``), as the rounding they
    # explain is to the 1/10000 yuan (newcomer LOW F2: "Charged: 0.4400 yuan").
    y, m = yuan4, exact_yuan

    def n(value):
        return w["names"].get(value, value)

    out = [w["title"].format(call_id=x.call_id, number=x.number or "-")]
    if x.note and x.note.endswith("_not_in_snapshot"):
        what = x.note.removesuffix("_not_in_snapshot")
        out.append(w["missing"].format(what=f"{what} {getattr(x, what, None)!r}"))
    if x.status != "rated":
        out.append(w["status"].format(status=x.status, why=w["why"].get(x.status, x.status)))
        return out
    def label(name):  # a catalog name as the catalog labels it in this language
        return names.get(name, name)

    if x.note == "package_not_in_snapshot":  # no package to name or walk: the note is all
        return out
    out.append(w["account"].format(account=x.account, package=x.package,
                                   package_name=names.get(x.package or "", x.package_name),
                                   kind=n(x.package_kind)))
    if x.note in _NOT_RATABLE:  # a name the tariff lacks: nothing below can be told
        return out
    if not x.timed:
        out.append(w["untimed"])
        out.append(w["recorded"].format(s=x.billable_seconds))
    elif x.bill_from_ms is None:
        out.append(w["unanswered"].format(mode=n(x.billing_start_mode)))
    else:
        out.append(w["start"].format(mode=n(x.billing_start_mode), used=n(x.billing_start_used),
                                     at=_when(x.bill_from_ms)))
        if x.billing_start_mode == "ivr_answer" and x.billing_start_used == "agent_answer":
            out.append(w["fallback"])
        out.append(w["billable"].format(ms=x.billable_ms, end=_when(x.end_ms), rule=w["rules"][x.billable_rule],
                                        s=x.billable_seconds))
    out.append(w["band"].format(kind=n(x.day_kind), band=label(x.bands[0]) if x.bands else "-",
                                band_rule=n(x.band_rule)))
    if len(x.bands) > 1:
        out.append(w["split"].format(bands=" -> ".join(map(label, x.bands))))
    if x.rule_index is not None and x.rule is not None:
        cond = ", ".join(f"{k}={label(v)}" for k, v in x.rule.items() if k != "rate" and v is not None) or w["any"]
        out.append(w["rule"].format(i=x.rule_index + 1, cond=cond, rate=x.rate))
    if x.billable_seconds == 0 or x.billable_seconds <= x.free_seconds:
        if x.billable_seconds == 0:  # not answered, or answered at its end: no free seconds to speak of
            out.append(w["zero"])
        else:
            out.append(w["free"].format(s=x.billable_seconds, free=x.free_seconds))
    else:
        if x.min_billable_seconds > x.billable_seconds:
            out.append(w["minimum"].format(m=x.min_billable_seconds))
        for r in x.runs:
            out.append(w["run"].format(count=r.count, seconds=r.seconds, tier=r.tier, rate=r.rate,
                                       band=w["inband"].format(band=label(r.band)) if len(x.bands) > 1 else "",
                                       price=y(r.price_minor), unit=r.unit, cost=y(r.cost)))
        out.append(w["total"].format(units=x.units, billed=x.billed_seconds, exact=y(x.exact_total)))
        # The rounding is to a whole minor unit, 1/10000 yuan, not to the fen
        # (newcomer8 F1: "Rounded once (half up): 1.4580 yuan" read as a
        # rounding that did nothing): said so, and when there was nothing to round.
        whole = w["whole"] if x.exact_total.denominator == 1 else ""
        out.append(w["round"].format(rounding=w["modes"][x.rounding], whole=whole, rounded=m(x.rounded),
                                     fee=m(x.connect_fee),
                                     charge=m(x.rate_charge)))
    # The credit, bundle and bill figures are the committed record's; the
    # walk above is this catalog version's: say so when a rerating has
    # changed the charge since (newcomer N10: "call charge 0.4400" above
    # "Prepaid credit paid 0.4800", no word of which record each came from).
    told = w["as_committed"] if x.reratings else ""
    if x.package_kind == "prepaid":
        # The charge's parts exact as the walk above; the balance as balances are written.
        out.append(told + w["prepaid"].format(credit=m(x.credit_consumed), overage=m(x.overage),
                                              left=m(x.balance_after)))
    elif x.package_kind == "bundle":
        out.append(told + w["bundle"].format(used=x.bundle_seconds_consumed, left=x.balance_after,
                                             over=x.overage_seconds))
        if x.overage_seconds > 0:
            out.append(w["overage_rate"].format(over=x.overage_seconds, rate=x.overage_rate, charge=m(x.overage_charge))
                       if x.overage_rate else w["no_overage"])
    else:
        out.append(told + w["payg"].format(charge=m(x.charge)))
    if x.reratings:
        last = x.reratings[-1]
        out.append(w["charged_rerated"].format(charge=m(x.charge), new=m(last["new_charge_minor"]),
                                               version=last["version"]))
    else:
        out.append(w["charged"].format(charge=m(x.charge)))
    if not x.reservation_checked:
        out.append(w["reservation"])
    elif not x.reservation_held:
        out.append(w["not_held"])
    else:
        # The grant the call was given, and the hold as it stood when the CDR
        # settled it (after an ``ended``: shrunk to the time used), each by its name.
        seconds = bool(x.reserved_seconds or x.settled_seconds)
        kind = w["held_seconds"] if seconds else w["held_money"]
        out.append(w["held" if x.held_seconds is None else "held_ended"].format(
            at=_when(x.authorized_ms), held=x.held_seconds,
            granted=w["grant"].format(v=x.granted_seconds) if x.granted_seconds else w["no_grant"],
            amount=kind.format(v=x.reserved_seconds if seconds else m(x.reserved_minor)),
            settled=kind.format(v=x.settled_seconds if seconds else m(x.settled_minor))))
    if not x.consistent and x.note == "rated_under_another_version":
        out.append(w["mismatch"].format(billed=x.billed_seconds, units=x.units,
                                        charge=m(x.overage_charge if x.package_kind == "bundle" else x.rate_charge)))
    for rr in x.reratings:
        delta = rr["delta_minor"]
        out.append(w["rerated"].format(version=rr["version"], at=_when(rr["rerated_at_ms"]),
                                       old=m(rr["old_charge_minor"]), new=m(rr["new_charge_minor"]),
                                       delta=("+" if delta >= 0 else "") + m(delta), reason=rr["reason"] or "-"))
    return out


# --- finding the record ----------------------------------------------------

def record_from_file(path: str | Path, call_id: str, snapshot=None) -> dict:
    """The rated row of ``call_id`` in a rated file (Parquet or CSV, the
    output of ``rating400 rate``), its times as epoch ms (None: absent).
    Raises ``InvalidInput`` (field ``call_id``) when the file has no such
    call, and naming the file, the data row (from 1) and the field for a
    cell billing would not read (``billing.calls.from_rated_table``: a
    status, name, 400 number, time or count missing or not one; with
    ``snapshot``, the view it is explained against, a package that view
    lacks or a start before the account's package start, as ``bill``
    refuses them: ``billing.calls.Known``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .cdr import RATED_MINOR_NAMES, TIME_COLUMNS, check_text, excerpt, file_times, read_rated

    check_text("call_id", call_id)  # the edge's bound (128 bytes, no control characters)
    table = read_rated(path)
    if "call_id" not in table.column_names:
        raise InvalidInput("call_id", f"{path}: not a rated file (no call_id column)")
    try:
        ids = pc.cast(table["call_id"], pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InvalidInput("call_id", f"{path}: a {table['call_id'].type} column, not text") from None
    at = pc.index(ids, call_id).as_py()
    if at < 0:
        raise InvalidInput("call_id", f"{excerpt(call_id)} is not in {path}")
    row = table.slice(at, 1)
    record = row.to_pylist()[0]
    # Its times read as the edge reads a CDR file's (``cdr.parse_times``):
    # the same forms, and a bad one is an error naming file, row and field.
    for name in TIME_COLUMNS:
        ms = int(file_times(row, name, str(path), np.array([at + 1]))[0])
        record[name] = None if ms == layout.NO_TIME else ms
    # The row checked as billing checks a rated file's rows (its status;
    # a rated row's names, 400 number, times and counts): an emptied or
    # edited cell is an error naming file, row and field, not an
    # explanation of a record that cannot be.
    from .billing.calls import BOUNDS, Known, from_rated_table

    known = None if snapshot is None else Known.of(snapshot)
    checked = from_rated_table(row, str(path), np.array([at + 1]), known)
    if checked.num_rows:
        record.update({RATED_MINOR_NAMES.get(name, name): checked[name][0].as_py() for name in BOUNDS
                       if RATED_MINOR_NAMES.get(name, name) in row.column_names})
    return record


def settled_reservation(ledger, call_id: str):
    """The credit reservation recorded when ``call_id`` was committed
    (``ledger.reservations.Reservation``), or None when it held none."""
    from .ledger import reservations
    from .ledger.formats import call_key

    with ledger.env.begin() as txn:
        return reservations.settled(ledger, txn, call_key(call_id))


def rerating_adjustments(ledger, call_id: str) -> list:
    """The rerating adjustments of ``call_id`` (``ledger.adjustments.Adjustment``),
    oldest first; [] when it was never rerated."""
    from .ledger import adjustments
    from .ledger.formats import call_key

    with ledger.env.begin() as txn:
        return adjustments.of_call(ledger, txn, call_key(call_id))


def record_committed(ledger, call_id: str) -> dict:
    """The committed rated record of ``call_id`` from the ledger (``rating400
    rate --commit`` or the gRPC ``RateCdr``). Raises ``InvalidInput``."""
    from .cdr import check_text, excerpt
    from .ledger import records
    from .ledger.formats import call_key

    check_text("call_id", call_id)  # the edge's bound (128 bytes, no control characters)
    with ledger.env.begin() as txn:
        stored = records.committed(ledger, txn, [call_key(call_id)])
        if not stored:
            raise InvalidInput("call_id", f"{excerpt(call_id)} has not been committed (a rejected or repeated row "
                                          "never is: its job's rejects file says why; a call rated without "
                                          "--commit: give that rated file with --rated)")
        return records.load(ledger, txn, list(stored.values()))[0]


# --- the view the rater used ------------------------------------------------

def rating_view(store, ledger, version: int | None = None):
    """What the rater rated with: catalog ``version`` (default the active
    one) of ``store`` with the customer layer of ``ledger`` applied
    (``accounts.open_view``): numbers and accounts opened by operations,
    each account's package periods and each number's dated states. The
    catalog snapshot itself when the layer holds no account. Close it with
    ``close_view``."""
    from .accounts.view import open_view

    return open_view(store, ledger.env, version)


def close_view(view) -> None:
    """Close what ``rating_view`` opened (a live view's catalog snapshot)."""
    getattr(view, "base", view).close()


def layer_billing_start(ledger, number: str | None) -> str | None:
    """The billing start setting (``layout.BILLING_START`` name) of
    ``number`` in the customer layer, in whatever state it is now (a number
    reclaimed since its call is no longer in the live view); None when the
    layer does not know it."""
    from .accounts.view import layer_dbs
    from .ledger import customers as C

    if not number:
        return None
    db = layer_dbs(ledger.env)[C.NUMBERS_DB]
    with ledger.env.begin(db=db) as txn:
        raw = txn.get(C.number_key(number), db=db)
    return None if raw is None else C.decode(C.Number, raw).billing_start


def explain_committed(view, ledger, call_id: str) -> Explanation:
    """The committed call ``call_id`` explained over ``view`` (the
    ``rating_view`` of the catalog version; the gRPC server's engine
    view): the record, its settled reservation and reratings from
    ``ledger``. The one path of the CLI and ``ExplainCharge``. Raises
    ``InvalidInput`` (field ``call_id``) when the call was not committed."""
    record = record_committed(ledger, call_id)
    return explain(view, record, settled_reservation(ledger, call_id), committed=True,
                   reratings=rerating_adjustments(ledger, call_id),
                   billing_start=layer_billing_start(ledger, record.get("number")))
