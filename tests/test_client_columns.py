"""The Python client's table input and rated output against a real server
(clients/README.md "Batching CDRs into the streaming RPC").

* A table whose ``ivr_answer`` column is all None (``pa.Table.from_pylist``
  types it ``null``) is a valid table with no IVR answers: it rates as the
  same table with an int64 column of nulls, in both encodings.
* A time column of a type that cannot be a time is a ValueError naming the
  column, raised as itself (never gRPC's UNKNOWN "Exception iterating
  requests!"), before any RPC for ``rate_table``; in a stream of several
  tables, after the batches before it were answered.
* ``credit_after_minor`` / ``bundle_left_seconds`` are null where the
  account kind has no such balance in both encodings.
"""
from __future__ import annotations

import pyarrow as pa
import pytest

from demo_server import ACTIVE, PAYG, cdr_row


def rows(prefix, n=4):
    out = []
    for i in range(n):
        r = cdr_row(f"{prefix}-{i}", number=(ACTIVE, PAYG)[i % 2], minute=200 + i)
        r["ivr_answer"] = None
        out.append(r)
    return out


@pytest.mark.parametrize("encoding", ["columns", "arrow"])
def test_an_all_null_ivr_answer_column_rates_as_no_ivr_answers(client, encoding):
    table = pa.Table.from_pylist(rows(f"null-{encoding}"))
    assert table.schema.field("ivr_answer").type == pa.null()
    res = client.rate_table(table, dry_run=True, encoding=encoding)
    typed = table.set_column(table.column_names.index("ivr_answer"), "ivr_answer",
                             pa.nulls(table.num_rows, pa.int64()))
    same = client.rate_table(typed, dry_run=True, encoding=encoding)
    assert res.rejects.num_rows == 0
    assert res.rated.num_rows == table.num_rows
    assert res.rated.select(["row", "call_id", "billable_seconds", "charge_minor"]).equals(
        same.rated.select(["row", "call_id", "billable_seconds", "charge_minor"]))
    assert all(c > 0 for c in res.rated.column("charge_minor").to_pylist())


def test_a_time_column_of_another_type_is_a_value_error_naming_it(client, monkeypatch):
    table = pa.Table.from_pylist(rows("bad"))
    bad = table.set_column(table.column_names.index("end"), "end", pa.array([True] * table.num_rows))
    sent = []
    real = client.rating.RateCdrBatches
    monkeypatch.setattr(client.rating, "RateCdrBatches", lambda *a, **k: sent.append(1) or real(*a, **k))
    with pytest.raises(ValueError, match=r"^end: time column of type bool"):
        client.rate_table(bad, dry_run=True)
    assert sent == []  # before any RPC
    naive = table.set_column(table.column_names.index("start"), "start",
                             pa.array([r["start"] for r in rows("x")], pa.timestamp("ms")))
    with pytest.raises(ValueError, match=r"^start: timestamp column without time zone"):
        client.rate_table(naive, dry_run=True)
    # In a stream, the good batch before it is answered and the error is itself.
    good = pa.Table.from_pylist(rows("first"))
    got = []
    with pytest.raises(ValueError, match=r"^end: time column of type bool"):
        for r in client.rate_batches(iter([good, bad]), dry_run=True):
            got.append(r.rated.num_rows)
    assert got == [good.num_rows]


def test_the_asyncio_client_raises_the_same_value_error(server):
    import asyncio

    from rating400_client.aio import AsyncClient

    async def go():
        async with AsyncClient(server.target, timeout=10) as c:
            table = pa.Table.from_pylist(rows("aio"))
            res = await c.rate_table(table, dry_run=True)
            assert res.rated.num_rows == table.num_rows
            bad = table.set_column(table.column_names.index("end"), "end", pa.array([True] * table.num_rows))
            with pytest.raises(ValueError, match=r"^end: time column"):
                await c.rate_table(bad, dry_run=True)
            with pytest.raises(ValueError, match=r"^end: time column"):
                async for _ in c.rate_batches(iter([table, bad]), dry_run=True):
                    pass

    asyncio.run(asyncio.wait_for(go(), 60))


