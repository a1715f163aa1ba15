"""The rating rules, worked by hand: every example runs against BOTH the
kernel (kernels/rating.pyx) and the reference (rating_core/reference.py).

Prices are in minor units (1/10000 yuan): 0.12 yuan/min is 1200 per 60 s.
"""
import datetime as dt

import pytest

from rating_core.catalog.schema import Catalog
from rating_core.reference import Balance, Call, opening_balances

from engines import rate_with

ENGINE = "reference"


@pytest.fixture(params=["reference", "kernel"], autouse=True)
def engine(request):
    """Every test of this module runs once per implementation."""
    global ENGINE
    ENGINE = request.param
    yield request.param
    ENGINE = "reference"


def rate_reference(cat, calls, balances, _regions=None):
    return rate_with(ENGINE, cat, calls, balances)


REGIONS = None  # the engines use the real region data


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def rate_of(*tiers, **extra):
    return Catalog.model_validate(
        {"destination_classes": ["x"], "rates": {"r": {"tiers": list(tiers), **extra}}, "packages": {}, "accounts": {}}
    ).rates["r"]


def charge(rate, seconds):
    """(billed seconds, units, charge) of a call of exactly ``seconds``
    billed from ring under ``rate`` alone."""
    cat = Catalog.model_validate({
        "destination_classes": ["any"], "destination_prefixes": {"1": "any"},
        "rates": {"r": {"tiers": [{"price": 0}]}}, "packages": {"p": {"kind": "payg", "rates": [{"rate": "r"}]}},
        "accounts": {"a": {"package": "p", "package_start": "2026-01-01",
                           "numbers": [{"number": "4000000000", "home_city": "Beijing", "billing_start": "ring"}]}},
    }).model_copy(update={"rates": {"r": rate}})
    s = ms("2026-03-04T10:00:00+08:00")
    r = rate_with(ENGINE, cat, [Call("4000000000", None, "13900000000", s, s + seconds * 1000)])[0]
    return r.billed_seconds, r.units, r.charge


# --- increments and tiers -------------------------------------------------


def test_sixty_sixty_bills_every_started_minute():
    rate = rate_of({"price": 0.12, "unit": 60, "increment": 60})
    assert charge(rate, 1) == (60, 1, 1200)
    assert charge(rate, 60) == (60, 1, 1200)
    assert charge(rate, 61) == (120, 2, 2400)


def test_six_six_bills_every_started_six_seconds():
    rate = rate_of({"price": 0.10, "unit": 60, "increment": 6})
    assert charge(rate, 61) == (66, 11, 1100)  # 11 x 6 s at 0.10/60 s


def test_thirty_six_first_increment_then_six():
    rate = rate_of({"start": 0, "price": 0.12, "unit": 60, "increment": 30}, {"start": 30, "price": 0.12, "unit": 60, "increment": 6})
    assert charge(rate, 10) == (30, 1, 600)
    assert charge(rate, 31) == (36, 2, 720)
    assert charge(rate, 37) == (42, 3, 840)


def test_one_one_bills_every_second():
    rate = rate_of({"price": 0.12, "unit": 60, "increment": 1})
    assert charge(rate, 61) == (61, 61, 1220)


def test_flat_first_three_minutes_then_per_started_minute():
    # "0.22 yuan for the first 3 minutes, then 0.11 per started minute"
    rate = rate_of(
        {"start": 0, "price": 0.22, "unit": 180, "increment": 180},
        {"start": 180, "price": 0.11, "unit": 60, "increment": 60},
    )
    assert charge(rate, 100) == (180, 1, 2200)
    assert charge(rate, 180) == (180, 1, 2200)
    assert charge(rate, 181) == (240, 2, 3300)
    assert charge(rate, 300) == (300, 3, 4400)


def test_an_increment_that_crosses_a_tier_start_is_priced_by_its_own_tier():
    # 60 s increments at 0.10; from 90 s on, 0.20 per 60 s in 60 s steps.
    rate = rate_of({"start": 0, "price": 0.10, "increment": 60}, {"start": 90, "price": 0.20, "increment": 60})
    # increments start at 0 and 60 (first tier), then 120 (second tier)
    assert charge(rate, 121) == (180, 3, 1000 + 1000 + 2000)


