"""A migrated account is billed from its cut-over (README "Accounts and
numbers", the `accounts import` migration; newcomer N10 finding 1).

The demo flow on a real LMDB store: the October calls committed, then
`accounts import` of the demo catalog, whose accounts started their
packages in 2024-2026. Before this, the import's package_start events made
`bill --ledger` bill every month since each package start (rentals,
minimum shortfalls, yearly fees: "unpaid on earlier statements"), and a
payment went to those months first. Now the ledger bills from the
cut-over: October's statements are the same before and after the import.
"""
import json

import pyarrow.parquet as pq
import pytest

from rating_core.cli import CUT_OVER_NOTE, CUT_OVER_WARNED, main

PY_MONTH = "2026-10"


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err


def _migrated(demo_made, tmp_path, capsys, billing_from: str):
    """A copy of the demo store (under ``tmp_path / "demo"``) with its
    catalog's accounts imported, cut over at ``billing_from``: (the demo
    directory, the store as a string)."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    store = str(d / "store")
    code, _, err = run(capsys, "accounts", "import", str(d / "catalog" / "catalog.yaml"), "--store", store,
                       "--billing-from", billing_from)
    assert code == 0, err
    return d, store


def bill(capsys, demo, name, *extra):
    out = demo / name
    code, printed, err = run(capsys, "bill", "--ledger", "--store", str(demo / "store"), "--out", str(out), *extra)
    assert code == 0, err
    return json.loads(out.read_text("utf-8"))["statements"], printed


def test_import_keeps_october_and_bills_nothing_before_it(demo, capsys):
    code, _, err = run(capsys, "rate", str(demo / "cdrs.parquet"), "--store", str(demo / "store"),
                       "--out", str(demo / "committed.parquet"), "--commit")
    assert code == 0, err
    before, _ = bill(capsys, demo, "before.json")
    code, printed, err = run(capsys, "accounts", "import", str(demo / "catalog" / "catalog.yaml"),
                             "--store", str(demo / "store"))
    assert code == 0, err
    result = json.loads(printed)
    assert result["imported"] and result["billing_from_local"].endswith("-01T00:00:00.000+08:00")
    after, footer = bill(capsys, demo, "after.json")
    october = [s for s in before if s["month"] == PY_MONTH]
    assert october and [s for s in after if s["month"] == PY_MONTH] == october
    # No month before October (the calls held pull the cut-over back to it); the default run of
    # the live accounts goes on to the current month (rentals accrue without calls).
    assert min(s["month"] for s in after) == min(s["month"] for s in before) == PY_MONTH
    assert all(s["earlier_unpaid_minor"] == 0 for s in after if s["month"] == PY_MONTH)
    assert "left unpaid by months before those shown" not in footer

    # Re-importing changes nothing (idempotent): same accounts skipped, same statements.
    code, printed, err = run(capsys, "accounts", "import", str(demo / "catalog" / "catalog.yaml"),
                             "--store", str(demo / "store"))
    assert code == 0, err
    again = json.loads(printed)
    assert again["imported"] == [] and sorted(again["skipped"]) == sorted(result["imported"])
    assert bill(capsys, demo, "again.json")[0] == after

    # A payment of exactly the October bill settles it: nothing is owed for October.
    payg = next(s for s in after if s["month"] == PY_MONTH and s["package_kind"] in ("payg", "bundle")
                and s["amount_due_minor"] > 0)
    due = payg["amount_due_minor"]
    code, _, err = run(capsys, "accounts", "top-up", payg["account"], f"{due // 10000}.{due % 10000:04d}",
                       "--at", "2026-11-05T10:00:00", "--store", str(demo / "store"))
    assert code == 0, err
    paid, _ = bill(capsys, demo, "paid.json", "--account", payg["account"])
    by_month = {s["month"]: s for s in paid}
    assert by_month[PY_MONTH]["earlier_unpaid_minor"] == 0
    november = by_month["2026-11"]
    assert november["earlier_unpaid_minor"] == due and november["paid_to_earlier_minor"] == due
    # What is still owed is November's own bill, not months the old platform billed.
    assert november["earlier_unpaid_minor"] - november["paid_to_earlier_minor"] == 0

    # The cut-over is on the account's record.
    code, printed, err = run(capsys, "accounts", "show", payg["account"], "--store", str(demo / "store"))
    assert code == 0, err
    assert json.loads(printed)["account"]["billing_from_ms"] == result["billing_from_ms"]


@pytest.mark.parametrize("text, why", [("2026-10-15", "not the 1st of a month"), ("2026-13-01", "not a date"),
                                       ("1969-12-01", "outside 1970-01-01")])
def test_billing_from_is_checked(tmp_path, capsys, text, why):
    code, _, err = run(capsys, "accounts", "import", __file__, "--store", str(tmp_path), "--billing-from", text)
    assert code == 2 and "--billing-from" in err and why in err


def test_billing_from_given(demo_made, tmp_path, capsys):
    """`--billing-from 2026-10-01` before anything is committed: October is
    the first month billed, whole (its rental), with nothing unpaid before it."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    code, printed, err = run(capsys, "accounts", "import", str(d / "catalog" / "catalog.yaml"),
                             "--store", str(d / "store"), "--billing-from", "2026-10-01")
    assert code == 0, err
    assert json.loads(printed)["billing_from_local"] == "2026-10-01T00:00:00.000+08:00"
    statements, footer = bill(capsys, d, "b.json", "--month", "2026-10", "--month", "2026-11")
    assert {s["month"] for s in statements} == {"2026-10", "2026-11"}
    assert all(s["earlier_unpaid_minor"] == 0 for s in statements if s["month"] == "2026-10")
    assert any(s["rental_minor"] > 0 for s in statements if s["month"] == "2026-10")
    assert "left unpaid by months before those shown" not in footer


