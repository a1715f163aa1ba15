"""Billing: statements for many accounts, the package advisor on a year of
one account, and the caller CRM's cost per committed CDR.

- statements: 100k accounts, a month of 10M rated calls (CALLS_SCHEMA, made
  synthetically; rating them is benchmarked elsewhere) -> every statement.
  Target < 30 s. Floor in the same run: one Arrow group-by of the charges
  per account (the least work any bill needs).
- advisor: a year of one busy account's calls (100k) priced under every
  demo package. Target < 2 s. Floor: one kernel pass over the same calls.
- CRM: ``CRM.record`` per committed CDR (100k calls from 20k callers, in
  commits of 1,000), against the commit without the CRM (same run).

RATING400_BENCH_SMALL=1 shrinks every size.
"""
from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pyarrow as pa
import pytest

from rating_core.billing.advisor import Advisor
from rating_core.billing.calls import CALLS_SCHEMA
from rating_core.billing.statements import build_statements, parse_month
from rating_core.store import Store

from conftest import SMALL

N_ACCOUNTS = 2_000 if SMALL else 100_000
N_CALLS = 200_000 if SMALL else 10_000_000
ADVISOR_CALLS = 5_000 if SMALL else 100_000
CRM_CALLS = 5_000 if SMALL else 100_000
CST = dt.timezone(dt.timedelta(hours=8))
MONTH_START = int(dt.datetime(2026, 11, 1, tzinfo=CST).timestamp() * 1000)


def big_catalog(root, n_accounts: int):
    root.mkdir(parents=True, exist_ok=True)
    import pyarrow.csv as pacsv

    pacsv.write_csv(pa.table({
        "number": [f"400{i:07d}" for i in range(n_accounts)],
        "account": [f"a{i:06d}" for i in range(n_accounts)],
        "status": ["active"] * n_accounts, "billing_start": ["agent_answer"] * n_accounts,
        "home_city": ["Shenzhen"] * n_accounts, "routing": [""] * n_accounts,
    }), root / "numbers.csv")
    packages = ["payg", "pre_480", "bundle_1k"]
    lines = ["name: billing-bench", "destination_classes: [mobile, landline]",
             'destination_prefixes: {"1": mobile, "0": landline}',
             "time_bands: [{name: peak, day_kinds: [workday], hours: [8, 20]}, {name: offpeak}]",
             "rates: {std: {tiers: [{price: 0.12}]}}",
             "packages:",
             "  payg: {kind: payg, rates: [{rate: std}]}",
             "  pre_480: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rental: 5, rates: [{rate: std}]}",
             "  bundle_1k: {kind: bundle, included_minutes: 1000, overage_price: 0.1, rental: 99, rates: [{rate: std}]}",
             "features: {sms: {fee: 0.1, per: missed_call}, rec: {fee: 10, per: month}}",
             "numbers_csv: numbers.csv", "accounts:"]
    for i in range(n_accounts):
        feats = "[sms, rec]" if i % 4 == 0 else "[]"
        lines.append(f"  a{i:06d}: {{package: {packages[i % 3]}, package_start: 2026-0{1 + i % 9}-01, "
                     f"features: {feats}}}")
    (root / "catalog.yaml").write_text("\n".join(lines) + "\n")
    store = Store(root / "store")
    store.activate(store.compile(root / "catalog.yaml"))
    return store


def month_of_calls(n: int, n_accounts: int, seed: int = 10) -> pa.Table:
    rng = np.random.default_rng(seed)
    acc = rng.integers(0, n_accounts, n)
    start = np.sort(MONTH_START + rng.integers(0, 30 * 86_400_000, n))
    billed = rng.integers(0, 10, n) * 60
    answered = billed > 0
    charge = billed // 60 * 1200
    accounts = pa.array([f"a{i:06d}" for i in range(n_accounts)]).take(pa.array(acc))
    numbers = pa.array([f"400{i:07d}" for i in range(n_accounts)]).take(pa.array(acc))
    classes = pa.array(["mobile", "landline"]).take(pa.array(rng.integers(0, 2, n)))
    callers = pa.array(["local", "out_of_town"]).take(pa.array(rng.integers(0, 2, n)))
    bands = pa.array(["peak", "offpeak"]).take(pa.array(rng.integers(0, 2, n)))
    zeros = np.zeros(n, np.int64)
    cols = {
        "call_id": pa.array(np.arange(n).astype(str)), "account": accounts, "package": pa.nulls(n, pa.string()),
        "number": numbers, "caller": pa.nulls(n, pa.string()), "forwarded_to": pa.nulls(n, pa.string()),
        "start_ms": start, "end_ms": start + billed * 1000, "answered": answered, "ivr_keys": pa.nulls(n, pa.string()),
        "destination_class": classes, "caller_class": callers, "time_band": bands,
        "caller_city": pa.nulls(n, pa.string()), "caller_province": pa.nulls(n, pa.string()),
        "caller_carrier": pa.nulls(n, pa.string()), "billable_seconds": billed, "billed_seconds": billed,
        "charge": charge, "credit_consumed": zeros, "bundle_seconds_consumed": zeros, "overage": zeros,
        "balance_after": zeros,
    }
    return pa.table(cols, schema=CALLS_SCHEMA)


