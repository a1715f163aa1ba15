"""Caller CRM: kept incrementally with each commit, equal to a
recomputation from the committed calls; masking by role."""
import copy
import dataclasses
import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rating_core.billing.calls import CALLS_SCHEMA, from_rated_table
from rating_core.cdr import rated_columns
from rating_core.cells import cell
from rating_core.billing.crm import MAX_NOTES, MAX_TAGS, CRM, CallerRecord, export_csv, mask, shown
from rating_core.cli import main
from rating_core.errors import InvalidInput, NotFound
from rating_core.engine import Engine
from rating_core.store import Store

CATALOG = """
name: crm
destination_classes: [mobile]
destination_prefixes: {"13": mobile}
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  payg: {kind: payg, rates: [{rate: std}]}
accounts:
  shop:
    package: payg
    package_start: 2026-01-01
    numbers: [{number: "4001000005", home_city: Shenzhen}]
  cafe:
    package: payg
    package_start: 2026-01-01
    numbers: [{number: "4001000006", home_city: Beijing}]
"""
CST = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2026, 11, 2, 9, tzinfo=CST).timestamp() * 1000)
CALLERS = ["13812345678", "13912340000", "075512345678", "13500001111"]
DESTS = ["13700000001", "13700000002"]

call = st.tuples(
    st.integers(0, 40),  # call id (repeats across commits = retransmissions)
    st.sampled_from(["4001000005", "4001000006"]),
    st.sampled_from(CALLERS),
    st.sampled_from(DESTS),
    st.integers(0, 86_400 * 20),  # start offset, seconds
    st.one_of(st.none(), st.integers(1, 600)),  # talk seconds, None = missed
)


def table(calls):
    rows = []
    for cid, number, caller, dest, off, talk in calls:
        start = T0 + off * 1000
        rows.append({"call_id": f"c{cid}", "caller": caller, "number": number, "forwarded_to": dest,
                     "start": start, "agent_answer": None if talk is None else start + 3000,
                     "end": start + 3000 + (talk or 10) * 1000})
    return pa.table({k: [r[k] for r in rows] for k in ("call_id", "caller", "number", "forwarded_to", "start",
                                                       "agent_answer", "end")},
                    schema=pa.schema([("call_id", pa.string()), ("caller", pa.string()), ("number", pa.string()),
                                      ("forwarded_to", pa.string()), ("start", pa.int64()),
                                      ("agent_answer", pa.int64()), ("end", pa.int64())]))


def recompute(committed: dict) -> dict:
    """(account, caller) -> counts, from every committed call at once."""
    out = {}
    for r in sorted(committed.values(), key=lambda r: r["start_ms"]):
        k = (r["account"], r["caller"])
        x = out.setdefault(k, {"calls": 0, "answered": 0, "talk": 0, "first": r["start_ms"], "last": 0,
                               "dest": None, "missed_at": 0, "answered_at": 0})
        x["calls"] += 1
        x["last"] = max(x["last"], r["start_ms"])
        if r["answered"]:
            x["answered"] += 1
            x["talk"] += r["billable_seconds"]
            if r["start_ms"] >= x["answered_at"]:
                x["answered_at"], x["dest"] = r["start_ms"], r["forwarded_to"]
        else:
            x["missed_at"] = max(x["missed_at"], r["start_ms"])
    return out


@pytest.fixture
def engine(tmp_path):
    (tmp_path / "c.yaml").write_text(CATALOG)
    Store(tmp_path / "s").compile(tmp_path / "c.yaml", activate=True)
    e = Engine.open(tmp_path / "s", threads=1)
    yield e
    e.close()


def test_counts_equal_a_recomputation_after_random_commits(tmp_path_factory):
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.lists(call, min_size=1, max_size=12), min_size=1, max_size=5))
    def run(batches):
        d = tmp_path_factory.mktemp("crm")
        (d / "c.yaml").write_text(CATALOG)
        Store(d / "s").compile(d / "c.yaml", activate=True)
        engine = Engine.open(d / "s", threads=1)
        try:
            committed = {}
            for batch in batches:
                result = engine.rate_and_commit(table(batch))
                calls = from_rated_table(result.rated).to_pylist()
                for r, replayed in zip(calls, result.replayed):
                    if not replayed:
                        assert r["call_id"] not in committed
                        committed[r["call_id"]] = r
            want = recompute(committed)
            crm = engine.crm
            got = {(r.account, r.caller): r for a in ("shop", "cafe") for r in crm.callers(a)}
            assert set(got) == set(want)
            for k, x in want.items():
                r = got[k]
                assert (r.calls, r.answered, r.talk_seconds, r.first_ms, r.last_ms, r.destination) == (
                    x["calls"], x["answered"], x["talk"], x["first"], x["last"], x["dest"])
                assert r.awaiting_callback == (x["missed_at"] > x["answered_at"])
            # The same calls fed again from a rated file change nothing (the
            # calls' money columns have the names of an earlier version's file).
            before = dict(got)
            assert crm.update_from_calls(from_rated_table(rated_columns(pa.Table.from_pylist(
                [dict(v, start=v["start_ms"], status="rated") for v in committed.values()]), "rated"))) == 0
            assert {(r.account, r.caller): r for a in ("shop", "cafe") for r in crm.callers(a)} == before
        finally:
            engine.close()

    run()


