"""The newcomer's small findings: ``accounts number add A B`` shows every
number added; ``report --out`` with more rows than the screen shows says
where they all are; ``explain`` says plainly what a pay-as-you-go package
does and why a call with no billable time costs nothing; ``--home-city``
takes the ``city:`` prefix on the command line (one line, exit 2, when
wrong)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating_core.cli import main


def run(capsys, *args, code=0):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    got = capsys.readouterr()
    assert e.value.code == code, (args, got.out, got.err)
    return got


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("newcomer")
    with pytest.raises(SystemExit) as e:
        main(["demo", "--cdrs", "400", "--dir", str(root / "d")])
    assert e.value.code == 0
    return root / "d"


def test_number_add_shows_every_number(tmp_path, demo, capsys):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(demo / "store", store)
    run(capsys, "accounts", "import", demo / "catalog" / "catalog.yaml", "--store", store)
    out = json.loads(run(capsys, "accounts", "number", "add", "4009990001", "4009990002", "4009990003",
                         "--store", store).out)
    assert [n["number"] for n in out["detail"]["numbers"]] == ["4009990001", "4009990002", "4009990003"]
    assert out["detail"]["count"] == 3
    # --home-city takes the plan's city: prefix; a wrong one is one line, exit 2, with a hint.
    run(capsys, "accounts", "open", "zed", "--company", "Zed Co.", "--store", store)
    run(capsys, "accounts", "documents", "zed", "--doc", "business_licence=BL-1", "--doc",
        "legal_representative_id=ID-1", "--store", store)
    run(capsys, "accounts", "review", "zed", "--approve", "--store", store)
    run(capsys, "accounts", "subscribe", "zed", "prepaid_480_1y", "--store", store)
    for n in ("4009990001", "4009990002"):
        run(capsys, "accounts", "number", "lock", n, "zed", "--store", store)
        run(capsys, "accounts", "number", "submit", n, "--store", store)
    out = json.loads(run(capsys, "accounts", "number", "activate", "4009990001", "--home-city", "city:深圳",
                         "--store", store).out)
    assert out["number"]["home_city"] == "Shenzhen"
    err = run(capsys, "accounts", "number", "activate", "4009990002", "--home-city", "city:Shenzen",
              "--store", store, code=2).err
    assert len(err.strip().splitlines()) == 1 and "home_city" in err and "did you mean 'Shenzhen'?" in err, err
    assert "Traceback" not in err
    # A province where a city belongs says so (it said "unknown city '广东'").
    for province in ("广东", "Guangdong"):
        err = run(capsys, "accounts", "number", "activate", "4009990002", "--home-city", province,
                  "--store", store, code=2).err
        assert "is a province (Guangdong); give the city" in err, err
    # A top-up below the minimum names yuan first, exactly (no float).
    err = run(capsys, "accounts", "top-up", "zed", "100", "--store", store, code=1).err
    assert "a top-up is at least 600.00 yuan (6000000 minor units)" in err, err


def test_answer_rate_is_rounded_once_half_up():
    """``report``'s answer rate from the counts: 14 of 17 is 82.4% (it
    showed 82.3%, a 4-decimal float rounded again)."""
    from rating_core.cli_billing import _percent

    assert [_percent(14, 17), _percent(1, 3), _percent(2, 3), _percent(1, 8), _percent(0, 5)] == [
        "82.4", "33.3", "66.7", "12.5", "0.0"]


def test_report_with_out_says_where_the_rows_are(tmp_path, demo, capsys):
    rows = 150  # more than the 100 the screen shows
    t = pq.read_table(demo / "rated.parquet")
    t = pa.concat_tables([t] * 3).slice(0, 1200)
    numbers = pa.array([f"40000{i % rows:05d}" for i in range(t.num_rows)])
    t = t.set_column(t.column_names.index("number"), "number", numbers)
    pq.write_table(t, tmp_path / "r.parquet")
    out = run(capsys, "report", tmp_path / "r.parquet", "--by", "number", "--out", tmp_path / "rep.json").out
    assert "use --out" not in out
    assert f"50 more row(s) not shown here (all {rows} are in {tmp_path / 'rep.json'})" in out.replace("\n", "")
    assert len(json.loads((tmp_path / "rep.json").read_text())["rows"]) == rows
    out = run(capsys, "report", tmp_path / "r.parquet", "--by", "number").out
    assert "50 more row(s) not shown here (use --out)" in out


def test_explain_words_pay_as_you_go_and_no_billable_time(demo, capsys):
    t = pq.read_table(demo / "rated.parquet").to_pylist()
    paid = next(r for r in t if r["package"].startswith("payg") and r["charge_minor"] > 0)
    zero = next(r for r in t if r["package"].startswith("payg") and r["billable_seconds"] == 0)
    out = run(capsys, "explain", paid["call_id"], "--store", demo / "store", "--rated", demo / "rated.parquet",
              "--lang", "en").out
    assert ": pay as you go (the charge goes on the month's bill)." in out.replace("\n", "")
    assert "on the month's bill." in out and "yuan billed" not in out
    out = run(capsys, "explain", zero["call_id"], "--store", demo / "store", "--rated", demo / "rated.parquet",
              "--lang", "en").out
    assert "No billable time (0 s): nothing is charged, no connect fee." in out
    assert "free seconds" not in out  # it said "0 s is within the rate's 0 free seconds"


def test_explain_an_unanswered_committed_call(tmp_path, capsys):
    """A committed call with no answer: explain names the answer it lacks
    and says nothing is charged (it said "nothing is billed" and then
    printed a band, a rate and "Pay as you go: 0.0000 yuan billed")."""
    from test_late_cdrs import at, cdr, engine_rows, setup_store

    store, _, ledger = setup_store(tmp_path, "bun_a")
    c = dict(cdr("un-1", at(11, 10), 3), ivr_answer=None, agent_answer=None)
    assert engine_rows(store, [c])[1] == []
    ledger.close()
    out = run(capsys, "explain", "un-1", "--store", store, "--lang", "en").out.replace("\n", " ")
    assert "The call was not answered (no agent answer in the CDR), so billing never started." in out
    assert "No billable time (0 s): nothing is charged, no connect fee." in out and "Charged: 0.00 yuan." in out


def test_rate_refuses_an_output_name_of_a_format_it_does_not_write(tmp_path, demo, capsys):
    """``rate --out x.xlsx`` wrote a CSV under that name (Excel then refuses
    the file); now one line, exit 2, before anything is rated; --format
    still names the format outright."""
    src = demo / "cdrs.parquet"
    for option, names in (("--out", ["--out", tmp_path / "r.xlsx"]),
                          ("--rejects", ["--out", tmp_path / "r.csv", "--rejects", tmp_path / "rej.xlsx"])):
        err = run(capsys, "rate", src, "--store", demo / "store", *names, code=2).err
        assert f"{option}: " in err and "rate writes .csv (Excel opens it) or .parquet" in err, err
    assert not (tmp_path / "r.xlsx").exists() and not (tmp_path / "r.csv").exists()
    run(capsys, "rate", src, "--store", demo / "store", "--out", tmp_path / "r.json", "--format", "csv", "--json")
    assert (tmp_path / "r.json").read_text().startswith('"file","row","call_id"')
    # Breaker: compressed names and a name ending in a space or dot were plain CSVs under that name.
    for name, said in (("r.csv.gz", "not .gz"), ("r.zip", "not .zip"), ("r.parquet ", "ends with a space or a dot"),
                       ("r.xlsx.", "ends with a space or a dot")):
        err = run(capsys, "rate", src, "--store", demo / "store", "--out", tmp_path / name, code=2).err
        assert said in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / name).exists()


def test_a_dry_run_after_a_commit_says_it_replays_the_committed_calls(tmp_path, demo, capsys):
    """README's order (a commit, then a dry run of the same file): the dry
    run says how many calls the ledger held and that those of the file are
    answered with their stored results, as --commit answers them, not
    charged again (JSON: ``ledger_calls_committed``, only when some are;
    ``replayed``). Before, it charged them again from what their commit
    left (tests/test_dry_replay.py)."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(demo / "store", store)
    src, out = demo / "cdrs.parquet", tmp_path / "r.parquet"
    first = json.loads(run(capsys, "rate", src, "--store", store, "--out", out, "--json").out)
    assert "ledger_calls_committed" not in first
    committed = json.loads(run(capsys, "rate", src, "--store", store, "--out", out, "--commit", "--json").out)
    again = json.loads(run(capsys, "rate", src, "--store", store, "--out", out, "--json").out)
    assert again["ledger_calls_committed"] == committed["rated"] == again["replayed"] and again["charge_minor"] == 0
    text = " ".join(run(capsys, "rate", src, "--store", store, "--out", out).out.split())
    assert f"after {committed['rated']:,} committed calls" in text and "as --commit answers it" in text
    assert f"replayed (committed before, not charged again) │ {committed['rated']:,}" in text