@pytest.fixture(scope="module")
def statements_world(tmp_path_factory):
    store = big_catalog(tmp_path_factory.mktemp("bill-bench"), N_ACCOUNTS)
    return store.open(), month_of_calls(N_CALLS, N_ACCOUNTS)


def test_statements_100k_accounts(benchmark, statements_world, report):
    snapshot, calls = statements_world
    t0 = time.perf_counter()
    floor = calls.group_by("account").aggregate([("charge", "sum")])
    floor_s = time.perf_counter() - t0
    assert floor.num_rows <= N_ACCOUNTS
    out = benchmark.pedantic(build_statements, args=(calls, snapshot, [], [parse_month("2026-11")]),
                             rounds=1 if not SMALL else 2, iterations=1)
    assert len(out) == N_ACCOUNTS
    assert sum(s.usage for s in out) == int(calls.column("charge").to_numpy().sum())
    median = benchmark.stats.stats.median
    report(f"statements: {N_ACCOUNTS:,} accounts from {N_CALLS:,} calls in {median:.2f} s (target < 30 s); "
           f"floor (one group-by per account) {floor_s:.2f} s, {median / floor_s:.1f}x the floor")


def year_of_one_account(n: int, number: str, seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    # hangzhou_tea's package year (from 2026-02-01): the advisor prices only
    # calls the rater bills, and calls before the start are package_not_started.
    year = int(dt.datetime(2026, 2, 1, tzinfo=CST).timestamp() * 1000)
    start = np.sort(year + rng.integers(0, 365 * 86_400_000, n))
    talk = rng.integers(0, 600, n) * 1000
    answer = start + 8000
    return pa.table({
        "call_id": pa.array(np.arange(n).astype(str)),
        "caller": pa.array((13_800_000_000 + rng.integers(0, 99_999_999, n)).astype(str)),
        "number": pa.array([number] * n), "forwarded_to": pa.array(["02088886666"] * n),
        "start": start, "agent_answer": pa.array(np.where(talk > 0, answer, 0), mask=talk == 0),
        "end": answer + talk,
    })


def test_advisor_year_of_one_account(benchmark, demo_snapshot, report):
    from rating_core.kernels import rating

    snapshot = demo_snapshot
    calls = year_of_one_account(ADVISOR_CALLS, "4006431271")  # hangzhou_tea
    advisor = Advisor(snapshot)
    advice = benchmark.pedantic(advisor.advise, args=("hangzhou_tea", calls), rounds=3, iterations=1)
    assert advice.calls + sum(advice.left_out.values()) == ADVISOR_CALLS
    assert advice.calls >= 0.9 * ADVISOR_CALLS and len(advice.months) >= 12
    prepared = advisor.prepare(calls)
    arrays = {k: v[prepared.good] for k, v in prepared.cdr.items()}
    t0 = time.perf_counter()
    rating.rate(snapshot.tables, arrays, {"credit_left": snapshot.tables["account_opening_credit"].copy(),
                                          "bundle_period": np.full(len(snapshot.meta["accounts"]), -1, np.int32),
                                          "bundle_used": np.zeros(len(snapshot.meta["accounts"]), np.int64)},
                threads=1)
    floor_s = time.perf_counter() - t0
    median = benchmark.stats.stats.median
    report(f"advisor: a year of one account ({ADVISOR_CALLS:,} calls, {len(snapshot.meta['packages'])} packages) "
           f"in {median * 1000:.0f} ms (target < 2 s); one kernel pass {floor_s * 1000:.1f} ms")


def test_crm_update_cost_per_cdr(benchmark, demo_snapshot, report, tmp_path):
    from rating_core.billing.calls import from_rated_table
    from rating_core.billing.crm import CRM
    from rating_core.ledger import Ledger
    from rating_core.rater import Rater

    snapshot = demo_snapshot
    rng = np.random.default_rng(5)
    calls = year_of_one_account(CRM_CALLS, "4006431271")
    callers = (13_800_000_000 + rng.integers(0, 20_000, CRM_CALLS)).astype(str)
    calls = calls.set_column(1, "caller", pa.array(callers))
    rated = from_rated_table(Rater(snapshot).rate(calls).rated)
    batches = [rated.slice(i, 1000) for i in range(0, rated.num_rows, 1000)]
    ledger = Ledger(tmp_path / "crm")  # a ledger of its own: the CRM's databases only
    crm = CRM(ledger)

    def run():
        with ledger.env.begin(write=True) as txn:
            txn.drop(crm.db, delete=False)
            txn.drop(crm.seen, delete=False)
        for b in batches:
            with ledger.env.begin(write=True) as txn:
                crm.record(txn, b)

    def empty_commits():  # the floor: the same number of LMDB write transactions
        for _ in batches:
            with ledger.env.begin(write=True) as txn:
                txn.put(b"bench", b"x", db=crm.seen)

    t0 = time.perf_counter()
    empty_commits()
    floor_s = time.perf_counter() - t0
    benchmark.pedantic(run, rounds=3, iterations=1)
    median = benchmark.stats.stats.median
    assert sum(r.calls for r in crm.callers("hangzhou_tea")) == rated.num_rows
    ledger.close()
    # The peer that matters: an exactly-once commit (Engine.rate_and_commit)
    # of the same CDRs in batches of 1,000, with the CRM and without it.
    from rating_core.demo import write_demo_catalog
    from rating_core.engine import Engine

    def commit_all(root, with_crm: bool) -> float:
        store = Store(root)
        store.activate(store.compile(write_demo_catalog(root.parent / (root.name + "-catalog"))))
        del store
        engine = Engine.open(root, threads=1)
        if not with_crm:
            engine.crm.record = lambda txn, calls, fresh=True: 0
        try:
            t0 = time.perf_counter()
            for i in range(0, calls.num_rows, 1000):
                engine.rate_and_commit(calls.slice(i, 1000))
            return time.perf_counter() - t0
        finally:
            engine.close()

    without = commit_all(tmp_path / "plain", False)
    with_crm = commit_all(tmp_path / "crm-on", True)
    report(f"CRM: {median / rated.num_rows * 1e6:.1f} us per committed CDR ({rated.num_rows:,} CDRs, 20k callers, "
           f"commits of 1,000; empty write transactions alone {floor_s / rated.num_rows * 1e6:.2f} us per CDR); "
           f"exactly-once commit {calls.num_rows / without:,.0f} CDR/s without the CRM, "
           f"{calls.num_rows / with_crm:,.0f} CDR/s with it ({with_crm / without:.2f}x the time)")


READ_BATCHES = 24 if SMALL else 240  # a year of gRPC commits in time order, 20 a month
READ_BATCH_CALLS = 1_000 if SMALL else 5_000
READ_ACCOUNTS = 200 if SMALL else 2_000


def test_one_account_month_read(benchmark, tmp_path, report):
    """What GetStatement / Advise read: one account's committed calls of one
    month (``committed_records``), through the (account, month) batch index,
    beside the scan of every committed batch it replaced (same ledger, same
    run). The ledger holds a year of calls committed in time order."""
    import pyarrow.compute as pc

    from rating_core.billing.sources import committed_records
    from rating_core.ledger import formats, records
    from rating_core.store import Ledger

    rng = np.random.default_rng(12)
    ledger = Ledger(tmp_path / "store")
    year = int(dt.datetime(2026, 1, 1, tzinfo=CST).timestamp() * 1000)
    step = 365 * 86_400_000 // (READ_BATCHES * READ_BATCH_CALLS)
    names = pa.array([f"a{i:06d}" for i in range(READ_ACCOUNTS)])
    for b in range(READ_BATCHES):
        n = READ_BATCH_CALLS
        first = b * n
        t = pa.table({"call_id": pa.array(np.arange(first, first + n).astype(str)),
                      "account": names.take(pa.array(rng.integers(0, READ_ACCOUNTS, n))),
                      "start": year + np.arange(first, first + n, dtype=np.int64) * step,
                      "charge_minor": rng.integers(0, 10_000, n)})
        with ledger.env.begin(write=True) as txn:
            records.store(ledger, txn, pa.array([f"c{i}".encode() for i in range(first, first + n)], pa.binary()), t)
    m = parse_month("2026-06")
    from rating_core.billing.statements import month_bounds

    _, _, lo, hi = month_bounds(m)
    account = "a000007"

    def scan():  # the read before the index: decode every batch, filter
        parts = []
        with ledger.env.begin() as txn:
            for _, blob in txn.cursor(db=ledger.db[formats.CALL_BATCHES]):
                t = pa.ipc.open_stream(bytes(blob)).read_all()
                mask = pc.and_(pc.and_(pc.greater_equal(t.column("start"), lo), pc.less(t.column("start"), hi)),
                               pc.equal(t.column("account"), account))
                parts.append(t.filter(mask))
        return pa.concat_tables(parts)

    t0 = time.perf_counter()
    for _ in range(3):
        full = scan()
    scan_s = (time.perf_counter() - t0) / 3
    got = benchmark.pedantic(committed_records, args=(ledger, lo, hi, account), rounds=5, iterations=1)
    assert sorted(got.column("call_id").to_pylist()) == sorted(full.column("call_id").to_pylist())
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(scan_s=scan_s, batches=READ_BATCHES)
    report(f"one account's month from the ledger ({READ_BATCHES} batches, {READ_BATCHES * READ_BATCH_CALLS:,} calls): "
           f"indexed {median * 1000:.1f} ms vs scanning every batch {scan_s * 1000:.1f} ms "
           f"({scan_s / median:.0f}x)")
    ledger.close()
