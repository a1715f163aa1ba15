"""A dry job (``rating400 rate`` without ``--commit``) of calls the ledger
holds committed answers them as ``rate --commit`` answers a repeated commit
(README "CDR input"): their stored results, flagged ``replayed``, counted
in the summary's ``replayed`` and charged nothing again; the file's new
calls are rated from the ledger's balances, after the committed usage
(a bundle's minutes are not drawn twice). Before, the dry job rated the
committed calls again after themselves."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating_core import bulk, cdr
from rating_core.accounts.view import open_view
from rating_core.cli import main
from rating_core.engine import Replays
from rating_core.rater import Rater
from rating_core.store import Ledger, Store


def rate(capsys, *args) -> dict:
    with pytest.raises(SystemExit) as e:
        main(["rate", *map(str, args), "--json"])
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    return json.loads(out)


def by_row(path) -> pa.Table:
    t = pq.read_table(path)
    return t.take(pc.sort_indices(t.column("row")))


@pytest.fixture
def store(demo, tmp_path):
    s = tmp_path / "store"
    shutil.copytree(demo / "store", s)
    return s


def test_a_dry_run_after_a_commit_answers_the_committed_calls_as_the_commit_did(demo, store, tmp_path, capsys):
    src = demo / "cdrs.parquet"
    committed = rate(capsys, src, "--store", store, "--out", tmp_path / "c.parquet", "--commit")
    dry = rate(capsys, src, "--store", store, "--out", tmp_path / "d.parquet", "--chunk-rows", 1000)
    assert dry["replayed"] == dry["rated"] == committed["rated"] and dry["charge_minor"] == 0
    assert dry["rejected"] == committed["rejected"] and dry["rows_in"] == committed["rows_in"]
    c, d = by_row(tmp_path / "c.parquet"), by_row(tmp_path / "d.parquet")
    assert d.column_names == c.column_names  # --commit's columns, ``replayed`` last
    assert all(d.column("replayed").to_pylist())
    for name in c.column_names:
        if name != "replayed":  # the stored results, field for field
            assert d.column(name).to_pylist() == c.column(name).to_pylist(), name
    # A repeated commit answers the same.
    again = rate(capsys, src, "--store", store, "--out", tmp_path / "a.parquet", "--commit")
    assert {k: again[k] for k in ("rated", "replayed", "charge_minor")} == \
        {k: dry[k] for k in ("rated", "replayed", "charge_minor")}
    assert by_row(tmp_path / "a.parquet").equals(d.cast(by_row(tmp_path / "a.parquet").schema))


@pytest.mark.parametrize("chunk_rows", [1000, 1 << 19])
def test_new_calls_are_rated_after_the_committed_ones_not_twice(demo, store, tmp_path, capsys, chunk_rows):
    """Half the file committed, the whole file rated dry: the committed half
    comes back replayed, and the other half is charged what committing the
    whole file then charges it -- the bundle accounts' new calls draw from
    what the committed calls left of the allowance, once."""
    cdrs = pq.read_table(demo / "cdrs.parquet")
    half = tmp_path / "half.parquet"
    pq.write_table(cdrs.slice(0, cdrs.num_rows // 2), half)
    first = rate(capsys, half, "--store", store, "--out", tmp_path / "h.parquet", "--commit")
    dry = rate(capsys, demo / "cdrs.parquet", "--store", store, "--out", tmp_path / "d.parquet",
               "--chunk-rows", chunk_rows)
    whole = rate(capsys, demo / "cdrs.parquet", "--store", store, "--out", tmp_path / "w.parquet", "--commit")
    assert dry["replayed"] == whole["replayed"] == first["rated"] > 0
    assert dry["charge_minor"] == whole["charge_minor"] > 0
    d, w = by_row(tmp_path / "d.parquet"), by_row(tmp_path / "w.parquet")
    assert d.column_names == w.column_names
    for name in w.column_names:
        assert d.column(name).to_pylist() == w.column(name).to_pylist(), name
    new = d.filter(pc.invert(d.column("replayed")))
    bundle = new.filter(pc.equal(new.column("package").cast(pa.string()), "bundle_1000"))
    assert bundle.num_rows and pc.sum(bundle.column("bundle_seconds_consumed")).as_py() > 0
    # Against an empty ledger the same calls draw more of the allowance: the committed half is not counted twice.
    fresh = rate(capsys, demo / "cdrs.parquet", "--store", demo / "store", "--out", tmp_path / "f.parquet")
    f = pq.read_table(tmp_path / "f.parquet")
    assert fresh["replayed"] == 0 and f.column_names == d.column_names  # one schema: ``replayed`` False throughout
    assert not pc.any(f.column("replayed")).as_py()
    assert fresh["charge_minor"] == first["charge_minor"] + dry["charge_minor"]


def test_a_committed_call_sent_with_other_content_is_the_commits_reject(demo, store, tmp_path, capsys):
    cdrs = pq.read_table(demo / "cdrs.parquet").slice(0, 60)
    pq.write_table(cdrs, tmp_path / "first.parquet")
    rate(capsys, tmp_path / "first.parquet", "--store", store, "--out", tmp_path / "1.parquet", "--commit")
    committed = set(pq.read_table(tmp_path / "1.parquet").column("call_id").to_pylist())
    rows = cdrs.to_pylist()
    k = next(i for i, r in enumerate(rows) if r["call_id"] in committed)
    rows[k]["forwarded_to"] = "13900000000" if rows[k]["forwarded_to"] != "13900000000" else "13900000001"
    pq.write_table(pa.Table.from_pylist(rows, schema=cdrs.schema), tmp_path / "again.parquet")
    outs = {}
    for mode in ("dry", "commit"):
        out = tmp_path / f"{mode}.parquet"
        outs[mode] = rate(capsys, tmp_path / "again.parquet", "--store", store, "--out", out,
                          *(["--commit"] if mode == "commit" else []))
        rejects = cdr.read_table(tmp_path / f"{mode}.rejects.csv").to_pylist()
        assert [(x["call_id"], x["field"], x["row"]) for x in rejects if "first commit stands" in x["reason"]] == \
            [(rows[k]["call_id"], "forwarded_to", k + 1)]
    for key in ("rated", "rejected", "replayed", "charge_minor", "rejects_by_reason"):
        assert outs["dry"][key] == outs["commit"][key], key
    assert outs["dry"]["replayed"] == len(committed) - 1 and outs["dry"]["charge_minor"] == 0


@pytest.mark.parametrize("how", ["sorted", "by_day"])
def test_the_sorted_and_by_day_jobs_replay_alike(demo, store, tmp_path, capsys, how):
    """The out-of-core sort carries the committed entries through DuckDB; a
    dataset by day gets each replayed row in its day."""
    rate(capsys, demo / "cdrs.parquet", "--store", store, "--out", tmp_path / "c.parquet", "--commit")
    ledger = Ledger(store)
    try:
        rater = Rater(open_view(Store(store, create=False), ledger.env, None))
        out = tmp_path / ("d" if how == "by_day" else "d.parquet")
        job = bulk.rate_dataset([demo / "cdrs.parquet"], rater, ledger.opening_state(rater.snapshot, usage=True),
                                out, tmp_path / "d.rejects.csv", chunk_rows=300, force_sort=how == "sorted",
                                by_day=how == "by_day", replays=Replays(ledger))
    finally:
        ledger.close()
    assert job.mode == ("sorted" if how == "sorted" else "stream")
    c = by_row(tmp_path / "c.parquet")
    d = pq.read_table(out) if how == "sorted" else pa.concat_tables([pq.read_table(f) for f in job.files])
    d = d.take(pc.sort_indices(d.column("row")))
    assert job.summary.replayed == d.num_rows == c.num_rows and job.summary.charge == 0
    for name in ("call_id", "charge_minor", "credit_after_minor", "bundle_left_seconds"):
        assert d.column(name).to_pylist() == c.column(name).to_pylist(), name
    if how == "by_day":
        for f in job.files:
            t = pq.read_table(f)
            days = np.floor_divide(t.column("start").cast(pa.int64()).to_numpy() + 8 * 3_600_000, 86_400_000)
            assert str(np.datetime64(int(days[0]), "D")) in str(f) and len(set(days.tolist())) == 1


def test_a_ledger_holding_none_of_the_files_ids_looks_none_up(demo, store, tmp_path, capsys):
    """The prefilter: ids outside the committed keys' range are not looked up."""
    cdrs = pq.read_table(demo / "cdrs.parquet")
    other = cdrs.set_column(cdrs.schema.get_field_index("call_id"), "call_id",
                            pa.array([f"zz-{i}" for i in range(cdrs.num_rows)]))
    pq.write_table(other.slice(0, 100), tmp_path / "other.parquet")
    held = rate(capsys, tmp_path / "other.parquet", "--store", store, "--out", tmp_path / "o.parquet", "--commit")
    ledger = Ledger(store)
    try:
        replays = Replays(ledger)
        assert replays.range is not None and replays.range[0].startswith(b"zz-")
        ids = cdrs.column("call_id").combine_chunks()
        ids = ids.filter(pc.and_(pc.is_valid(ids), pc.not_equal(ids, "")))
        assert replays.lookup(ids).null_count == len(ids)
        hit = replays.lookup(pa.array(["d-not-there", "zz-5", "zz-6x"]))
        assert [v is not None for v in hit.to_pylist()] == [False, True, False] and replays.held is None
        # Ids inside the range, none held, outnumbering the ledger's calls: its keys are read once.
        assert replays.lookup(pa.array([f"zz-5-{i}" for i in range(2 * replays.calls)])).null_count == 2 * replays.calls
        assert replays.held is not None and len(replays.held) == replays.calls
        again = replays.lookup(pa.array(["zz-5", "zz-6x", "zz-7"]))
        assert [v is not None for v in again.to_pylist()] == [True, False, True]
    finally:
        ledger.close()
    dry = rate(capsys, demo / "cdrs.parquet", "--store", store, "--out", tmp_path / "d.parquet")
    assert dry["replayed"] == 0 and dry["ledger_calls_committed"] == held["rated"] > 0
    assert not any(pq.read_table(tmp_path / "d.parquet").column("replayed").to_pylist())


