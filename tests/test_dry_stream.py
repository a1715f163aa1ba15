"""A dry ``RateCdrBatches`` stream carries each account's running state
from one message to the next (``Engine.dry_run``): prepaid credit left,
bundle month and seconds used, and the usage of every period-month it met
(``Rater.carry_usage``, as the dry file job carries them from chunk to
chunk), so the same CDRs streamed dry in 1, 2 or 3 messages are rated
alike. Before, each dry message started again from the ledger: a bundle
account's calls in message 2 drew from an allowance message 1 had used up.

A real server (supervisor + 2 workers) on loopback, the demo catalog
(``binhai_broadband``: 1000 minutes a month, then 0.10 yuan/min;
``hangzhou_tea``: 480 yuan prepaid at 0.12 yuan/min).
"""
from __future__ import annotations

import pyarrow as pa
import pytest

from demo_server import CALLER

BUNDLE = "4001743658"  # binhai_broadband, bundle_1000, bills from the IVR answer
PREPAID = "4006573681"  # hangzhou_tea, prepaid_480_1y, bills from the agent answer
OCT, NOV = 1_791_615_600_000, 1_793_930_400_000  # 2026-10-10 09:00, 2026-11-06 09:00 (+08:00)
HOUR = 3_600_000


def call(call_id: str, number: str, start: int, minutes: int) -> dict:
    return {"call_id": call_id, "caller": CALLER, "number": number, "forwarded_to": "02088886666",
            "start": start, "ivr_answer": start + 2_000, "agent_answer": start + 2_000,
            "end": start + 2_000 + minutes * 60_000, "hangup_cause": "normal_clearing"}


# In time order but for the last call: October's bundle minutes run out
# (4 x 400 of 1000), the prepaid credit runs out (5 x 1000 minutes of
# 4000), November opens a fresh allowance, and a late October call,
# the last of its month, comes after November's (it draws from what
# October left, nothing, as on time).
CALLS = (
    [call(f"b-oct-{i}", BUNDLE, OCT + i * 2 * HOUR, 400) for i in range(4)]
    + [call(f"p-{i}", PREPAID, OCT + HOUR + i * 2 * HOUR, 1000) for i in range(5)]
    + [call(f"b-nov-{i}", BUNDLE, NOV + i * 2 * HOUR, 700) for i in range(2)]
    + [call("b-oct-late", BUNDLE, OCT + 20 * HOUR, 30)]
)


def rated_by_call(client, batch_size: int, encoding: str) -> dict:
    table = pa.Table.from_pylist(CALLS)
    result = client.rate_table(table, batch_size=batch_size, encoding=encoding, dry_run=True)
    assert result.rejects.num_rows == 0, result.rejects.to_pylist()
    assert result.rated.num_rows == len(CALLS)
    rows = result.rated.drop_columns(["row"]).to_pylist()
    return {r["call_id"]: r for r in rows}


@pytest.mark.parametrize("encoding", ["columns", "arrow"])
def test_a_dry_stream_in_several_messages_rates_as_one(client, encoding):
    one = rated_by_call(client, len(CALLS), encoding)
    # The state carried: October's allowance used up, then overage; the
    # late October call pays overage for all of it, as on time.
    assert [one[f"b-oct-{i}"]["overage_minor"] for i in range(4)] == [0, 0, 200 * 1000, 400 * 1000]
    assert one["b-oct-late"]["overage_minor"] == 30 * 1000 and one["b-oct-late"]["bundle_seconds_consumed"] == 0
    assert one["b-nov-0"]["overage_minor"] == 0 and one["b-nov-1"]["overage_minor"] == 400 * 1000
    # 4 x 1000 minutes at 0.12 use the 480 yuan up: the fifth call finds no credit.
    assert one["p-3"]["credit_after_minor"] == 0 and one["p-4"]["credit_consumed_minor"] == 0
    assert one["p-4"]["overage_minor"] == one["p-4"]["charge_minor"] == 1000 * 1200
    for size in (6, 4):  # 2 and 3 messages
        several = rated_by_call(client, size, encoding)
        assert several == one, (size, {k: (one[k], several[k]) for k in one if one[k] != several[k]})


