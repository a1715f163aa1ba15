"""The demo: its catalog compiles, its CDRs look like a platform's export
and rate end to end with every path of the rater showing."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rating_core import cdr
from rating_core.demo import demo_cdrs, write_demo_catalog
from rating_core.rater import Rater
from rating_core.store import Store

N = 40_000


@pytest.fixture(scope="module")
def rater(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    store = Store(root / "store")
    store.activate(store.compile(write_demo_catalog(root / "catalog")))
    return Rater(store.open())


@pytest.fixture(scope="module")
def cdrs():
    return demo_cdrs(N, seed=11)


def test_catalog_has_the_advertised_packages(rater):
    meta = rater.meta
    assert len(meta["packages"]) >= 6 and 20 <= len(meta["accounts"]) <= 50
    assert meta["destination_classes"] == ["mobile", "landline", "trunk"]
    assert set(meta["bands"]) == {"holiday", "peak", "offpeak"}
    # Prices sit in the published 0.08-0.20 yuan per minute range (the
    # intro tier, 0.22 for 3 minutes, is 0.073 a minute).
    t = rater.tables
    per_minute = t["tier_price"] * 60 // t["tier_unit"]
    assert per_minute.min() >= 700 and per_minute.max() <= 2000


def test_cdrs_are_deterministic_and_shaped_like_an_export(cdrs):
    assert cdrs.column_names == list(cdr.CDR_COLUMNS)
    assert cdrs.num_rows == N
    assert demo_cdrs(500, seed=11).equals(demo_cdrs(500, seed=11))
    answered = pc.is_valid(cdrs.column("agent_answer")).to_numpy(zero_copy_only=False).mean()
    assert 0.70 < answered < 0.80
    start = cdrs.column("start").cast(pa.int64()).to_numpy(zero_copy_only=False)
    agent = cdrs.column("agent_answer").cast(pa.int64()).to_numpy(zero_copy_only=False)
    end = cdrs.column("end").cast(pa.int64()).to_numpy(zero_copy_only=False)
    ok = ~np.isnan(agent.astype(float)) & ~np.isnan(end.astype(float))
    talk = (end[ok] - agent[ok]) / 1000
    assert 60 < np.median(talk) < 120 and talk.max() > 1800  # median ~90 s, a long tail
    # Mostly in time order (a little jitter), over October 2026.
    s = start[~np.isnan(start.astype(float))]
    assert (np.diff(s) >= 0).mean() > 0.97
    callers = cdrs.column("caller")
    mobile = pc.match_substring_regex(callers, r"^1[3-9]\d{9}$")
    assert 0.5 < pc.mean(pc.cast(mobile, pa.int8())).as_py() < 0.7


def test_demo_rates_with_every_path_showing(rater, cdrs):
    res = rater.rate(cdrs)
    s = res.summary
    assert s.rows_in == N == s.rated + s.rejected
    assert s.rejected < 0.05 * N and s.duplicates > 0
    for reason in ("number: unknown_number", "number: number_not_active", "start: package_not_started",
                   "call_id: duplicate call id", "caller: not a phone number", "forwarded_to: not a phone number",
                   "start: missing", "end: end before start"):
        assert s.rejects_by_reason.get(reason, 0) > 0, reason
    rated = res.rated
    assert set(rated.column("package").to_pylist()) == set(rater.meta["packages"])
    assert set(rated.column("time_band").to_pylist()) == {"holiday", "peak", "offpeak"}
    assert set(rated.column("caller_class").to_pylist()) == {"local", "out_of_town"}
    assert len(set(rated.column("caller_province").to_pylist())) > 20
    # Prepaid credit and bundle minutes are consumed; some calls are free.
    assert pc.sum(rated.column("credit_consumed_minor")).as_py() > 0
    assert pc.sum(rated.column("bundle_seconds_consumed")).as_py() > 0
    assert pc.min(rated.column("charge_minor")).as_py() == 0
    assert s.charge == pc.sum(rated.column("charge_minor")).as_py() > 0