def test_grpc_reads_the_cut_over(demo, tmp_path):
    """After test_import_keeps_october_and_bills_nothing_before_it (this
    module's store, imported): GetStatement gives October as `bill --ledger`
    does, refuses a month before the cut-over, and GetAccount has it."""
    import grpc

    from demo_server import Server
    from rating400.v1 import accounts_pb2, accounts_pb2_grpc, billing_pb2, billing_pb2_grpc

    after = {s["account"]: s for s in json.loads((demo / "after.json").read_text("utf-8"))["statements"]
             if s["month"] == PY_MONTH}
    account = "hangzhou_tea"  # package since 2026-02: seven months of minimum shortfall before the fix
    server = Server(demo / "store", tmp_path, workers=1).start()
    try:
        with grpc.insecure_channel(server.target) as channel:
            billing = billing_pb2_grpc.BillingServiceStub(channel)
            s = billing.GetStatement(billing_pb2.StatementRequest(account=account, month=PY_MONTH), timeout=60)
            assert s.earlier_unpaid_minor == 0 and s.amount_due_minor == after[account]["amount_due_minor"]
            with pytest.raises(grpc.RpcError) as e:
                billing.GetStatement(billing_pb2.StatementRequest(account=account, month="2026-05"), timeout=60)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "cut-over" in e.value.details()
            view = accounts_pb2_grpc.AccountServiceStub(channel).GetAccount(
                accounts_pb2.GetAccountRequest(account=account), timeout=30)
            assert view.account.billing_from_ms > 0
    finally:
        server.stop()