def test_balances_are_the_same_in_both_encodings(client):
    """README Quickstart, the rated output: ``credit_after_minor`` is null
    on a pay-as-you-go row (the account has no such balance), in the
    "columns" encoding (``RatedCdrColumns.credit_after_minor_set``) as in
    "arrow"; the prepaid row's credit is a value."""
    table = pa.Table.from_pylist(rows("bal"))
    got = {}
    for encoding in ("columns", "arrow"):
        res = client.rate_table(table, dry_run=True, encoding=encoding)
        got[encoding] = res.rated.sort_by("row").select(["row", "package", "credit_after_minor",
                                                         "bundle_left_seconds"]).to_pylist()
    assert got["columns"] == got["arrow"]
    by_number = {table.column("number")[r["row"]].as_py(): r for r in got["columns"]}
    assert by_number[PAYG]["credit_after_minor"] is None and by_number[PAYG]["bundle_left_seconds"] is None
    assert by_number[ACTIVE]["credit_after_minor"] > 0 and by_number[ACTIVE]["bundle_left_seconds"] is None


def test_money_is_named_with_its_unit_in_both_encodings(client):
    """F11: the rated money columns are ``charge_minor``,
    ``credit_consumed_minor`` and ``overage_minor`` (1/10000 yuan), the same
    in both encodings; the deprecated ``charge``, ``credit_consumed`` and
    ``overage`` hold the same values for code written before."""
    table = pa.Table.from_pylist(rows("money"))
    money = ["charge_minor", "credit_consumed_minor", "overage_minor"]
    got = {}
    for encoding in ("columns", "arrow"):
        rated = client.rate_table(table, dry_run=True, encoding=encoding).rated.sort_by("row")
        for old in ("charge", "credit_consumed", "overage"):
            assert rated.column(old).equals(rated.column(f"{old}_minor")), (encoding, old)
        got[encoding] = rated.select(["row", *money]).to_pylist()
    assert got["columns"] == got["arrow"]
    by_number = {table.column("number")[r["row"]].as_py(): r for r in got["columns"]}
    # Prepaid with credit left: the whole charge is paid from credit, no
    # overage; pay as you go has no credit to consume and no overage (its
    # charge is billed as usage).
    assert by_number[ACTIVE]["credit_consumed_minor"] == by_number[ACTIVE]["charge_minor"] > 0
    assert by_number[ACTIVE]["overage_minor"] == 0
    assert by_number[PAYG]["charge_minor"] > 0
    assert by_number[PAYG]["credit_consumed_minor"] == by_number[PAYG]["overage_minor"] == 0


def test_a_committed_arrow_stream_answers_in_one_schema_with_replayed_messages(client):
    """A committed stream's Arrow answers share one schema whether a message
    replayed calls committed before (their stored results, joined decoded)
    or rated new ones (names as the rater wrote them, dictionary-encoded),
    so ``rate_table`` concatenates them; the names read the same."""
    first = rows("schema-a", 2)
    client.rate_table(pa.Table.from_pylist(first), dry_run=False, encoding="arrow")
    table = pa.Table.from_pylist(first + rows("schema-b", 2))
    res = client.rate_table(table, dry_run=False, encoding="arrow", batch_size=2)
    assert res.rejects.num_rows == 0 and res.rated.num_rows == 4 and res.replayed == 2
    assert pa.types.is_dictionary(res.rated.schema.field("package").type)
    assert res.rated.schema.field("call_id").type == pa.string()
    by_row = {r["row"]: r for r in res.rated.to_pylist()}
    assert [by_row[i]["call_id"] for i in range(4)] == table.column("call_id").to_pylist()
    assert by_row[0]["package"] == by_row[2]["package"] and by_row[0]["account"] == by_row[2]["account"]
    assert [by_row[i]["replayed"] for i in range(4)] == [True, True, False, False]