# --- free seconds, minimum, connect fee -----------------------------------


def test_free_seconds_are_not_charged_at_all():
    rate = rate_of({"price": 0.12}, free_seconds=6, connect_fee=0.05)
    assert charge(rate, 6) == (0, 0, 0)
    assert charge(rate, 7) == (60, 1, 1200 + 500)


def test_minimum_billable_seconds():
    rate = rate_of({"price": 0.10, "increment": 6}, min_billable_seconds=60)
    assert charge(rate, 10) == (60, 10, 1000)
    assert charge(rate, 61) == (66, 11, 1100)


def test_connect_fee_is_added_after_rounding():
    rate = rate_of({"price": 0.0007, "increment": 6}, connect_fee=0.05)
    # 11 increments x 0.7 = 7.7 -> 8, then + 500
    assert charge(rate, 61) == (66, 11, 508)


def test_zero_seconds_costs_nothing_not_even_the_connect_fee():
    rate = rate_of({"price": 0.12}, connect_fee=0.05)
    assert charge(rate, 0) == (0, 0, 0)


# --- the one rounding point -----------------------------------------------


@pytest.mark.parametrize(
    "rounding, half, third",
    [("up", 7, 3), ("half_up", 7, 2), ("down", 6, 2)],
)
def test_each_rounding_mode_applies_once_to_the_exact_total(rounding, half, third):
    one_one = {"unit": 60, "increment": 1}
    # 3 s at 0.0130/min = 390/60 = 6.5 minor units
    assert charge(rate_of({"price": 0.0130, **one_one}, rounding=rounding), 3)[2] == half
    # 1 s at 0.0125/min = 125/60 = 2.083 minor units
    assert charge(rate_of({"price": 0.0125, **one_one}, rounding=rounding), 1)[2] == third


def test_rounding_is_per_call_not_per_increment():
    # 0.7 per increment: per-increment rounding up would give 11, not 8.
    rate = rate_of({"price": 0.0007, "increment": 6}, rounding="up")
    assert charge(rate, 61)[2] == 8


# --- whole calls through the catalog --------------------------------------

DAY = "2026-03-04"  # a Wednesday, a workday


def catalog(*, billing_start="agent_answer", kind="payg", number_status="active", package_start="2026-01-01", **package):
    package = {"kind": kind, "rates": [{"rate": "local", "caller": "local"}, {"rate": "std"}], **package}
    return Catalog.model_validate(
        {
            "destination_classes": ["mobile", "landline"],
            "destination_prefixes": {"13": "mobile", "15": "mobile", "0": "landline"},
            "time_bands": [
                {"name": "holiday", "day_kinds": ["holiday"]},
                {"name": "day", "hours": [8, 20]},
                {"name": "night"},
            ],
            "rates": {
                "std": {"tiers": [{"price": 0.12}], "connect_fee": 0.01},
                "local": {"tiers": [{"price": 0.08}]},
            },
            "packages": {"p": package},
            "accounts": {
                "acme": {
                    "package": "p",
                    "package_start": package_start,
                    "numbers": [
                        {"number": "4001234567", "home_city": "Shenzhen", "billing_start": billing_start, "status": number_status}
                    ],
                }
            },
        }
    )


def call(start=f"{DAY}T10:00:00+08:00", seconds=61, *, number="4001234567", caller="13005400000", forwarded="13912345678", ivr=0, agent=10, answered=True, **kw):
    s = ms(start)
    return Call(
        number=number,
        caller=caller,
        forwarded=forwarded,
        start_ms=s,
        ivr_answer_ms=s + ivr * 1000 if answered else None,
        agent_answer_ms=s + agent * 1000 if answered else None,
        end_ms=s + (agent + seconds) * 1000 if answered else s + 30_000,
        **kw,
    )


def rate_one(cat, c, balances=None):
    balances = opening_balances(cat) if balances is None else balances
    return rate_reference(cat, [c], balances, REGIONS)[0]