def test_a_group_commit_writes_the_records_separate_commits_write(tmp_path_factory):
    """``Engine.commit_tables`` merges a group's calls into the CRM once;
    the records read are those of the same requests committed one after
    another (repeated call ids across requests, equal start times,
    out-of-order requests, answers moving back and forth); the counts byte
    for byte (name ids may be interned in another order)."""
    from rating_core.ledger import formats

    def open_engine():
        d = tmp_path_factory.mktemp("crm-group")
        (d / "c.yaml").write_text(CATALOG)
        Store(d / "s").compile(d / "c.yaml", activate=True)
        return Engine.open(d / "s", threads=1)

    def records(engine):
        with engine.ledger.env.begin() as txn:
            return {bytes(k): (bytes(v)[:66], CallerRecord.read(engine.ledger, txn, k, v))
                    for k, v in txn.cursor(db=engine.ledger.db[formats.CRM])}

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.lists(call, min_size=1, max_size=10), min_size=2, max_size=4))
    # the same caller answered at the same instant by two destinations: the later request's wins
    @example([[(1, "4001000005", CALLERS[0], DESTS[0], 0, 30)], [(2, "4001000005", CALLERS[0], DESTS[1], 0, 30)]])
    def run(batches):
        grouped, separate = open_engine(), open_engine()
        try:
            results, error = grouped.commit_tables([table(b) for b in batches])
            assert error is None
            for b in batches:
                separate.rate_and_commit(table(b))
            assert records(grouped) == records(separate)
        finally:
            grouped.close()
            separate.close()

    run()


def test_region_tags_notes_callbacks_and_queries(engine):
    engine.rate_and_commit(table([(1, "4001000005", "13812345678", DESTS[0], 0, None),
                                  (2, "4001000005", "13812345678", DESTS[1], 60, 30),
                                  (3, "4001000005", "13912340000", DESTS[0], 120, None)]))
    crm = engine.crm
    r = crm.get("shop", "13812345678")
    assert (r.calls, r.answered, r.missed, r.talk_seconds, r.destination) == (2, 1, 1, 30, DESTS[1])
    assert r.province and r.carrier  # 138 1234: region data knows it
    assert not r.awaiting_callback  # answered after the miss
    assert [x.caller for x in crm.callers("shop", awaiting_callback=True)] == ["13912340000"]
    crm.called_back("shop", "13912340000", T0 + 200_000)
    assert crm.callers("shop", awaiting_callback=True) == []
    crm.tag("shop", "13812345678", add=["vip", "after-sales"])
    crm.note("shop", "13812345678", "replaced the filter under warranty", T0)
    assert [x.caller for x in crm.callers("shop", tag="vip")] == ["13812345678"]
    assert crm.get("shop", "13812345678").notes[0]["text"] == "replaced the filter under warranty"
    assert crm.get("shop", "13812345678").calls == 2  # editing keeps the counts
    assert crm.callers("cafe") == []
    # The CRM holds callers: a number that never called the account gets no
    # record (it would show first and last calls in 1970).
    for edit in (lambda: crm.tag("cafe", "13812345678", add=["vip"]), lambda: crm.note("shop", "13500001111", "x", T0),
                 lambda: crm.called_back("shop", "13500001111", T0)):
        with pytest.raises(NotFound, match="^caller: .* never called account"):
            edit()
    assert crm.get("cafe", "13812345678") is None and crm.get("shop", "13500001111") is None


