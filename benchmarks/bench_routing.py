"""Routing decisions in process: single-call ``Router.authorize`` latency
(p50/p99, target p99 < 50 us) and ``authorize_batch`` throughput (target
1M decisions/s).

The catalog is generated here: ``sizes.routing_numbers`` 400 numbers on
prepaid and pay-as-you-go accounts, spread over plans that use every
feature (schedule, caller-region and IVR rules, sequential overflow, round
robin, random, weighted split, caller memory, caps, black and white lists).
Callers are real mobile prefixes of many provinces and landlines; times
spread over 2026. The ledger is a real LMDB file with live calls, cursors
and caller memory in it. Speed is reported, never asserted.

    python -m pytest benchmarks/bench_routing.py -q            # full
    RATING400_BENCH_SMALL=1 python -m pytest benchmarks/bench_routing.py -q
"""
from __future__ import annotations

import datetime as dt
import os
import random
import time

import numpy as np
import pyarrow as pa
import pytest
import yaml

from rating_core.router import ROUTE_REASON, Router
from rating_core.store import Ledger, Store

SMALL = os.environ.get("RATING400_BENCH_SMALL", "") not in ("", "0")
N_NUMBERS = 200 if SMALL else 5_000
N_SINGLE = 5_000 if SMALL else 200_000
N_BATCH = 20_000 if SMALL else 2_000_000
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PROVINCES = ["Guangdong", "Jiangsu", "Zhejiang", "Beijing", "Shanghai", "Sichuan", "Hubei", "Henan"]


def plan(i: int, rng: random.Random) -> dict:
    def dests(n, **extra):
        return [{"number": f"1{rng.choice('35789')}{rng.randrange(10**9):09d}", **extra} for _ in range(n)]

    kind = i % 5
    groups = {
        "day": {"strategy": ["sequential", "round_robin", "random", "weighted", "round_robin"][kind],
                "caller_memory": kind in (1, 4), "overflow": "night",
                "destinations": dests(3, ring_timeout=20, max_calls=50)},
        "night": {"destinations": [{"number": f"0755{rng.randrange(10**8):08d}"}]},
        "local": {"destinations": dests(2)},
    }
    if kind == 3:
        for d, w in zip(groups["day"]["destinations"], (50, 30, 20)):
            d["weight"] = w
    doc = {
        "max_hops": 4,
        "announcement": "all_busy",
        "closed_announcement": "closed",
        "groups": groups,
        "rules": [
            {"group": "local", "caller_regions": [rng.choice(PROVINCES)],
             "schedule": [{"day_kinds": ["workday"], "start": "09:00", "end": "18:00"}]},
            {"group": "day", "schedule": [{"day_kinds": ["workday"], "start": "08:00", "end": "20:00"},
                                          {"weekdays": ["sat"], "start": "09:00", "end": "12:00"}]},
            {"group": "night"},
        ],
        "blacklist": {"numbers": ["13800138000"], "prefixes": ["170", "171"], "regions": ["Hebei"]},
        "whitelist": {"numbers": ["031187654321"]},
    }
    if kind == 2:
        doc["ivr"] = {"prompt": "welcome", "options": [{"key": "1", "label": "sales", "group": "day"},
                                                        {"key": "2", "label": "local", "group": "local"}]}
        doc["rules"] = [{"group": "night", "ivr": "1", "schedule": [{"start": "20:00", "end": "08:00"}]}]
    return doc