def test_a_commit_warns_once_per_account_of_calls_before_its_cut_over(demo_made, tmp_path, capsys):
    """Newcomer N10-2 finding 3: imported first (default cut-over: the
    import's month), then the old platform's October calls committed: they
    are billed here (nothing the ledger holds is left off a statement), so
    the commit says so, one line per account, and once: a repeated commit
    replays them and warns of nothing."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    code, printed, err = run(capsys, "accounts", "import", str(d / "catalog" / "catalog.yaml"),
                             "--store", str(d / "store"), "--billing-from", "2026-12-01")
    assert code == 0, err
    args = ("rate", str(d / "cdrs.parquet"), "--store", str(d / "store"), "--out", str(d / "c.parquet"), "--commit")
    code, printed, err = run(capsys, *args, "--json")
    assert code == 0, err
    summary = json.loads(printed)
    listed = summary["before_cut_over"]
    lines = [line for line in err.splitlines() if line.startswith("warning:") and "cut-over" in line]
    # Every account with calls is listed once, its calls counted (all of them: the demo's are October's).
    committed = pq.read_table(d / "c.parquet", columns=["account"]).column("account").to_pylist()
    assert {b["account"]: b["calls"] for b in listed} == {a: committed.count(a) for a in set(committed)}
    assert all(b["billing_from_day"] == "2026-12-01" and "billing_from_local" not in b
               and b["billing_starts"] == "2026-10" for b in listed)
    first = listed[0]
    assert lines[0] == (f"warning: {first['calls']:,} call(s) of {first['account']} dated before its cut-over "
                        "2026-12-01 committed: its billing now starts at 2026-10, their month")
    shown = min(len(listed), CUT_OVER_WARNED)
    assert len(lines) == shown + (len(listed) > shown)
    assert err.count(CUT_OVER_NOTE) == 1 and "commit only calls from the cut-over on" in CUT_OVER_NOTE
    # And the statements do bill October, as warned.
    statements, _ = bill(capsys, d, "b.json", "--account", first["account"])
    assert min(s["month"] for s in statements) == "2026-10"
    # Committed again: replayed, nothing new before a cut-over, no warning.
    code, printed, err = run(capsys, *args)
    assert code == 0, err
    assert "warning:" not in err and "cut-over" not in printed


def test_money_dated_before_the_cut_over_is_refused(demo_made, tmp_path, capsys):
    """Breaker 3 F2: after `--billing-from 2026-12-01`, a 50-yuan top-up
    dated 2026-09-15 brought back September to November with their 99.00
    rentals (297 yuan the old platform billed). A top-up, adjustment or
    refund dated before the cut-over is refused `before_cut_over`, the
    cut-over said, and nothing is stored; at the cut-over it is booked, and
    no month before it is billed."""
    d, store = _migrated(demo_made, tmp_path, capsys, "2026-12-01")
    account = "haixi_electronics"
    credit = json.loads(run(capsys, "accounts", "show", account, "--store", store)[1])["balance"]["credit_minor"]
    for op in (("top-up", account, "50"), ("adjust", account, "50", "--reason", "goodwill"),
               ("refund", account, "1", "--reason", "overpaid")):
        for at in ("2026-09-15T10:00:00", "2026-11-30T23:00:00"):
            code, _, err = run(capsys, "accounts", *op, "--at", at, "--store", store)
            assert code == 1 and "refused: before_cut_over: " in err and f"dated {at}" in err, (op, at, err)
            assert ("before 2026-12-01, the first month this ledger bills account 'haixi_electronics' (its "
                    "cut-over 2026-12-01T00:00:00+08:00)") in err and "date it on or after 2026-12-01" in err, err
    assert json.loads(run(capsys, "accounts", "show", account, "--store", store)[1])["balance"]["credit_minor"] \
        == credit
    code, _, err = run(capsys, "accounts", "top-up", account, "50", "--at", "2026-12-01T00:00:00", "--store", store)
    assert code == 0, err
    statements, _ = bill(capsys, d, "b.json", "--account", account)
    assert statements and {s["month"] for s in statements} == {"2026-12"}, [s["month"] for s in statements]


def test_the_refusal_and_show_name_the_first_month_billed(demo_made, tmp_path, capsys):
    """Newcomer N11 F2: after `import --billing-from 2026-12-01` and a
    commit of October calls, billing starts at 2026-10 (the calls), yet a
    top-up dated 2026-09-15 was refused telling the clerk to date it "at or
    after the cut-over" (2026-12-01), while 2026-10-15 was taken; `accounts
    show` said only 2026-12-01. The refusal names the first month billed,
    the cut-over and the call that moved it; `accounts show` has
    `billing_starts_local` beside `billing_from_local`."""
    d, store = _migrated(demo_made, tmp_path, capsys, "2026-12-01")
    code, printed, err = run(capsys, "rate", str(d / "cdrs.parquet"), "--store", store, "--out",
                             str(d / "c.parquet"), "--commit", "--json")
    assert code == 0, err
    moved = {b["account"] for b in json.loads(printed)["before_cut_over"]}
    account = "yuehai_logistics"
    assert account in moved
    code, _, err = run(capsys, "accounts", "top-up", account, "50", "--at", "2026-09-15", "--store", store)
    assert code == 1 and "refused: before_cut_over: " in err, err
    assert "before 2026-10-01, the first month this ledger bills account 'yuehai_logistics'" in err, err
    assert "its cut-over is 2026-12-01T00:00:00+08:00, but the ledger holds a call of it dated 2026-10-" in err, err
    assert "date it on or after 2026-10-01" in err, err
    code, _, err = run(capsys, "accounts", "top-up", account, "50", "--at", "2026-10-15", "--store", store)
    assert code == 0, err

    shown = json.loads(run(capsys, "accounts", "show", account, "--store", store)[1])["account"]
    keys = list(shown)
    assert keys[keys.index("billing_from_local") + 1] == "billing_starts_ms"  # beside the cut-over
    assert shown["billing_from_local"].startswith("2026-12-01")
    assert shown["billing_starts_local"].startswith("2026-10-01")
    statements, _ = bill(capsys, d, "b.json", "--account", account)
    assert min(s["month"] for s in statements) == "2026-10"  # the statements' rule, the same month


def test_an_import_over_earlier_calls_warns_and_billing_from_says_why(demo_made, tmp_path, capsys):
    """Newcomer N11 F4: October calls committed, then `import --billing-from
    2026-12-01`: the cut-over was stored with no word (billing really starts
    in October), and `billing-from X 2026-11-01` was then refused
    ledger_holds_earlier though the stored 2026-12-01 is later still. The
    import now warns once, naming the accounts and the month their billing
    starts (detail.before_cut_over lists them all); billing-from keeps its
    rule (a cut-over set by hand says where billing starts) and its refusal
    says the stored one is later still and where billing starts already."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    store = str(d / "store")
    code, printed, err = run(capsys, "rate", str(d / "cdrs.parquet"), "--store", store, "--out",
                             str(d / "c.parquet"), "--commit", "--json")
    assert code == 0, err
    callers = set(pq.read_table(d / "c.parquet", columns=["account"]).column("account").to_pylist())
    code, printed, err = run(capsys, "accounts", "import", str(d / "catalog" / "catalog.yaml"), "--store", store,
                             "--billing-from", "2026-12-01")
    assert code == 0, err
    result = json.loads(printed)
    assert result["billing_from_local"].startswith("2026-12-01")
    listed = result["detail"]["before_cut_over"]
    assert {e["account"] for e in listed} == callers  # every account with October calls, no other
    assert all(e["billing_starts"] == "2026-10" and e["first"] == "a call" for e in listed)
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, err
    assert (f"warning: the ledger already holds calls or money of {len(callers)} imported account(s) dated before "
            "their cut-over 2026-12-01, so their statements start earlier") in warnings[0]
    assert f"{listed[0]['account']} from 2026-10" in warnings[0]

    account = "beifang_heating"
    assert account in callers
    code, _, err = run(capsys, "accounts", "billing-from", account, "2026-11-01", "--store", store)
    assert code == 1 and "refused: ledger_holds_earlier" in err, err
    assert "the stored cut-over 2026-12-01 is later still, and billing already starts at 2026-10" in err, err
    assert "set it to 2026-10-01 or earlier" in err, err
    code, printed, err = run(capsys, "accounts", "billing-from", account, "2026-10-01", "--store", store)
    assert code == 0 and "warning" not in err, err  # October was billed already: no month is billed anew
    shown = json.loads(run(capsys, "accounts", "show", account, "--store", store)[1])["account"]
    assert shown["billing_from_local"] == shown["billing_starts_local"] == "2026-10-01T00:00:00.000+08:00"

    code, _, err = run(capsys, "accounts", "import", str(d / "catalog" / "catalog.yaml"), "--store", store)
    assert code == 0 and "already holds" not in err, err  # a re-import imports nothing: nothing to warn of


def test_a_re_import_prints_the_cut_over_kept_and_warns_once(demo_made, tmp_path, capsys):
    """Breaker 3 F5: a second import with `--billing-from 2026-06-01` printed
    that date as the cut-over while every account kept 2026-12-01. It prints
    what is stored, and one warning that the option was not applied."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    args = ("accounts", "import", str(d / "catalog" / "catalog.yaml"), "--store", str(d / "store"))
    code, _, err = run(capsys, *args, "--billing-from", "2026-12-01")
    assert code == 0, err
    code, printed, err = run(capsys, *args, "--billing-from", "2026-06-01")
    assert code == 0, err
    again = json.loads(printed)
    assert again["imported"] == [] and again["billing_from_local"] == "2026-12-01T00:00:00.000+08:00", again
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "billing_from 2026-06-01 not applied to " in warnings[0], err
    assert f"{len(again['skipped'])} account(s) already imported" in warnings[0], err
    code, printed, err = run(capsys, *args, "--billing-from", "2026-12-01")  # the same: nothing ignored
    assert code == 0 and "warning" not in err, err


def test_one_account_s_statement_chains_from_its_cut_over(demo_made, tmp_path, capsys):
    """Newcomer N12 F1-F3, breaker N12 F1/F10: imported with a cut-over of
    2026-10-01 and no call or payment, `bill --ledger --account X` began in
    the current month and dropped the unpaid minimums of October and
    November, and `--month 2026-12` alone gave another December than a run
    over October to December. Each migrated account is billed and chained
    from its cut-over, whatever the run's months or the other accounts."""
    from demo_server import copy_store

    d = tmp_path / "demo"
    copy_store(demo_made[0], d)
    code, _, err = run(capsys, "accounts", "import", str(d / "catalog" / "catalog.yaml"), "--store", str(d / "store"),
                       "--billing-from", "2026-10-01")
    assert code == 0, err
    account = "hangzhou_tea"  # prepaid, 40.00 monthly minimum, no call committed
    alone, _ = bill(capsys, d, "alone.json", "--account", account)
    assert [s["month"] for s in alone][0] == "2026-10", [s["month"] for s in alone]
    whole, _ = bill(capsys, d, "whole.json")
    mine = [s for s in whole if s["account"] == account]
    assert [(s["month"], s["earlier_unpaid_minor"], s["amount_due_minor"]) for s in alone] == \
        [(s["month"], s["earlier_unpaid_minor"], s["amount_due_minor"]) for s in mine]
    december, _ = bill(capsys, d, "dec.json", "--account", account, "--month", "2026-12")
    (dec,) = december
    assert dec == next(s for s in alone if s["month"] == "2026-12")
    assert dec["earlier_unpaid_minor"] == sum(s["amount_due_minor"] for s in alone if s["month"] < "2026-12") > 0


def test_an_events_money_row_before_the_cut_over_is_the_row_s_error(demo_made, tmp_path, capsys):
    """Breaker N13 F9: after `import --billing-from 2026-10-01`, a 0.01
    top-up row dated 2026-06-15 in a `bill --ledger --events` file billed
    June..September again, each with the bundle's 99.00 rental (297.00 due
    became 692.99), with no word, while `accounts top-up --at 2026-06-15` is
    refused `before_cut_over`. Such a money row (any money kind) is now the
    row's error naming `at`, the account and the cut-over in the refusal's
    words, exit 2, with or without --ledger (the cut-over is the account's);
    from the cut-over on it is billed, and no month before it."""
    d, store = _migrated(demo_made, tmp_path, capsys, "2026-10-01")
    account = "beifang_heating"  # bundle_1000, package since 2025-10-01
    before, _ = bill(capsys, d, "a.json", "--account", account)
    assert min(s["month"] for s in before) == "2026-10"
    code, _, err = run(capsys, "accounts", "top-up", account, "0.01", "--at", "2026-06-15", "--store", store)
    assert code == 1 and "refused: before_cut_over: " in err, err
    refusal = " ".join(err.split("refused: before_cut_over: ", 1)[1].split())
    ev, out = tmp_path / "ev.csv", tmp_path / "b.json"
    for kind, at in (("top_up", "2026-06-15"), ("adjustment", "2026-09-15"), ("rerating", "2026-09-30T23:59:59+08:00")):
        ev.write_text(f"account,at,kind,amount,feature,note\n{account},2026-10-05,top_up,1,,\n"
                      f"{account},{at},{kind},0.01,,\n", encoding="utf-8")
        for source in (["--ledger"], [str(d / "rated.parquet")]):
            code, _, err = run(capsys, "bill", *source, "--events", str(ev), "--store", store, "--out", str(out),
                               "--account", account)
            err = " ".join(err.split())
            assert code == 2 and f"{ev} row 2: at: '{at}': dated " in err, (kind, source, err)
            assert (f"before 2026-10-01, the first month this ledger bills account '{account}' (its cut-over "
                    "2026-10-01T00:00:00+08:00): the months before were billed by the old platform") in err, err
            if kind == "top_up":
                assert refusal in err, (refusal, err)  # the ledger's words
            assert not out.exists()
    ev.write_text(f"account,at,kind,amount,feature,note\n{account},2026-10-01,top_up,0.01,,\n", encoding="utf-8")
    after, _ = bill(capsys, d, "b.json", "--account", account, "--events", str(ev))
    assert [s["month"] for s in after] == [s["month"] for s in before]
    assert after[0]["top_ups_total_minor"] == 100


def test_a_file_s_money_event_never_moves_billing_before_the_cut_over():
    """Breaker N13 F9, defensively: the cut-over moves earlier for a call or
    money the ledger holds (``billed_from``), never for an events file's row
    (``from_file``), should one reach the statements unchecked."""
    import pyarrow as pa

    from rating_core.billing.calls import CALLS_SCHEMA
    from rating_core.billing.events import AccountEvent
    from rating_core.billing.statements import billed_from

    cut, june = 1_790_784_000_000, 1_781_452_800_000  # 2026-10-01, 2026-06-15 Asia/Shanghai
    calls = pa.Table.from_pylist([], schema=CALLS_SCHEMA)
    events = [AccountEvent("a", cut, "billing_from"), AccountEvent("a", june, "top_up", 100, from_file=True)]
    assert billed_from(calls, events) == {"a": cut}
    assert billed_from(calls, [*events, AccountEvent("a", june, "top_up", 100)]) == {"a": june}


def test_a_rated_file_s_row_before_the_cut_over_is_the_file_s_error(demo_made, tmp_path, capsys):
    """Found with breaker N13 F9: one dry-rated call of beifang_heating
    (cut over on 2026-10-01) dated 2026-06-04 in `bill --ledger RATED` gave 7
    statements and 693.00 due, against 297.00 without the file: June to
    September, the old platform's months, billed again. The earliest such
    row of an account is the file's error naming `start` and the cut-over,
    with or without --ledger; a call the ledger is to bill then is
    committed (`rate --commit` warns and bills its month)."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    d, store = _migrated(demo_made, tmp_path, capsys, "2026-10-01")
    account = "beifang_heating"
    t = pq.read_table(d / "rated.parquet")
    t = t.filter(pc.equal(t.column("account"), account))
    i = t.column_names.index("start")
    june = dt.datetime(2026, 6, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    t = t.set_column(i, t.schema.field(i), pa.array([june] + t.column("start").to_pylist()[1:], t.schema.field(i).type))
    early = tmp_path / "early.parquet"
    pq.write_table(t, early)
    out = tmp_path / "b.json"
    for ledger in (["--ledger"], []):
        code, _, err = run(capsys, "bill", *ledger, str(early), "--store", store, "--out", str(out), "--account",
                           account)
        err = " ".join(err.split())
        assert code == 2 and f"{early}: start: row 1: dated 2026-06-04T10:00:00" in err, err
        assert (f"before 2026-10-01, the first month this ledger bills account '{account}' (its cut-over "
                "2026-10-01T00:00:00+08:00): the months before were billed by the old platform; a call of that time "
                "is billed here only once committed") in err, err
        assert not out.exists()
    # From the cut-over on, the file bills as before.
    pq.write_table(t.slice(1), early)
    after, _ = bill(capsys, d, "c.json", str(early), "--account", account)
    assert min(s["month"] for s in after) == "2026-10"