def test_tags_and_notes_are_bounded_and_plain_text(engine):
    engine.rate_and_commit(table([(1, "4001000005", "13812345678", DESTS[0], 0, 20)]))
    crm = engine.crm
    with pytest.raises(InvalidInput, match=r"^add: at most 32 tags"):
        crm.tag("shop", "13812345678", add=[f"t{i}" for i in range(MAX_TAGS + 1)])
    crm.tag("shop", "13812345678", add=[f"t{i}" for i in range(MAX_TAGS)])
    with pytest.raises(InvalidInput, match=r"^add: at most 32 tags"):
        crm.tag("shop", "13812345678", add=["more"])
    assert crm.tag("shop", "13812345678", add=["more"], remove=["t0"]).tags[-1] == "t9"  # swapping one is fine
    for bad, field in (("", "add[0]"), ("x" * 65, "add[0]"), ("a\x00b", "add[0]"), ("x\ny", "add[0]"),
                       ("\x1b[2J", "add[0]"), ("\x85", "add[0]")):
        with pytest.raises(InvalidInput) as e:
            crm.tag("shop", "13812345678", add=[bad])
        assert e.value.field == field, repr(bad)
    for bad in ("", "x" * 4001, "n\x00", "\x1b[2J", "\r\n"):
        with pytest.raises(InvalidInput) as e:
            crm.note("shop", "13812345678", bad, T0)
        assert e.value.field == "note", repr(bad)
    crm.note("shop", "13812345678", "line one\n\tline two", T0)
    for i in range(MAX_NOTES - 1):
        crm.note("shop", "13812345678", f"note {i}", T0)
    with pytest.raises(InvalidInput, match="^note: at most 50 notes"):
        crm.note("shop", "13812345678", "one too many", T0)
    assert len(crm.get("shop", "13812345678").notes) == MAX_NOTES


def test_csv_cells_that_start_like_a_formula_are_text(engine, tmp_path):
    assert [cell(v) for v in ("=1+2", "+86 138", "-x", "@SUM(A1)", "\tx", "-12.50", "+3", "12", 7, None, "vip")] == [
        "'=1+2", "'+86 138", "'-x", "'@SUM(A1)", "'\tx", "-12.50", "+3", "12", 7, None, "vip"]
    engine.rate_and_commit(table([(1, "4001000005", "13812345678", DESTS[0], 0, 20)]))
    engine.crm.tag("shop", "13812345678", add=["=cmd|' /C calc'!A0", "@x"])
    export_csv(engine.crm.callers("shop"), tmp_path / "c.csv")
    row = (tmp_path / "c.csv").read_text("utf-8-sig").splitlines()[1]
    assert row.endswith(",'=cmd|' /C calc'!A0;@x,")  # the cell starts with the quote (then: no notes)
    # For people: local date-times and yes / no, not epoch ms and booleans.
    import csv as _csv

    (r,) = _csv.DictReader((tmp_path / "c.csv").read_text("utf-8-sig").splitlines())
    rec = engine.crm.callers("shop")[0]
    when = dt.datetime.fromtimestamp(rec.first_ms / 1000, dt.timezone(dt.timedelta(hours=8)))
    assert r["first_call"] == when.strftime("%Y-%m-%d %H:%M:%S") and r["awaiting_callback"] in ("yes", "no")