def test_a_rated_call_reports_every_name():
    r = rate_one(catalog(), call(caller="01012345678"))
    assert r.status == "rated"
    assert (r.account, r.package, r.destination_class, r.time_band, r.rate) == ("acme", "p", "mobile", "day", "std")
    assert (r.caller_city, r.caller_province, r.caller_carrier, r.caller_class) == ("Beijing", "Beijing", None, "out_of_town")
    assert (r.billable_seconds, r.billed_seconds, r.units, r.charge) == (61, 120, 2, 2400 + 100)


def test_local_caller_gets_the_local_rate():
    r = rate_one(catalog(), call(caller="13005400000"))
    assert (r.caller_city, r.caller_carrier, r.caller_class, r.rate, r.charge) == ("Shenzhen", "China Unicom", "local", "local", 1600)


def test_unknown_caller_region_counts_as_out_of_town():
    for caller in ["17012345678", None]:
        r = rate_one(catalog(), call(caller=caller))
        assert (r.caller_city, r.caller_province, r.caller_class, r.rate) == (None, None, "out_of_town", "std")


@pytest.mark.parametrize(
    "mode, billable",
    [("ring", 80), ("ivr_answer", 75), ("agent_answer", 60)],  # truncated: 80.5 s is 80
)
def test_billing_start_modes(mode, billable):
    # ring at 0 s, IVR answers at 5 s, the agent at 20 s, end at 80.5 s
    s = ms(f"{DAY}T10:00:00+08:00")
    c = Call("4001234567", "01012345678", "13912345678", s, s + 80_500, ivr_answer_ms=s + 5000, agent_answer_ms=s + 20_000)
    assert rate_one(catalog(billing_start=mode), c).billable_seconds == billable


def test_unanswered_call_is_rated_at_zero():
    r = rate_one(catalog(), call(answered=False))
    assert (r.status, r.billable_seconds, r.billed_seconds, r.units, r.charge) == ("rated", 0, 0, 0, 0)


def test_zero_length_call():
    s = ms(f"{DAY}T10:00:00+08:00")
    r = rate_one(catalog(billing_start="ring"), Call("4001234567", None, "13912345678", s, s))
    assert (r.status, r.billable_seconds, r.charge) == ("rated", 0, 0)


def test_band_at_the_billing_start_holds_across_a_boundary_and_midnight():
    assert rate_one(catalog(), call(f"{DAY}T19:59:00+08:00", 600)).time_band == "day"
    assert rate_one(catalog(), call(f"{DAY}T23:55:00+08:00", 600)).time_band == "night"


def test_holiday_band_from_the_official_calendar_and_overrides():
    # National Day 2026: Oct 1 is a holiday, Sep 30 (a Wednesday) is not.
    assert rate_one(catalog(), call("2026-09-30T23:50:00+08:00", 1200)).time_band == "night"
    assert rate_one(catalog(), call("2026-10-01T10:00:00+08:00")).time_band == "holiday"
    cat = catalog().model_copy(update={"day_overrides": Catalog.model_validate(
        {"destination_classes": ["x"], "rates": {}, "packages": {}, "accounts": {},
         "day_overrides": [{"date": DAY, "kind": "holiday"}]}).day_overrides})
    assert rate_one(cat, call()).time_band == "holiday"


@pytest.mark.parametrize(
    "change, status",
    [
        ({"number": "4009999999"}, "unknown_number"),
        ({"number": None}, "unknown_number"),
        ({"start": "2025-12-31T23:59:59+08:00"}, "package_not_started"),
        ({"forwarded": "99999"}, "no_destination_class"),
        ({"forwarded": None}, "no_destination_class"),
    ],
)
def test_rejects(change, status):
    r = rate_one(catalog(), call(**change))
    assert r.status == status
    assert (r.rate, r.billable_seconds, r.charge) == (None, 0, 0)


def test_inactive_number():
    r = rate_one(catalog(number_status="suspended"), call())
    assert (r.status, r.account, r.charge) == ("number_not_active", "acme", 0)


def test_no_rate_when_no_rule_matches():
    cat = catalog(rates=[{"rate": "std", "destination": "landline"}])
    assert rate_one(cat, call()).status == "no_rate"


