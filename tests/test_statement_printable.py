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
    assert en["Still unpaid on earlier statements (yuan)"] == "0.1320"
    assert en["Outstanding after this month (yuan) (still unpaid on earlier statements plus this month's "
              "amount due)"] == "0.2640"
    zh = summary_lines(printable(shop, capsys, "2026-10", "zh"), "费用汇总")
    assert zh["本月后仍欠合计(元) (以前账单仍未付加本月应付金额)"] == "0.2640"
    # November: 0.20 paid September's 0.1320 and 0.0680 of October's; 0.0640 + 0.1080 = 0.1720 owed.
    en = summary_lines(printable(shop, capsys, "2026-11", "en"), "Summary")
    assert en["Outstanding after this month (yuan) (still unpaid on earlier statements plus this month's "
              "amount due)"] == "0.1720"