def test_crm_cli_refuses_strangers_bad_tags_and_masked_number_filters(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(CATALOG)
    Store(tmp_path / "s").compile(tmp_path / "c.yaml", activate=True)
    engine = Engine.open(tmp_path / "s", threads=1)
    try:
        engine.rate_and_commit(table([(1, "4001000005", "13812345678", DESTS[0], 0, 20)]))
    finally:
        engine.close()
    store = ["--store", str(tmp_path / "s"), "--account", "shop"]

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main(["crm", *args])
        return e.value.code, capsys.readouterr()

    code, out = run("tag", *store, "--caller", "13812345678", "--add", "vip")
    assert code == 0 and "vip" in out.out
    for args, says in ((("tag", *store, "--caller", "13900000000", "--add", "vip"), "--caller: 13900000000 never"),
                       (("note", *store, "--caller", "13900000000", "hi"), "--caller: 13900000000 never"),
                       (("called-back", *store, "--caller", "13900000000"), "--caller: 13900000000 never"),
                       (("tag", *store, "--caller", "13812345678", "--add", "a\x00b"), "--add[0]: control"),
                       (("note", *store, "--caller", "13812345678", "x" * 4001), "note: a note is 1 to 4000"),
                       (("show", *store, "--caller", "138"), "--caller: filtering by caller number needs")):
        code, out = run(*args)
        assert code == 2 and says in out.err and len(out.err.strip().splitlines()) == 1, (args, out.err)
    code, out = run("show", *store, "--caller", "138", "--role", "supervisor")
    assert code == 0 and "13812345678" in out.out


def test_masking_by_role(engine, tmp_path):
    assert mask("13812345678") == "138****5678"
    assert shown("13812345678", "agent") == "138****5678"
    assert shown("13812345678", "admin") == "13812345678"
    engine.rate_and_commit(table([(1, "4001000005", "13812345678", DESTS[0], 0, 20)]))
    recs = engine.crm.callers("shop")
    export_csv(recs, tmp_path / "agent.csv", role="agent")
    export_csv(recs, tmp_path / "admin.csv", role="admin")
    assert "138****5678" in (tmp_path / "agent.csv").read_text("utf-8-sig")
    assert "13812345678" not in (tmp_path / "agent.csv").read_text("utf-8-sig")
    assert "13812345678" in (tmp_path / "admin.csv").read_text("utf-8-sig")


def _older_form(r: CallerRecord) -> bytes:
    """A caller record as the ledger stored it before ``CRM_RECORD``:
    ``CRM_COUNTS`` + msgspec JSON {d, c, p, k, t, n} (what ``ledger.callers``
    must still read)."""
    import msgspec

    from rating_core.ledger import formats

    return formats.CRM_COUNTS.pack(r.first_ms, r.last_ms, r.calls, r.answered, r.talk_seconds, r.last_answered_ms,
                                   r.last_missed_ms, r.called_back_ms) + msgspec.json.encode(
        {"d": r.destination, "c": r.city, "p": r.province, "k": r.carrier, "t": r.tags, "n": r.notes})


def _callers(crm: CRM, txn, account: str) -> list[CallerRecord]:
    """``crm.callers(account)`` read inside ``txn`` (an open write)."""
    from rating_core.ledger import callers

    prefix = callers.key(account, "")
    return [CallerRecord.read(crm.ledger, txn, bytes(k), v) for k, v in txn.cursor(db=crm.db)
            if bytes(k).startswith(prefix)]


def _call_by_call(stored: dict, calls: list[dict]) -> dict:
    """The CRM update rule applied one call at a time to ``CallerRecord``s
    (the readable form of ``CRM.record``'s column-wise merge)."""
    out = dict(stored)
    for c in sorted(calls, key=lambda c: c["start_ms"]):
        if not c["caller"]:
            continue
        k = (c["account"], c["caller"])
        rec = out.get(k) or CallerRecord(*k)
        rec = copy.deepcopy(rec)
        rec.first_ms = min(rec.first_ms, c["start_ms"]) if rec.calls else c["start_ms"]
        rec.last_ms = max(rec.last_ms, c["start_ms"])
        rec.calls += 1
        if c["answered"]:
            rec.answered += 1
            rec.talk_seconds += c["billable_seconds"]
            if c["start_ms"] >= rec.last_answered_ms:
                rec.last_answered_ms, rec.destination = c["start_ms"], c["forwarded_to"]
        else:
            rec.last_missed_ms = max(rec.last_missed_ms, c["start_ms"])
        rec.city = c["caller_city"] or rec.city
        rec.province = c["caller_province"] or rec.province
        rec.carrier = c["caller_carrier"] or rec.carrier
        out[k] = rec
    return out


@pytest.mark.parametrize("chunk,walk", [(None, 0.0), (3, 0.0), (None, float("inf")), (3, float("inf"))],
                         ids=["walk", "chunks-walk", "getmulti", "chunks-getmulti"])
def test_batch_merge_writes_the_records_a_call_by_call_update_writes(tmp_path_factory, monkeypatch, chunk, walk):
    """``CRM.record`` merges a batch column-wise (stored records read once,
    names interned), in time-ordered chunks: the records the call-by-call
    rule gives, with stored tags and notes, stored records of the older
    form (counts + JSON) beside current ones, callers known only to caller
    memory (no calls yet), and names with quotes and backslashes; the same
    with chunks of 3 calls, and with the stored records read by a cursor
    walk (every record from the batch's first caller on) or by getmulti."""
    from rating_core.billing import crm as crm_module
    from rating_core.ledger import Ledger

    if chunk:
        monkeypatch.setattr(crm_module, "CHUNK", chunk)
    monkeypatch.setattr(crm_module, "WALK_SHARE", walk)  # stored records read by a cursor walk, or by getmulti

    # (city, province, carrier): a stored caller's region is most often the
    # same again; names JSON must escape; unknown (None) and empty names.
    regions = st.sampled_from([("深圳", "广东", "China Mobile"), ("北京", "北京", "China Unicom"),
                               ("Shen\"zhen", "a\\b", "tab\there"), (None, None, None), ("", "", ""),
                               ("深圳", None, "")])
    callers = st.sampled_from(["13812345678", "13912340000", "", "075512345678"])
    when = st.integers(T0, T0 + 10**9)
    stored_rec = st.builds(
        lambda acct, caller, first, n, ans_at, dest, region, tags, notes: CallerRecord(
            acct, caller, first_ms=first if n else 0, last_ms=first if n else 0, calls=n, answered=min(n, 1),
            talk_seconds=n * 7, last_answered_ms=ans_at, destination=dest, city=region[0] or None,
            province=region[1] or None, carrier=region[2] or None, tags=tags,
            notes=[{"at_ms": T0, "text": t} for t in notes]),
        st.sampled_from(["shop", "cafe"]), callers.filter(bool), when, st.integers(0, 3), st.sampled_from([0, T0 + 5]),
        st.one_of(st.none(), st.sampled_from(DESTS)), regions, st.lists(st.sampled_from(["vip", "q\"t"]), max_size=2),
        st.lists(st.text(max_size=5), max_size=2))
    a_call = st.builds(
        lambda d, region: dict(d, caller_city=region[0], caller_province=region[1], caller_carrier=region[2]),
        st.fixed_dictionaries({
            "account": st.sampled_from(["shop", "cafe"]), "caller": st.one_of(callers, st.none()), "start_ms": when,
            "answered": st.booleans(), "billable_seconds": st.integers(0, 600),
            "forwarded_to": st.sampled_from(DESTS)}),  # the destination that answered or rang
        regions)
    ledger = Ledger(tmp_path_factory.mktemp("merge"))
    crm = CRM(ledger)

    sz = ("深圳", "广东", "China Mobile")
    known_caller = [CallerRecord("shop", "13812345678", T0, T0, 2, 1, 40, T0, 0, 0, DESTS[0], *sz, ["vip"],
                                 [{"at_ms": T0, "text": "a \"note\""}]),
                    CallerRecord("cafe", "13912340000", T0, T0, 1, 0, 0, 0, T0, 0, None, *sz)]
    again = [{"account": "shop", "caller": "13812345678", "start_ms": T0 + 9, "answered": True,
              "billable_seconds": 30, "forwarded_to": DESTS[1], "caller_city": sz[0], "caller_province": sz[1],
              "caller_carrier": sz[2]},
             {"account": "cafe", "caller": "13912340000", "start_ms": T0 + 5, "answered": False,
              "billable_seconds": 0, "forwarded_to": DESTS[1], "caller_city": sz[0], "caller_province": sz[1],
              "caller_carrier": sz[2]}]

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(stored_rec, max_size=4), st.lists(a_call, min_size=1, max_size=15))
    @example(known_caller, again)  # stored callers calling again from the same region
    def run(stored, calls):
        before = {(r.account, r.caller): r for r in stored}
        txn = ledger.env.begin(write=True)
        try:  # aborted after each example: the next starts from an empty CRM
            for i, r in enumerate(before.values()):  # every other one in the older form
                if i % 2:
                    txn.put(f"{r.account}\0{r.caller}".encode(), _older_form(r), db=crm.db)
                else:
                    r.write(ledger, txn)
            rows = [dict(c, call_id=f"c{i}") for i, c in enumerate(calls)]
            crm.record(txn, pa.Table.from_pylist(rows, schema=CALLS_SCHEMA))
            got = {(r.account, r.caller): r for a in ("shop", "cafe") for r in _callers(crm, txn, a)}
        finally:
            txn.abort()
        assert got == _call_by_call(before, rows)

    try:
        run()
    finally:
        ledger.close()


