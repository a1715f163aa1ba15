"""A dry job (``rating400 rate`` without ``--commit``) settles late bundle
calls as a commit does (README "Late CDRs"): a late call draws from its own
period-month's allowance, read from the ledger (read-only) and kept in
memory through the job from chunk to chunk (``Rater.carry_usage``), so the
same file rated dry and committed gives the same charges, and without a
ledger the rater agrees with the reference (``reference.Balance.late_used``).

Store, ledger and catalog of ``test_late_cdrs`` (``bun_a``: 100 minutes
included, overage 0.20/min; ``bun_b``: 300 minutes, 0.15/min).
"""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clock import clock_at
from rating_core.catalog import load_catalog
from rating_core.cli import main
from rating_core.cli_bulk import rate_bounded
from rating_core.rater import Rater
from rating_core.reference import Call, opening_balances, rate_reference
from stores import compiled
from engines import REGIONS
from test_late_bundle_usage import FIELDS, N1, N2, N3, O1, O2, O3, to_bun_b
from test_late_cdrs import CATALOG, at, cdr, engine_rows, setup_store


def midnight(call_id, start_s, answer_s, minutes):
    """A call starting ``start_s`` seconds from 11-01 00:00 local, answered
    ``answer_s`` seconds after its start (the month is the answer's)."""
    start = at(11, 1, 0) + start_s * 1000
    return dict(cdr(call_id, start, minutes), ivr_answer=start + answer_s * 1000,
                agent_answer=start + answer_s * 1000, end=start + answer_s * 1000 + minutes * 60_000)


# x starts before midnight and is answered after it (a November call); y
# starts 5 s later, is answered before midnight (an October call) and is
# settled after x: late, it draws what October's allowance has left.
X, Y = midnight("x", -10, 20, 1), midnight("y", -5, 3, 10)
O1_95 = cdr("o1", at(10, 20), 95)
# z, another October call settled after x, starts after y: in chunks of 3
# rows it is in the chunk after the one where x left October and y drew
# from it (the breaker's case: that chunk must pass on y's count, not the
# count October had when x left it).
Z = midnight("z", -2, 1, 10)

# name: (what is committed or done first, the file rated dry and committed)
SCENARIOS = {
    "ended period": ([to_bun_b], [N1, N2, N3]),
    "ended period, partly used in the ledger": ([[N1], to_bun_b, [N3]], [N2]),
    "earlier month in the ledger": ([[O1], [O3]], [O2]),
    "midnight order, October used in the ledger": ([[O1_95]], [X, Y]),
    "midnight order in one file": ([], [O1_95, X, Y]),
    "midnight order, two late calls in two chunks": ([], [O1_95, X, Y, Z]),
    "earlier month and ended period": ([[O1, O3], to_bun_b, [N3]], [O2, N2]),
}


def prepared_store(tmp_path, name, steps):
    (tmp_path / name).mkdir()
    store, ops, ledger = setup_store(tmp_path / name, "bun_a")
    for step in steps:
        if callable(step):
            step(ops)
        else:
            assert engine_rows(store, step)[1] == []
    ledger.close()
    return store


def by_call(rows):
    return {r["call_id"]: tuple(r[f] for f in FIELDS) for r in rows}


def rate_cli(tmp_path, store, calls, commit):
    src = tmp_path / f"cdrs-{commit}.parquet"
    pq.write_table(pa.Table.from_pylist(calls), src)
    out = tmp_path / f"rated-{commit}.parquet"
    with pytest.raises(SystemExit) as e:
        main(["rate", str(src), "--store", str(store), "--json", "--out", str(out)] + (["--commit"] if commit else []))
    assert e.value.code == 0
    return by_call(pq.read_table(out).to_pylist())


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_same_file_rated_dry_and_committed_gives_the_same_charges(tmp_path, capsys, scenario):
    steps, calls = SCENARIOS[scenario]
    dry_store = prepared_store(tmp_path, "dry", steps)
    dry = rate_cli(tmp_path, dry_store, calls, commit=False)
    json.loads(capsys.readouterr().out)
    committed = rate_cli(tmp_path, prepared_store(tmp_path, "commit", steps), calls, commit=True)
    assert dry == committed
    # In chunks: what a chunk leaves behind reaches the next.
    for rows in (1, 2, 3):
        rate_bounded([str(tmp_path / "cdrs-False.parquet")], dry_store, tmp_path / f"rated-{rows}.parquet",
                     chunk_rows=rows)
        assert by_call(pq.read_table(tmp_path / f"rated-{rows}.parquet").to_pylist()) == committed, rows
    # And a dry job wrote nothing: rated again, the same.
    assert rate_cli(tmp_path, dry_store, calls, commit=False) == dry


def test_midnight_order_worked_example(tmp_path, capsys):
    """o1 uses 95 of October's 100 minutes; y (10 minutes, October) is
    settled after x (November): it draws the 5 left and pays 5 minutes at
    0.20 (1.00 yuan), dry as committed; before, a dry job charged all 10."""
    store = prepared_store(tmp_path, "dry", [])
    rows = rate_cli(tmp_path, store, [O1_95, X, Y], commit=False)
    assert rows["y"][2:5] == (300, 10_000, 10_000)
    assert rows["x"][2:4] == (60, 0)


@pytest.mark.parametrize("calls", [[O1_95, X, Y], [O1, O3, O2], [O1_95, X, Y, midnight("z", -2, 1, 3)]],
                         ids=["midnight", "in order", "two late"])