def test_a_dry_stream_writes_nothing(client):
    """Rated again, a dry stream gives the same rows: nothing it carried
    reached the ledger."""
    assert rated_by_call(client, 4, "columns") == rated_by_call(client, 4, "columns")


def test_a_call_id_repeated_in_a_later_dry_message_is_a_duplicate_as_in_a_file_job(client, store, tmp_path):
    """A call id sent again in a later message of a dry stream is rejected
    as ``duplicate call id`` (the first copy rated), as a copy within one
    message is and as ``rating400 rate`` without ``--commit`` rejects a
    copy in a later chunk; it was rated and priced again before."""
    import pyarrow.parquet as pq

    from rating_core.cdr import DUPLICATE, REASONS
    from rating_core.cli_bulk import rate_bounded

    a = call("rep-a", BUNDLE, OCT, 10)
    table = pa.Table.from_pylist([a, call("rep-b", BUNDLE, OCT + HOUR, 10), a, call("rep-c", PREPAID, OCT, 10)])
    want = [{"row": 2, "call_id": "rep-a", "field": "call_id", "reason": REASONS[DUPLICATE], "value": "rep-a",
             "code": "duplicate_call_id"}]
    answers = {}
    for size in (4, 2):  # one message; two, the copy in the second
        result = client.rate_table(table, batch_size=size, encoding="columns", dry_run=True)
        assert result.rejects.to_pylist() == want, (size, result.rejects.to_pylist())
        answers[size] = result.rated.to_pylist()
    assert [r["call_id"] for r in answers[2]] == ["rep-a", "rep-b", "rep-c"]
    assert answers[2] == answers[4]
    src = tmp_path / "cdrs.parquet"
    pq.write_table(table, src)
    rate_bounded([str(src)], store[0], tmp_path / "rated.parquet", tmp_path / "rejects.csv", chunk_rows=2)
    assert [r["call_id"] for r in pq.read_table(tmp_path / "rated.parquet").to_pylist()] == ["rep-a", "rep-b", "rep-c"]
    assert (tmp_path / "rejects.csv").read_text().count("duplicate call id") == 1


@pytest.fixture(scope="module")
def bounded(store, tmp_path_factory):
    """A second server of the same store holding at most 5 call ids a dry stream."""
    from demo_server import Server

    s = Server(store[0], tmp_path_factory.mktemp("bounded"), workers=1)
    s.extra += ["--max-dry-stream-calls", "5"]
    s.start()
    yield s
    s.stop()


