"""Replayed rows come out of the stored Arrow batches column-wise
(``records.load_table``, ``records.committed_entries``): no Python object
per row, and the same rows, in the same order, as the per-row path
(``records.load``: a dict per row, then ``Table.from_pylist``) gave. A file
whose calls were committed in several batches (interleaved in the file),
beside calls of its own not committed, replays as the commits answered
them, and a repeated ``rate --commit`` answers the same file every time."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating_core.cli import main
from rating_core.engine import committed_before
from rating_core.ledger import Ledger, formats, records


def rate(capsys, *args) -> dict:
    with pytest.raises(SystemExit) as e:
        main(["rate", *map(str, args), "--json"])
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    got = json.loads(out)
    for k in ("seconds", "out", "rejects"):  # the run's own: wall time, paths
        got.pop(k, None)
    return got


def by_row(path) -> pa.Table:
    t = pq.read_table(path)
    return t.take(pc.sort_indices(t.column("row")))


@pytest.fixture
def pieces(demo, tmp_path, capsys):
    """A copy of the demo store with the demo file's odd rows committed,
    then the even rows of its first half (two batches, interleaved in the
    file; the even rows of its second half are not committed), and the two
    commits' rated rows by call id."""
    store = tmp_path / "store"
    shutil.copytree(demo / "store", store)
    cdrs = pq.read_table(demo / "cdrs.parquet")
    n = cdrs.num_rows
    at = np.arange(n)
    committed: dict[str, dict] = {}
    for name, rows in (("odd", at[at % 2 == 1]), ("even", at[(at % 2 == 0) & (at < n // 2)])):
        pq.write_table(cdrs.take(pa.array(rows)), tmp_path / f"{name}.parquet")
        rate(capsys, tmp_path / f"{name}.parquet", "--store", store, "--out", tmp_path / f"{name}.out.parquet",
             "--commit")
        for r in pq.read_table(tmp_path / f"{name}.out.parquet").to_pylist():
            committed[r["call_id"]] = r
    return store, committed


def test_load_table_is_the_per_row_load_in_columns(pieces):
    """Entries from two batches, interleaved and out of order, one legacy
    JSON record among them, as a list or an Arrow column: the table the
    dicts of ``records.load`` make, row for row (money int64, 1/10000 yuan)."""
    store, committed = pieces
    ledger = Ledger(store)
    try:
        ids = sorted(committed)
        rng = np.random.default_rng(7)
        keys = [formats.call_key(ids[i]) for i in rng.permutation(len(ids))[:300]]
        with ledger.env.begin() as txn:
            # A key not committed, and one asked twice (a commit's own duplicates are rejects, not asked).
            asked, seen = committed_before(ledger, txn, keys + [b"never-committed", keys[0]])
            schema = records.read_batch(txn.get(formats.BATCH_KEY.pack(1), db=ledger.db[formats.CALL_BATCHES]),
                                        1).schema
            assert asked.to_pylist()[:-2] == [records.committed(ledger, txn, [k])[k] for k in keys]
        assert seen.tolist() == [True] * len(keys) + [False, True] and asked.null_count == 1
        assert asked[-1] == asked[0]
        entries = asked.slice(0, len(keys))
        assert {formats.COMMITTED.unpack(e)[0] for e in entries.to_pylist()} == {1, 2}  # both batches
        with ledger.write() as w:
            w.txn.put(b"layout01", json.dumps(["call_id", "charge", "balance_after"]).encode(),
                      db=ledger.db[formats.CALL_LAYOUTS])
        legacy = b"layout01" + json.dumps(["old", 1500, 9]).encode()
        listed = entries.to_pylist()[:150] + [legacy] + entries.to_pylist()[150:]
        plain = pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema])
        with ledger.env.begin() as txn:
            dicts = pa.Table.from_pylist(records.load(ledger, txn, listed), schema=plain)
            as_list = records.load_table(ledger, txn, listed, plain)
            as_column = records.load_table(ledger, txn, pa.array(listed, pa.binary()), plain)
            sliced = records.load_table(ledger, txn, pa.array([b"x"] + listed, pa.binary()).slice(1), plain)
            empty = records.load_table(ledger, txn, pa.array([], pa.binary()), plain)
    finally:
        ledger.close()
    assert as_list.equals(dicts) and as_column.equals(dicts) and sliced.equals(dicts)
    assert as_list.column("call_id")[150].as_py() == "old" and as_list.column("charge_minor")[150].as_py() == 1500
    assert as_list.schema.field("charge_minor").type == pa.int64()
    assert empty.num_rows == 0 and empty.schema == plain


@pytest.mark.parametrize("chunk_rows", [1000, 1 << 19])
def test_a_file_committed_in_pieces_replays_each_call_as_its_commit_answered(demo, pieces, tmp_path, capsys,
                                                                             chunk_rows):
    """The whole file, dry and then ``--commit`` three times: the committed
    calls come back replayed, field for field as their commit answered
    them; the rest is rated once (the first repeated commit), and from
    then on every answer is the same file."""
    store, committed = pieces
    src = demo / "cdrs.parquet"
    dry = rate(capsys, src, "--store", store, "--out", tmp_path / "d.parquet", "--chunk-rows", chunk_rows)
    d = by_row(tmp_path / "d.parquet")
    # Not every committed call: the demo repeats a few call ids with other content (rejects).
    assert len(committed) - 5 <= dry["replayed"] <= len(committed) and 0 < dry["replayed"] < dry["rated"]
    flags = d.column("replayed").to_pylist()
    replayed, fresh = d.filter(pa.array(flags)), d.filter(pa.array([not f for f in flags]))
    assert fresh.num_rows and not set(fresh.column("call_id").to_pylist()) & set(committed)
    own = ("file", "row", "replayed")  # the input's place: this file's, not the piece's
    for r in replayed.to_pylist():
        was = committed[r["call_id"]]
        assert {k: v for k, v in r.items() if k not in own} == {k: v for k, v in was.items() if k not in own}, \
            r["call_id"]

    first = rate(capsys, src, "--store", store, "--out", tmp_path / "c1.parquet", "--commit")
    assert {k: first[k] for k in ("rated", "replayed", "charge_minor", "replayed_charge_minor")} == \
        {k: dry[k] for k in ("rated", "replayed", "charge_minor", "replayed_charge_minor")}
    c1 = by_row(tmp_path / "c1.parquet")
    assert c1.column_names == d.column_names
    for name in d.column_names:
        assert c1.column(name).to_pylist() == d.column(name).to_pylist(), name
    # Every call committed now: a repeated commit replays them all, the same file each time.
    second = rate(capsys, src, "--store", store, "--out", tmp_path / "c2.parquet", "--commit")
    third = rate(capsys, src, "--store", store, "--out", tmp_path / "c3.parquet", "--commit")
    assert second == third and second["replayed"] == second["rated"] == first["rated"]
    assert second["charge_minor"] == 0 and second["replayed_charge_minor"] == first["charge_minor"] + \
        first["replayed_charge_minor"]
    c2, c3 = pq.read_table(tmp_path / "c2.parquet"), pq.read_table(tmp_path / "c3.parquet")
    assert c2.equals(c3) and c2.schema.equals(c3.schema)
    assert (tmp_path / "c2.rejects.csv").read_bytes() == (tmp_path / "c3.rejects.csv").read_bytes()
    c2 = by_row(tmp_path / "c2.parquet")
    for name in d.column_names:
        if name != "replayed":
            assert c2.column(name).to_pylist() == c1.column(name).to_pylist(), name