def test_routing_plan_names_destinations_not_routed(tmp_path, demo, capsys):
    """README's account session: ``number routing N --template hunt``
    succeeds (a plan may come before its phones are bound) and says which of
    the plan's destinations are not bound, or bound and not verified, to N:
    calls to them get ``no_route`` until they are."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(demo / "store", store)
    s = ("--store", store)
    run(capsys, "accounts", "import", demo / "catalog" / "catalog.yaml", *s)
    run(capsys, "accounts", "open", "acme", "--company", "Acme", *s)
    run(capsys, "accounts", "documents", "acme", "--doc", "business_licence=BL-1", "--doc",
        "legal_representative_id=ID-1", *s)
    run(capsys, "accounts", "review", "acme", "--approve", *s)
    run(capsys, "accounts", "subscribe", "acme", "prepaid_480_1y", *s)
    run(capsys, "accounts", "number", "add", "4007654321", *s)
    for step in (("lock", "4007654321", "acme"), ("submit", "4007654321"),
                 ("activate", "4007654321", "--home-city", "Shenzhen")):
        run(capsys, "accounts", "number", *step, *s)
    out = json.loads(run(capsys, "accounts", "number", "routing", "4007654321", *s).out)
    assert out["detail"]["warnings"] == [
        "4007654321 has no verified bound destination: calls get no_route until one is bound "
        "(accounts bind) and verified (accounts verify-destination)"]
    run(capsys, "accounts", "bind", "4007654321", "13700000001", *s)
    run(capsys, "accounts", "verify-destination", "4007654321", "13700000001", "--proof", "B-1", *s)
    out = json.loads(run(capsys, "accounts", "number", "routing", "4007654321", *s).out)
    assert "warnings" not in out["detail"]
    out = json.loads(run(capsys, "accounts", "number", "routing", "4007654321", "--template", "hunt", *s).out)
    assert out["number"]["plan_name"] == "hunt"
    assert out["detail"]["warnings"] == [
        "not bound to 4007654321: 02083001234, 13902001234; calls are not routed to them until they are "
        "bound (accounts bind) and verified (accounts verify-destination)"]
    run(capsys, "accounts", "bind", "4007654321", "13902001234", *s)
    out = json.loads(run(capsys, "accounts", "number", "routing", "4007654321", "--template", "hunt", *s).out)
    assert out["detail"]["warnings"] == [
        "not bound to 4007654321: 02083001234; calls are not routed to them until they are "
        "bound (accounts bind) and verified (accounts verify-destination)",
        "bound to 4007654321 but not real-name verified: 13902001234; calls are not routed to them "
        "until they are verified (accounts verify-destination)"]


def test_events_at_takes_a_bare_date_and_says_what_it_expects(tmp_path, demo, capsys):
    """``bill --events``: ``at`` = ``2026-10-20`` is that day's 00:00
    Asia/Shanghai (what a finance clerk writes for a top-up); a value that is
    no time says which forms are (one line naming file, row and field, exit 2)."""
    from rating_core.billing.events import read_events

    (tmp_path / "e.csv").write_text("account,at,kind,amount\nacme,2026-10-20,top_up,600\n"
                                    "acme,2026-10-20T10:00:00+08:00,top_up,1\nacme,1792461600000,top_up,1\n")
    assert [e.at_ms for e in read_events(tmp_path / "e.csv")] == [1792425600000, 1792461600000, 1792461600000]
    for bad in ("2026-02-30", "20/10/2026", "yesterday"):
        (tmp_path / "e.csv").write_text(f"account,at,kind,amount\nyuehai_logistics,{bad},top_up,600\n")
        err = run(capsys, "bill", "--ledger", "--store", demo / "store", "--out", tmp_path / "b.csv",
                  "--events", tmp_path / "e.csv", code=2).err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert f"e.csv row 1: at: not a time: {bad!r} (ISO 8601 with a time, e.g. 2026-10-20T10:00:00+08:00; " \
               "a bare date, 2026-10-20, is that day's 00:00 Asia/Shanghai; or epoch milliseconds)" in err, err


def test_number_add_refuses_a_number_given_twice(tmp_path, demo, capsys):
    """``accounts number add N N`` said "already in the inventory" with
    nothing added; now bad input naming the repeat (one line, exit 2), and
    nothing is added."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(demo / "store", store)
    run(capsys, "accounts", "import", demo / "catalog" / "catalog.yaml", "--store", store)
    err = run(capsys, "accounts", "number", "add", "4009990001", "400-999-0002", "4009990002",
              "--store", store, code=2).err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "numbers[2]: 4009990002 is given twice (also numbers[1]): give each number once" in err, err
    out = json.loads(run(capsys, "accounts", "number", "add", "4009990001", "4009990002", "--store", store).out)
    assert out["detail"]["count"] == 2


