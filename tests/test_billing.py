"""Monthly statements with hand-computed figures.

Every call below is rated by the real Rater against a small catalog
(0.12 yuan per started minute), written to a rated Parquet file and read
back the way ``rating400 bill`` reads it. The figures in the assertions
were worked out by hand from the rules in README ("Monthly statements").
"""
import csv
import datetime as dt
import json
import time
import shutil
import subprocess

import pyarrow as pa
import pytest

from rating_core import cdr
from rating_core.billing import AccountEvent, build_statements, read_rated
from rating_core.billing.render import LABELS, catalog_names, statement_html, write_pdf, write_summary
from rating_core.billing.statements import parse_month
from rating_core.cli import main
from rating_core.rater import Rater
from rating_core.store import Store

CATALOG = """
name: statements
destination_classes: [mobile, landline]
destination_prefixes: {"13": mobile, "0": landline}
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  payg: {kind: payg, name: Pay as you go, rates: [{rate: std}]}
  pre_480: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rental: 5, rates: [{rate: std}]}
  bundle_10: {kind: bundle, included_minutes: 10, overage_price: 0.10, rental: 20, rates: [{rate: std}]}
features:
  sms: {name: Missed-call SMS, fee: 0.1, per: missed_call}
  rec: {name: Recording, fee: 30, per: month}
  crm: {name: CRM, fee: 120, per: year}
labels:
  zh: {mobile: 手机, pre_480: 预存480元/年, rec: 通话录音}
accounts:
  expiring:
    name: 到期贸易有限公司
    package: pre_480
    package_start: 2025-11-15
    opening_credit: 1
    numbers: [{number: "4001000001", home_city: Shenzhen}]
  bun:
    name: Bundle Travel
    package: bundle_10
    package_start: 2026-01-01
    numbers: [{number: "4001000002", home_city: Shenzhen}]
  tea:
    name: West Lake Tea
    package: pre_480
    package_start: 2026-10-15
    numbers: [{number: "4001000003", home_city: Shenzhen}, {number: "4001000004", home_city: Shenzhen}]
  shop:
    name: Corner Shop
    package: payg
    package_start: 2026-01-01
    numbers: [{number: "4001000005", home_city: Shenzhen}]
"""

YUAN = 10_000
CST = dt.timezone(dt.timedelta(hours=8))


def at(month, day, hour=10):
    return int(dt.datetime(2026, month, day, hour, tzinfo=CST).timestamp() * 1000)


def call(cid, number, when, minutes, answered=True):
    """A call answered 5 s after it starts, talking ``minutes`` whole minutes."""
    return {"call_id": cid, "caller": "13812345678", "number": number, "forwarded_to": "13912345678",
            "start": when, "agent_answer": when + 5000 if answered else None,
            "end": when + 5000 + minutes * 60_000 if answered else when + 20_000}


CALLS = [
    call("e1", "4001000001", at(11, 10), 3),  # 0.36 from the 1.00 credit
    call("e2", "4001000001", at(11, 20), 2),  # after the period ended on 11-15: 0.24 arrears
    call("b1", "4001000002", at(11, 3), 6),  # 6 bundle minutes
    call("b2", "4001000002", at(11, 4), 7),  # 4 bundle minutes + 3 over at 0.10
    call("t1", "4001000003", at(10, 20), 10),  # first month: 1.20
    call("t2", "4001000004", at(11, 6), 5),  # 0.60
    call("s1", "4001000005", at(11, 10), 0, answered=False),  # missed before sms was added
    call("s2", "4001000005", at(11, 20), 0, answered=False),  # missed while sms held
    call("s3", "4001000005", at(11, 22), 2),  # 0.24
]


def calls_table(rows) -> pa.Table:
    """``rows`` (dicts as ``call`` makes them) as a CDR table."""
    return pa.table({k: [c[k] for c in rows] for k in CALLS[0]},
                    schema=pa.schema([(k, pa.int64() if k in ("start", "agent_answer", "end") else pa.string())
                                      for k in CALLS[0]]))


def live_store(d, catalog: str):
    """``catalog`` (YAML text) compiled into ``d / "store"``, its accounts
    imported as live ones (``accounts import``); the store's path."""
    from rating_core.accounts import Accounts
    from rating_core.accounts.importer import import_catalog

    (d / "c.yaml").write_text(catalog, encoding="utf-8")
    Store(d / "store").compile(d / "c.yaml", activate=True)
    ops = Accounts.open(d / "store")
    import_catalog(ops, d / "c.yaml")
    ops.ledger.close()
    return d / "store"