def test_a_stored_record_of_another_shape_is_merged_through_msgspec(tmp_path):
    """A stored record of the older form whose JSON tail has its keys in
    another order (as another writer might store them) is decoded by
    msgspec and upgraded, never misread."""
    from rating_core.ledger import Ledger, formats

    ledger = Ledger(tmp_path)
    crm = CRM(ledger)
    key = b"shop\x0013812345678"
    odd = b'{"n":[],"t":["vip"],"k":null,"p":"P","c":"X","d":"13700000001"}'
    call = {"call_id": "c1", "account": "shop", "caller": "13812345678", "start_ms": T0 + 10, "answered": False,
            "billable_seconds": 0, "forwarded_to": DESTS[1], "caller_city": None, "caller_province": "广东",
            "caller_carrier": None}
    try:
        with ledger.env.begin(write=True) as txn:
            txn.put(key, formats.CRM_COUNTS.pack(T0, T0, 1, 1, 5, T0, 0, 0) + odd, db=crm.db)
            crm.record(txn, pa.Table.from_pylist([call], schema=CALLS_SCHEMA))
            got = CallerRecord.read(ledger, txn, key, txn.get(key, db=crm.db))
            assert len(txn.get(key, db=crm.db)) == formats.CRM_RECORD.size  # upgraded by the merge
    finally:
        ledger.close()
    assert (got.calls, got.answered, got.first_ms, got.last_ms, got.last_missed_ms) == (2, 1, T0, T0 + 10, T0 + 10)
    assert (got.destination, got.city, got.province, got.carrier, got.tags) == ("13700000001", "X", "广东", None, ["vip"])


