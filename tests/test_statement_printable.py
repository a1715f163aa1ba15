"""The printable statement (HTML / PDF): what the newcomer pass of
2026-12-02 found missing or hard to read on it. Figures by hand; the
story is ``test_bill_footer.shop`` (payg, 0.1320 due in September and in
October, 0.1080 in November, 0.20 paid on 11-05)."""
import re
from html import unescape

import pytest

from rating_core.cli import main

from test_bill_footer import shop  # noqa: F401  (the fixture)


def printable(d, capsys, month, lang, fmt="html") -> str:
    out = d / f"st-{month}-{lang}"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(d / "store"), "--out", str(d / "p.json"), "--account", "shop",
              "--month", month, "--lang", lang, "--statements", str(out), "--format", fmt])
    assert e.value.code == 0, capsys.readouterr()
    return (out / f"shop-{month}.html").read_text("utf-8") if fmt == "html" else str(out / f"shop-{month}.pdf")


def summary_lines(html: str, heading: str) -> dict[str, str]:
    table = html.split(f"<h2>{heading}</h2>")[1].split("</table>")[0]
    rows = [[unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    return {r[0]: r[-1] for r in rows if r}


def test_the_printable_statement_shows_the_total_still_owed(shop, capsys):  # noqa: F811
    """Newcomer 2026-12-02 #4: the page showed the amount due and earlier
    statements' unpaid but not their total, the outstanding the CSV, the
    terminal and `accounts balance` give. October: 0.13 due (0.1320
    exact), September's 0.1320 still unpaid: 0.2640 owed after October."""
    en = summary_lines(printable(shop, capsys, "2026-10", "en"), "Summary")
    assert en["Amount due (yuan)"] == "0.13"
    assert en["Owed from earlier months (yuan)"] == "0.1320"
    # Newcomer LOW F3: the total line says plainly what it adds up, each term with its figure.
    assert en["Total due: owed from earlier months plus this month's amount due (yuan) (0.1320 owed from earlier "
              "months + 0.1320 due this month)"] == "0.2640"
    zh = summary_lines(printable(shop, capsys, "2026-10", "zh"), "费用汇总")
    assert zh["以前月份仍欠(元)"] == "0.1320"
    assert zh["合计应付：以前月份仍欠加本月应付(元) (以前月份仍欠 0.1320 + 本月应付 0.1320)"] == "0.2640"
    # November: 0.20 paid September's 0.1320 and 0.0680 of October's; 0.0640 + 0.1080 = 0.1720 owed.
    en = summary_lines(printable(shop, capsys, "2026-11", "en"), "Summary")
    assert en["Total due: owed from earlier months plus this month's amount due (yuan) (0.0640 owed from earlier "
              "months + 0.1080 due this month)"] == "0.1720"


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    """``test_statement_package_change``'s acme (pre_a, 480 yuan, from
    2026-10-01; a 100-minute call on 10-10): on 11-15 a 200.00 top-up at
    17:03, a change to pre_b at 17:05, a 100.00 refund at 17:07; the
    package's name and labels are long, as the demo's are."""
    import test_statement_package_change as pc

    d = tmp_path_factory.mktemp("changed")
    saved = pc.CATALOG
    pc.CATALOG = saved.replace("pre_b: {kind: prepaid,", "pre_b: {kind: prepaid, name: Prepaid 600 yuan a year "
                               "at 0.12 yuan a minute with a monthly minimum spend of 60 yuan,") + (
        "labels:\n  zh: {pre_a: 预存480元/年 0.12元/分钟，月最低消费40元, pre_b: 预存600元/年 0.12元/分钟，月最低消费60元}\n")
    try:
        store, _ = pc.world(d, "pre_a", [
            [pc.cdr("oct", pc.at(10, 10))],
            lambda ops: ops.top_up("t1", "acme", 200 * pc.YUAN, at_ms=pc.at(11, 15, 17) + 3 * 60_000),
            lambda ops: ops.change_package("chg", "acme", "pre_b", effective_ms=pc.at(11, 15, 17) + 5 * 60_000,
                                           at_ms=pc.at(11, 15, 17) + 5 * 60_000),
            lambda ops: ops.refund("r1", "acme", 100 * pc.YUAN, "asked back", at_ms=pc.at(11, 15, 17) + 7 * 60_000),
        ])
    finally:
        pc.CATALOG = saved
    return d, store


def acme_page(changed, capsys, lang, fmt="html"):
    d, store = changed
    out = d / f"st-{lang}"
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(d / "b.json"), "--account", "acme",
              "--month", "2026-11", "--lang", lang, "--statements", str(out), "--format", fmt])
    assert e.value.code == 0, capsys.readouterr()
    return out / f"acme-2026-11.{fmt}"