# --- packages ---------------------------------------------------------------


def test_payg_consumes_nothing():
    r = rate_one(catalog(), call())
    assert (r.credit_consumed, r.overage, r.balance_after) == (0, 0, 0)


def test_prepaid_credit_runs_out_then_arrears():
    cat = catalog(kind="prepaid", fee=0.30, period_months=12)  # 3000 minor units of credit
    balances = opening_balances(cat)
    calls = [call(f"{DAY}T10:0{i}:00+08:00", 60, caller="01012345678") for i in range(3)]  # 1300 each
    out = rate_reference(cat, calls, balances, REGIONS)
    assert [(r.charge, r.credit_consumed, r.overage, r.balance_after) for r in out] == [
        (1300, 1300, 0, 1700),
        (1300, 1300, 0, 400),
        (1300, 400, 900, 0),
    ]
    assert balances["acme"].credit_left == 0


def test_prepaid_credit_expires_with_the_period():
    cat = catalog(kind="prepaid", fee=3000, period_months=2)  # expires 2026-03-01 00:00 local
    balances = opening_balances(cat)
    before = call("2026-02-28T23:59:00+08:00", 60, caller="01012345678")
    after = call("2026-03-01T00:00:00+08:00", 60, caller="01012345678")
    r1, r2 = rate_reference(cat, [after, before], balances, REGIONS)  # unsorted input
    assert (r2.credit_consumed, r2.balance_after) == (1300, 30_000_000 - 1300)
    assert (r1.credit_consumed, r1.overage, r1.balance_after) == (0, 1300, 0)


def test_prepaid_expiry_clamps_to_the_end_of_a_short_month():
    cat = catalog(kind="prepaid", fee=1, period_months=1, package_start="2026-01-31")  # expires Feb 28
    r = rate_one(cat, call("2026-02-28T00:00:00+08:00", caller="01012345678"))
    assert (r.credit_consumed, r.overage) == (0, 2500)


def test_bundle_runs_out_mid_call_and_renews_with_the_month():
    cat = catalog(kind="bundle", included_minutes=2, overage_price=0.10)
    balances = opening_balances(cat)
    calls = [
        call("2026-03-04T10:00:00+08:00", 90, caller="01012345678"),  # 120 s billed, all in the bundle
        call("2026-03-04T11:00:00+08:00", 90, caller="01012345678"),  # 120 s, all overage
        call("2026-03-31T23:59:00+08:00", 30, caller="01012345678"),  # 60 s overage
        call("2026-04-01T00:00:00+08:00", 150, caller="01012345678"),  # new month: 120 in, 60 over
    ]
    out = rate_reference(cat, calls, balances, REGIONS)
    assert [(r.billed_seconds, r.bundle_seconds_consumed, r.charge, r.overage, r.balance_after) for r in out] == [
        (120, 120, 0, 0, 0),
        (120, 0, 2000, 2000, 0),
        (60, 0, 1000, 1000, 0),
        (180, 120, 1000, 1000, 0),
    ]
    # March's allowance (all 120 s used) is kept for March's late calls.
    assert balances["acme"] == Balance(credit_left=0, bundle_period=2026 * 12 + 3, bundle_used=120,
                                       late_used={2026 * 12 + 2: 120})


def test_overage_price_is_a_rate_of_its_own_rounded_up_once():
    cat = catalog(kind="bundle", included_minutes=1, overage_price=0.0001, rates=[{"rate": "one"}])
    cat.rates["one"] = rate_of({"price": 0.12, "increment": 1}, rounding="down")
    balances = opening_balances(cat)
    r = rate_reference(cat, [call(seconds=90, caller="01012345678")], balances, REGIONS)[0]
    # 30 s beyond the bundle at 1 minor unit per 60 s = 0.5 -> the shorthand rate rounds up: 1
    assert (r.bundle_seconds_consumed, r.charge, r.balance_after) == (60, 1, 0)
    assert cat.packages["p"].overage_rate == "p.overage"


# --- the rules of issue 7: billable time, billing start, bands, overage ------


