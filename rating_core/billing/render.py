"""Statements for people and machines.

- ``write_summary_csv``: one row per statement, UTF-8 with a byte-order
  mark so Excel on Chinese Windows reads it as UTF-8; money in yuan with 2
  decimals, 4 where 2 would round (``money.exact_yuan``: the amounts before
  the amount payable, its one rounding point); headings in Chinese (``zh``)
  or English (``en``).
- ``write_json`` / Parquet (``summary_table``): exact minor units.
- ``statement_html`` / ``write_pdf``: the printable statement (Jinja2
  template ``templates/statement.html.j2``, PDF through WeasyPrint) with a
  chart of calls and minutes per day and per hour of day (matplotlib, SVG
  embedded in the page).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..money import exact_yuan
from ..rater import yuan
from ..cells import row as csv_row
from .statements import (LOCAL, FeatureLine, Statement, day_after, local_date, month_bounds, parse_month,
                         period_last_day, summary_table)

LANGS = ("zh", "en")
# CJK fonts the chart may use, first found wins (Makefile installs WenQuanYi).
CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei")

# Headings of the summary CSV and the printable statement.
LABELS = {
    "zh": {
        "title": "400业务月度账单", "account": "账户", "company": "公司名称", "month": "账期",
        "period_start": "账期开始", "period_end": "账期结束", "period": "账期", "package": "套餐",
        "package_period": "套餐期限", "calls": "呼叫次数", "answered": "接通次数", "missed": "未接次数",
        "billed_minutes": "计费分钟", "usage": "通话费(元)", "credit_consumed": "预存款抵扣(元)",
        "overage": "超出/欠费(元)", "bundle_used_minutes": "套餐内已用分钟", "bundle_left_minutes": "套餐剩余分钟",
        "bundle_overage_minutes": "超出套餐分钟", "minimum_topup": "月最低消费补足(元)", "rental": "套餐月费(元)",
        "features": "增值功能费(元)", "top_ups": "充值(元)", "adjustments": "调账(元)", "rerating": "重新计费调整(元)",
        "rerating_calls": "重新计费通话数", "rounding": "分位舍入(元)", "rounding_note": "应付金额按四舍五入到分；差额结转下期", "rerating_credit": "重新计费预存款抵扣(元)",
        "opening_credit": "期初余额(元)", "package_credit": "套餐预存款(元)", "expired_credit": "到期失效余额(元)",
        "closing_credit": "期末余额(元)", "amount_due": "应付金额(元)", "by_number": "按400号码",
        "by_class": "按目的地类型 / 主叫类型 / 时段", "number": "400号码", "destination_class": "目的地类型",
        "caller_class": "主叫类型", "time_band": "时段", "charge": "费用(元)", "bundle": "套餐分钟",
        "minimum": "月最低消费 {} 元", "first_month": "首月按实际用量计费", "credit": "预存款", "fee": "费用(元)",
        "feature": "功能", "basis": "计费方式", "quantity": "数量", "chart": "每日 / 每小时呼叫与分钟",
        "per_day": "每日", "per_hour": "每小时（0-23点）", "minutes": "分钟", "date": "日期", "note": "说明",
        "events": "充值与调账", "summary": "费用汇总", "kind": "类型", "amount": "金额(元)", "none": "无",
        "basis_month": "月费", "basis_prorated": "按天折算", "basis_year": "年费", "basis_missed_call": "未接来电短信",
        "basis_year_held": "年费，已于{billed}计费，下次{next}", "features_held": "已开通增值功能",
        "then_from": "{before}，{date}起改为{package}", "rental_by_package": "各套餐月费(套餐: 元)",
        "outstanding": "本月后仍欠(元)", "outstanding_after": "合计应付：以前月份仍欠加本月应付(元)",
        "outstanding_note": "以前月份仍欠 {earlier} + 本月应付 {due}",
        "top_up": "充值", "adjustment": "调账", "credit_adjustments": "余额调整(元)", "credit_adjustment": "余额调整",
        "refunds": "退款(元)", "refund": "退款", "local": "本地", "out_of_town": "外地",
        "since": "{} 起", "changed_at": "{last}（{time} 变更）", "renewed_at": "{last}（{time} 续费）", "days": "天", "rerating_run": "重新计费", "rerating_version": "资费目录版本",
        "rerating_n_calls": "次通话", "rerating_credit_part": "其中预存款抵扣(元)", "sep": "；",
        "rerating_credit_part_back": "其中退回预存款(元)", "rerating_credit_back": "重新计费退回预存款(元)",
        "rerating_credit_back_bill": "重新计费退回预存款，不计入本账单(元)",
        "package_change": "套餐变更", "renewal": "套餐续费", "carried": "结转余额(元)", "of_which": "其中：",
        "payments": "缴费", "payment": "缴费", "payment_reversed": "缴费冲正", "events_payg": "缴费与调账", "features_due_prepaid": "计入应付金额，不从预存款扣除",
        "features_due": "计入应付金额", "overage_prepaid": "欠费（预存款不足部分）(元)",
        "overage_bundle": "超出套餐费用(元)", "charges": "本月费用合计(元)", "opening_payments": "上月结余(元)",
        "payments_received": "本月缴费(元)", "earlier_unpaid": "以前账单未付(元)",
        "paid_to_earlier": "缴费抵扣以前账单(元)", "package_credit_bought": "购买预存套餐：套餐费转为预存款(元)", "charges_below_zero": "本月费用为负（贷记），转为余额(元)", "unpaid_on_them": "原未付", "paid_to_charges": "缴费抵扣本月费用(元)",
        "still_unpaid": "以前月份仍欠(元)",
        "payments_carried_in": "上期结转未抵扣缴费(元)", "payments_carried_out": "结转下期的未抵扣缴费(元)",
        "payments_reopened": "已抵扣账单的款项被收回（缴费冲正、扣减调账），重新计为应付(元)",
    },
    "en": {
        "title": "400 service monthly statement", "account": "Account", "company": "Company", "month": "Month",
        "period_start": "Period start", "period_end": "Period end", "period": "Period", "package": "Package",
        "package_period": "Package period", "calls": "Calls", "answered": "Answered", "missed": "Missed",
        "billed_minutes": "Billed minutes", "usage": "Call charges (yuan)",
        "credit_consumed": "Paid from credit (yuan)", "overage": "Overage / arrears (yuan)",
        "bundle_used_minutes": "Bundle minutes used", "bundle_left_minutes": "Bundle minutes left",
        "bundle_overage_minutes": "Minutes beyond bundle", "minimum_topup": "Shortfall to the monthly minimum spend (yuan)",
        "rental": "Package monthly fee (yuan)", "features": "Add-on features (yuan)", "top_ups": "Top-ups (yuan)",
        "adjustments": "Adjustments (yuan)", "rerating": "Rerating adjustments (yuan)",
        "rerating_calls": "Rerated calls", "rounding": "Rounding to the fen (yuan)", "rounding_note": "the amount due is rounded half up to the fen; the difference is carried to the next statement", "rerating_credit": "Rerating paid from credit (yuan)",
        "opening_credit": "Opening credit (yuan)", "package_credit": "Package credit (yuan)",
        "expired_credit": "Expired credit (yuan)", "closing_credit": "Closing credit (yuan)",
        "amount_due": "Amount due (yuan)", "by_number": "By 400 number",
        "by_class": "By destination class / caller class / time band", "number": "400 number",
        "destination_class": "Destination class", "caller_class": "Caller class", "time_band": "Time band",
        "charge": "Charge (yuan)", "bundle": "Bundle minutes", "minimum": "minimum spend: {} yuan a month",
        "first_month": "first month: charged at actual usage", "credit": "Prepaid credit", "fee": "Fee (yuan)",
        "feature": "Feature", "basis": "Basis", "quantity": "Quantity", "chart": "Calls and minutes per day and hour",
        "per_day": "Per day", "per_hour": "Per hour of day (0-23)", "minutes": "Minutes", "date": "Date",
        "note": "Note", "events": "Top-ups and adjustments", "summary": "Summary", "kind": "Kind",
        "amount": "Amount (yuan)", "none": "none", "basis_month": "monthly", "basis_prorated": "prorated by days",
        "basis_year": "yearly", "basis_missed_call": "missed-call SMS", "top_up": "top-up",
        "basis_year_held": "yearly, billed in {billed}; next in {next}", "features_held": "Add-on features held",
        "then_from": "{before}, then {package} from {date}", "rental_by_package": "Monthly fee by package (package: yuan)",
        "outstanding": "Outstanding (yuan)",
        # The page's total owed (newcomer LOW F3: "Outstanding after this month" with "still unpaid on earlier
        # statements plus this month's amount due" said neither figure plainly): the note names both figures.
        "outstanding_after": "Total due: owed from earlier months plus this month's amount due (yuan)",
        "outstanding_note": "{earlier} owed from earlier months + {due} due this month",
        "credit_adjustments": "Credit adjustments (yuan)", "credit_adjustment": "credit adjustment",
        "refunds": "Refunds (yuan)", "refund": "refund",
        "adjustment": "adjustment", "local": "local", "out_of_town": "out of town",
        "since": "since {}", "changed_at": "{last} (changed {time})", "renewed_at": "{last} (renewed {time})",
        "days": "days", "rerating_run": "rerating", "rerating_version": "catalog version",
        "rerating_n_calls": "calls", "rerating_credit_part": "from prepaid credit (yuan)", "sep": "; ",
        "rerating_credit_part_back": "returned to prepaid credit (yuan)",
        "rerating_credit_back": "Rerating returned to prepaid credit (yuan)",
        "rerating_credit_back_bill": "Rerating returned to prepaid credit, not on this bill (yuan)",
        "package_change": "package change", "renewal": "renewal", "carried": "credit carried over (yuan)", "of_which": "of which: ",
        "payments": "Payments", "payment": "payment", "payment_reversed": "payment reversed", "events_payg": "Payments and adjustments",
        "features_due_prepaid": "due: not paid from the prepaid credit", "features_due": "in the amount due",
        "overage_prepaid": "Arrears: not covered by prepaid credit (yuan)",
        "overage_bundle": "Charges beyond the bundle (yuan)", "charges": "This month's charges (yuan)",
        "opening_payments": "Credit brought forward (yuan)", "payments_received": "Payments received (yuan)",
        "earlier_unpaid": "Unpaid on earlier statements (yuan)",
        "paid_to_earlier": "Paid towards earlier statements (yuan)",
        "package_credit_bought": "Prepaid package bought: its fee as prepaid credit (yuan)",
        "charges_below_zero": "Charges below zero (a credit), added to the credit (yuan)",
        "unpaid_on_them": "of unpaid",
        "paid_to_charges": "Paid towards this month's charges (yuan)",
        "still_unpaid": "Owed from earlier months (yuan)",
        "payments_carried_in": "Bill payments brought forward, not yet applied (yuan)",
        "payments_carried_out": "Bill payments carried to later bills (yuan)",
        "payments_reopened": "Money taken back after bills applied it (a reversed payment, a debit): owed again (yuan)",
    },
}

def signed(minor: int, exact: bool = False) -> str:
    """A movement of credit or payments for people: yuan (2 decimals) with
    its sign, '+' for what adds and '-' for what takes; 0 is '0.00'. Every
    such line of the printable statement writes it so (a top-up read '+0.00'
    beside a credit adjustment's '50.00'). ``exact``: all 4 decimals when 2
    would round it (``money.exact_yuan``), for an amount below a fen (the
    rounding to the fen, '+0.0020', which '+20' in 1/10000 yuan beside
    2-decimal yuan read as 20 yuan: newcomer N10-2 finding 7)."""
    return ("+" if minor > 0 else "") + (exact_yuan(minor) if exact else yuan(minor))


def minutes(seconds: int) -> str:
    """Seconds (int) -> minutes for people, one decimal, half up, no
    thousands separator (as the yuan are written): 376764 -> '6279.4'. The
    CSV and the printable statement both use it. Exact in integers."""
    tenths = (int(seconds) * 10 + 30) // 60
    return f"{tenths // 10}.{tenths % 10}"


# Summary CSV: (label key, how to get the cell from a Statement). Money
# exact (``money.exact_yuan``: 2 decimals, 4 where 2 would round), as the
# printable statement: rounded once, in the amount payable, so a row's sums
# add up exactly and its one rounding can be followed (newcomer N11 F8).
CSV_COLUMNS = [
    ("account", lambda s: s.account), ("company", lambda s: s.company), ("month", lambda s: s.month),
    ("period_start", lambda s: s.period_start.isoformat()), ("period_end", lambda s: s.period_end.isoformat()),
    ("package", lambda s: s.package_name), ("calls", lambda s: s.calls), ("answered", lambda s: s.answered),
    # Minutes with one decimal, as the printable statement (``minutes``), so
    # minutes x price reconciles for a 6-second package (newcomer A12: 6279
    # shown for 6279.4, 6279 x 0.18 = 1130.22 beside a charge of 1130.29).
    ("missed", lambda s: s.missed), ("billed_minutes", lambda s: minutes(s.billed_seconds)),
    ("usage", lambda s: exact_yuan(s.usage)), ("credit_consumed", lambda s: exact_yuan(s.credit_consumed)),
    ("overage", lambda s: exact_yuan(s.overage)), ("bundle_used_minutes", lambda s: minutes(s.bundle_used_seconds)),
    ("bundle_left_minutes", lambda s: minutes(s.bundle_left_seconds)),
    ("minimum_topup", lambda s: exact_yuan(s.minimum_topup)), ("rental", lambda s: exact_yuan(s.rental)),
    ("features", lambda s: exact_yuan(s.features_total)),
    # One top-up, two meanings, as the printable statement says them: a
    # prepaid account's top-up is credit for calls, a pay-as-you-go or
    # bundle account's is a payment that settles the bill (README "Money
    # rules"); the month's package kind picks the column.
    ("top_ups", lambda s: exact_yuan(0 if s.postpaid else s.top_ups_total)),
    ("payments_received", lambda s: exact_yuan((s.top_ups_total if s.postpaid else 0) + s.payments_total)),
    ("adjustments", lambda s: exact_yuan(s.adjustments_total)), ("rerating", lambda s: exact_yuan(s.rerating_total)),
    # The prepaid credit's sum, every term a column, so a row reconciles:
    # opening + package credit + top-ups + credit adjustments - paid from
    # credit - rerating from credit - expired = closing (``Statement.closing_credit``).
    ("opening_credit", lambda s: exact_yuan(s.opening_credit)), ("package_credit", lambda s: exact_yuan(s.package_credit)),
    ("credit_adjustments", lambda s: exact_yuan(s.credit_adjustments_total)),
    # Credit paid back in cash (``accounts refund``), apart from the adjustments (newcomer N13 F1).
    ("refunds", lambda s: exact_yuan(s.refunds_total)),
    ("rerating_credit", lambda s: exact_yuan(s.rerating_credit_total)),
    ("expired_credit", lambda s: exact_yuan(s.expired_credit)),
    # Postpaid payments: the month's charges less what was paid towards
    # them is the amount due; the credit above, with the payments received,
    # less both payment columns is the closing credit.
    ("earlier_unpaid", lambda s: exact_yuan(s.earlier_unpaid)), ("paid_to_earlier", lambda s: exact_yuan(s.paid_to_earlier)),
    # A month whose charges are below zero paid nothing towards them: the
    # credit is its own column, as the printable statement words it
    # (newcomer N10: a negative payment); closing = ... - paid + below zero.
    ("charges", lambda s: exact_yuan(s.charges)), ("paid_to_charges", lambda s: exact_yuan(max(0, s.paid_to_charges))),
    ("charges_below_zero", lambda s: exact_yuan(s.charges_below_zero)),
    ("closing_credit", lambda s: exact_yuan(s.closing_credit)),
    # What the customer pays: the amount due rounded once to the fen, half
    # up (``Statement.amount_payable``), and that rounding, exact.
    ("amount_due", lambda s: exact_yuan(s.amount_payable)),
    # What the account still owes after this month, earlier statements'
    # unpaid included (``Statement.outstanding``; `accounts balance`'s unpaid
    # after its last month), exact: the amount due is this month's alone
    # (newcomer 2026-12-02 F7).
    ("outstanding", lambda s: exact_yuan(s.outstanding)),
    ("rerating_calls", lambda s: len(s.rerating)),
    ("rounding", lambda s: signed(s.rounding, exact=True)),
    # Bill payments (``accounts pay``, never credit) not applied yet: with
    # them the credit's sum reconciles (+ carried in - carried out).
    ("payments_carried_in", lambda s: exact_yuan(s.payments_carried_in)),
    ("payments_carried_out", lambda s: exact_yuan(s.payments_carried_out)),
    # A reversal beyond the bill payments there were (a bounced payment,
    # ``pay --reverse --reopen``): earlier bills unpaid again, a term of the credit's sum.
    ("payments_reopened", lambda s: exact_yuan(s.payments_reopened)),
]


def feature_basis(line: FeatureLine, lang: str) -> str:
    """How a feature line was billed, for people: its basis in ``lang``
    ("yearly, billed in 2026-11; next in 2027-11" for a yearly fee billed
    in another month). The printable statement and the CSV say the same."""
    text = LABELS[lang]["basis_" + line.basis]
    return text.format(billed=line.billed_month, next=line.next_month) if line.basis == "year_held" else text


def features_held(s: Statement, lang: str, names: Mapping[str, str]) -> str:
    """The features ``s`` held, each as "name (basis)", feature names as
    the catalog labels them in ``lang`` (``names``); "" for none."""
    return LABELS[lang]["sep"].join(f"{names.get(f.feature, f.name)} ({feature_basis(f, lang)})"
                                    for f in s.features)


def write_summary_csv(statements: list[Statement], path: str | Path, lang: str = "zh",
                      names: Mapping[str, str] | None = None) -> None:
    """Summary rows to CSV, UTF-8 with BOM (``utf-8-sig``) for Excel; text
    cells that start like a formula (a company or package name) are
    neutralised (``cells.cell``). ``names``: the catalog's labels in
    ``lang`` (``catalog_names``); a package prints as its label."""
    labels, names = LABELS[lang], names or {}
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        # Last, every feature held in the month with its basis, as the
        # printable statement's features table says it (``features_held``).
        # Then the monthly fee of each package of a month with more than one (``rentals_text``).
        w.writerow([labels[k] for k, _ in CSV_COLUMNS] + [labels["features_held"], labels["rental_by_package"]])
        for s in statements:
            w.writerow(csv_row([*(package_text(s, lang, names) if key == "package" else get(s)
                                  for key, get in CSV_COLUMNS), features_held(s, lang, names),
                                rentals_text(s, lang, names)]))


def package_text(s: Statement, lang: str, names: Mapping[str, str]) -> str:
    """The month's packages as people read them, labels from ``names``:
    "套餐A，2026-12-02起改为套餐B" / "A, then B from 2026-12-02"
    (``Statement.package_text``); the package alone without a change."""
    written = {r["package"]: r.get("name", r["package"]) for r in s.rentals}  # the catalog's names
    return s.package_text({**written, s.package: s.package_name, **names}, LABELS[lang]["then_from"])


def rentals_text(s: Statement, lang: str, names: Mapping[str, str]) -> str:
    """Each package's monthly fee in a month with more than one package,
    "A: 0.00; B: 99.00" in yuan (``Statement.rentals``); "" otherwise. The
    colon parts a fee from a package name that holds a price itself
    (newcomer8 F11: "1000 minutes a month, then 0.10 yuan/min 99.00")."""
    if len(s.rentals) < 2:
        return ""
    return LABELS[lang]["sep"].join(f"{names.get(r['package'], r.get('name', r['package']))}: "
                                    f"{exact_yuan(r['rental_minor'])}"
                                    for r in s.rentals)


def catalog_names(meta: Mapping, lang: str) -> dict[str, str]:
    """The labels a catalog gives its names (destination classes, time
    bands, packages, features) for statements in ``lang`` (the catalog's
    ``labels``; a snapshot compiled before labels existed has none)."""
    return dict((meta.get("labels") or {}).get(lang) or {})


def write_json(statements: list[Statement], path: str | Path, warnings: Sequence[str] = ()) -> None:
    """Every statement in full, money as exact ``*_minor`` ints."""
    doc = {"unit": "minor units: 1/10000 yuan", "warnings": list(warnings),
           "statements": [s.as_dict() for s in statements]}
    Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def write_summary(statements: list[Statement], path: str | Path, lang: str = "zh",
                  warnings: Sequence[str] = (), names: Mapping[str, str] | None = None) -> None:
    """By extension: .csv (people, package labels from ``names``), .json or .parquet (machines)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        write_summary_csv(statements, path, lang, names)
    elif suffix == ".json":
        write_json(statements, path, warnings)
    elif suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        pq.write_table(summary_table(statements), path)
    else:
        raise ValueError(f"{path}: unknown output format (use .csv, .json or .parquet)")


# --- the printable statement -------------------------------------------------
def daily_hourly(calls: pa.Table, account: str, month: str) -> dict:
    """Calls and billed minutes per local day of ``month`` and per local hour
    of day, for one account: {"days": [...], "day_calls", "day_minutes",
    "hour_calls", "hour_minutes"} (minutes = billed seconds / 60, for charts)."""
    first, last, lo, hi = month_bounds(parse_month(month))
    mine = calls.filter(pc.and_(pc.equal(calls.column("account"), account),
                                pc.and_(pc.greater_equal(calls.column("start_ms"), lo),
                                        pc.less(calls.column("start_ms"), hi))))
    local = mine.column("start_ms").to_numpy() + layout.LOCAL_OFFSET_MS
    billed = mine.column("billed_seconds").to_numpy().astype(np.float64) / 60
    day = (local - (lo + layout.LOCAL_OFFSET_MS)) // layout.MS_PER_DAY
    hour = (local % layout.MS_PER_DAY) // 3_600_000
    n_days = last.day
    return {
        "days": list(range(1, n_days + 1)),
        "day_calls": np.bincount(day, minlength=n_days).tolist(),
        "day_minutes": np.bincount(day, billed, minlength=n_days).round(1).tolist(),
        "hour_calls": np.bincount(hour, minlength=24).tolist(),
        "hour_minutes": np.bincount(hour, billed, minlength=24).round(1).tolist(),
    }


def chart_svg(series: dict, lang: str = "zh") -> str:
    """Two panels (per day, per hour of day): bars of calls, a line of
    billed minutes on a second axis. Returns an SVG document (text drawn as
    paths, so it prints the same without the fonts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib import font_manager

    labels = LABELS[lang]
    have = {f.name for f in font_manager.fontManager.ttflist}
    fonts = [f for f in CJK_FONTS if f in have] + ["DejaVu Sans"]
    with plt.rc_context({"font.family": fonts,
                         "svg.fonttype": "path", "axes.unicode_minus": False}):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [31, 24]})
        for ax, x, calls, minutes, title in (
            (axes[0], series["days"], series["day_calls"], series["day_minutes"], labels["per_day"]),
            (axes[1], list(range(24)), series["hour_calls"], series["hour_minutes"], labels["per_hour"]),
        ):
            ax.bar(x, calls, color="#4e79a7", label=labels["calls"])
            ax.set_title(title, fontsize=10)
            ax.set_ylabel(labels["calls"], fontsize=8)
            ax.tick_params(labelsize=7)
            ax2 = ax.twinx()
            ax2.plot(x, minutes, color="#e15759", marker=".", linewidth=1.2, label=labels["minutes"])
            ax2.set_ylabel(labels["minutes"], fontsize=8)
            ax2.tick_params(labelsize=7)
            ax2.set_ylim(bottom=0)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prolog: the SVG sits inside HTML


class PackagePeriod(NamedTuple):
    """One package period as the printable statement shows it: first day,
    last day (None: no end), package, and ``cut_ms``: the instant of the
    change (or renewal: ``renewal``) that ended it during a day, which it
    then ran part of (None: it ended at midnight, by its own end, or not)."""

    start: dt.date
    last: dt.date | None
    package: str
    cut_ms: int | None = None
    renewal: bool = False


def package_periods(s: Statement) -> list[PackagePeriod]:
    """The package periods in force during ``s``'s month, oldest first
    (``PackagePeriod``): the one in force at the month's start unless it
    ended before the month began (a prepaid period that ended on the last
    instant of the month before) or was replaced at its first instant, then
    each period that started in the month and ran in it (``package_changes``;
    one replaced at the instant it began ran in none). A month with none (a
    lapsed prepaid period, not renewed) shows the last one, as before. The
    printable statement's "Package period" (newcomer N11 F3: December printed
    the period that had ended on 11-30 beside the renewal's package credit).

    A period ended by the next change runs to that change: its last day is
    the change's day when the change came during the day (it ran part of
    that day; ``cut_ms`` says until when), the day before at midnight
    (faces 12-02: a pay-as-you-go period from 12-01 changed at 14:30 the
    same day printed "12-01 – 12-01", its last day taken as the day before
    the change and then raised to its first; one from 10-01 changed on
    12-05 at 14:30 printed 12-04 as its last day)."""
    m_lo = month_bounds(parse_month(s.month))[2]
    changes = s.package_changes

    def ended_by(start: dt.date, c: Mapping) -> tuple[dt.date, int | None]:
        # (its last day, the change's instant when it came during that day, which the period ran part of)
        at_ms = int(c["at_ms"])
        first_after = day_after(at_ms)
        return period_last_day(start, first_after), (at_ms if first_after != local_date(at_ms) else None)

    out: list[PackagePeriod] = []
    # The in-force period's end: its own (a prepaid expiry) unless the first change came first
    # (statements.Statement.package_last_day: the change's day then, the day before at midnight).
    last, cut, renewal = s.package_last_day, None, False
    if changes and (last is None or last >= dt.date.fromisoformat(changes[0]["at"])):
        (last, cut), renewal = ended_by(s.package_start, changes[0]), bool(changes[0].get("renewal"))
    if (last is None or last >= s.period_start) and not any(c["at_ms"] == m_lo for c in changes):
        out.append(PackagePeriod(s.package_start, last, s.package, cut, renewal))
    for k, c in enumerate(changes):
        start = dt.date.fromisoformat(c["at"])
        end = dt.date.fromisoformat(c["package_last_day"]) if c.get("package_last_day") else None
        cut, renewal = None, False
        nxt = changes[k + 1] if k + 1 < len(changes) else None
        if nxt is not None and nxt["at_ms"] > c["at_ms"]:
            # A period that started in the month never expires in it (a month at least): the next change ends it.
            (end, cut), renewal = ended_by(start, nxt), bool(nxt.get("renewal"))
        if end is None or end >= start:
            out.append(PackagePeriod(start, end, c["to"], cut, renewal))
    return out or [PackagePeriod(s.package_start, s.package_last_day, s.package)]


def period_text(p: PackagePeriod, lang: str = "zh") -> str:
    """A package period's dates as the statement prints them: "2026-10-01 –
    2027-09-30"; one day once ("2026-12-01"); cut by a change during its last
    day, with the change's time ("2026-10-01 – 2026-12-05 (changed 14:30)",
    "2026-12-01 (changed 14:30)"); "since 2026-12-01" with no end."""
    labels = LABELS[lang]
    if p.last is None:
        return labels["since"].replace("{}", p.start.isoformat())
    text = p.start.isoformat() if p.last == p.start else f"{p.start.isoformat()} – {p.last.isoformat()}"
    if p.cut_ms is None:
        return text
    when = dt.datetime.fromtimestamp(p.cut_ms / 1000, LOCAL)
    time = when.strftime("%H:%M:%S" if when.second or when.microsecond else "%H:%M")
    return labels["renewed_at" if p.renewal else "changed_at"].format(last=text, time=time)


def timeline(s: Statement) -> list[tuple[str, object]]:
    """Every line of the printable statement's events table in time order
    (its ``at_ms``): ("money", a top-up, bill payment, credit adjustment,
    refund or adjustment), ("rerating", a rerating run), ("change", a
    package change or renewal). Lines of one instant keep that order.
    Newcomer 2026-12-02 #9: the money lines came first, then the changes,
    so a 17:07 refund was listed before the 17:05 and 17:06 package
    changes."""
    money = [("money", e) for e in (*s.top_ups, *s.payments, *s.credit_adjustments, *s.refunds, *s.adjustments)]
    rows = money + [("rerating", r) for r in s.rerating_runs] + [("change", c) for c in s.package_changes]

    def at(row: tuple[str, object]) -> int:
        x = row[1]
        return int(x["at_ms"] if isinstance(x, Mapping) else getattr(x, "at_ms"))

    return sorted(rows, key=at)  # stable: one instant's lines keep the order above


def _template():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("rating_core.billing", "templates"),
                             autoescape=jinja2.select_autoescape(["j2", "html"]))
    # Every amount exact (newcomer N11 F8: each line rounded to the fen on its own, 12 lines
    # added to 1130.30 beside call charges of 1130.29): 2 decimals unless that would round, so
    # the lines add up and the one rounding, to the amount payable, can be followed.
    env.filters["yuan"] = exact_yuan
    env.filters["signed"] = lambda minor, exact=True: signed(minor, exact=True)
    env.filters["minutes"] = minutes
    env.filters["localtime"] = lambda ms: dt.datetime.fromtimestamp(ms / 1000, LOCAL).strftime("%Y-%m-%d %H:%M")
    return env.get_template("statement.html.j2")


def statement_html(statement: Statement, calls: pa.Table, lang: str = "zh",
                   names: Mapping[str, str] | None = None) -> str:
    """The printable statement as one self-contained HTML page. ``names``:
    the catalog's labels in ``lang`` (``catalog_names``): destination
    classes, time bands, the package and features print as their labels,
    a name without one as the catalog writes it."""
    from markupsafe import Markup

    if lang not in LANGS:
        raise ValueError(f"lang: {lang!r} is not one of {', '.join(LANGS)}")
    series = daily_hourly(calls, statement.account, statement.month)
    named = names or {}
    return _template().render(s=statement, L=LABELS[lang], lang=lang, chart=Markup(chart_svg(series, lang)),
                              basis=lambda line: feature_basis(line, lang), periods=package_periods(statement),
                              period_text=lambda p: period_text(p, lang),
                              timeline=timeline(statement),
                              package_text=package_text(statement, lang, named),
                              N=lambda name, written=None: named.get(name, name if written is None else written))


def write_pdf(html: str, path: str | Path) -> None:
    """HTML -> PDF through WeasyPrint (needs Pango, and a CJK font for Chinese)."""
    import logging

    import weasyprint

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    weasyprint.HTML(string=html).write_pdf(str(path))
