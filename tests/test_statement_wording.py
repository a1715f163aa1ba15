"""What the printable statement says, per package kind (newcomer's reading
of the demo statements): only the lines that mean something for the kind,
where add-on fees are paid from, the monthly minimum in plain English, and
a header that keeps to its lines at A4. The world is tests/test_billing.py's
(tea: prepaid, bun: bundle, shop: pay-as-you-go with features)."""
from rating_core.billing.render import catalog_names, statement_html

from test_billing import statements, world  # noqa: F401 (the fixture)


def pages(world, account, month="2026-11"):  # noqa: F811
    rows, calls = statements(world)
    s = rows[(account, month)]
    _, snapshot = world
    return s, {lang: statement_html(s, calls.table, lang, catalog_names(snapshot.meta, lang)) for lang in ("zh", "en")}


def test_payg_statement_has_no_overage_arrears_or_credit_lines(world):  # noqa: F811
    s, html = pages(world, "shop")
    assert s.package_kind == "payg" and s.monthly_minimum == 0 and s.rental == 0
    for word in ("超出", "欠费", "预存款", "月最低消费", "套餐月费"):
        assert word not in html["zh"], word
    for word in ("Overage", "arrears", "Arrears", "Prepaid credit", "Monthly minimum", "monthly fee"):
        assert word not in html["en"], word
    assert "缴费" in html["zh"] and "Payments" in html["en"]  # its payments section
    assert "充值" not in html["zh"] and "Top-ups" not in html["en"]  # a payg top-up is a payment


def test_prepaid_and_bundle_statements_name_their_own_overage(world):  # noqa: F811
    _, prepaid = pages(world, "expiring")
    assert "欠费（预存款不足部分）" in prepaid["zh"] and "超出套餐" not in prepaid["zh"]
    assert "Arrears: not covered by prepaid credit" in prepaid["en"] and "预存款" in prepaid["zh"]
    _, bundle = pages(world, "bun")
    assert "超出套餐费用" in bundle["zh"] and "欠费" not in bundle["zh"]
    assert "Charges beyond the bundle" in bundle["en"] and "Prepaid credit" not in bundle["en"]


def test_bill_table_has_the_closing_credit_in_yuan_for_prepaid_accounts(world, tmp_path, capsys, monkeypatch):  # noqa: F811
    import pytest

    from rating_core.cli import main

    d, _ = world
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    with pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(tmp_path / "b.csv"),
              "--month", "2026-11"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "closing credit (yuan)" in out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in out.splitlines() if line.count("│") > 5}
    # tea (prepaid, no events here): 478.80 opening - 0.60 paid from credit. Closing credit is the
    # third column from the end (amount due, then outstanding, follow).
    assert rows["tea"][-3] == "478.20"
    assert rows["expiring"][-3] == "0.00"  # prepaid, its credit expired: still its figure
    assert rows["bun"][-3] == rows["shop"][-3] == "-"  # bundle and payg without credit: none
    # One figure, one name (newcomer N9 C4): the terminal's columns are the
    # CSV's and the printable statement's, and a prepaid package's monthly
    # fee says it was paid as credit (a bare 0.00 read as the fee unpaid).
    # Every money column says its unit (F13); a long header wraps in its
    # cell, so the words are read column by column over the header's lines.
    lines = [line.split("┃")[1:-1] for line in out.splitlines() if line.startswith("┃")]
    header = [" ".join(" ".join(cell.split()) for cell in cells if cell.strip()) for cells in zip(*lines)]
    assert "shortfall to the monthly minimum spend (yuan)" in header and "package monthly fee (yuan)" in header
    assert [h for h in header if h.endswith("(yuan)")] == [
        "usage (yuan)", "shortfall to the monthly minimum spend (yuan)", "package monthly fee (yuan)",
        "features (yuan)", "closing credit (yuan)", "amount due (yuan)", "outstanding (yuan)"]
    assert "minimum shortfall" not in out and "package fee" not in out
    assert rows["tea"][6] == "5.00" and rows["shop"][6] == "0.00"  # pre_480 has a rental of 5 a month
    assert "'as credit'" not in out  # no row says it, so no note


def test_a_prepaid_package_without_a_monthly_fee_says_it_was_paid_as_credit(world):  # noqa: F811
    """The demo's prepaid_480_1y has no rental: the terminal printed its
    package fee 0.00, read as the 480 fee unpaid (newcomer N9 C4)."""
    import dataclasses

    from rating_core.cli_billing import PAID_AS_CREDIT, _monthly_fee

    s, _ = pages(world, "tea")
    assert (_monthly_fee(s), _monthly_fee(dataclasses.replace(s, rental=0))) == ("5.00", PAID_AS_CREDIT)
    shop, _ = pages(world, "shop")
    assert _monthly_fee(shop) == "0.00"  # pay-as-you-go has no price paid as credit


def test_feature_fees_say_they_are_due_not_paid_from_credit(world):  # noqa: F811
    rows, calls = statements(world)
    _, snapshot = world
    s = rows[("tea", "2026-11")]
    s.features = rows[("shop", "2026-11")].features  # a prepaid account holding features
    assert s.features_total and s.credit_consumed
    zh, en = (statement_html(s, calls.table, lang) for lang in ("zh", "en"))
    assert "增值功能费(元) (计入应付金额，不从预存款扣除)" in zh
    assert "Add-on features (yuan) (due: not paid from the prepaid credit)" in en
    _, shop = pages(world, "shop")
    assert "(计入应付金额)" in shop["zh"] and "不从预存款" not in shop["zh"] and "(in the amount due)" in shop["en"]