def banded_catalog(*, band_rule="billing_start", billing_start="agent_answer", billable=None, kind="payg",
                   **package) -> Catalog:
    """Workday day 08:00-22:00 at 0.16/min, night 22:00-08:00 (wrapping
    midnight) at 0.10/min, for one package with its own band set."""
    doc = {
        "destination_classes": ["mobile"],
        "destination_prefixes": {"1": "mobile"},
        "band_rule": band_rule,
        "band_sets": {"shop": [{"name": "day", "day_kinds": ["workday"], "hours": ["08:00", "22:00"]},
                               {"name": "night", "day_kinds": ["workday"], "hours": ["22:00", "08:00"]},
                               {"name": "off", "day_kinds": ["weekend", "holiday"]}]},
        "rates": {"day": {"tiers": [{"price": 0.16}]}, "night": {"tiers": [{"price": 0.10}]},
                  "off": {"tiers": [{"price": 0.08}]},
                  "intro": {"tiers": [{"price": 0.22, "unit": 180, "increment": 180}, {"start": 180, "price": 0.11}]},
                  "six": {"tiers": [{"price": 0.10, "increment": 6}]},
                  "per_minute_015": {"tiers": [{"price": 0.15}]}},
        "packages": {"p": {"kind": kind, "band_set": "shop", "rates": [
            {"rate": "day", "band": "day"}, {"rate": "night", "band": "night"}, {"rate": "off"}], **package}},
        "accounts": {"acme": {"package": "p", "package_start": "2026-01-01", "numbers": [
            {"number": "4001234567", "home_city": "Shenzhen", "billing_start": billing_start}]}},
    }
    if billable:
        doc["billable_seconds"] = billable
    return Catalog.model_validate(doc)


def cdr(start: str, end: str, *, ivr: str | None = None, agent: str | None = None) -> Call:
    return Call("4001234567", "01012345678", "13912345678", ms(start), ms(end),
                ivr_answer_ms=ms(ivr) if ivr else None, agent_answer_ms=ms(agent) if agent else None)


@pytest.mark.parametrize("rule, billable, charge", [("truncate", 60, 1600), ("ceil", 61, 3200), ("round", 60, 1600)])
def test_billable_seconds_rule(rule, billable, charge):
    # answered 10:00:05, ends 10:01:05.001: 60.001 s
    c = cdr(f"{DAY}T10:00:00+08:00", f"{DAY}T10:01:05.001+08:00", agent=f"{DAY}T10:00:05+08:00")
    r = rate_reference(banded_catalog(billable=rule), [c], None)[0]
    assert (r.billable_seconds, r.charge) == (billable, charge)


def test_billable_seconds_rule_per_rate_over_the_catalogs():
    cat = banded_catalog(billable="ceil")
    cat.rates["day"] = rate_of({"price": 0.16}, billable_seconds="round")
    c = cdr(f"{DAY}T10:00:00+08:00", f"{DAY}T10:01:00.499+08:00", agent=f"{DAY}T10:00:00+08:00")
    assert rate_reference(cat, [c], None)[0].billable_seconds == 60  # round, not the catalog's ceil
    c = cdr(f"{DAY}T10:00:00+08:00", f"{DAY}T10:01:00.500+08:00", agent=f"{DAY}T10:00:00+08:00")
    assert rate_reference(cat, [c], None)[0].billable_seconds == 61


def test_a_fraction_of_a_second_billed_from_ring_costs_nothing():
    cat = banded_catalog(billing_start="ring", rates=[{"rate": "intro"}])
    r = rate_reference(cat, [cdr(f"{DAY}T10:00:00+08:00", f"{DAY}T10:00:00.300+08:00")], None)[0]
    assert (r.billable_seconds, r.units, r.charge) == (0, 0, 0)  # not a whole 3-minute first tier


def test_band_is_taken_at_the_billing_start_not_the_ring():
    # rings 21:59:50 on a workday, answered 22:00:05, talks 60 s: night
    c = cdr(f"{DAY}T21:59:50+08:00", f"{DAY}T22:01:05+08:00", agent=f"{DAY}T22:00:05+08:00")
    r = rate_reference(banded_catalog(), [c], None)[0]
    assert (r.time_band, r.rate, r.billable_seconds, r.charge) == ("night", "night", 60, 1000)