@pytest.fixture(scope="module")
def routing_store(tmp_path_factory):
    rng = random.Random(400)
    root = tmp_path_factory.mktemp("routing-bench")
    n_plans = 25
    numbers = [f"400{i:07d}" for i in range(1, N_NUMBERS + 1)]
    accounts = {}
    for a in range(0, N_NUMBERS, 4):
        accounts[f"acc{a}"] = {
            "package": "prepaid" if a % 8 == 0 else "payg",
            "package_start": "2026-01-01",
            "numbers": [{"number": n, "home_city": "Shenzhen", "routing": f"plan{(a + k) % n_plans}"}
                        for k, n in enumerate(numbers[a:a + 4])],
        }
    catalog = {
        "name": "routing-bench",
        "destination_classes": ["mobile", "landline"],
        "destination_prefixes": {"1": "mobile", "0": "landline"},
        "time_bands": [{"name": "peak", "day_kinds": ["workday"], "hours": [8, 20]}, {"name": "off"}],
        "rates": {"peak": {"tiers": [{"price": 0.15}], "connect_fee": 0.05},
                  "off": {"tiers": [{"price": 0.10, "increment": 6}], "free_seconds": 3}},
        "packages": {"prepaid": {"kind": "prepaid", "fee": 3000, "period_months": 36,
                                 "rates": [{"rate": "peak", "band": "peak"}, {"rate": "off"}]},
                     "payg": {"kind": "payg", "rates": [{"rate": "peak"}]}},
        "routing_plans": {f"plan{i}": plan(i, rng) for i in range(n_plans)},
        "accounts": accounts,
    }
    (root / "catalog.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True))
    store = Store(root / "store")
    store.activate(store.compile(root / "catalog.yaml"))
    return root / "store", numbers


@pytest.fixture(scope="module")
def router(routing_store):
    store_dir, numbers = routing_store
    router = Router(Store(store_dir).open(), Ledger(store_dir), seed=1)
    # A ledger with history: live calls, cursors moved, callers remembered.
    at = int(dt.datetime(2026, 3, 4, 10, tzinfo=SHANGHAI).timestamp() * 1000)
    for i, number in enumerate(numbers[:40]):
        d = router.authorize(number, f"1391234{i:04d}", at, ivr_keys="1")
        if d.destinations:
            router.call_event(f"h{i}", number, "started", destination=d.destinations[0].number, at_ms=at)
            router.call_event(f"h{i}", number, "answered", destination=d.destinations[-1].number,
                              caller=f"1391234{i:04d}", at_ms=at + 20_000)
    return router


@pytest.fixture(scope="module")
def calls(routing_store, router):
    """Call setups: the same mix for both benchmarks."""
    _store, numbers = routing_store
    rng = np.random.default_rng(2026)
    from rating_core.compile.regions import region_source

    mobile = [p for p in region_source().city_prefixes if p.startswith("1") and len(p) == 7]
    landline = [p for p in region_source().city_prefixes if p.startswith("0")]
    n = max(N_SINGLE, N_BATCH)
    prefixes = np.array(mobile + landline[:200], dtype=object)
    pick = rng.integers(0, len(prefixes), n)
    tails = rng.integers(0, 10**4, n)
    callers = [f"{prefixes[p]}{t:04d}"[:12] if prefixes[p].startswith("0") else f"{prefixes[p]}{t:04d}"
               for p, t in zip(pick, tails)]
    callers[::97] = ["13800138000"] * len(callers[::97])  # some blacklisted
    start = int(dt.datetime(2026, 1, 1, tzinfo=SHANGHAI).timestamp() * 1000)
    at = start + rng.integers(0, 365 * 86_400_000, n)
    number = [numbers[i] for i in rng.integers(0, len(numbers), n)]
    keys = rng.choice(["", "1", "2"], n)
    return {"number": number, "caller": callers, "at_ms": at, "ivr_keys": keys}


def test_authorize_single_call_latency(benchmark, router, calls, report):
    number, caller, at, keys = calls["number"], calls["caller"], calls["at_ms"].tolist(), calls["ivr_keys"].tolist()
    samples = np.empty(N_SINGLE, np.int64)
    authorize = router.authorize
    clock = time.perf_counter_ns

    def run():
        for i in range(N_SINGLE):
            t0 = clock()
            authorize(number[i], caller[i], at[i], keys[i])
            samples[i] = clock() - t0

    for i in range(min(2000, N_SINGLE)):  # warm: caches of names and menus
        authorize(number[i], caller[i], at[i], keys[i])
    benchmark.pedantic(run, rounds=1, iterations=1)
    p50, p99, p999 = np.percentile(samples, [50, 99, 99.9]) / 1000
    load = os.getloadavg()[0]
    benchmark.extra_info.update(calls=N_SINGLE, p50_us=round(p50, 2), p99_us=round(p99, 2), p999_us=round(p999, 2),
                                load_average=round(load, 2))
    report(f"routing authorize (single call, in process): {N_SINGLE:,} calls, "
           f"p50 {p50:.1f} us, p99 {p99:.1f} us, p99.9 {p999:.1f} us (target p99 < 50 us; "
           f"load average {load:.1f} on {os.cpu_count()} cores)")


@pytest.mark.parametrize("edge", ["kernel", "keys", "strings"])
def test_authorize_batch_throughput(benchmark, router, calls, report, edge):
    """``kernel``: the compiled core alone on the columns the edge prepares
    (keys, coded IVR keys, caller memory, balances); ``keys``: the whole
    ``authorize_batch`` from numbers and IVR keys already coded (what a
    switch gateway or the gRPC batch path hands over); ``strings``: raw
    strings (Arrow arrays) normalised at the edge too."""
    n = N_BATCH
    strings = {"number": pa.array(calls["number"][:n]), "caller": pa.array(calls["caller"][:n]),
               "at_ms": calls["at_ms"][:n], "ivr_keys": pa.array(calls["ivr_keys"][:n].tolist())}
    if edge == "strings":
        run, args = router.authorize_batch, (strings,)
    else:
        from rating_core.numbers import keys_of, normalize_array

        from rating_core.routes import ivr_path_code

        codes = {k: ivr_path_code(k) for k in ("", "1", "2")}
        keyed = {"number_key": keys_of(normalize_array(strings["number"])[0]),
                 "caller_key": keys_of(normalize_array(strings["caller"])[0]),
                 "at_ms": strings["at_ms"], "ivr_path": np.vectorize(codes.get, otypes=[np.int64])(strings["ivr_keys"])}
        if edge == "keys":
            run, args = router.authorize_batch, (keyed,)
        else:
            prepared, _invalid, active, cursor = router.prepare_batch(keyed)

            def run(cols):  # fresh working state each round, as authorize_batch takes
                return router.core.decide_batch(cols, 1, 0, True, active.copy(), cursor.copy(), router.threads)

            args = (prepared,)
    out = benchmark.pedantic(run, args=args, rounds=3, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    reasons = np.bincount(out["reason"], minlength=len(ROUTE_REASON))
    mix = {ROUTE_REASON[i]: int(c) for i, c in enumerate(reasons) if c}
    load = os.getloadavg()[0]
    benchmark.extra_info.update(calls=n, decisions_per_s=round(n / median), reasons=mix,
                                threads=router.threads, load_average=round(load, 2))
    report(f"routing batch ({edge}): {n:,} calls, median {median * 1000:.1f} ms = "
           f"{n / median / 1e6:.2f}M decisions/s (target 1M/s; load average {load:.1f} on {os.cpu_count()} cores); "
           f"reasons {mix}")
    assert out["reason"].shape == (n,)