def test_change_package_effective_help_says_what_the_default_is(capsys):
    """``--effective``'s help said "default: the effective time"."""
    text = " ".join(run(capsys, "accounts", "change-package", "--help").out.split())
    assert "Default: the operation's --at time, which is now unless given." in text, text
    assert "default: the effective time" not in text


def test_n10_small_errors_say_what_to_do(tmp_path, demo, capsys):
    """Newcomer N10 #5: a negative top-up names the amount and the commands
    that take money off (click read it as an option, "No such option '-6'");
    advise over a month with no calls says so (not "the rater rejects them:
    none in the period"); rerate names the option --to as typed; reverting a
    number's routing names the plan it had before and how to restore it."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(demo / "store", store)
    s = ("--store", store)
    run(capsys, "accounts", "import", demo / "catalog" / "catalog.yaml", *s)
    for cmd in ("top-up", "refund"):
        err = run(capsys, "accounts", cmd, "yuehai_logistics", "-600", *s, code=2).err
        assert "-600: the amount must be more than 0" in err and "accounts refund ACCOUNT 600 --reason" in err
        assert "accounts adjust ACCOUNT -600 --reason" in err and "No such option" not in err
    # Newcomer N13 F1: a refund's hint says how a refund's amount is written, not "use accounts refund".
    assert "a refund is the credit paid back to the customer, written as a positive amount" in err, err
    # An option's value is no amount: --at takes epoch ms (a negative one is refused for its range, not as YUAN).
    err = run(capsys, "accounts", "top-up", "yuehai_logistics", "600", "--at", "-1", *s, code=2).err
    assert "amount must be more than 0" not in err
    err = run(capsys, "advise", demo / "cdrs.parquet", *s, "--account", "yuehai_logistics",
              "--from", "2027-11", "--to", "2027-11", code=2).err
    assert "no calls of 'yuehai_logistics' in the period" in err and "rejects" not in err, err
    err = run(capsys, "rerate", "--version", "1", "--from", "2026-10-31", "--to", "2026-10-01", "--dry-run", *s,
              code=2).err
    assert "error: --to: 2026-10-01 is before 2026-10-31" in err, err
    out = json.loads(run(capsys, "accounts", "number", "routing", "4000589196", "--template", "hunt", *s).out)
    assert out["detail"]["previous_plan"] == "service_desk"
    assert out["detail"]["warnings"][0] == (
        "4000589196 had routing plan 'service_desk' before, now template hunt; to restore it: "
        "rating400 accounts number routing 4000589196 --template service_desk")
    got = run(capsys, "accounts", "number", "routing", "4000589196", *s)
    assert json.loads(got.out)["detail"]["previous_plan"] == "hunt"
    # "no plan", not "the default hunt" beside the template named hunt (newcomer N11 F15).
    assert ("4000589196 had routing plan 'hunt' before, now no plan (calls ring the bound destinations in turn, "
            "the default); "
            "to restore it: rating400 accounts number routing 4000589196 --template hunt") in got.err


def test_a_negative_threshold_or_cap_names_the_option_in_yuan(tmp_path, capsys):
    """Breaker N11 F18: `accounts notify --credit-below -5` and `number caps
    --spend -5` were refused naming credit_below_minor / spend_minor and
    -50000 minor units; a too-large threshold said 'per operation'."""
    from rating_core.cli import main
    from test_billing import CATALOG, live_store

    store = str(live_store(tmp_path, CATALOG))
    for args, option in ((("notify", "tea", "--credit-below", "-5"), "--credit-below"),
                         (("number", "caps", "4001000003", "--spend", "-5"), "--spend")):
        with pytest.raises(SystemExit) as e:
            main(["accounts", *args, "--store", store])
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"{option}: -5: must be 0 (off) or more yuan" in err, err
    with pytest.raises(SystemExit) as e:
        main(["accounts", "notify", "tea", "--credit-below", "100000000000.0001", "--store", store])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "per operation" not in err and "too large" in err, err


def test_events_from_after_to_is_refused_naming_the_options(tmp_path, capsys):
    """Breaker N12 F15: `accounts events X --from 2026-12-01 --to 2026-11-01`
    answered [] as if the account had done nothing."""
    from rating_core.cli import main
    from test_billing import CATALOG, live_store

    store = str(live_store(tmp_path, CATALOG))
    with pytest.raises(SystemExit) as e:
        main(["accounts", "events", "tea", "--from", "2026-12-01", "--to", "2026-11-01", "--store", store])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--from" in err and "is not before --to 2026-11-01" in err, err


def test_rate_into_a_missing_directory_names_the_option(tmp_path, demo, capsys):
    """Newcomer5 F3: ``rate --out /missing/x.parquet`` failed with pyarrow's
    "Failed to open local file '.../x.rejects.csv'", the derived rejects
    file rather than the --out given; now one line naming the option and
    the directory, exit 2, before anything is rated."""
    src = demo / "cdrs.parquet"
    for option, names in (("--out", ["--out", tmp_path / "nodir" / "x.parquet"]),
                          ("--rejects", ["--out", tmp_path / "r.csv", "--rejects", tmp_path / "nodir" / "rej.csv"])):
        err = run(capsys, "rate", src, "--store", demo / "store", *names, code=2).err
        assert err.strip() == (f"error: {option}: {names[-1]}: the directory {tmp_path / 'nodir'} does not exist; "
                               "create it first"), err
    assert not (tmp_path / "r.csv").exists()