def test_a_dry_stream_past_its_call_id_bound_ends_resource_exhausted(bounded):
    """A dry stream holds each call id it rated (to reject a copy in a later
    message); ``--max-dry-stream-calls`` bounds how many, so one long dry
    stream cannot grow the server's memory without end. The message that
    would pass it ends the stream RESOURCE_EXHAUSTED, after the answers of
    the messages before it, with the bound and what to do; a new stream
    starts again from none."""
    import grpc

    from rating400.v1 import rating_pb2
    from rating400_client import Client, columns

    def message(batch_id, ids):
        rows = [call(i, BUNDLE, OCT + k * HOUR, 1) for k, i in enumerate(ids)]
        return rating_pb2.RateCdrBatchesRequest(batch_id=batch_id, dry_run=True,
                                                cdrs_arrow_ipc=columns.table_to_arrow_ipc(pa.Table.from_pylist(rows)))

    # 3 ids, then 2 new and a repeat (5 held: the bound), then 1 more.
    stream = [message(1, ["c1", "c2", "c3"]), message(2, ["c4", "c1", "c5"]), message(3, ["c6"]), message(4, ["c7"])]
    with Client(bounded.target, timeout=10) as client:
        client.wait_ready()
        answers = []
        with pytest.raises(grpc.RpcError) as err:
            for answer in client.rating.RateCdrBatches(iter(stream), timeout=30):
                answers.append(answer)
        assert [a.batch_id for a in answers] == [1, 2]
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.value.details() == (
            "call_id: this dry stream holds 5 distinct call ids; 1 more would pass its limit of 5 "
            "(rating400 serve --max-dry-stream-calls); the messages before this one were answered: send this "
            "one and the rest in a new dry stream (a copy of a call id in another stream is then rated again, "
            "not rejected as a duplicate: a dry run commits nothing)")
        # A new stream: c6 and c7 fit; c1 is not known there.
        again = client.rate_table(pa.Table.from_pylist([call(i, BUNDLE, OCT, 1) for i in ["c6", "c7", "c1"]]),
                                  dry_run=True)
        assert again.rejects.num_rows == 0 and again.rated.num_rows == 3
        assert client.health() == "SERVING"


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A server of a store of its own, whose ledger will hold committed calls."""
    from demo_server import Server, make_store

    s = Server(make_store(tmp_path_factory.mktemp("committed"))[0], tmp_path_factory.mktemp("committed-srv"),
               workers=1)
    s.start()
    yield s
    s.stop()


def test_a_dry_stream_answers_committed_calls_as_a_repeated_commit(committed):
    """Calls the ledger holds committed are answered, in a dry stream, with
    their stored results flagged ``replayed`` (README "CDR input"), in any
    number of messages; the stream's other calls are rated from the
    ledger's balances after them (October's bundle minutes the commit used
    are not free again), and a committed call sent with other content is
    the commit's reject: the answer a repeated commit of the same CDRs
    gives, row for row, with the same columns. Before, a dry stream rated
    the committed calls again."""
    from rating400_client import Client

    first = [call(f"r-b-{i}", BUNDLE, OCT + i * 2 * HOUR, 400) for i in range(2)] + \
        [call(f"r-p-{i}", PREPAID, OCT + HOUR + i * 2 * HOUR, 1000) for i in range(2)]
    changed = dict(first[3], forwarded_to="02088886667")
    later = [call(f"r-b-{i}", BUNDLE, OCT + i * 2 * HOUR, 400) for i in range(2, 4)] + \
        [call(f"r-p-{i}", PREPAID, OCT + HOUR + i * 2 * HOUR, 1000) for i in range(2, 4)]
    sent = pa.Table.from_pylist(first[:3] + later[:2] + [changed] + later[2:])
    with Client(committed.target, timeout=30) as client:
        client.wait_ready()
        stored = client.rate_table(pa.Table.from_pylist(first), dry_run=False)
        assert stored.rejects.num_rows == 0 and stored.replayed == 0
        stored_rows = {r["call_id"]: r for r in stored.rated.drop_columns(["row", "replayed"]).to_pylist()}
        dry = {}
        for encoding in ("columns", "arrow"):
            for size in (len(sent), 3, 1):
                got = client.rate_table(sent, batch_size=size, encoding=encoding, dry_run=True)
                dry[encoding, size] = got
                assert got.replayed == 3, (encoding, size)
                rows = {r["call_id"]: r for r in got.rated.drop_columns(["row"]).to_pylist()}
                for cid, row in stored_rows.items():
                    if cid != "r-p-1":  # sent with other content: the reject below
                        assert row == {k: v for k, v in rows[cid].items() if k != "replayed"} and rows[cid]["replayed"]
                assert [(r["call_id"], r["code"]) for r in got.rejects.to_pylist()] == \
                    [("r-p-1", "committed_differently")], got.rejects.to_pylist()
        again = client.rate_table(sent, dry_run=False)  # commits the new calls, replays the others
    assert again.replayed == 3
    # The commit used October's 1000 bundle minutes (400 + 400): the new calls pay overage.
    new = {r["call_id"]: r for r in again.rated.to_pylist() if not r["replayed"]}
    assert new["r-b-2"]["overage_minor"] == 200 * 1000 and new["r-b-3"]["overage_minor"] == 400 * 1000
    for key, got in dry.items():
        assert got.rated.column_names == again.rated.column_names, key
        assert got.rated.sort_by("row").to_pylist() == again.rated.sort_by("row").to_pylist(), key
        assert got.rejects.to_pylist() == again.rejects.to_pylist(), key