# Record keys: shared prefixes longer than the kernel's 24-byte sort prefix,
# NUL bytes, the empty key; the second pool is account NUL caller keys only,
# where the sort's shortcut ranks the part before the first NUL.
_ANY_KEYS = [b"", b"a", b"a\x00", b"a\x00b", b"shop\x00138", b"x" * 24, b"x" * 24 + b"\x00", b"x" * 25,
             b"x" * 23 + b"\xff", "深圳\x0013812345678".encode(), b"cafe\x0013912340000" * 2]
_NUL_KEYS = [b"a\x00", b"a\x00b", b"a\x00\x00", b"ab\x00", b"ab\x00a", b"\x00", b"\x00z", b"b\x00" + b"9" * 30,
             b"b\x00" + b"9" * 29 + b"8", b"pearl_river_travel\x0018799673526", b"pearl_river_travel\x0018799673527",
             b"pearl_river_travelx\x001", "深圳\x0013812345678".encode()]
# Digit callers only: the radix path (rank, then the digits as nibbles),
# with prefixes of one another, an empty caller, the longest that fits (16
# digits) and 0 / 9 at the ends; the 17-digit key sends a draw to the hash path.
_DIGIT_KEYS = [b"a\x00", b"a\x000", b"a\x0000", b"a\x001", b"a\x0010", b"a\x009", b"a\x00" + b"9" * 16,
               b"a\x00" + b"0" * 16, b"ab\x001", b"b\x0013812345678", b"b\x001381234567", b"b\x0013812345679",
               b"pearl_river_travel\x0018799673526", "深圳\x0013812345678".encode(), b"\x000"]


def _pairs(keys):
    """A pool of record keys as (account, caller) pairs: split at the first
    NUL and at the last (an account holding a NUL: no rank shortcut); a key
    without one is an account with an empty caller."""
    out = []
    for k in keys:
        if b"\0" in k:
            out += [tuple(k.split(b"\0", 1)), tuple(k.rsplit(b"\0", 1))]
        else:
            out.append((k, b""))
    return sorted(set(out))


@pytest.mark.parametrize("pool", [_ANY_KEYS, _NUL_KEYS, _DIGIT_KEYS, _DIGIT_KEYS + [b"b\x00" + b"1" * 17]],
                         ids=["any", "account-caller", "digits", "digits-or-long"])
def test_group_kernel_equals_a_readable_grouping(pool):
    """``kernels.crm.group`` (a radix sort of digit callers, else a hash,
    then the keys sorted by their bytes; the record keys made from the
    account and caller columns) against a dict and ``sorted`` of
    ``account NUL caller``: the same keys (bytes) in the same order, the same
    aggregates and latest name rows; for rows drawn in any order or in key
    order, with and without the rank shortcut, from arrays that start at an
    offset."""
    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(
        st.sampled_from(_pairs(pool)),
        st.one_of(st.none(), st.integers(0, 50)),  # start (None: unknown)
        st.sampled_from([0, 1, 2]),  # missed, answered, unknown
        st.integers(0, 600),
        st.tuples(*[st.booleans()] * 4)), max_size=40),
        st.sampled_from(["any", "ordered"]), st.booleans(), st.integers(0, 3), st.integers(0, 3))
    def run(calls, shape, use_rank, pad_account, pad_caller):
        if shape == "ordered":  # the rows in key order (a sorted input)
            calls = sorted(calls, key=lambda c: c[0][0] + b"\0" + c[0][1])
        _check_group(calls, use_rank, pad_account, pad_caller)

    run()