def test_the_rater_without_a_ledger_agrees_with_the_reference(tmp_path, calls):
    store = compiled(tmp_path, CATALOG.replace("PACKAGE", "bun_a"))
    rater = Rater(store.open())
    # One batch, and one batch per call (the state carried between them).
    whole = by_call(rater.rate(pa.Table.from_pylist(calls)).rated.to_pylist())
    state = rater.opening_state()
    apart = {}
    for c in sorted(calls, key=lambda c: c["start"]):
        apart.update(by_call(rater.rate(pa.Table.from_pylist([c]), state).rated.to_pylist()))
        rater.carry_usage(state)
    catalog = load_catalog(tmp_path / "catalog.yaml")
    ref_calls = [Call(c["number"], c["caller"], c["forwarded_to"], c["start"], c["end"], c["ivr_answer"],
                      c["agent_answer"]) for c in calls]
    ref = rate_reference(catalog, ref_calls, opening_balances(catalog), REGIONS)
    for c, r in zip(calls, ref):
        assert r.status == "rated"
        assert whole[c["call_id"]][1:5] == (r.billable_seconds, r.bundle_seconds_consumed, r.charge, r.overage)
    assert apart == whole


@pytest.fixture(scope="module")
def bundle_rater(tmp_path_factory):
    d = tmp_path_factory.mktemp("dry_late")
    store = compiled(d, CATALOG.replace("PACKAGE", "bun_a"))
    return Rater(store.open()), load_catalog(d / "catalog.yaml")


MIDNIGHT = at(11, 1, 0)
# Calls starting within minutes of midnight (October's last, November's
# first), answered up to 4 minutes later: a call answered before midnight
# is often settled after one answered past it.
CALLS = st.lists(st.tuples(st.integers(-4, 2),  # start, minutes from 11-01 00:00
                           st.integers(0, 59),  # and seconds
                           st.integers(0, 240),  # answered that many seconds after the start
                           st.integers(1, 60)),  # minutes talked
                 min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(calls=CALLS, cuts=st.lists(st.integers(1, 11), max_size=4))
def test_chunks_settle_late_calls_as_one_batch_and_the_reference(bundle_rater, calls, cuts):
    """Calls around a month end (answered before or after midnight, in any
    order of start), rated in one batch, and in chunks in start order with
    the usage carried between them (the bulk job's way), give the same rows,
    and the reference's."""
    rater, catalog = bundle_rater
    rows = []
    for i, (minute, second, answer, talk) in enumerate(calls):
        start = MIDNIGHT + (minute * 60 + second) * 1000
        rows.append(dict(cdr(f"c{i}", start, talk), ivr_answer=start + answer * 1000,
                         agent_answer=start + answer * 1000, end=start + answer * 1000 + talk * 60_000))
    whole = by_call(rater.rate(pa.Table.from_pylist(rows)).rated.to_pylist())
    ordered = sorted(rows, key=lambda c: c["start"])  # stable: equal starts keep input order
    state, apart, at_row = rater.opening_state(), {}, 0
    for cut in sorted({min(c, len(ordered)) for c in cuts} | {len(ordered)}):
        if cut > at_row:
            chunk = pa.Table.from_pylist(ordered[at_row:cut])
            apart.update(by_call(rater.rate(chunk, state).rated.to_pylist()))
            rater.carry_usage(state)
            at_row = cut
    assert apart == whole
    ref_calls = [Call(c["number"], c["caller"], c["forwarded_to"], c["start"], c["end"], c["ivr_answer"],
                      c["agent_answer"]) for c in rows]
    ref = rate_reference(catalog, ref_calls, opening_balances(catalog), REGIONS)
    for c, r in zip(rows, ref):
        assert whole[c["call_id"]][1:5] == (r.billable_seconds, r.bundle_seconds_consumed, r.charge, r.overage)


def test_a_dry_run_takes_the_larger_count_of_a_month_others_committed_meanwhile(tmp_path):
    """Both merges of bundle usage keep the largest count per period-month
    (usage only grows, so the largest is the latest): a dry run
    (``engine.DryRun``) left October at 30 minutes; another writer then
    committed 60 October minutes; a later dry request with a late call of
    a month the run had not met reloads the account's usage from the
    ledger, and its late October call draws from what the ledger's 60
    (not the run's older 30) left: 40 minutes, 10 of its 50 over at 0.20
    yuan. (The reload kept the run's own count before, and gave it 70
    minutes free.)"""
    from rating_core.engine import DryRun, Engine

    store, _ops, ledger = setup_store(tmp_path, "bun_a")
    ledger.close()
    engine = Engine.open(store)
    try:
        dry = DryRun(engine)
        first = by_call(dry.rate(pa.Table.from_pylist([cdr("o1", at(10, 5), 30), cdr("d1", at(12, 5), 1)]))
                        .rated.to_pylist())
        assert first["o1"][4] == 0
        with clock_at(at(12, 31)):  # the story's now: its December call has happened
            other = engine.rate_and_commit(pa.Table.from_pylist([cdr("c1", at(10, 6), 60), cdr("c2", at(12, 6), 1)]))
        assert other.rejects.num_rows == 0
        late = by_call(dry.rate(pa.Table.from_pylist([cdr("late-oct", at(10, 20), 50),
                                                      cdr("late-nov", at(11, 20), 5)])).rated.to_pylist())
        assert late["late-nov"][4] == 0
        assert late["late-oct"][4] == 10 * 2_000, late["late-oct"]
    finally:
        engine.close()