def test_missing_ivr_answer_falls_back_to_the_agent_answer():
    c = cdr(f"{DAY}T10:00:00+08:00", f"{DAY}T10:01:20+08:00", agent=f"{DAY}T10:00:20+08:00")
    r = rate_reference(banded_catalog(billing_start="ivr_answer"), [c], None)[0]
    assert (r.billable_seconds, r.charge) == (60, 1600)  # not 0, and the ring is not billed
    unanswered = cdr(f"{DAY}T10:00:00+08:00", f"{DAY}T10:01:20+08:00")
    assert rate_reference(banded_catalog(billing_start="ivr_answer"), [unanswered], None)[0].charge == 0


def test_a_wrapped_band_covers_the_evening_and_the_morning():
    cat = banded_catalog(billing_start="ring")
    for start, band in [("T23:30:00", "night"), ("T03:00:00", "night"), ("T07:59:59", "night"), ("T08:00:00", "day")]:
        r = rate_reference(cat, [cdr(f"{DAY}{start}+08:00", f"{DAY}{start}+08:00".replace(":00+", ":00+"))], None)[0]
        assert r.time_band == band, start


def test_split_rule_prices_each_increment_by_the_band_at_its_start():
    # billed from 21:59:00 to 22:01:00: one minute of day (0.16), one of night (0.10)
    c = cdr(f"{DAY}T21:59:00+08:00", f"{DAY}T22:01:00+08:00", agent=f"{DAY}T21:59:00+08:00")
    split = rate_reference(banded_catalog(band_rule="split"), [c], None)[0]
    whole = rate_reference(banded_catalog(), [c], None)[0]
    assert (split.time_band, split.rate, split.units, split.charge) == ("day", "day", 2, 2600)
    assert (whole.time_band, whole.units, whole.charge) == ("day", 2, 3200)
    # an increment that starts before the boundary is priced by its band
    c = cdr(f"{DAY}T21:59:30+08:00", f"{DAY}T22:01:00+08:00", agent=f"{DAY}T21:59:30+08:00")
    assert rate_reference(banded_catalog(band_rule="split"), [c], None)[0].charge == 1600 + 1000


def test_split_rule_into_a_band_without_a_rate_is_no_rate():
    cat = banded_catalog(band_rule="split", rates=[{"rate": "day", "band": "day"}])
    c = cdr(f"{DAY}T21:59:00+08:00", f"{DAY}T22:01:00+08:00", agent=f"{DAY}T21:59:00+08:00")
    assert rate_reference(cat, [c], None)[0].status == "no_rate"
    short = cdr(f"{DAY}T21:58:00+08:00", f"{DAY}T21:59:00+08:00", agent=f"{DAY}T21:58:00+08:00")
    assert rate_reference(cat, [short], None)[0].status == "rated"


def test_overage_as_a_full_rate():
    # a 6/6 call rate, then 0.15 per started minute beyond the bundle
    cat = banded_catalog(kind="bundle", included_minutes=1, overage_rate="per_minute_015", rates=[{"rate": "six"}])
    c = cdr(f"{DAY}T10:00:00+08:00", f"{DAY}T10:02:06+08:00", agent=f"{DAY}T10:00:00+08:00")
    r = rate_reference(cat, [c], None)[0]
    # 126 s billed: 60 s in the bundle, 66 s of overage = 2 started minutes
    assert (r.billed_seconds, r.bundle_seconds_consumed, r.charge, r.overage) == (126, 60, 3000, 3000)


def test_bundle_month_follows_the_billing_start():
    cat = banded_catalog(kind="bundle", included_minutes=1, overage_rate="per_minute_015")
    balances = opening_balances(cat)
    # rings in March, answered in April: counts against April's bundle
    c = cdr("2026-03-31T23:59:50+08:00", "2026-04-01T00:00:35+08:00", agent="2026-04-01T00:00:05+08:00")
    r = rate_reference(cat, [c], balances)[0]
    assert balances["acme"].bundle_period == 2026 * 12 + 3 and r.bundle_seconds_consumed == 60