@pytest.mark.parametrize("changed_first", [True, False])
def test_a_committed_call_twice_in_a_file_is_answered_by_its_first_copy(demo, store, tmp_path, capsys,
                                                                         changed_first):
    """Breaker 2 F10: a committed call sent twice in one file, once changed
    and once as committed. The copies within the file are settled first,
    the same in every run: the first valid copy is the file's call, a later
    one ``duplicate call id`` whatever it holds; then that first copy is the
    replay, or the ``committed_differently`` reject when it differs (README
    "CDR input"). Dry and --commit answer alike, again and again; nothing is
    charged twice."""
    one = pq.read_table(demo / "cdrs.parquet").slice(0, 1)
    pq.write_table(one, tmp_path / "one.parquet")
    rate(capsys, tmp_path / "one.parquet", "--store", store, "--out", tmp_path / "1.parquet", "--commit")
    same = one.to_pylist()[0]
    other = dict(same, caller="13800138000" if same["caller"] != "13800138000" else "13800138001")
    rows = [other, same] if changed_first else [same, other]
    pq.write_table(pa.Table.from_pylist(rows, schema=one.schema), tmp_path / "twice.parquet")
    answers = []
    for mode in ("dry", "commit", "commit"):
        out = tmp_path / f"{mode}.parquet"
        got = rate(capsys, tmp_path / "twice.parquet", "--store", store, "--out", out,
                   *(["--commit"] if mode == "commit" else []))
        rejects = cdr.read_table(tmp_path / f"{mode}.rejects.csv").to_pylist()
        answers.append((sorted((x["row"], x["code"]) for x in rejects), got["replayed"], got["charge_minor"]))
    if changed_first:
        expected = ([(1, "committed_differently"), (2, "duplicate_call_id")], 0, 0)
    else:
        expected = ([(2, "duplicate_call_id")], 1, 0)
    assert answers == [expected] * 3, answers