def test_the_events_table_is_in_time_order(changed, capsys):
    """Newcomer 2026-12-02 #9: the money lines were listed first, then the
    package changes, so a 17:07 refund came before a 17:05 change."""
    html = acme_page(changed, capsys, "en").read_text("utf-8")
    table = html.split("<h2>Top-ups and adjustments</h2>")[1].split("</table>")[0]
    rows = [[unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    assert [(r[0], r[1], r[2]) for r in rows if r] == [
        ("2026-11-15 17:03", "top-up", "200.00"),
        ("2026-11-15 17:05", "package change", "600.00"),
        ("2026-11-15 17:07", "refund", "-100.00")], rows


def test_the_header_of_a_month_with_a_package_change_stays_on_the_page(changed, capsys):
    """Newcomer 2026-12-02 #7: with a package change the header's package
    periods carried the packages' long labels unbroken, so the header ran
    off the page's right edge ("账期 2026-12-01 – 2026-12-" cut). Every word
    of page 1 within the page's printable width (A4, 12 mm margins), the
    period whole, each period with its package, in both languages."""
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed: `make install` installs it")
    for lang, period, pkg in (("zh", "账期 2026-11-01 – 2026-11-30", "(预存600元/年 0.12元/分钟，月最低消费60元)"),
                              ("en", "Period 2026-11-01 – 2026-11-30", "(pre_b)")):
        pdf = acme_page(changed, capsys, lang, "pdf")
        box = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"],
                             check=True, capture_output=True, text=True).stdout
        width = float(re.search(r'<page width="([0-9.]+)"', box)[1])
        right = width - 12 / 25.4 * 72  # the right margin, in points
        over = [(w, x) for x, w in re.findall(r'xMax="([0-9.]+)"[^>]*>([^<]*)</word>', box) if float(x) > right + 1]
        assert not over, (lang, right, over)
        text = subprocess.run(["pdftotext", "-raw", "-f", "1", "-l", "1", str(pdf), "-"],
                              check=True, capture_output=True, text=True).stdout
        flat = " ".join(text.split())
        assert period in flat, flat[:600]
        assert "".join(pkg.split()) in "".join(text.split()), text[:800]


def test_printable_statements_alone_need_no_out(shop, capsys, tmp_path):  # noqa: F811
    """Newcomer 2026-12-02 #12: `bill --ledger --statements DIR` without
    `--out` failed "Missing option '--out'" when only the printable
    statements were wanted. Now they are written, and no summary file;
    without either output `bill` is bad input naming --out."""
    before = sorted(p.name for p in shop.iterdir())
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(shop / "store"), "--account", "shop", "--month", "2026-10",
              "--statements", str(tmp_path / "st"), "--format", "html,json", "--lang", "en"])
    out = capsys.readouterr()
    assert e.value.code == 0, out
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == ["shop-2026-10.html", "shop-2026-10.json"]
    assert sorted(p.name for p in shop.iterdir()) == before  # no summary written anywhere
    text = " ".join(out.out.split())
    assert f"1 statement(s) -> printable statements in {tmp_path / 'st'} (amounts in yuan)" in text
    assert "total due 0.13 yuan over 1 statement(s)" in text
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(shop / "store"), "--account", "shop", "--month", "2026-10"])
    err = " ".join(capsys.readouterr().err.split())
    assert e.value.code == 2
    assert ("--out: give --out (the statement summary: .csv, .json or .parquet), --statements DIR (printable "
            "statements), or both") in err, err


def test_the_sample_pdf_has_the_total_due_line():
    """Newcomer LOW F3: docs/sample-statement-hangzhou_tea-2026-10.pdf (the
    README's sample, `make demo`'s statement) predated the total line and
    lacked it. hangzhou_tea owes nothing from earlier months: the total due
    is October's amount due, 1061.88, right under it."""
    import shutil
    import subprocess
    from pathlib import Path

    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed: `make install` installs it")
    pdf = Path(__file__).parent.parent / "docs" / "sample-statement-hangzhou_tea-2026-10.pdf"
    text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    due = lines.index("应付金额(元) 1061.88")
    assert lines[due + 1] == "合计应付：以前月份仍欠加本月应付(元) 1061.88", lines[due:due + 2]
