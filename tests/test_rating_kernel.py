"""The rating kernel agrees with the reference on every field and on the
closing account state: random catalogs and calls (hypothesis), then the
cases the rules turn on, spelled out."""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating_core import layout
from rating_core.catalog.schema import Catalog
from rating_core.compile import compile_catalog
from rating_core.compile.regions import region_source
from rating_core.kernels import rating
from rating_core.reference import Balance, Call, Rated, Regions, opening_balances, rate_reference

from engines import as_rated, closing_late_used, kernel_rate, kernel_state
from strategies import calls, catalogs, cdr_columns, local_ms, priced_catalogs

REGIONS = Regions.from_source(region_source())

def opening_state(tables) -> dict[str, np.ndarray]:
    accounts = len(tables["account_package"])
    return {
        "credit_left": tables["account_opening_credit"].copy(),
        "bundle_period": np.full(accounts, -1, np.int32),
        "bundle_used": np.zeros(accounts, np.int64),
    }


def rate_both(catalog: Catalog, call_list: list[Call], threads: int = 2, balances=None):
    """Rate with the kernel and the reference; assert they agree; return
    the reference's rows and closing balances. ``balances``: opening
    balances by account name (default: each account at its package start)."""
    tables, meta = compile_catalog(catalog)
    balances = opening_balances(catalog) if balances is None else balances
    state = kernel_state(tables, meta, balances)
    out = kernel_rate(tables, cdr_columns(call_list), state, threads)
    expected = rate_reference(catalog, call_list, balances, REGIONS)

    assert set(out) == {name for name, _ in rating.OUTPUT}
    assert all(len(col) == len(call_list) for col in out.values())
    for i, want in enumerate(expected):
        got = as_rated(out, meta, i)
        assert got == want, f"call {i}: {call_list[i]}\n" + "\n".join(
            f"  {f.name}: kernel {getattr(got, f.name)!r} reference {getattr(want, f.name)!r}"
            for f in dataclasses.fields(Rated)
            if getattr(got, f.name) != getattr(want, f.name)
        )
    for a, account in enumerate(meta["accounts"]):
        b = balances[account]
        assert (state["credit_left"][a], state["bundle_period"][a], state["bundle_used"][a]) == (
            b.credit_left, b.bundle_period, b.bundle_used), account
    late = closing_late_used(state, meta)
    for account in meta["accounts"]:
        assert late[account] == {m: u for m, u in balances[account].late_used.items() if u}, account
    return expected, balances


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_kernel_agrees_with_reference(data):
    catalog = data.draw(catalogs(), "catalog")
    call_list = data.draw(calls(catalog), "calls")
    rate_both(catalog, call_list, threads=data.draw(st.sampled_from([1, 2]), "threads"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_charges_and_settlement_agree_with_reference(data):
    catalog = data.draw(priced_catalogs(), "catalog")
    call_list = data.draw(calls(catalog, max_size=40), "calls")
    rate_both(catalog, call_list, threads=2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_late_bundle_calls_agree_with_reference(data):
    """Late CDRs (README "Late CDRs"): the account's latest bundle month is
    later than some calls' (a call answered after midnight rated before one
    answered before it; an opening state from a later month), and the
    ledger holds usage of earlier months: each late call draws from its own
    month's allowance, in kernel (with the rater's completion of the usage
    table) and reference alike, and the usage kept after agrees."""
    catalog = data.draw(priced_catalogs(), "catalog")
    call_list = data.draw(calls(catalog, max_size=30), "calls")
    balances = opening_balances(catalog)
    months = [2026 * 12 + m for m in range(12)]  # the anchors' year
    for b in balances.values():
        b.bundle_period = data.draw(st.sampled_from([-1, *months]), "latest month")
        b.bundle_used = data.draw(st.integers(0, 700), "used") if b.bundle_period >= 0 else 0
        earlier = [m for m in months if m < b.bundle_period]
        if earlier:
            b.late_used = data.draw(st.dictionaries(st.sampled_from(earlier), st.integers(0, 700), max_size=4),
                                    "earlier months' usage")
    rate_both(catalog, call_list, threads=data.draw(st.sampled_from([1, 2]), "threads"), balances=balances)


@pytest.mark.skipif(not rating.DEBUG_BUILD, reason="needs the debug build (RATING400_DEBUG=1); CI runs it")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_no_compiled_catalog_makes_the_kernel_index_outside_a_table(data):
    """Bounds-checked kernels (IndexError on any stray index) over random
    catalogs, every band rule, band sets and overage rates: every index the
    kernel takes from a table was proven in range at compile time."""
    catalog = data.draw(catalogs(), "catalog")
    tables, _ = compile_catalog(catalog)
    layout.check_indexes(tables)
    call_list = data.draw(calls(catalog, max_size=40), "calls")
    rating.rate(tables, cdr_columns(call_list), opening_state(tables), threads=1)


@pytest.mark.parametrize("table, value", [
    ("number_account", 5), ("account_package", -1), ("rate_table", 9), ("package_overage_rate", 7),
    ("package_band_set", 3), ("band_of", 100), ("dest_values", 4), ("region_values", 10**6), ("rate_first_tier", 50),
    ("day_kind", 3), ("rate_denominator", 7), ("band_until", 0),
])
def test_check_indexes_refuses_any_index_outside_its_table(table, value):
    tables, _ = compile_catalog(fixed_catalog("bundle", included_minutes=1, overage_price=0.1))
    layout.check_indexes(tables)
    bad = dict(tables)
    bad[table] = tables[table].copy()
    bad[table].reshape(-1)[-1] = value
    with pytest.raises(ValueError, match=table):
        layout.check_indexes(bad)


def test_ids_match_the_layout():
    for enum, ids in rating.CODES.items():
        names = getattr(layout, enum)
        for name, i in ids.items():
            assert names[i] == name, enum
    assert len(rating.CODES["RATE_STATUS"]) == len(layout.RATE_STATUS)


# --- the cases the rules turn on -------------------------------------------

SHENZHEN_MOBILE = "13005400000"  # 130054: Shenzhen in region data
BEIJING_LANDLINE = "01012345678"


def fixed_catalog(kind="payg", billing_start="agent_answer", **package) -> Catalog:
    return Catalog.model_validate(
        {
            "destination_classes": ["mobile", "landline"],
            "destination_prefixes": {"13": "mobile", "0": "landline", "010": "landline"},
            "time_bands": [
                {"name": "holiday", "day_kinds": ["holiday"]},
                {"name": "day", "hours": [8, 20]},
                {"name": "night"},
            ],
            "rates": {
                "std": {"tiers": [{"price": 0.12}, {"start": 180, "price": 0.0707, "increment": 6}],
                        "connect_fee": 0.01, "rounding": "half_up"},
                "local": {"tiers": [{"price": 0.08, "increment": 6}], "free_seconds": 3},
            },
            "packages": {"p": {"kind": kind, "rates": [{"rate": "local", "caller": "local"}, {"rate": "std"}], **package}},
            "accounts": {
                "acme": {
                    "package": "p",
                    "package_start": "2026-08-31",
                    "numbers": [
                        {"number": "4001234567", "home_city": "Shenzhen", "billing_start": billing_start},
                        {"number": "4001234568", "home_city": "Shenzhen", "status": "suspended"},
                    ],
                }
            },
        }
    )


def call(start: int, seconds: float, *, number="4001234567", caller=BEIJING_LANDLINE, forwarded="13912345678",
         answered=True) -> Call:
    end = start + int(seconds * 1000)
    return Call(number, caller, forwarded, start, end,
                ivr_answer_ms=start if answered else None, agent_answer_ms=start if answered else None)


SEP30_2350 = local_ms(2026, 9, 30, 23, 50)


@pytest.mark.parametrize("kind", ["payg", "prepaid", "bundle"])
def test_explicit_cases(kind):
    # Each kind's own fields: a field its kind does not use is a catalog problem (breaker N12 F8).
    own = {"payg": {}, "prepaid": {"fee": 50, "period_months": 1},
           "bundle": {"included_minutes": 3, "overage_price": 0.1}}[kind]
    catalog = fixed_catalog(kind, **own)
    t = local_ms(2026, 9, 29, 10, 0)
    cases = [
        call(t, 0),  # zero-length call
        call(t + 1000, 30, answered=False),  # unanswered
        call(t + 2000, 0.001),  # one millisecond: truncated to 0 billable seconds
        call(local_ms(2026, 9, 29, 23, 59), 120),  # across midnight: night band
        call(local_ms(2026, 9, 29, 19, 59), 120),  # across a band boundary: day band
        call(SEP30_2350, 1200),  # into the National Day holiday: workday night band
        call(local_ms(2026, 10, 1, 0, 0), 1200),  # on the holiday
        call(t, 60, number="4009999999"),  # unknown number
        call(t, 60, number=None),  # missing number
        call(t, 60, number="4001234568"),  # suspended number
        call(t, 60, caller=None),  # malformed caller: no region, out of town
        call(t, 60, caller=SHENZHEN_MOBILE),  # local caller
        call(t, 2, caller=SHENZHEN_MOBILE),  # within free seconds
        call(t, 60, forwarded=None),  # malformed forwarded-to: no class
        call(t, 60, forwarded="999"),  # no destination class
        call(local_ms(2026, 8, 30, 23, 59), 60),  # before the package start
        call(t, 200),  # a call into the second tier (bundle: runs out mid-call)
        call(local_ms(2026, 9, 29, 23, 59), 60),  # prepaid: the last minute before expiry
        call(local_ms(2026, 9, 30, 0, 0), 60),  # prepaid: expired (Aug 31 + 1 month = Sep 30)
        call(local_ms(2026, 10, 31, 23, 59), 240),  # prepaid: expired; bundle: new month
    ]
    rated, balances = rate_both(catalog, cases)
    assert [r.status for r in rated[7:10]] == ["unknown_number", "unknown_number", "number_not_active"]
    assert (rated[0].status, rated[0].charge) == ("rated", 0)
    assert (rated[1].billable_seconds, rated[1].charge) == (0, 0)
    assert (rated[2].billable_seconds, rated[2].charge) == (0, 0)
    assert [r.time_band for r in rated[3:7]] == ["night", "day", "night", "holiday"]
    assert (rated[10].caller_city, rated[10].caller_class) == (None, "out_of_town")
    assert (rated[11].caller_city, rated[11].caller_class, rated[11].rate) == ("Shenzhen", "local", "local")
    assert rated[12].charge == 0
    assert [r.status for r in rated[13:16]] == ["no_destination_class"] * 2 + ["package_not_started"]
    assert rated[16].units == 3 + 4  # 3 minutes, then 4 six-second increments
    if kind == "prepaid":
        assert [r.credit_consumed > 0 for r in rated].count(True) >= 2
        assert rated[-3].credit_consumed > 0
        assert rated[-2].credit_consumed == 0 and rated[-2].overage == rated[-2].charge > 0
        assert rated[-1].credit_consumed == 0 and rated[-1].overage == rated[-1].charge > 0
        assert balances["acme"].credit_left == 0
    if kind == "bundle":
        assert any(0 < r.bundle_seconds_consumed < r.billed_seconds for r in rated)  # ran out mid-call
        assert balances["acme"].bundle_period == 2026 * 12 + 9


def test_unsorted_input_is_settled_in_time_order():
    catalog = fixed_catalog("prepaid", fee=0.3, period_months=3)  # 3000 of credit
    t = local_ms(2026, 9, 29, 10, 0)
    late, early, same = call(t + 60_000, 60), call(t, 60), call(t, 60)
    rated, _ = rate_both(catalog, [late, early, same])
    # early and same (equal starts: input order) take the credit first
    assert [r.credit_consumed for r in rated] == [400, 1300, 1300]
    assert [r.balance_after for r in rated] == [0, 1700, 400]


def test_bundle_use_beyond_a_smaller_allowance_leaves_nothing_not_less():
    # Opening state from a period with a larger allowance than the package has now.
    catalog = fixed_catalog("bundle", included_minutes=1, overage_price=0.1)
    balances = {"acme": Balance(bundle_period=2026 * 12 + 8, bundle_used=300)}
    rated, closing = rate_both(catalog, [call(local_ms(2026, 9, 29, 10, 0), 45)], balances=balances)
    assert (rated[0].bundle_seconds_consumed, rated[0].charge, rated[0].balance_after) == (0, 1000, -240)
    assert closing["acme"].bundle_used == 300


def test_duplicate_cdrs_are_each_rated():
    # De-duplication by call id is the edge's job; the kernel rates rows.
    catalog = fixed_catalog("bundle", included_minutes=1, overage_price=0.1)
    c = call(local_ms(2026, 9, 29, 10, 0), 45)
    rated, _ = rate_both(catalog, [c, c])
    assert [r.bundle_seconds_consumed for r in rated] == [60, 0]


def test_state_is_updated_in_place_and_carries_over():
    catalog = fixed_catalog("prepaid", fee=0.3, period_months=3)
    tables, _ = compile_catalog(catalog)
    state = opening_state(tables)
    cdr = cdr_columns([call(local_ms(2026, 9, 29, 10, 0), 60)])
    rating.rate(tables, cdr, state, 1)
    assert state["credit_left"][0] == 3000 - 1300
    out = rating.rate(tables, cdr, state, 1)
    assert state["credit_left"][0] == 400 and out["balance_after"][0] == 400


def test_output_buffers_can_be_reused():
    catalog = fixed_catalog("prepaid", fee=0.3, period_months=3)
    tables, _ = compile_catalog(catalog)
    cdr = cdr_columns([call(local_ms(2026, 9, 29, 10, 0), 60), call(local_ms(2026, 9, 29, 11, 0), 60)])
    fresh = rating.rate(tables, cdr, opening_state(tables), 1)
    buffers = {name: np.full(2, 99, dtype) for name, dtype in rating.OUTPUT}
    reused = rating.rate(tables, cdr, opening_state(tables), 1, out=buffers)
    for name, _ in rating.OUTPUT:
        assert reused[name] is buffers[name]
        np.testing.assert_array_equal(reused[name], fresh[name], name)
    with pytest.raises(ValueError):
        rating.rate(tables, cdr, opening_state(tables), 1, out={n: a[:1] for n, a in buffers.items()})


def test_large_tables_agree_with_a_plain_search():
    # Bucket-indexed lookups against prefix.lookup (one plain binary search)
    # on tables far larger than the random catalogs': 20k destination
    # prefixes, 5k numbers.
    from rating_core.numbers import build_prefix_table, keys_of, lookup
    import pyarrow as pa

    rng = np.random.default_rng(11)
    prefixes = sorted({"".join(map(str, rng.integers(0, 10, rng.integers(1, 9)))) for _ in range(20_000)})
    classes = rng.integers(0, 2, len(prefixes)).astype(np.int32)  # the catalog's two classes
    catalog = fixed_catalog()
    tables, _ = compile_catalog(catalog)
    tables["dest_starts"], tables["dest_values"] = build_prefix_table(prefixes, classes.tolist())
    numbers = np.unique(rng.integers(0, 10_000_000, 5_000))
    tables["number_key"] = keys_of(pa.array([f"400{n:07d}" for n in numbers]))
    for name in ["number_account", "number_status", "number_billing_start", "number_home_city"]:
        tables[name] = np.zeros(len(numbers), tables[name].dtype)
    n = 50_000
    forwarded = keys_of(pa.array(["".join(map(str, rng.integers(0, 10, rng.integers(1, 13)))) for _ in range(n)]))
    forwarded[::7] = 0
    called = keys_of(pa.array([f"400{n:07d}" for n in rng.integers(0, 10_000_000, n)]))
    called[::3] = tables["number_key"][rng.integers(0, len(numbers), len(called[::3]))]
    cdr = cdr_columns([call(local_ms(2026, 9, 29, 10, 0), 60)] * n)
    cdr["forwarded_key"], cdr["number_key"] = forwarded, called
    out = rating.rate(tables, cdr, opening_state(tables), 2)
    want_class = lookup(tables["dest_starts"], tables["dest_values"], forwarded)
    known = np.isin(called, tables["number_key"])
    np.testing.assert_array_equal(out["destination_class"], want_class)
    np.testing.assert_array_equal(out["status"] == layout.RATE_STATUS.index("unknown_number"), ~known)
    assert 0.2 < known.mean() < 0.9


def test_a_catalog_without_numbers_knows_no_number():
    catalog = fixed_catalog()
    catalog = catalog.model_copy(update={"accounts": {"acme": catalog.accounts["acme"].model_copy(update={"numbers": []})}})
    rated, _ = rate_both(catalog, [call(local_ms(2026, 9, 29, 10, 0), 60)])
    assert rated[0].status == "unknown_number"


@pytest.mark.parametrize("rounding", ["up", "half_up", "down"])
def test_huge_prices_and_denominators_stay_exact(rounding):
    # lcm(3593, 3581, 3571) ~ 4.6e10 and 1e9 yuan per unit: the exact total
    # needs the 128-bit path of the one rounding point.
    tiers = [{"start": 0, "price": 1_000_000_000, "unit": 3593, "increment": 7},
             {"start": 600, "price": 999_999_999.9999, "unit": 3581, "increment": 60},
             {"start": 3600, "price": 123_456_789.0123, "unit": 3571, "increment": 3600}]
    catalog = fixed_catalog()
    catalog = catalog.model_copy(update={"rates": {**catalog.rates, "std": Catalog.model_validate(
        {"destination_classes": ["x"], "rates": {"r": {"tiers": tiers, "rounding": rounding}}, "packages": {},
         "accounts": {}}).rates["r"]}})
    t = local_ms(2026, 9, 29, 10, 0)
    rated, _ = rate_both(catalog, [call(t, s) for s in (1, 599.5, 601, 3599, 3601, 80_000)])
    assert rated[-1].charge * 3593 * 3581 * 3571 > 2**64  # the sum over the denominator exceeded int64


def test_no_cdrs():
    rated, _ = rate_both(fixed_catalog(), [])
    assert rated == []


def test_a_large_batch_across_threads_agrees_with_one_thread():
    catalog = fixed_catalog("bundle", included_minutes=30, overage_price=0.1)
    tables, _ = compile_catalog(catalog)
    rng = np.random.default_rng(7)
    n = 200_000
    start = local_ms(2026, 9, 1) + np.sort(rng.integers(0, 60 * 86_400_000, n))
    cdr = cdr_columns([call(0, 0)] * n)
    cdr["start_ms"] = start
    cdr["ivr_answer_ms"] = cdr["agent_answer_ms"] = start
    cdr["end_ms"] = start + rng.integers(0, 600_000, n)
    cdr["caller_key"] = rng.choice(cdr_columns([call(0, 0, caller=SHENZHEN_MOBILE)])["caller_key"].tolist()
                                   + [0, cdr["caller_key"][0]], n)
    results = []
    for threads in (1, 2):
        state = opening_state(tables)
        results.append((rating.rate(tables, cdr, state, threads), state))
    (one, s1), (two, s2) = results
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], name)
    for name in s1:
        np.testing.assert_array_equal(s1[name], s2[name], name)
    assert (one["status"] == 0).all()