def test_after_a_rerating_the_replayed_rows_carry_the_charge_the_bill_shows(demo, store, tmp_path, capsys):
    """Newcomer N10 finding 4: after ``rerate``, a dry ``rate`` of the
    committed file replayed the charges as first committed (and ``report``
    summed them), while ``bill --ledger`` and ``explain`` had the rerated
    ones. The replayed rows now carry each call's charge now: committed
    plus its adjustments, the adjustment's new charge."""
    src = demo / "cdrs.parquet"
    committed = rate(capsys, src, "--store", store, "--out", tmp_path / "c.parquet", "--commit")
    v2 = tmp_path / "v2"
    shutil.copytree(demo / "catalog", v2)
    yaml = v2 / "catalog.yaml"
    yaml.write_text(yaml.read_text("utf-8").replace("0.12", "0.11"), "utf-8")  # README "Rerating": std_012 cheaper
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(yaml), "--store", str(store)])
    assert e.value.code == 0
    with pytest.raises(SystemExit) as e:
        main(["rerate", "--store", str(store), "--version", "2", "--from", "2026-10-01", "--to", "2026-10-31"])
    assert e.value.code == 0
    capsys.readouterr()
    from rating_core.ledger import adjustments

    ledger = Ledger(store)
    try:
        with ledger.env.begin() as txn:
            rows = adjustments.all_rows(ledger, txn)
    finally:
        ledger.close()
    delta: dict[str, int] = {}
    for a in rows:
        delta[a.call_id] = delta.get(a.call_id, 0) + a.delta_minor
    assert len(delta) > 10 and sum(delta.values()) < 0  # the demo's std_012 calls got cheaper

    dry = rate(capsys, src, "--store", store, "--out", tmp_path / "d.parquet")
    c, d = by_row(tmp_path / "c.parquet"), by_row(tmp_path / "d.parquet")
    now = [charge + delta.get(call, 0) for call, charge in
           zip(c.column("call_id").to_pylist(), c.column("charge_minor").to_pylist())]
    assert d.column("charge_minor").to_pylist() == now
    assert dry["replayed"] == committed["rated"] and dry["charge_minor"] == 0
    assert dry["replayed_charge_minor"] == sum(now) == committed["charge_minor"] + sum(delta.values())
    # The rest of a rerated row is the commit's record.
    for name in ("billable_seconds", "units", "credit_consumed_minor", "balance_after"):
        assert d.column(name).to_pylist() == c.column(name).to_pylist(), name
    # A repeated commit answers the same, and ``report`` of the replay adds up the charges now.
    again = rate(capsys, src, "--store", store, "--out", tmp_path / "a.parquet", "--commit")
    assert again["replayed_charge_minor"] == dry["replayed_charge_minor"]
    assert by_row(tmp_path / "a.parquet").column("charge_minor").to_pylist() == now
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "d.parquet"), "--by", "number", "--out", str(tmp_path / "r.json")])
    assert e.value.code == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "r.json").read_text("utf-8"))["rows"]
    assert sum(r["charge_minor"] for r in report) == sum(now)
    # ``explain`` tells the same charge now.
    call = next(iter(delta))
    with pytest.raises(SystemExit) as e:
        main(["explain", call, "--store", str(store), "--json"])
    told = json.loads(capsys.readouterr().out)
    assert e.value.code == 0
    assert told["reratings"][-1]["new_charge_minor"] == now[c.column("call_id").to_pylist().index(call)]