def _check_group(calls, use_rank=True, pad_account=0, pad_caller=0):
    import numpy as np

    from rating_core.kernels import crm as kernel
    from rating_core.numbers import string_buffers

    # the time order: rows visited by a permutation (unknown starts last)
    order = sorted(range(len(calls)), key=lambda i: (calls[i][1] is None, calls[i][1] or 0))
    accounts = pa.array([b"pad"] * pad_account + [c[0][0] for c in calls], pa.binary()).slice(pad_account)
    callers_ = pa.array([b"\0x"] * pad_caller + [c[0][1] for c in calls], pa.binary()).slice(pad_caller)
    # the sort's shortcut: each account's rank, when no account holds a NUL
    ranked = use_rank and not any(b"\0" in c[0][0] for c in calls)
    ranks = {h: i for i, h in enumerate(sorted({c[0][0] for c in calls}))}
    rank = np.array([ranks[c[0][0]] for c in calls] if ranked else [0] * len(calls), np.int64)
    rest = (np.array(order, np.int64),
            np.array([c[1] or 0 for c in calls], np.int64), np.array([c[1] is not None for c in calls], np.uint8),
            np.array([c[2] for c in calls], np.uint8), np.array([c[3] for c in calls], np.int64),
            np.array([c[4] for c in calls], np.uint8).T.copy().reshape(4, -1))
    (acc_off, acc_dat), (cal_off, cal_dat) = string_buffers(accounts), string_buffers(callers_)
    keys, agg, last = kernel.group(acc_off, acc_dat, cal_off, cal_dat, rank, ranked, *rest)
    assert all(type(k) is bytes for k in keys)
    # The radix path takes every ranked batch whose callers are digits and
    # fit one uint64 with the account's rank (4 bits a digit), and no other.
    if ranked:
        fits = bool(calls) and 4 * max(len(c[0][1]) for c in calls) + int(rank.max()).bit_length() <= 64
        digits = all(c[0][1].isdigit() or not c[0][1] for c in calls)
        assert (kernel._group_digits(acc_off, acc_dat, cal_off, cal_dat, rank, *rest) is not None) == (fits and digits)
    want = {}
    for i in order:
        (account, caller), s, a, b, known = calls[i]
        w = want.setdefault(account + b"\0" + caller, {"lo": None, "hi": None, "n": 0, "ans": 0, "talk": 0,
                                                         "missed": 0, "ans_at": 0, "last": [-1] * 4})
        if s is not None:
            w["lo"] = s if w["lo"] is None else min(w["lo"], s)
            w["hi"] = s if w["hi"] is None else max(w["hi"], s)
            w["n"] += 1
        if a == 1:
            w["ans"] += 1
            w["talk"] += b
            w["ans_at"] = max(w["ans_at"], s or 0)
        elif a == 0:
            w["missed"] = max(w["missed"], s or 0)
        for f in range(4):
            if known[f]:
                w["last"][f] = i
    assert keys == sorted(want)
    for j, k in enumerate(keys):
        w = want[k]
        assert agg[:, j].tolist() == [w["lo"] or 0, w["hi"] or 0, w["n"], w["ans"], w["talk"], w["missed"], w["ans_at"]]
        assert last[:, j].tolist() == w["last"]


def test_group_kernel_refuses_columns_that_disagree():
    """``kernels.crm.group``: an offset outside its data, a column of
    another length or a row out of range is a ValueError, not a read out of
    bounds."""
    import numpy as np

    from rating_core.kernels import crm as kernel

    one = (np.array([0, 1], np.int32), np.frombuffer(b"a", np.uint8))
    rest = (np.array([0], np.int64), np.zeros(1, np.int64), np.ones(1, np.uint8), np.ones(1, np.uint8),
            np.zeros(1, np.int64), np.zeros((4, 1), np.uint8))
    keys, _, _ = kernel.group(*one, np.array([0, 1], np.int32), np.frombuffer(b"1", np.uint8),
                              np.zeros(1, np.int64), True, *rest)
    assert keys == [b"a\x001"]
    with pytest.raises(ValueError, match="offset"):
        kernel.group(*one, np.array([0, 5], np.int32), np.frombuffer(b"1", np.uint8), np.zeros(1, np.int64), True,
                     *rest)
    with pytest.raises(ValueError, match="one value per call"):
        kernel.group(*one, np.array([0], np.int32), np.frombuffer(b"1", np.uint8), np.zeros(1, np.int64), True,
                     *rest)
    with pytest.raises(ValueError, match="row out of range"):
        kernel.group(*one, *one, np.zeros(1, np.int64), False, np.array([1], np.int64), *rest[1:])


