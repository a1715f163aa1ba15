"""``rating400 bill`` (monthly statements), ``advise`` (package advisor),
``crm`` (caller records) and ``report`` (calls per number, region, hour,
campaign): faces on ``rating_core.billing``."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

RATED = click.argument("rated", nargs=-1, type=click.Path(exists=True, dir_okay=False))
STORE = click.option("--store", "store_dir", envvar="RATING400_STORE", required=True,
                     type=click.Path(file_okay=False), help="Catalog store directory (env RATING400_STORE).")
VERSION = click.option("--version", type=int, help="Catalog version the CDRs were rated with (default: active).")
LANG = click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
                    help="Headings in Chinese or English.")


def _months(month: tuple[str, ...], now_ms: int) -> list[int] | None:
    """``bill --month`` values -> month indexes (None: none given). Raises
    InvalidInput naming ``--month`` for a value not ``MONTH_RULE`` and for a
    month not begun at ``now_ms`` (epoch ms; ``statements.month_not_begun``:
    it has no statement)."""
    from .billing.statements import MONTH_RULE, month_not_begun, parse_month
    from .errors import InvalidInput

    out = []
    for m in month:
        try:
            out.append(parse_month(m))
        except ValueError:
            raise InvalidInput("--month", f"{m!r} is not {MONTH_RULE}") from None
        ahead = month_not_begun(out[-1], now_ms)
        if ahead:
            raise InvalidInput("--month", ahead)
    return out or None


def load_calls(rated, ledger_store=None, months=None, known=None):
    """Rated files (and, with ``ledger_store``, the committed calls of that
    store's ledger in ``months``) -> RatedCalls, each call id once; prints
    the duplicate warning on stderr. ``known``: the files' rows are checked
    against that catalog view too (``billing.calls.Known``: package, start
    before the package start)."""
    from .billing.calls import combine, from_rated_table
    from .cli import err
    from .errors import InvalidInput

    if not rated and ledger_store is None:
        raise InvalidInput("RATED", "give at least one rated CDR file (`rating400 rate` output) or --ledger")
    parts = []
    if ledger_store is not None:
        from .billing.sources import committed_calls
        from .billing.statements import month_bounds
        from .ledger import Ledger

        lo = None  # every earlier call too: a month opens at the previous one's closing credit
        hi = month_bounds(max(months))[3] if months else None
        ledger = Ledger(ledger_store)
        try:
            parts.append(("ledger", committed_calls(ledger, lo, hi)))
        finally:
            ledger.close()
    from . import cdr

    for path in rated:
        parts.append((str(path), from_rated_table(cdr.read_rated(path), str(path), known=known)))
    calls = combine(parts)
    warning = calls.warning()
    if warning:
        err.print(f"[yellow]warning:[/] {escape(str(warning))}", highlight=False, markup=True)
    return calls


def _live(store_dir, version):
    """The catalog with the live customer layer applied (company names,
    packages of accounts opened through ``rating400 accounts``) and the
    layer's money events (top-ups, credit adjustments, refunds) and the
    ledger's rerating adjustments (``billing.sources.ledger_events``)."""
    from .accounts import Accounts, open_view
    from .billing.sources import ledger_events

    ops = Accounts.open(store_dir)
    try:
        snapshot = open_view(ops.store, ops.ledger.env, version)
        return snapshot, ledger_events(ops, snapshot)
    finally:
        ops.ledger.close()


def file_events(path, store_dir, snapshot, ledger_events) -> list:
    """``bill --events``: the rows of events CSV ``path`` (``read_events``)
    checked against the catalog (``snapshot``: accounts, features, package
    starts, with ``ledger_events``' package periods, and package kinds: a
    bill payment is a prepaid account's) and, when the store
    has a ledger, its accounts' cut-overs as the ledger's operations are
    (``Accounts.money_before_cut_over``; with or without ``--ledger``: the
    cut-over is the account's, breaker N13 F9), and the features each
    account holds from its start (a feature row that changes nothing is
    its error). Raises InvalidInput naming
    the file, row and field."""
    from .accounts import Accounts
    from .billing.events import read_events
    from .billing.statements import package_starts
    from .store.snapshot import package_kinds

    packages, kind_of = snapshot.meta["packages"], package_kinds(snapshot)
    kinds = {a: kind_of[packages[p]] for a, p in zip(snapshot.meta["accounts"], snapshot.tables["account_package"].tolist())}
    ops = Accounts.open(store_dir) if (Path(store_dir) / "ledger.lmdb").exists() else None
    try:
        return read_events(path, snapshot.meta["accounts"], snapshot.meta["billing"]["features"],
                           package_starts(snapshot, ledger_events),
                           None if ops is None else ops.money_before_cut_over, kinds,
                           dict(zip(snapshot.meta["accounts"], snapshot.meta["billing"]["account_features"])))
    finally:
        if ops is not None:
            ops.ledger.close()


def unknown_accounts_line(calls, snapshot, sources, limit: int = 5) -> str | None:
    """One line naming the calls of accounts the catalog lacks (count,
    charge in yuan, the first ``limit`` ids, the inputs), or None."""
    from .billing.statements import unknown_accounts
    from .rater import yuan

    ids, rows, charge = unknown_accounts(calls, snapshot)
    if not rows:
        return None
    named = ", ".join(repr(a) for a in ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
    where = ", ".join(str(s) for s in sources) or "ledger"
    return (f"{where}: {rows:,} call(s) charging {yuan(charge)} yuan belong to {len(ids)} account(s) "
            f"not in the catalog: {named}")


# The terminal's package monthly fee of a prepaid package without one: its
# price was paid at purchase as prepaid credit (a bare 0.00 read as unpaid).
PAID_AS_CREDIT = "as credit"
PACKAGE_LABEL_WIDTH = 40  # the bill table's package column: this much kept on one line when there is room


def _monthly_fee(s) -> str:
    """The package monthly fee cell of statement ``s`` for the terminal (yuan, 2 decimals)."""
    from .rater import yuan

    return PAID_AS_CREDIT if s.package_kind == "prepaid" and not s.rental else yuan(s.rental)


@click.command("bill")
@RATED
@STORE
@VERSION
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Statement summary: .csv (yuan, UTF-8 with BOM, for Excel), .json (every statement in full, "
                   "minor units) or .parquet (minor units). Optional with --statements (printable statements "
                   "only); one of the two is needed.")
@click.option("--month", multiple=True, help="YYYY-MM, at most the current month (Asia/Shanghai): a month not begun "
                   "has no statement. Repeatable. Default: every month from the first to the last with calls, "
                   "account events or rerating adjustments, never past the current month; with "
                   "--ledger, up to the current month (rentals and monthly minimums accrue without calls).")
@click.option("--account", "accounts", multiple=True, help="Account id (repeatable; default: all).")
@click.option("--events", "events_path", type=click.Path(exists=True, dir_okay=False),
              help="Account events CSV: account,at,kind,amount,feature,note (top-ups, adjustments, rerating, "
                   "features added or removed).")
@click.option("--ledger", "from_ledger", is_flag=True,
              help="Also bill the calls committed to the store's ledger (rate --commit, gRPC RateCdr).")
@click.option("--statements", "statements_dir", type=click.Path(file_okay=False),
              help="Write one printable statement per account and month into this directory: "
                   "ACCOUNT-YYYY-MM.html by default; --format adds .pdf and .json.")
@click.option("--format", "formats", default="html", show_default=True,
              help="Printable formats, comma-separated: html, pdf, json.")
@LANG
@click.option("--show", type=int, default=30, show_default=True, help="Bills shown in the terminal.")
@click.option("--skip-unknown-accounts", is_flag=True,
              help="Bill the known accounts even when calls name accounts the catalog lacks "
                   "(they are named in a warning and in the summary); default: refuse.")
def bill_command(rated, store_dir, version, out_path, month, accounts, events_path, from_ledger, statements_dir,
                 formats, lang, show, skip_unknown_accounts):
    """Monthly statements per account from rated CDR files."""
    import numpy as np

    from .accounts import Accounts
    from .billing.calls import Known
    from .accounts.operations import now_ms
    from .billing.events import MONEY_KINDS
    from .billing.fees import MonthlyFees
    from .billing.render import LABELS, catalog_names, statement_html, write_json, write_pdf, write_summary
    from .billing.statements import build_statements, month_index, month_label, parse_month
    from .cli import err, out, user_errors
    from .cli_types import check_output_path, check_outputs_apart
    from .cdr import check_characters
    from .errors import InvalidInput
    from .rater import yuan
    from .money import in_yuan
    from .store import Store

    # A repeated --account is one account (breaker8 F3: `--account X --account X` billed X twice,
    # "total due 80.00" for a 40.00 bill, the CSV and JSON holding the statement twice), as a
    # repeated --month is one month; the order given is kept.
    accounts = tuple(dict.fromkeys(accounts))
    with user_errors():
        # An empty id is "required" and a control character is named as such, as every command
        # naming an account says (breaker8 F4: both were "unknown account").
        for a in accounts:
            if not a:
                raise InvalidInput("--account", "required (an account id; leave the option out to bill every "
                                                "account)")
            check_characters("--account", a)
        # --statements alone writes the printable statements only (newcomer 2026-12-02 #12: it failed
        # "Missing option '--out'" when only the printable statements were wanted); one output is needed.
        if not out_path and not statements_dir:
            raise InvalidInput("--out", "give --out (the statement summary: .csv, .json or .parquet), "
                                        "--statements DIR (printable statements), or both")
        # Outputs checked before anything is read or written: never an input, always writable.
        if out_path:
            check_output_path("--out", out_path)
            check_outputs_apart([*rated, *([events_path] if events_path else []), store_dir], out_path, None)
        kinds = [f.strip() for f in formats.split(",") if f.strip()]
        bad = [f for f in kinds if f not in ("html", "pdf", "json")]
        if bad:
            raise InvalidInput("--format", f"{bad[0]!r} is not html, pdf or json")
        def month_of(ms: int) -> int:
            return int(month_index(np.array([ms]))[0])

        now = now_ms()  # the accounts' clock (``operations.now_ms``), once for the whole run
        this_month = month_of(now)
        months = _months(month, now)
        if from_ledger:
            snapshot, ledger_events = _live(store_dir, version)
        else:
            snapshot, ledger_events = Store(store_dir, create=False).open(version), []
        # A rated row dated before its account's package start, or of a package
        # the catalog lacks, is the file's error (file, row, field), not a
        # charge on no statement (breaker N11 F5).
        # With a ledger, a file's row before a migrated account's first billed month is its error too.
        ops = Accounts.open(store_dir) if (Path(store_dir) / "ledger.lmdb").exists() else None
        try:
            calls = load_calls(rated, store_dir if from_ledger else None, months, Known.of(
                snapshot, None if ops is None else functools.partial(ops.money_before_cut_over, call=True)))
        finally:
            if ops is not None:
                ops.ledger.close()
        # Checked against the catalog here, so a bad row is named (file, row, field).
        events = file_events(events_path, store_dir, snapshot, ledger_events) if events_path else []
        events += ledger_events
        warnings = [calls.warning()] if calls.duplicates else []
        if not accounts:  # with --account, only the named accounts are billed
            stray = unknown_accounts_line(calls.table, snapshot, rated)
            if stray and not skip_unknown_accounts:
                raise InvalidInput("account", stray + "; no statement would hold them (compile the catalog "
                                   "that has them, bill with --ledger, or pass --skip-unknown-accounts)")
            if stray:
                err.print(f"[yellow]warning:[/] {escape(str(stray))}: not billed (--skip-unknown-accounts)",
                          highlight=False, markup=True)
                warnings.append(stray + ": not billed")
        # An events file's row dated ahead of now is its error (``read_events``,
        # breaker N14 F4). Without --month, an event still dated after the
        # current month (the ledger's, up to AHEAD_MS ahead) does not widen
        # the run; it is named below and billed when its month is asked for.
        try:
            # Each month's fees from the catalog version in force at its start.
            fees = MonthlyFees(Store(store_dir, create=False), snapshot)
            statements = build_statements(calls.table, snapshot, events, months, list(accounts) or None,
                                          events_in_balances=from_ledger, events_until=this_month, fees=fees)
        except ValueError as e:
            if "event" in str(e):
                raise InvalidInput("--events", str(e)) from None
            # An account opened live (accounts open) is in the ledger's
            # customer layer, not in the compiled catalog a rated file is
            # billed against: say where it is.
            hint = "" if from_ledger else " in the catalog (an account opened with `accounts open` is billed with --ledger)"
            raise InvalidInput("--account", f"{e}{hint}") from None
        def warn(line: str) -> None:  # on the terminal and in the output's warnings
            err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, markup=True)
            warnings.append(line)

        def advice(months_of: list[int]) -> str:
            """How to bill what a run left out: --month, once a month not begun has begun."""
            if max(months_of) <= this_month:
                return "bill their month with --month"
            return ("bill their month with --month once it has begun (a month not begun has no statement; "
                    "a date far ahead may be mistyped: correct it)")

        if months is None:
            last = max((parse_month(s.month) for s in statements), default=this_month)
            ahead = sorted((e for e in events if e.kind in MONEY_KINDS and (not accounts or e.account in accounts)
                            and month_of(e.at_ms) > last), key=lambda e: e.at_ms)
            if ahead:
                first = ahead[0]
                line = (f"{len(ahead)} money event(s) dated after {month_label(last)} are on no statement of this "
                        f"run (the first: {first.account} {first.kind} {in_yuan(first.amount_minor)} at "
                        f"{month_label(month_of(first.at_ms))}); "
                        f"{advice([month_of(e.at_ms) for e in ahead])}")
                warn(line)
            # Calls dated after the current month (a what-if rated dry, a
            # CDR committed before start_in_future was a reject) do not widen
            # the run either (breaker N11 F4: one call dated 2060 billed
            # every account every month to 2060); named here, billed with --month.
            starts = calls.table.column("start_ms").to_numpy()
            late = np.flatnonzero(month_index(starts) > last) if len(starts) else np.zeros(0, np.int64)
            if accounts and len(late):
                late = late[np.isin(np.asarray(calls.table.column("account").to_pylist(), object)[late],
                                    list(accounts))]
            if len(late):
                first_i = int(late[np.argmin(starts[late])])
                line = (f"{len(late)} call(s) dated after {month_label(last)} are on no statement of this run "
                        f"(the first: {calls.table.column('call_id')[first_i].as_py()} of "
                        f"{calls.table.column('account')[first_i].as_py()} at "
                        f"{month_label(month_of(int(starts[first_i])))}); "
                        f"{advice([int(month_index(starts[late]).max())])}")
                warn(line)
        names = catalog_names(snapshot.meta, lang)  # the catalog's labels, once for every output
        if out_path:
            try:
                write_summary(statements, out_path, lang, warnings, names)
            except ValueError as e:
                raise InvalidInput("--out", str(e)) from None
        if statements_dir:
            d = Path(statements_dir)
            d.mkdir(parents=True, exist_ok=True)
            for s in statements:
                stem = d / f"{s.account}-{s.month}"
                if "json" in kinds:
                    write_json([s], stem.with_suffix(".json"), warnings)
                if "html" in kinds or "pdf" in kinds:
                    html = statement_html(s, calls.table, lang, names)
                    if "html" in kinds:
                        stem.with_suffix(".html").write_text(html, encoding="utf-8")
                    if "pdf" in kinds:
                        write_pdf(html, stem.with_suffix(".pdf"))
    # The file's unit, truthfully: a CSV is for people, in yuan; JSON and Parquet are exact, in
    # 1/10000 yuan (newcomer 12-02 F4: "(amounts in yuan)" of bills.json, whose "unit" says otherwise).
    suffix = Path(out_path).suffix.lower() if out_path else ""
    unit = ("amounts in yuan" if suffix in (".csv", "") else
            f"the file in 1/10000 yuan, *_minor {'fields' if suffix == '.json' else 'columns'}; the table in yuan")
    target = out_path or f"printable statements in {statements_dir}"
    view = Table(title=f"{len(statements)} statement(s) -> {target} ({unit})", title_justify="left")
    # The shortfall and the fee under the CSV's and the printable statement's
    # names (render.LABELS), so one figure has one name everywhere; every
    # money column says its unit in its header (F13), as the CSV's do.
    shortfall, fee = (LABELS["en"][k].lower() for k in ("minimum_topup", "rental"))
    shown = statements[:max(show, 0)]
    # The package label whole on one line where the terminal has the room
    # (the longer headers wrap first; a narrow terminal still wraps it).
    label_width = min(max((len(s.package_label) for s in shown), default=0), PACKAGE_LABEL_WIDTH)
    for col in ("account", "month", "package", "calls", "usage (yuan)", shortfall, fee, "features (yuan)",
                "closing credit (yuan)", "amount due (yuan)", "outstanding (yuan)"):
        view.add_column(col, justify="left" if col in ("account", "month", "package") else "right",
                        min_width=label_width if col == "package" else None)
    for s in shown:
        # The closing credit: a prepaid account's credit, or a pay-as-you-go
        # or bundle account's payments carried to later bills, bill payments
        # of its prepaid months included (newcomer N11 F12: 20.00 carried
        # after a change to pay-as-you-go read "-"); none ("-") for the rest.
        carried = s.closing_credit + s.payments_carried_out
        credit = yuan(s.closing_credit) if s.package_kind == "prepaid" else yuan(carried) if carried else "-"
        # The package: both of a month with a change ("A, then B from <day>"; billed under A).
        # Outstanding: what is still owed after the month, earlier statements' unpaid included
        # (`accounts balance`'s unpaid after the last month; newcomer 2026-12-02 F7).
        # Every money column in yuan with 2 decimals, half up (``rater.yuan``),
        # as people read yuan: newcomer8 F1, "amount due 1130.29" beside
        # "outstanding 1130.2920", a figure no one can pay. The exact figures
        # are the CSV's, the JSON's and the Parquet's (``*_minor``) and the
        # footer's outstanding line's. The amount due is the amount payable,
        # the figure the CSV and the printable statement name so and the
        # footer's total adds (render's ``amount_due`` row; newcomer5 F1).
        view.add_row(s.account, s.month, s.package_label, f"{s.calls:,}", yuan(s.usage),
                     yuan(s.minimum_topup), _monthly_fee(s), yuan(s.features_total), credit,
                     yuan(s.amount_payable), yuan(s.outstanding))
    if shown:  # --show 0: no empty frame (newcomer N14 F12)
        out.print(view)
    if not statements:  # newcomer N12 F4: an empty table and no word (a cut-over still ahead)
        out.print("no statement: no account of this run is billed in its months (an account is billed from its "
                  "package start; a migrated one from its cut-over, which `accounts show` gives as "
                  "billing_from_local)" if from_ledger else
                  "no statement: the rated files hold no call of the accounts and months asked for",
                  highlight=False)
    if any(_monthly_fee(s) == PAID_AS_CREDIT for s in shown):
        out.print(f"{fee} '{PAID_AS_CREDIT}': a prepaid package has none; its price was paid when it was bought "
                  "and is the prepaid credit", highlight=False)
    left_out = len(statements) - min(len(statements), max(show, 0))
    if left_out:
        out.print(f"{left_out} more statement(s) not shown (--show {len(statements)} to see all; all are in "
                  f"{out_path or statements_dir})", highlight=False)
    rerated = [s for s in statements if s.rerating]
    if rerated:
        n, delta = sum(len(s.rerating) for s in rerated), sum(s.rerating_total for s in rerated)
        from_credit = sum(s.rerating_credit_total for s in rerated)
        out.print(f"rerating: {n} call(s) adjusted on {len(rerated)} statement(s), {yuan(delta)} yuan "
                  f"({yuan(from_credit)} of it from prepaid credit), in the totals", highlight=False)
    # What people read adds up: the amounts payable listed (each rounded to the fen), not the exact
    # amounts due rounded once (one fen apart per two rounded-up statements, breaker 3 F3).
    payable = sum(s.amount_payable for s in statements)
    out.print(f"total due {yuan(payable)} yuan over {len(statements)} statement(s) "
              "(the sum of their amounts payable)", highlight=False)
    unended = months_not_ended(statements, now)
    if unended:
        out.print(f"note: {', '.join(unended)} not ended yet (Asia/Shanghai): its statements are figures to date, "
                  "and a monthly minimum's shortfall is reckoned as if the month ended now", highlight=False)
    line = outstanding_line(statements, payable)
    if line:
        out.print(line, highlight=False)
    if statements_dir:
        out.print(f"printable statements ({', '.join(kinds)}) -> {statements_dir}", highlight=False)


@click.command("advise")
@click.argument("cdr_files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@STORE
@VERSION
@click.option("--account", required=True, help="Account id.")
@click.option("--from", "from_month", help="First month YYYY-MM (default: the first the calls cover).")
@click.option("--to", "to_month", help="Last month YYYY-MM (default: the last the calls cover).")
@click.option("--json", "as_json", is_flag=True, help="Print the advice as JSON (minor units).")
def advise_command(cdr_files, store_dir, version, account, from_month, to_month, as_json):
    """Price an account's calls (CDR or rated files) under every package."""
    import json

    import pyarrow as pa

    from . import cdr
    from .accounts.view import open_view
    from .billing.advisor import Advisor
    from .billing.statements import MONTH_RULE, parse_month
    from .cli import out, user_errors
    from .errors import InvalidInput
    from .rater import yuan
    from .store import Ledger, Store

    with user_errors():
        if not cdr_files:
            raise InvalidInput("CDR_FILES", "give at least one CDR or rated file")
        months = None
        if from_month or to_month:
            if not (from_month and to_month):
                raise InvalidInput("--from/--to", "give both or neither")
            try:
                lo, hi = parse_month(from_month), parse_month(to_month)
            except ValueError:
                raise InvalidInput("--from/--to", f"not {MONTH_RULE}") from None
            if hi < lo:
                raise InvalidInput("--to", "before --from")
            months = list(range(lo, hi + 1))
        for p in cdr_files:  # unreadable files and nested columns, named before any row is read
            if not Path(p).is_dir():
                cdr.check_file(p, required=cdr.REQUIRED_COLUMNS)
        tables = [cdr.read_table(p, cdr_input=True) for p in cdr_files]
        table = pa.concat_tables([t.select([c for c in cdr.CDR_COLUMNS if c in t.column_names]) for t in tables],
                                 promote_options="permissive")
        # The rater's view (``rate`` rates with it): the live accounts and numbers once imported.
        store = Store(store_dir, create=False)
        ledger = Ledger(store_dir)
        try:
            snapshot = open_view(store, ledger.env, version)
        finally:
            ledger.close()
        try:
            advice = Advisor(snapshot).advise(account, table, months)
        except InvalidInput:
            raise
        except ValueError as e:
            raise InvalidInput("--account", str(e)) from None
    if as_json:
        click.echo(json.dumps(advice.as_dict(), ensure_ascii=False))
        return
    view = Table(title=f"{account}: {advice.calls:,} billed calls over {len(advice.months)} month(s) "
                       f"({advice.months[0]} .. {advice.months[-1]}), {advice.calls_per_month:,.1f} a month; "
                       f"current package {advice.current}", title_justify="left")
    for col in ("rank", "package", "kind", "monthly (yuan)", "saving / month (yuan)", "break-even calls / month", "name"):
        view.add_column(col, justify="right" if col not in ("package", "kind", "name") else "left")
    for p in advice.packages:
        view.add_row(str(p.rank) if p.rank else "-", p.package + (" *" if p.current else ""), p.kind,
                     yuan(p.monthly) if p.applicable else f"cannot price {p.unpriced_calls:,} calls",
                     "" if p.current or not p.applicable else yuan(p.saving_monthly),
                     "" if p.break_even_calls_per_month is None else f"{p.break_even_calls_per_month:,}", p.name)
    out.print(view)
    if advice.left_out:
        out.print(f"left out {sum(advice.left_out.values()):,} calls the rater rejects, never billed: "
                  + ", ".join(f"{c:,} {r}" for r, c in advice.left_out.items()), highlight=False)
    out.print(advise_conclusion(advice), highlight=False)


def advise_conclusion(advice) -> str:
    """The one line ``advise`` ends with: the cheapest package of those
    ranked (the ones that price every billed call), its saving against the
    current package when that one is ranked too; never a ranking not made."""
    from .rater import yuan

    best = advice.best
    cur = next(p for p in advice.packages if p.current)
    if best.rank is None:
        return "no package prices all these calls: nothing is ranked"
    if cur.rank is None:
        return (f"the current package cannot price {cur.unpriced_calls:,} of these calls, so no saving is given; "
                f"cheapest of those that price them all: {best.package}, {yuan(best.monthly)} yuan a month")
    if best.current:
        return "the current package is the cheapest for these calls"
    return f"cheapest: {best.package}, saving {yuan(best.saving_monthly)} yuan a month"


def months_not_ended(statements, now_ms: int) -> list[str]:
    """The months (YYYY-MM) of ``statements`` whose end (Asia/Shanghai) is
    after ``now_ms`` (epoch ms): billed before they are over, so their
    figures are to date (a finance team bills a month once it has ended)."""
    from .billing.statements import month_bounds, parse_month

    return sorted({s.month for s in statements if month_bounds(parse_month(s.month))[3] > now_ms})


def outstanding_line(statements, payable: int) -> str | None:
    """The footer's outstanding line, or None when the accounts owe exactly
    the total due printed above it (``payable``: the sum of the amounts
    payable, minor units). Every term exact (``money.exact_yuan``: 2
    decimals, 4 where 2 would round, the README's display rule), so the
    printed terms add up to the printed outstanding: total due + left unpaid
    before + re-opened - rounding - paid = outstanding (newcomer 2026-12-02
    #3: "674.00 + 1480.08 less 24.07 = outstanding 2130.02", exact 1480.0820,
    24.0660, 2130.0160). The rounding is what the amounts payable (each
    rounded to the fen) differ by from the exact amounts due the accounts
    owe. Each reason only when it is a figure (newcomer: "later payments"
    with none)."""
    from .money import exact_yuan

    owed, before, paid, reopened = outstanding(statements)
    if owed == payable:
        return None
    rounded = payable - sum(s.amount_due for s in statements)  # > 0: the amounts payable rounded up
    why = ([f"{exact_yuan(before)} left unpaid by months before those shown"] if before else []) + (
        [f"{exact_yuan(reopened)} of earlier bills re-opened by payments taken back after bills applied them"]
        if reopened else []) + (  # newcomer N14 F5: 80.00 less 40.00 read as 70.00
        [f"{'less ' if rounded > 0 else ''}{exact_yuan(abs(rounded))} by which the amounts payable, rounded to "
         f"the fen, {'exceed' if rounded > 0 else 'fall short of'} the exact amounts due"] if rounded else []) + (
        [f"less {exact_yuan(paid)} later payments or credits paid towards earlier statements"] if paid else [])
    return (f"outstanding {exact_yuan(owed)} yuan after the last month shown, every package kind: the total due, "
            f"{', '.join(why)} (each statement's amount due is as it was billed)")


def outstanding(statements) -> tuple[int, int, int, int]:
    """What the accounts of ``statements`` still owe after the last month
    listed, minor units (1/10000 yuan), and its three differences from the
    sum of the amounts due: (owed, the unpaid months before the first one
    listed left, the part of earlier statements' unpaid later payments or
    credits paid, the earlier bills re-opened in the months listed:
    ``payments_reopened``, money taken back after bills applied it). Every
    kind chains its unpaid the same way (``billing.statements``: earlier
    unpaid = the month before's unpaid + payments reopened; then - paid to
    earlier + amount due), so an account owes its last statement's earlier
    unpaid less what was paid towards it plus its amount due; owed =
    sum(amount_due) + before + reopened - paid. ``sum(amount_due)`` alone
    counts a bill a later payment settled and leaves out what earlier
    months left unpaid and what a bounced payment re-opened."""
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for s in statements:
        if s.account not in first or s.month < first[s.account].month:
            first[s.account] = s
        if s.account not in last or s.month > last[s.account].month:
            last[s.account] = s
    owed = sum(s.earlier_unpaid - s.paid_to_earlier + s.amount_due for s in last.values())
    return (owed, sum(s.earlier_unpaid - s.payments_reopened for s in first.values()),
            sum(s.paid_to_earlier for s in statements), sum(s.payments_reopened for s in statements))



# --- crm -----------------------------------------------------------------------
@click.group("crm")
def crm_group():
    """Caller CRM: every caller of an account, kept as calls are committed."""


ROLE = click.option("--role", type=click.Choice(["agent", "supervisor", "owner", "admin"]), default="agent",
                    show_default=True, help="Who reads: agents see caller numbers masked (138****5678).")
ACCOUNT = click.option("--account", required=True, help="Account id.")
CALLER = click.option("--caller", required=True, help="Caller number.")


def _crm(store_dir, account=None):
    """(CRM, Ledger) of the store; checks ``account`` is in the active catalog."""
    from .billing.crm import CRM
    from .errors import InvalidInput
    from .ledger import Ledger
    from .store import Store

    store = Store(store_dir, create=False)
    if account is not None and account not in store.open().meta["accounts"]:
        raise InvalidInput("--account", f"unknown account {account!r}")
    ledger = Ledger(store_dir)
    return CRM(ledger), ledger


def _caller(number: str) -> str:
    """``--caller``, a whole phone number -> its normal form; InvalidInput
    naming ``--caller``, also for a zero-width, soft-hyphen or bidi character
    (``cdr.check_text``, as ``route`` refuses it; never silently stripped)."""
    from .cdr import check_text
    from .errors import InvalidInput
    from .numbers import normalize_array

    import pyarrow as pa

    try:
        check_text("caller", number)
    except InvalidInput as e:
        raise InvalidInput("--caller", e.message) from None
    normal, ok = normalize_array(pa.array([number]))
    if not ok[0]:
        raise InvalidInput("--caller", f"not a phone number: {number!r}")
    return normal[0].as_py()


def _edit_caller(store_dir, account, caller, edit):
    """``edit(crm, number)`` on the record of ``caller`` (a whole number);
    a caller who never called the account is an ``InvalidInput`` naming
    ``--caller`` (exit 2), as a bad tag or note is."""
    from .errors import NotFound

    crm, ledger = _crm(store_dir, account)
    try:
        return edit(crm, _caller(caller))
    except NotFound as e:
        from .errors import InvalidInput

        raise InvalidInput("--caller", e.message) from None
    finally:
        ledger.close()


@crm_group.command("update")
@RATED
@STORE
def crm_update(rated, store_dir):
    """Count calls of rated files (written with --pass-through, which keeps
    the caller) into the CRM; calls counted before are skipped."""
    from .cli import out, user_errors
    from .errors import InvalidInput

    with user_errors():
        calls = load_calls(rated)
        if calls.table.num_rows and calls.table.column("caller").null_count == calls.table.num_rows:
            raise InvalidInput("caller", "the rated files have no caller column: rate with --pass-through")
        crm, ledger = _crm(store_dir)
        try:
            n = crm.update_from_calls(calls.table)
        finally:
            ledger.close()
    out.print(f"{n:,} call(s) counted, {calls.table.num_rows - n:,} counted before or without a caller",
              highlight=False)


@crm_group.command("show")
@STORE
@ACCOUNT
@click.option("--caller", help="One caller, or the start of a number.")
@click.option("--tag", help="Only callers with this tag.")
@click.option("--awaiting-callback", is_flag=True, help="Only missed callers not yet called back.")
@ROLE
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Export: .csv (UTF-8 with BOM) or .json.")
def crm_show(store_dir, account, caller, tag, awaiting_callback, role, out_path):
    """An account's callers: calls, answered, missed, talk time, last
    destination, region, tags."""
    import json

    from .billing.crm import export_csv
    from .billing.statements import local_date
    from .cli import out, user_errors

    from .billing.crm import NO_CALLER_FILTER, UNMASKED_ROLES
    from .errors import InvalidInput

    with user_errors():
        if caller and role not in UNMASKED_ROLES:  # the masked digits, one query at a time
            raise InvalidInput("--caller", f"{NO_CALLER_FILTER}: add --role supervisor")
        crm, ledger = _crm(store_dir, account)
        try:
            records = crm.callers(account, tag=tag, awaiting_callback=awaiting_callback,
                                  caller_prefix=_caller(caller) if caller else "")
        finally:
            ledger.close()
        if out_path:
            if out_path.lower().endswith(".json"):
                Path(out_path).write_text(json.dumps([r.as_dict(role) for r in records], ensure_ascii=False),
                                          encoding="utf-8")
            else:
                export_csv(records, out_path, role)
    from rich.text import Text

    from .billing.crm import notes_text

    view = Table(title=f"{account}: {len(records)} caller(s)", title_justify="left")
    for col in ("caller", "first", "last", "calls", "answered", "missed", "talk min", "last answered by",
                "region", "carrier", "callback?", "tags", "notes"):
        view.add_column(col)
    for r in records[:200]:
        d = r.as_dict(role)
        # Notes (and tags) are the enterprise's own text: shown as text, never read as Rich markup.
        view.add_row(d["caller"], str(local_date(r.first_ms)), str(local_date(r.last_ms)), str(r.calls),
                     str(r.answered), str(r.missed), f"{r.talk_seconds / 60:.1f}", r.destination or "",
                     " ".join(x for x in (r.province, r.city) if x), r.carrier or "",
                     "yes" if r.awaiting_callback else "", Text(",".join(r.tags)), Text(notes_text(r.notes, "\n")))
    out.print(view)
    if len(records) > 200:
        where = f"all {len(records):,} are in {out_path}" if out_path else "use --out"
        out.print(f"{len(records) - 200:,} more caller(s) not shown here ({where})", highlight=False, markup=False)


@crm_group.command("tag")
@STORE
@ACCOUNT
@CALLER
@click.option("--add", multiple=True, help="Tag to attach (repeatable).")
@click.option("--remove", multiple=True, help="Tag to detach (repeatable).")
def crm_tag(store_dir, account, caller, add, remove):
    """Attach or detach tags on a caller."""
    from .cli import out, user_errors

    with user_errors():
        rec = _edit_caller(store_dir, account, caller,
                           lambda crm, number: crm.tag(account, number, add, remove, ("--add", "--remove")))
    out.print(f"tags: {', '.join(rec.tags) or '(none)'}", highlight=False)


@crm_group.command("note")
@STORE
@ACCOUNT
@CALLER
@click.argument("text")
def crm_note(store_dir, account, caller, text):
    """Add an after-sales note to a caller."""
    import time

    from .cli import out, user_errors

    with user_errors():
        rec = _edit_caller(store_dir, account, caller,
                           lambda crm, number: crm.note(account, number, text, int(time.time() * 1000)))
    out.print(f"{len(rec.notes)} note(s)", highlight=False)


@crm_group.command("called-back")
@STORE
@ACCOUNT
@CALLER
def crm_called_back(store_dir, account, caller):
    """Mark a missed caller as called back (now)."""
    import time

    from .cli import out, user_errors

    with user_errors():
        _edit_caller(store_dir, account, caller,
                     lambda crm, number: crm.called_back(account, number, int(time.time() * 1000)))
    out.print("marked as called back", highlight=False)


# --- report ---------------------------------------------------------------------
@click.command("report")
@RATED
@click.option("--by", "kind", type=click.Choice(["number", "region", "hour", "weekday", "destination", "campaign"]),
              required=True, help="Group calls by this.")
@click.option("--account", help="Only this account's calls.")
@click.option("--campaigns", "campaigns_path", type=click.Path(exists=True, dir_okay=False),
              help="Campaign tags CSV: campaign,number,ivr_keys (for --by campaign).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write .csv (UTF-8 with BOM) or .json.")
def report_command(rated, kind, account, campaigns_path, out_path):
    """Calls, answered, minutes and cost per number, region, hour, weekday,
    destination or campaign, from rated files."""
    import csv
    import json

    from .cells import row as csv_row
    from .billing.reports import read_campaigns, report
    from .cdr import check_characters
    from .cli import out, user_errors
    from .errors import InvalidInput
    from .rater import yuan

    with user_errors():
        if account is not None:  # shown in the title: no bidi override, no terminal escape
            check_characters("--account", account)
        if kind == "campaign" and not campaigns_path:
            raise InvalidInput("--campaigns", "required with --by campaign")
        calls = load_calls(rated)
        tags = read_campaigns(campaigns_path) if campaigns_path else []
        table = report(calls.table, kind, tags, account)
        rows = table.to_pylist()
        if out_path:
            if out_path.lower().endswith(".json"):
                Path(out_path).write_text(json.dumps({"unit": "charge_minor: 1/10000 yuan", "rows": rows},
                                                     ensure_ascii=False), encoding="utf-8")
            else:
                with open(out_path, "w", encoding="utf-8-sig", newline="") as f:
                    w = csv.writer(f)
                    w.writerow([c if c != "charge_minor" else "charge_yuan" for c in table.column_names])
                    for r in rows:
                        w.writerow(csv_row(yuan(v) if k == "charge_minor" else v for k, v in r.items()))
    view = Table(title=f"calls by {kind}" + (f" ({account})" if account else ""), title_justify="left")
    keys = [c for c in table.column_names if c not in ("calls", "answered", "answer_rate", "billed_seconds",
                                                        "charge_minor")]
    for col in keys + ["calls", "answered", "answer rate", "minutes", "cost (yuan)"]:
        view.add_column(col, justify="left" if col in keys else "right")
    for r in rows[:100]:
        # From the counts, rounded once half up (14 of 17: 82.4%; the
        # column's 4-decimal float, rounded again, showed 82.3%).
        rate = "" if not r["calls"] else f"{_percent(r['answered'], r['calls'])}%"
        view.add_row(*(str(r[k]) if r[k] not in ("", None) else "(untagged)" if k == "campaign" else "(unknown)"
                       for k in keys),
                     f"{r['calls']:,}", f"{r['answered']:,}", rate,
                     f"{r['billed_seconds'] / 60:,.1f}", yuan(r["charge_minor"]))
    out.print(view)
    if len(rows) > 100:
        # With --out every row is in the file: say so, not "use --out".
        where = f"all {len(rows):,} are in {out_path}" if out_path else "use --out"
        out.print(f"{len(rows) - 100:,} more row(s) not shown here ({where})", highlight=False, markup=False)
    elif out_path:
        out.print(f"{len(rows):,} row(s) written to {out_path}", highlight=False, markup=False)


def register(cli: click.Group) -> None:
    """Add this module's commands to the ``rating400`` group."""
    cli.add_command(bill_command)
    cli.add_command(advise_command)
    cli.add_command(crm_group)
    cli.add_command(report_command)


def _percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` in percent with one decimal, half up (exact:
    integers and Decimal, never a float rounded twice)."""
    from decimal import ROUND_HALF_UP, Decimal

    return str((Decimal(part * 100) / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP))