def test_the_monthly_minimum_reads_naturally_in_english(world):  # noqa: F811
    s, html = pages(world, "tea")  # pre_480: 40 yuan a month, not its first month
    assert s.minimum_topup == 394_000
    # A prepaid account's shortfall is billed like its fees, not drawn from the credit (README).
    assert ("Shortfall to the monthly minimum spend (yuan) (minimum spend: 40.00 yuan a month; "
            "due: not paid from the prepaid credit)") in html["en"]
    assert "月最低消费补足(元) (月最低消费 40.00 元；计入应付金额，不从预存款扣除)" in html["zh"]  # the Chinese, the source
    assert "top-up (yuan) (Monthly minimum" not in html["en"]
    _, first = pages(world, "tea", "2026-10")
    assert "(minimum spend: 40.00 yuan a month; first month: charged at actual usage)" in first["en"]


def test_the_header_keeps_to_its_lines_at_a4(world, tmp_path):  # noqa: F811
    """The demo's longest package name and a long company name: each header
    pair stays on its line in the English PDF (newcomer: the English header
    wrapped at A4), and the Chinese one still renders the same way."""
    import shutil
    import subprocess

    import pytest

    from rating_core.billing.render import write_pdf

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed: `make install` installs it")
    rows, calls = statements(world)
    s = rows[("tea", "2026-11")]
    s.company = "杭州西湖茶叶贸易有限公司"
    s.package_name = "Prepaid 480 yuan / year at 0.12 yuan/min, minimum 40 yuan/month"
    for lang, want in (("en", ["400 service monthly statement", "Company 杭州西湖茶叶贸易有限公司",
                               "Account tea Period 2026-11-01 – 2026-11-30", f"Package {s.package_name}",
                               "Package period 2026-10-15 – 2027-10-14 Amount due (yuan) 44.28"]),
                       ("zh", ["400业务月度账单", "公司名称 杭州西湖茶叶贸易有限公司",
                               "账户 tea 账期 2026-11-01 – 2026-11-30", f"套餐 {s.package_name}",
                               "套餐期限 2026-10-15 – 2027-10-14 应付金额(元) 44.28"])):
        write_pdf(statement_html(s, calls.table, lang), tmp_path / f"{lang}.pdf")
        text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(tmp_path / f"{lang}.pdf"), "-"],
                              check=True, capture_output=True, text=True).stdout
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        assert lines[:5] == want, lines[:6]


def test_an_account_not_in_the_catalog_is_refused_naming_the_ledger(world, tmp_path, capsys):  # noqa: F811
    import pytest

    from rating_core.cli import main

    d, _ = world
    with pytest.raises(SystemExit) as e:
        main(["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(tmp_path / "b.csv"),
              "--account", "opened_live"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "--account: unknown account 'opened_live' in the catalog" in err and "--ledger" in err


def test_the_csv_shows_billed_minutes_with_one_decimal_as_the_printable_statement(world, tmp_path):  # noqa: F811
    import csv
    import dataclasses

    from rating_core.billing.render import minutes, write_summary_csv

    # 6279.4 minutes (a 6-second package): 6279.4 x 0.18 = 1130.29, the
    # charge; the CSV showed 6279 (newcomer A12: 6279 x 0.18 = 1130.22).
    assert (minutes(376_764), minutes(60), minutes(0), minutes(3)) == ("6279.4", "1.0", "0.0", "0.1")
    s, html = pages(world, "tea")
    six = dataclasses.replace(s, billed_seconds=376_764)
    write_summary_csv([six], tmp_path / "b.csv", "en")
    (row,) = csv.DictReader(open(tmp_path / "b.csv", encoding="utf-8-sig"))
    assert row["Billed minutes"] == "6279.4"
    assert f'<td class="n">{minutes(s.billed_seconds)}</td>' in html["en"]  # the same words on the PDF


def test_money_movements_are_signed_alike_and_the_call_counts_keep_to_one_line(world):  # noqa: F811
    """Newcomer N9 D: a top-up read '+0.00' beside a credit adjustment's
    '50.00'; every movement of the credit block now carries its sign ('+'
    adds, '-' takes, 0 is '0.00'). And 'Calls / Answered / Missed' wrapped
    to '0/0/' over two lines in a narrow cell: it is kept on one line."""
    from rating_core.billing.render import signed

    assert (signed(50_0000), signed(0), signed(-12_3600)) == ("+50.00", "0.00", "-12.36")
    import dataclasses

    s, html = pages(world, "tea")
    assert f'<td>Top-ups (yuan)</td><td class="n">{signed(s.top_ups_total)}</td>' in html["en"]
    rows, calls = statements(world)
    none = statement_html(dataclasses.replace(s, top_ups=[]), calls.table, "en", catalog_names(world[1].meta, "en"))
    assert '<td>Top-ups (yuan)</td><td class="n">0.00</td>' in none  # it read +0.00
    assert f'<td>Paid from credit (yuan)</td><td class="n">{signed(-s.credit_consumed)}</td>' in html["en"]
    assert f'<td class="n nw">{s.calls} / {s.answered} / {s.missed}</td>' in html["en"]
    assert "td.nw, td.when { white-space: nowrap; }" in html["en"]