def test_a_ledger_of_older_records_reads_the_same(tmp_path):
    """Caller records stored in the older form (``CRM_COUNTS`` + JSON, what
    ledgers written before ``CRM_RECORD`` hold) read exactly as the same
    records stored now: ``get``, ``callers`` with each filter, caller memory
    (``last_answer``); an edit or an answer event upgrades a record and
    keeps everything else it held."""
    from rating_core.ledger import Ledger, callers, formats

    sz = ("深圳", "广东", "China Mobile")
    recs = [CallerRecord("shop", "13812345678", T0, T0 + 9, 3, 2, 95, T0 + 9, T0 + 1, 0, DESTS[0], *sz, ["vip"],
                         [{"at_ms": T0, "text": "a \"note\"\nline 2"}]),
            CallerRecord("shop", "13912340000", T0, T0, 1, 0, 0, 0, T0, 0, None, None, None, None),
            CallerRecord("shop", "075512345678", T0, T0 + 5, 2, 1, 10, T0 + 5, 0, T0 + 7, DESTS[1], "", "a\\b", None,
                         ["q\"t", "vip"]),
            CallerRecord("cafe", "13812345678", 0, 0, 0, 0, 0, T0, 0, 0, DESTS[1], None, None, None)]  # memory only
    old, new = Ledger(tmp_path / "old"), Ledger(tmp_path / "new")
    try:
        with old.durable() as txn:
            for r in recs:
                txn.put(callers.key(r.account, r.caller), _older_form(r), db=old.db[formats.CRM])
        with new.durable() as txn:
            for r in recs:
                r.write(new, txn)
        reads = []
        for ledger in (old, new):
            crm = CRM(ledger)
            with ledger.env.begin() as txn:
                memory = [callers.last_answer(ledger, txn, txn.get(callers.key(r.account, r.caller),
                                                                   db=ledger.db[formats.CRM])) for r in recs]
            reads.append(([crm.get(r.account, r.caller) for r in recs], crm.callers("shop"), crm.callers("cafe"),
                          crm.callers("shop", tag="vip"), crm.callers("shop", awaiting_callback=True),
                          crm.callers("shop", caller_prefix="138"), memory))
        assert reads[0] == reads[1]
        assert reads[0][0] == recs
        assert reads[0][-1] == [(r.destination, r.last_answered_ms) for r in recs]
        # Written again (a tag, an answer event): current form, nothing else lost.
        crm = CRM(old)
        crm.tag("shop", "13812345678", add=["new"])
        with old.durable() as txn:
            callers.remember_answer(old, txn, "shop", "075512345678", DESTS[0], T0 + 20)
        with old.env.begin() as txn:
            for r in recs[:3:2]:
                assert len(txn.get(callers.key(r.account, r.caller), db=old.db[formats.CRM])) == \
                    formats.CRM_RECORD.size
        assert crm.get("shop", "13812345678") == dataclasses.replace(recs[0], tags=["new", "vip"])
        got = crm.get("shop", "075512345678")
        assert (got.destination, got.last_answered_ms, got.tags, got.calls, got.province) == (
            DESTS[0], T0 + 20, ["q\"t", "vip"], 2, "a\\b")
    finally:
        old.close()
        new.close()


# Call ids: shared prefixes longer than the sort's 24 integer bytes, one a
# prefix of another, bytes at both ends of the range.
_CALL_IDS = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.builds(lambda p, s: p + s, st.sampled_from([b"r0-d4d-", b"r0-d4d-1000", b"x" * 30, b""]),
              st.sampled_from([b"", b"0", b"00", b"1", b"\x00", b"\xff", b"9" * 20])).filter(bool))


def test_call_entries_kernel_equals_a_readable_sort():
    """``kernels.crm.call_entries`` (a pass that keeps nearly ordered keys
    and merges the others in, else a radix sort on 8 bytes, then the runs
    equal in them by their bytes) against ``sorted``: the same (key,
    ``COMMITTED`` value) pairs in byte order, equal keys in row order, for
    ordered, nearly ordered and shuffled ids and an array that starts at an
    offset."""
    import numpy as np

    from rating_core.kernels.crm import call_entries
    from rating_core.ledger.formats import COMMITTED
    from rating_core.numbers import string_buffers

    @settings(max_examples=200, deadline=None)
    @given(st.lists(_CALL_IDS, min_size=1, max_size=200), st.sampled_from(["ordered", "nearly", "any"]),
           st.lists(st.tuples(st.integers(0, 199), st.integers(0, 199)), max_size=3), st.integers(0, 3),
           st.integers(0, (1 << 64) - 1))
    def run(ids, shape, swaps, skip, batch):
        if shape != "any":
            ids = sorted(ids)
        if shape == "nearly":  # a few out of place: merged into the rest (at most n / 64), else sorted
            for a, b in swaps:
                a, b = a % len(ids), b % len(ids)
                ids[a], ids[b] = ids[b], ids[a]
        keys = pa.array([b"pad"] * skip + ids, pa.binary()).slice(skip)
        got = list(zip(*call_entries(*string_buffers(keys), batch)))
        want = sorted(((k, COMMITTED.pack(batch, r)) for r, k in enumerate(ids)), key=lambda e: e[0])
        assert got == want

    run()
    with pytest.raises(ValueError, match="offset"):
        call_entries(np.array([0, 5], np.int32), np.zeros(2, np.uint8), 1)