def commit_calls(store, rows) -> None:
    """``rows`` committed to ``store``'s ledger, as ``rate --commit`` does,
    when the story has reached their last end (a call dated after now +
    ``AHEAD_MS`` is a ``start_in_future`` reject: the story's December is
    ahead of the real date)."""
    from clock import clock_at
    from rating_core.engine import Engine

    engine = Engine.open(store, threads=1)
    try:
        with clock_at(max([int(c["end"]) for c in rows] + [time.time_ns() // 1_000_000])):
            engine.rate_and_commit(calls_table(rows))
    finally:
        engine.close()

EVENTS = [
    AccountEvent("tea", at(11, 5), "top_up", 600 * YUAN, note="bank transfer"),
    AccountEvent("tea", at(11, 25), "rerating", -1200, note="rerated t2 under the corrected rate"),
    AccountEvent("shop", at(11, 16, 0), "feature_added", feature="sms"),
    AccountEvent("shop", at(11, 21, 0), "feature_added", feature="rec"),
    AccountEvent("shop", at(11, 21, 0), "feature_added", feature="crm"),
    AccountEvent("shop", at(12, 11, 0), "feature_removed", feature="rec"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("statements")
    (d / "c.yaml").write_text(CATALOG, encoding="utf-8")
    store = Store(d / "store")
    store.compile(d / "c.yaml", activate=True)
    snapshot = store.open()
    table = pa.table({k: [c[k] for c in CALLS] for k in CALLS[0]},
                     schema=pa.schema([(k, pa.int64() if k in ("start", "agent_answer", "end") else pa.string())
                                       for k in CALLS[0]]))
    result = Rater(snapshot).rate(table)
    assert result.summary.rated == len(CALLS)
    cdr.write_table(result.rated, d / "rated.parquet")
    return d, snapshot


def statements(world, *files, events=EVENTS, months=("2026-10", "2026-11", "2026-12")):
    d, snapshot = world
    calls = read_rated([d / f for f in (files or ("rated.parquet",))])
    out = build_statements(calls.table, snapshot, events, [parse_month(m) for m in months])
    return {(s.account, s.month): s for s in out}, calls


def test_prepaid_account_crossing_its_period_end(world):
    s = statements(world)[0][("expiring", "2026-11")]
    assert (s.package_start, s.package_end) == (dt.date(2025, 11, 15), dt.date(2026, 11, 15))
    assert s.company == "到期贸易有限公司"
    assert (s.period_start, s.period_end) == (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert s.opening_credit == 1 * YUAN
    assert s.usage == 6000 and s.credit_consumed == 3600 and s.overage == 2400
    assert s.expired_credit == 6400  # 1.00 - 0.36 left when the period ended
    assert s.closing_credit == 0
    assert s.minimum_topup == 40 * YUAN - 6000  # 39.40
    assert s.rental == 5 * YUAN
    assert s.amount_due == 2400 + 394_000 + 50_000  # 0.24 + 39.40 + 5 = 44.64


def test_bundle_account_with_overage(world):
    s = statements(world)[0][("bun", "2026-11")]
    assert s.calls == 2 and s.billed_seconds == 13 * 60
    assert s.bundle_included_seconds == 600 and s.bundle_used_seconds == 600 and s.bundle_left_seconds == 0
    assert s.bundle_overage_seconds == 180
    assert s.usage == s.overage == 3000  # 3 minutes x 0.10
    assert s.amount_due == 3000 + 20 * YUAN  # 20.30


def test_first_month_then_a_monthly_minimum_month_with_top_up_and_rerating(world):
    st, _ = statements(world)
    octo, nov = st[("tea", "2026-10")], st[("tea", "2026-11")]
    # October: the package starts on the 15th, so the month is charged at usage.
    assert octo.first_month and octo.usage == 12_000 and octo.minimum_topup == 0
    assert octo.opening_credit == 0 and octo.package_credit == 480 * YUAN
    assert octo.closing_credit == 478.80 * YUAN
    assert octo.amount_due == 5 * YUAN  # usage paid from credit; the rental
    # November: max(usage, minimum); a 600 top-up; a rerating credit of 0.12.
    assert nov.opening_credit == octo.closing_credit
    assert nov.usage == 6000 and nov.minimum_topup == 394_000
    assert nov.top_ups_total == 600 * YUAN and nov.rerating_total == -1200
    assert nov.closing_credit == (478.80 + 600 - 0.60) * YUAN
    assert nov.amount_due == 394_000 + 50_000 - 1200  # 39.40 + 5 - 0.12 = 44.28
    assert [(x.key, x.calls, x.charge) for x in nov.by_number] == [(("4001000004",), 1, 6000)]
    assert [x.key for x in octo.by_number] == [("4001000003",)]
    assert [(x.key, x.billed_seconds) for x in nov.by_class] == [(("mobile", "out_of_town", "all"), 300)]
    # No statement before the package started.
    assert ("tea", "2026-09") not in st


def test_features_added_and_removed_mid_month(world):
    st, _ = statements(world)
    nov, dec = st[("shop", "2026-11")], st[("shop", "2026-12")]
    lines = {f.feature: f for f in nov.features}
    assert (lines["rec"].basis, lines["rec"].quantity, lines["rec"].amount) == ("prorated", 10, 10 * YUAN)
    assert (lines["crm"].basis, lines["crm"].amount) == ("year", 120 * YUAN)  # in full, the month added
    assert (lines["sms"].quantity, lines["sms"].amount) == (1, 1000)  # only the miss after the 16th
    assert nov.amount_due == 2400 + 10 * YUAN + 120 * YUAN + 1000  # 130.34
    # December: recording removed on the 11th, held 10 of 31 days:
    # 30 x 10 / 31 = 9.677419... rounded down to 9.6774; no yearly fee; sms monthly.
    dl = {f.feature: f for f in dec.features}
    assert dl["rec"].amount == 96_774
    # Held, not billed this month: each still has its line (a clerk read the
    # features table's 'none' as not subscribed): the yearly fee with the
    # months it is billed in, missed-call SMS with no missed calls.
    assert (dl["crm"].basis, dl["crm"].amount, dl["crm"].billed_month, dl["crm"].next_month) == (
        "year_held", 0, "2026-11", "2027-11")
    assert (dl["sms"].basis, dl["sms"].quantity, dl["sms"].amount) == ("missed_call", 0, 0)
    assert dec.amount_due == 96_774


def test_a_held_yearly_feature_reads_as_held_in_months_it_is_not_billed(world, tmp_path):
    """December of shop (CRM yearly since 11-21): the printable statement
    and the CSV say when it is billed, the same words in both; they showed
    'none' / nothing, read as not subscribed (newcomer)."""
    st, calls = statements(world)
    dec = st[("shop", "2026-12")]
    _, snapshot = world
    for lang, said in (("en", "CRM</td><td>yearly, billed in 2026-11; next in 2027-11</td>"),
                       ("zh", "CRM</td><td>年费，已于2026-11计费，下次2027-11</td>")):
        html = statement_html(dec, calls.table, lang, catalog_names(snapshot.meta, lang))
        table = html.split("<h2>" + LABELS[lang]["features"])[1].split("<h2>")[0]  # the features table
        assert said in table and LABELS[lang]["none"] not in table, lang
        write_summary([dec], tmp_path / f"{lang}.csv", lang=lang, names=catalog_names(snapshot.meta, lang))
        row = next(csv.DictReader((tmp_path / f"{lang}.csv").read_text("utf-8-sig").splitlines()))
        assert said.split("</td><td>")[1].removesuffix("</td>") in row[
            "Add-on features held" if lang == "en" else "已开通增值功能"], row
    assert row["已开通增值功能"] == "CRM (年费，已于2026-11计费，下次2027-11)；通话录音 (按天折算)；Missed-call SMS (未接来电短信)"


def test_a_duplicated_input_file_changes_nothing(world, tmp_path):
    d, _ = world
    shutil.copy(d / "rated.parquet", d / "again.parquet")
    once, _ = statements(world, "rated.parquet")
    twice, calls = statements(world, "rated.parquet", "again.parquet")
    assert {k: v.as_dict() for k, v in once.items()} == {k: v.as_dict() for k, v in twice.items()}
    assert len(calls.duplicates) == len(CALLS)
    assert calls.duplicates["e1"] == [str(d / "again.parquet")]
    assert "9 call id(s) appear in more than one input" in calls.warning()


def test_machine_outputs_keep_minor_units_and_csv_opens_in_excel(world, tmp_path):
    st, _ = statements(world)
    rows = [st[k] for k in sorted(st)]
    write_summary(rows, tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text("utf-8"))
    tea = next(x for x in doc["statements"] if (x["account"], x["month"]) == ("tea", "2026-11"))
    assert tea["amount_due_minor"] == 442_800 and tea["closing_credit_minor"] == 10_782_000
    write_summary(rows, tmp_path / "s.csv", lang="zh")
    raw = (tmp_path / "s.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark: Excel reads it as UTF-8
    table = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert table[0]["账户"] and "应付金额(元)" in table[0]
    tea_row = next(r for r in table if (r["账户"], r["账期"]) == ("tea", "2026-11"))
    assert tea_row["应付金额(元)"] == "44.28" and tea_row["期末余额(元)"] == "1078.20"
    write_summary(rows, tmp_path / "en.csv", lang="en")
    assert "Amount due (yuan)" in (tmp_path / "en.csv").read_text("utf-8-sig").splitlines()[0]
    # Every row's prepaid credit reconciles from its own columns (credit
    # adjustments, package credit and expiry were only in JSON and PDF).
    from decimal import Decimal

    for r in csv.DictReader((tmp_path / "en.csv").read_text("utf-8-sig").splitlines()):
        d = {k: Decimal(v) for k, v in r.items() if k.endswith("(yuan)")}
        assert (d["Opening credit (yuan)"] + d["Package credit (yuan)"] + d["Top-ups (yuan)"]
                + d["Payments received (yuan)"] + d["Credit adjustments (yuan)"] - d["Paid from credit (yuan)"]
                - d["Rerating paid from credit (yuan)"] - d["Expired credit (yuan)"]
                - d["Paid towards earlier statements (yuan)"] - d["Paid towards this month's charges (yuan)"]
                + d["Charges below zero (a credit), added to the credit (yuan)"]) == d["Closing credit (yuan)"], r
        assert d["Paid towards this month's charges (yuan)"] >= 0, r  # a payment is never negative


def test_html_and_pdf_statement_render(world, tmp_path):
    st, calls = statements(world)
    s = st[("tea", "2026-11")]
    html = statement_html(s, calls.table, "zh")
    assert "应付金额" in html and "West Lake Tea" in html and "44.28" in html and "<svg" in html
    assert "Amount due" in statement_html(s, calls.table, "en")
    # The catalog's labels (its `labels.zh`) print in place of its names; a
    # name without a label prints as written; English keeps the names.
    _, snapshot = world
    zh = statement_html(s, calls.table, "zh", catalog_names(snapshot.meta, "zh"))
    assert "<td>手机</td>" in zh and "<td>mobile</td>" not in zh and "<td>all</td>" in zh
    assert ">预存480元/年</td>" in zh
    assert ">-0.00<" not in zh  # nothing paid from credit reads 0.00, not -0.00 (newcomer finding)
    # The package period shows its last day, as the month does (newcomer: the day the credit
    # expires read as a day still in the period); minutes are written without a thousands separator.
    assert s.package_end is not None and f"– {s.package_end - dt.timedelta(days=1)}" in zh
    assert f"– {s.package_end}<" not in zh
    # JSON and the printed page agree (newcomer N9 C5): every date names a day
    # inside its period, package_last_day beside package_end (the expiry day,
    # exclusive, kept for clients), period_end the month's last day.
    d = s.as_dict()
    assert d["package_last_day"] == (s.package_end - dt.timedelta(days=1)).isoformat()
    assert d["package_end"] == s.package_end.isoformat()
    assert f"{d['package_start']} – {d['package_last_day']}<" in zh
    assert f"{d['period_start']} – {d['period_end']}<" in zh and d["period_end"].endswith("-30")
    en = statement_html(s, calls.table, "en", catalog_names(snapshot.meta, "en"))
    assert "<td>mobile</td>" in en and "手机" not in en and "预存" not in en
    shop = st[("shop", "2026-11")]  # holds the recording feature that month
    assert "<td>通话录音</td>" in statement_html(shop, calls.table, "zh", catalog_names(snapshot.meta, "zh"))
    assert "<td>Recording</td>" in statement_html(shop, calls.table, "en", catalog_names(snapshot.meta, "en"))
    rows, _ = statements(world)
    write_summary(list(rows.values()), tmp_path / "zh.csv", "zh", names=catalog_names(snapshot.meta, "zh"))
    assert "预存480元/年" in (tmp_path / "zh.csv").read_text("utf-8-sig")
    write_pdf(html, tmp_path / "s.pdf")
    assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (poppler-utils) not installed: `make install` installs it")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "s.pdf"), str(tmp_path / "page")], check=True)
    from PIL import Image

    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    for page in pages:
        lo, hi = Image.open(page).convert("L").getextrema()
        assert lo < 128 < hi  # ink on paper: not a blank page


def test_bill_command_shows_or_counts_every_bill(world, tmp_path, capsys):
    d, _ = world
    args = ["bill", str(d / "rated.parquet"), str(d / "rated.parquet"), "--store", str(d / "store"),
            "--out", str(tmp_path / "b.csv")]
    with pytest.raises(SystemExit) as e:
        main(args + ["--show", "2"])
    assert e.value.code == 0
    captured = capsys.readouterr()
    # 4 accounts x the 2 months the calls cover (tea starts in October): 8 statements.
    assert "8 statement(s)" in captured.out and "6 more statement(s) not shown" in captured.out
    assert "9 call id(s) appear in more than one input" in captured.err
    with pytest.raises(SystemExit) as e:
        main(args + ["--month", "2026-13"])
    assert e.value.code == 2 and "--month" in capsys.readouterr().err


def test_statements_from_the_ledger_equal_those_from_rated_files(world, tmp_path):
    """The same calls committed to the ledger (exactly once, as the gRPC
    service and `rate --commit` do) give the same statements."""
    from rating_core.billing.sources import committed_calls
    from rating_core.engine import Engine

    d, snapshot = world
    table = calls_table(CALLS)
    engine = Engine.open(d / "store", threads=1)
    try:
        engine.rate_and_commit(table)
        engine.rate_and_commit(table)  # a retry: replayed, charged nothing again
        calls = committed_calls(engine.ledger)
    finally:
        engine.close()
    assert calls.num_rows == len(CALLS)
    months = [parse_month(m) for m in ("2026-10", "2026-11", "2026-12")]
    from_ledger = {(s.account, s.month): s.as_dict() for s in build_statements(calls, snapshot, EVENTS, months)}
    from_files = {k: v.as_dict() for k, v in statements(world)[0].items()}
    assert from_ledger == from_files


def test_live_accounts_top_up_from_the_ledger(tmp_path, capsys):
    """Accounts in the live customer layer, a top-up through it, calls
    committed in time order: `bill --ledger` takes the company, the calls
    and the top-up from the ledger, and counts the top-up once though the
    balances the rater saw already held it."""
    from rating_core.accounts import Accounts

    store = live_store(tmp_path, CATALOG)
    tea = [c for c in CALLS if c["number"] in ("4001000003", "4001000004")]
    commit_calls(store, [c for c in tea if c["start"] < at(11, 1, 0)])
    ops = Accounts.open(store)
    ops.top_up("t-1", "tea", 600 * YUAN, at_ms=at(11, 5))
    ops.ledger.close()
    commit_calls(store, [c for c in tea if c["start"] >= at(11, 1, 0)])

    out = tmp_path / "bills.json"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(tmp_path / "store"), "--out", str(out), "--account", "tea",
              "--month", "2026-10", "--month", "2026-11"])
    assert e.value.code == 0, capsys.readouterr().err
    got = {s["month"]: s for s in json.loads(out.read_text("utf-8"))["statements"]}
    octo, nov = got["2026-10"], got["2026-11"]
    assert nov["company"] == "West Lake Tea"
    assert octo["closing_credit_minor"] == 4_788_000
    assert nov["opening_credit_minor"] == 4_788_000
    assert nov["top_ups_total_minor"] == 600 * YUAN
    assert nov["closing_credit_minor"] == 10_782_000  # 478.80 + 600 - 0.60, the top-up counted once
    assert nov["amount_due_minor"] == 394_000 + 50_000


def test_bad_events_are_one_line_errors(world, tmp_path, capsys):
    d, _ = world
    args = ["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(tmp_path / "b.csv")]
    for text, expected in (
        ("account,at,kind,amount\ntea,2026-11-05T10:00:00+08:00,gift,1\n", "row 1: kind: 'gift' is not one of"),
        ("account,at,kind,amount\ntea,2026-11-05T10:00:00+08:00,top_up,1.00001\n", "row 1: amount: 1.00001 yuan is finer"),
        ("account,at,kind,amount\ntea,yesterday,top_up,1\n", "row 1: at: not a time"),
        ("account,at,kind,amount\nnobody,2026-11-05T10:00:00+08:00,top_up,1\n", "row 1: account: no such account in the catalog: 'nobody'"),
        # Breaker: a payment before the package start (tea: 2026-10-15) was on no statement.
        ("account,at,kind,amount\ntea,2026-10-20,top_up,1\ntea,2026-10-14,top_up,600\n",
         "row 2: at: '2026-10-14' is before the account's package start 2026-10-15"),
        # Breaker: credit_adjustment (the ledger's kind) took prepaid credit below zero.
        ("account,at,kind,amount\ntea,2026-11-05,credit_adjustment,-99999\n",
         "row 1: kind: 'credit_adjustment' is not one of top_up, adjustment, rerating, feature_added, "
         "feature_removed, payment (credit adjustments come from the ledger"),
        ("account,at,kind,amount\ntea,2026-11-05,payment,0.001\n", "row 1: amount: 0.001: a payment is whole fen"),
        ("account,at,kind,amount\ntea,2026-11-05,payment,0\n", "row 1: amount: a payment must be more than 0"),
        # Breaker N13 F3: a payment of a postpaid account was taken; `accounts pay` refuses it not_prepaid.
        ("account,at,kind,amount\ntea,2026-11-05,payment,5\nshop,2026-11-05,payment,5\n",
         "row 2: kind: 'payment': account 'shop' is postpaid: its payment is a top-up, credited against what was "
         "charged (write it as kind top_up"),
        ("account,at,kind,amount\nbun,2026-11-05,payment,5\n", "row 1: kind: 'payment': account 'bun' is postpaid"),
        # Breaker N13 F4: a cell the row's kind does not use was ignored.
        *((f"account,at,kind,amount,feature\ntea,2026-11-05,{kind},5,sms\n",
           f"row 1: feature: 'sms': a {kind} row does not use feature (a feature is added or removed by a row of "
           "its own, kind feature_added / feature_removed)") for kind in ("top_up", "adjustment", "rerating", "payment")),
        ("account,at,kind,amount,feature\nshop,2026-11-16,feature_added,5,sms\n",
         "row 1: amount: '5': a feature_added row does not use amount (a feature's fee is the catalog's"),
        # Breaker N11 F12: _DATE's \d took full-width digits; the top-up was booked at 2026-10-05.
        ("account,at,kind,amount\ntea,\uff12\uff10\uff12\uff16-10-05,top_up,600\n", "row 1: at: not a time"),
        ("account,at,kind,amount\ntea,2026-\uff11\uff10-05,top_up,600\n", "row 1: at: not a time"),
        # Breaker N14 F5: a removal of a feature the catalog lacks (or mis-cased) was taken, removing nothing.
        *((f"account,at,kind,amount,feature\nshop,2026-11-16,feature_removed,,{name}\n",
           f"row 1: feature: no such feature in the catalog: '{name}'") for name in ("nosuch", "Recording")),
        # Breaker N14 F4: a payment dated 24 days ahead lowered the month's amount due; the operations
        # refuse a date more than 10 minutes ahead, and so does a file's row (money or feature).
        *((f"account,at,kind,amount,feature\n{row}\n",
           f"row 1: at: {ahead.isoformat(timespec='seconds')} is in the future (now ")
          for ahead in (dt.datetime.now(CST).replace(microsecond=0) + dt.timedelta(days=2),)
          for row in (f"tea,{ahead.isoformat()},payment,5,", f"shop,{ahead.isoformat()},top_up,5,",
                      f"shop,{ahead.isoformat()},feature_added,,sms")),
    ):
        (tmp_path / "e.csv").write_text(text)
        with pytest.raises(SystemExit) as e:
            main(args + ["--events", str(tmp_path / "e.csv")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and expected in err and "Traceback" not in err


def test_an_events_feature_change_that_changes_nothing_is_the_row_s_error(world, tmp_path, capsys):
    """Breaker (issue 12): a feature_removed row of a feature the account
    did not hold then (never added, removed already, or dated before the
    row adding it) was taken, rc 0, and stopped nothing while the clerk
    believed a fee had stopped; a feature_added of one already held was
    taken the same way and started nothing. Each is the row's error naming
    feature, with a machine-readable reason (feature_not_held /
    feature_already_held) and what to do; the rows that change something
    still bill."""
    d, _ = world
    args = ["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(tmp_path / "b.json")]
    head = "account,at,kind,amount,feature\n"
    for rows, expected in (
        # never added (shop holds no feature in the catalog)
        ("shop,2026-11-16,feature_removed,,rec\n",
         "row 1: feature: 'rec': account 'shop' does not hold it at 2026-11-16T00:00:00+08:00 (feature_not_held): "
         "a removal stops nothing"),
        # removed twice: the second stops nothing
        ("shop,2026-11-16,feature_added,,rec\nshop,2026-11-20,feature_removed,,rec\n"
         "shop,2026-11-25,feature_removed,,rec\n",
         "row 3: feature: 'rec': account 'shop' does not hold it at 2026-11-25T00:00:00+08:00 (feature_not_held)"),
        # the removal dated before the add (rows in any order: by time)
        ("shop,2026-11-20,feature_added,,rec\nshop,2026-11-16,feature_removed,,rec\n",
         "row 2: feature: 'rec': account 'shop' does not hold it at 2026-11-16T00:00:00+08:00 (feature_not_held)"),
        # added twice: the second starts nothing
        ("shop,2026-11-16,feature_added,,sms\nshop,2026-11-20,feature_added,,sms\n",
         "row 2: feature: 'sms': account 'shop' already holds it at 2026-11-20T00:00:00+08:00 "
         "(feature_already_held): an add starts nothing"),
        # removed and added again at one instant (breaker 12-02 F4: a second year of a yearly fee),
        # or added and removed (a year for a feature held 0 ms); the same instant written otherwise
        ("shop,2026-11-10,feature_added,,rec\nshop,2026-11-16,feature_removed,,rec\n"
         "shop,2026-11-16T00:00:00+08:00,feature_added,,rec\n",
         "row 3: feature: 'rec': account 'shop' changes it twice at 2026-11-16T00:00:00+08:00 (feature_changed_twice; "
         "row 2 and this one)"),
        ("shop,2026-11-16,feature_added,,crm\nshop,2026-11-16,feature_removed,,crm\n",
         "row 2: feature: 'crm': account 'shop' changes it twice at 2026-11-16T00:00:00+08:00 (feature_changed_twice"),
    ):
        (tmp_path / "e.csv").write_text(head + rows)
        with pytest.raises(SystemExit) as e:
            main(args + ["--events", str(tmp_path / "e.csv")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and expected in " ".join(err.split()), err
        assert "Traceback" not in err and not (tmp_path / "b.json").exists()
    # Removed, added again, removed again: each row changes something, and bills.
    (tmp_path / "e.csv").write_text(head + "shop,2026-11-16,feature_added,,rec\nshop,2026-11-20,feature_removed,,rec\n"
                                           "shop,2026-11-22,feature_added,,rec\nshop,2026-11-25,feature_removed,,rec\n")
    with pytest.raises(SystemExit) as e:
        main(args + ["--events", str(tmp_path / "e.csv"), "--account", "shop", "--month", "2026-11"])
    assert e.value.code == 0, capsys.readouterr().err


def test_a_prepaid_bill_payment_from_an_events_file(world, tmp_path, capsys):
    """Newcomer N11 F15: `bill --events` had no kind for a prepaid account's
    payment of its bills (only `--ledger` showed one): a `payment` row is
    one, never call credit, applied to the oldest bill first."""
    d, _ = world
    (tmp_path / "e.csv").write_text("account,at,kind,amount\ntea,2026-11-05,payment,3.00\n")
    out = tmp_path / "b.json"
    with pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(out), "--account", "tea",
              "--events", str(tmp_path / "e.csv")])
    assert e.value.code == 0, capsys.readouterr().err
    got = {s["month"]: s for s in json.loads(out.read_text("utf-8"))["statements"]}
    nov = got["2026-11"]
    assert nov["payments_total_minor"] == 3 * YUAN and nov["top_ups_total_minor"] == 0
    assert nov["closing_credit_minor"] == got["2026-10"]["closing_credit_minor"] - nov["credit_consumed_minor"]


def test_money_dated_before_the_start_is_on_the_first_statement(world):
    """A ledger written before such operations were refused may hold money
    dated before the package start: it is on the first statement (at its
    own date), never on none (breaker: credited, shown nowhere)."""
    early = AccountEvent("tea", at(9, 20), "top_up", 600 * YUAN, note="paid before service began")
    got, _ = statements(world, events=[early], months=("2026-10",))
    assert [e.at_ms for e in got[("tea", "2026-10")].top_ups] == [early.at_ms]
    assert got[("tea", "2026-10")].top_ups_total == 600 * YUAN


def test_a_payment_dated_years_ahead_is_refused_and_widens_no_other_account(world, tmp_path, capsys):
    """Breaker: one payment dated 2062 (a mistyped year) made the default
    run bill every account for every month to 2062. Breaker N14 F4: a row
    dated more than 10 minutes after now (a payment 24 days ahead lowered
    December's amount due) is the row's error naming ``at``, as the
    operations refuse it; before, it was named in a warning. Once now has
    reached it, it is billed, with --month or in a default run that widens
    only its own account's months (newcomer N14 F6)."""
    d, _ = world
    (tmp_path / "e.csv").write_text("account,at,kind,amount\nshop,2062-11-30,top_up,5\n")
    out = tmp_path / "b.json"
    with pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(out),
              "--events", str(tmp_path / "e.csv")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and not out.exists(), err
    assert (f"{tmp_path / 'e.csv'} row 1: at: 2062-11-30T00:00:00+08:00 is in the future (now " in err
            and "at most 10 minutes ahead): date an event when it happened" in err), err
    from clock import clock_at

    then = int(dt.datetime(2062, 11, 30, tzinfo=CST).timestamp() * 1000)
    with clock_at(then), pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(out),
              "--events", str(tmp_path / "e.csv"), "--month", "2062-11", "--account", "shop"])
    assert e.value.code == 0, capsys.readouterr().err
    (st,) = json.loads(out.read_text("utf-8"))["statements"]
    assert st["top_ups_total_minor"] == 5 * YUAN
    with clock_at(then), pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(out),
              "--events", str(tmp_path / "e.csv")])
    assert e.value.code == 0, capsys.readouterr().err
    months: dict[str, set] = {}
    for s in json.loads(out.read_text("utf-8"))["statements"]:
        months.setdefault(s["account"], set()).add(s["month"])
    assert max(months.pop("shop")) == "2062-11"
    assert max(max(m) for m in months.values()) < "2027", months


def test_one_account_s_event_widens_only_its_own_months(world, tmp_path, capsys):
    """Newcomer N14 F6: in a rated-file bill, one events row of one account
    dated June added June..September statements for EVERY account (28 ->
    130 statements, 2162.99 yuan of other accounts' rentals); with --month,
    as their months left unpaid before it. Now the row widens only its own
    account's months: the others run over the months of the file's calls."""
    d, _ = world

    def billed(*extra):
        out = tmp_path / "b.json"
        out.unlink(missing_ok=True)
        with pytest.raises(SystemExit) as e:
            main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(out), *extra])
        assert e.value.code == 0, capsys.readouterr().err
        return {(s["account"], s["month"]): s for s in json.loads(out.read_text("utf-8"))["statements"]}

    (tmp_path / "e.csv").write_text("account,at,kind,amount\nshop,2026-06-15,top_up,0.01\n")
    plain, widened = billed(), billed("--events", str(tmp_path / "e.csv"))
    assert min(m for a, m in plain) == "2026-10"
    assert sorted(m for a, m in widened if a == "shop") == [f"2026-{m:02d}" for m in range(6, 12)]
    assert {k: v for k, v in widened.items() if k[0] != "shop"} == {k: v for k, v in plain.items() if k[0] != "shop"}
    assert widened[("shop", "2026-06")]["top_ups_total_minor"] == 100
    nov, nov_widened = billed("--month", "2026-11"), billed("--month", "2026-11", "--events", str(tmp_path / "e.csv"))
    assert {k: v for k, v in nov_widened.items() if k[0] != "shop"} == {k: v for k, v in nov.items() if k[0] != "shop"}
    assert nov[("bun", "2026-11")]["earlier_unpaid_minor"] == nov_widened[("bun", "2026-11")]["earlier_unpaid_minor"]


def test_a_month_not_begun_has_no_statement(world, tmp_path, capsys):
    """Breaker N13 F5: `bill --month 2027-01` on 2026-12-01 made 28
    statements "total due 695.00" of a month that had not begun, noted as
    "not ended yet ... figures to date". A month after the current one
    (Asia/Shanghai, the accounts' clock) is bad input naming --month, exit
    2, nothing written; the current month is billed, figures to date."""
    from clock import clock_at

    d, _ = world
    out = tmp_path / "b.json"
    args = ["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(out)]
    with clock_at(at(12, 1)), pytest.raises(SystemExit) as e:
        main([*args, "--month", "2026-12", "--month", "2027-01"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and not out.exists(), err
    assert ("--month: 2027-01 has not begun (Asia/Shanghai; the current month is 2026-12): a month not begun has "
            "no statement") in " ".join(err.split()), err
    with clock_at(at(12, 1)), pytest.raises(SystemExit) as e:
        main([*args, "--month", "2026-12"])
    printed = capsys.readouterr().out
    assert e.value.code == 0 and "2026-12 not ended yet" in printed


def test_an_events_feature_before_the_package_start_is_the_row_s_error(tmp_path):
    """Breaker 2: a feature added the day before the package start was
    billed in a month no statement shows (a 120-yuan yearly fee lost); like
    a money row, it is the row's error naming the start."""
    from rating_core.billing.events import read_events
    from rating_core.errors import InvalidInput

    path = tmp_path / "ev.csv"
    path.write_text("account,at,kind,amount,feature,note\nacme,2026-08-31,feature_added,,recording,\n",
                    encoding="utf-8")
    start = int(dt.datetime(2026, 9, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)
    with pytest.raises(InvalidInput) as e:
        read_events(path, starts={"acme": start})
    assert "before the account's package start 2026-09-01" in str(e.value)


def test_an_events_row_in_a_month_no_statement_bills_is_the_row_s_error(tmp_path):
    """Breaker 2 F9: an event at 2200-01-01 (Asia/Shanghai; 2199-12-31 UTC,
    inside the edge's range) was accepted with a warning to bill 2200-01
    with --month, which refuses that month. The row is refused, naming
    file, row, field and the months a statement bills; 2199-12-31 local is
    the last day accepted (once now has reached it: a row dated ahead of
    now is refused, breaker N14 F4)."""
    from clock import clock_at
    from rating_core.billing.events import read_events
    from rating_core.errors import InvalidInput

    path = tmp_path / "ev.csv"
    path.write_text("account,at,kind,amount,feature,note\nacme,2199-12-31T23:59:59+08:00,top_up,600,,\n"
                    "acme,2200-01-01,top_up,600,,\n", encoding="utf-8")
    last = int(dt.datetime(2199, 12, 31, 23, 59, 59, tzinfo=CST).timestamp() * 1000)
    with clock_at(last), pytest.raises(InvalidInput) as e:
        read_events(path)
    assert str(e.value) == (f"{path} row 2: at: '2200-01-01': in 2200-01 (Asia/Shanghai), after the last month a "
                            "statement bills (YYYY-MM from 1970-01 to 2199-12)"), str(e.value)


def test_events_moving_more_than_a_balance_may_hold_are_refused(world, tmp_path, capsys):
    """Breaker N11 F14: each events amount was bounded (10^11 yuan) but not
    their sum: 9,300 top-ups of 10^11 yuan gave a closing credit past int64
    and ``bill --out x.parquet`` failed with an internal error
    (OverflowError). An account's money rows may move 10^15 minor units in
    all: the row that passes it is named with ``amount`` (exit 2)."""
    d, _ = world
    rows = ["account,at,kind,amount,feature,note"] + ["tea,2026-11-05,top_up,100000000000,,"] * 9300
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--account", "tea",
              "--events", str(tmp_path / "big.csv"), "--out", str(tmp_path / "b.parquet")])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert f"{tmp_path / 'big.csv'} row 2: amount: " in err and "200000000000.00 yuan in all" in err, err
    assert "Traceback" not in err and "internal error" not in err
    # One top-up of the most one row may hold still bills.
    (tmp_path / "one.csv").write_text("\n".join(rows[:2]) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--account", "tea",
              "--events", str(tmp_path / "one.csv"), "--out", str(tmp_path / "b.parquet")])
    assert e.value.code == 0, capsys.readouterr().err
