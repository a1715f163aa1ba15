"""The ``rating400`` command: bulk rating, catalog versions, the demo.

A thin face on the Python API (Store, Rater, Engine). User errors (a bad
catalog, a missing store or file) print what is wrong and exit 2, without
a traceback.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .cli_types import MEMORY_LIMIT, PORT, THREADS, IntRange, check_outputs_apart
from .errors import CatalogError, InvalidInput, StoreError

# Piped or redirected output (make demo in a CI log, `| less`) has no
# terminal width; rich would then squeeze tables into 80 columns and cut
# every name. COLUMNS, when set, still wins.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
# Markup off by default: the CLI prints operator text (tags, notes, company
# names, file names) that may hold '[red]' or '[/]'; rendered as markup it
# would be changed or crash the print (MarkupError) after the work was done.
# The few styled lines pass markup=True and escape every value they hold.
err = Console(stderr=True, soft_wrap=True, width=_WIDTH, markup=False)
out = Console(soft_wrap=True, width=_WIDTH, markup=False)

STORE = click.option(
    "--store", "store_dir", envvar="RATING400_STORE", required=True,
    type=click.Path(file_okay=False), help="Catalog store directory (env RATING400_STORE).",
)


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None):
        err.print(f"[bold red]error:[/] {escape(self.message)}", highlight=False, markup=True, soft_wrap=True)


@contextlib.contextmanager
def user_errors():
    """Errors the operator can fix -> a message and exit code 2."""
    import lmdb

    from .ledger.envs import ledger_full

    try:
        yield
    except CatalogError as e:
        more = e.count - len(e.problems)
        err.print(f"[bold red]catalog has {e.count} problem(s){f', the first {len(e.problems)}' if more else ''}:[/]",
                  markup=True)
        for p in e.problems:
            err.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
        if more:
            err.print(f"  ... and {more} more (fix these and compile again)", markup=False, highlight=False)
        raise SystemExit(2) from None
    except (StoreError, InvalidInput, FileNotFoundError) as e:
        raise UserError(str(e)) from None
    except OSError as e:  # pyarrow and friends: unreadable inputs, full disks
        raise UserError(str(e)) from None
    except lmdb.Error as e:  # ledger.lmdb's map or disk full (aborted whole): what to do, exit 2
        if (full := ledger_full(e)) is None:
            raise
        raise UserError(str(full)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rating400")
def cli():
    """Rating400: rating and routing engine for China's 400 numbers."""


# --- rate -----------------------------------------------------------------
@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@STORE
@click.option("--out", "out_path", required=True, type=click.Path(),
              help="Rated CDRs (.parquet or .csv; a directory with --by-day).")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False),
              help="Rejected rows (default: OUT's name + .rejects.csv).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), help="Output format (default: by extension).")
@click.option("--version", "version", type=int, help="Catalog version (default: the active one).")
@click.option("--commit", is_flag=True,
              help="Exactly once against the ledger: skip call ids committed before, persist closing balances.")
@click.option("--threads", type=THREADS, default=2, show_default=True, help="Kernel threads (1..256).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--pass-through", is_flag=True, help="Keep every input column in the rated output (default: billing columns).")
@click.option("--by-day", is_flag=True, help="Write OUT as a Parquet dataset directory partitioned by start day.")
@click.option("--chunk-rows", type=IntRange(min=1000), default=1 << 19, show_default=True,
              help="Rows per chunk (memory is bounded by a few chunks).")
@click.option("--memory-limit", type=MEMORY_LIMIT, default="1GB", show_default=True, help="DuckDB's limit for the out-of-core sort.")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Rate on a Dask cluster (scheduler address, e.g. tcp://host:8786), partitioned by account.")
@click.option("--encoding", help="CSV text encoding: utf-8, gbk (gb18030) or utf-16 (default: detected).")
def rate(inputs, store_dir, out_path, rejects_path, fmt, version, commit, threads, as_json,
         pass_through, by_day, chunk_rows, memory_limit, dask_address, encoding):
    """Rate CDR files (CSV or Parquet) or Parquet dataset directories into rated CDRs and rejects."""
    from . import cdr
    from .cli_bulk import rate_with_options

    with user_errors():
        check_outputs_apart(inputs, out_path, rejects_path or default_rejects(out_path))
        for option, path in (("--out", out_path), ("--rejects", rejects_path)):
            if path and not (by_day and option == "--out") and not Path(path).parent.is_dir():
                # Before anything is rated or committed, naming the option given (newcomer5 F3: pyarrow's
                # "Failed to open local file '.../x.rejects.csv'" named the rejects file derived from --out).
                raise UserError(f"{option}: {path}: the directory {Path(path).parent} does not exist; create it first")
            if path and str(path) != str(path).rstrip(" ."):
                # Windows drops a trailing space or dot: "r.parquet " would be a CSV named r.parquet there.
                raise UserError(f"{option}: {str(path)!r} ends with a space or a dot; name the file without it")
            if path and not fmt and Path(path).suffix.lower() in NOT_WRITTEN:
                # Before anything is rated or committed: a CSV named .xlsx is a
                # file Excel refuses to open, found only after the commit.
                raise UserError(f"{option}: {path}: rate writes .csv (Excel opens it) or .parquet, not "
                                f"{Path(path).suffix}; name the file so, or give --format")
        with cdr.told_encoding(encoding):  # every job checks its inputs first (``bulk.check_inputs``)
            summary, seconds = rate_with_options(
                inputs, store_dir, out_path, rejects_path, fmt, version, commit, threads, progress=not as_json,
                pass_through=pass_through, by_day=by_day, chunk_rows=chunk_rows, memory_limit=memory_limit,
                dask_address=dask_address)
    print_summary(summary, seconds, out_path, rejects_path or default_rejects(out_path), as_json)


# Extensions of formats ``rate`` does not write (it writes CSV under any
# other name): refused rather than a CSV misnamed.
NOT_WRITTEN = frozenset({".xlsx", ".xls", ".xlsm", ".xlsb", ".ods", ".numbers", ".json", ".jsonl", ".arrow",
                         ".feather", ".orc", ".avro",
                         # compressed or archived: rate writes neither (a plain CSV named .gz breaks gunzip)
                         ".gz", ".zip", ".bz2", ".xz", ".zst", ".7z", ".tar", ".tgz", ".rar", ".lz4", ".snappy"})


def default_rejects(out_path) -> str:
    p = Path(out_path)
    return str(p.with_name(p.stem + ".rejects.csv"))


def rate_files(inputs, store_dir, out_path, rejects_path=None, fmt=None, version=None, commit=False,
               threads=2, progress=True, store=None, pass_through=False):
    """Rate files into rated CDRs and rejects; returns (summary, seconds).
    ``store``: an open Store of ``store_dir`` (LMDB opens an environment once
    per process). Without ``commit``: the bounded-memory job
    (``rating_core.bulk``). With ``commit``: the inputs go through the edge
    batch by batch and are committed in one ledger transaction
    (``Engine.commit_prepared``), once ``bulk.check_inputs`` passed them."""
    from . import bulk, cdr

    if not commit:
        from .cli_bulk import rate_bounded

        return rate_bounded(inputs, store_dir, out_path, rejects_path, fmt, version, threads,
                            store=store, pass_through=pass_through)
    import pyarrow as pa

    from .engine import Engine
    from .rater import Rater
    from .accounts.importer import calls_before_cut_over
    from .accounts.view import open_view
    from .store import Ledger, Store

    began = time.perf_counter()
    bulk.check_inputs(inputs, pass_through)  # before the ledger is touched
    store = store or Store(store_dir, create=False)
    ledger = Ledger(store_dir)
    try:
        # The catalog version with the customer layer's live accounts.
        rater = Rater(open_view(store, ledger.env, version), threads=threads)
    except BaseException:
        ledger.close()
        raise
    known = [cdr.row_count(p) for p in inputs]
    total = sum(known) if all(k is not None for k in known) else None
    parts, offset = [], 0
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=not progress, transient=True)
    with bar, ThreadPoolExecutor(max(1, threads)) as pool:
        # The edge runs on ``threads`` batches at once (pyarrow compute and
        # NumPy release the GIL); results are kept in input order.
        task = bar.add_task("reading CDRs", total=total)
        files = cdr.InputRows()
        # Without pass-through only the CDR fields are read, as the bulk
        # job reads them (another column may even be given twice).
        columns = None if pass_through else list(cdr.FIELDS)
        for path in inputs:
            files.begin(str(path), offset)
            for batch in cdr.read_batches(path, columns=columns, cdr_input=True):
                fut = pool.submit(rater.prepare, batch, offset)
                fut.add_done_callback(lambda f, k=batch.num_rows: bar.update(task, advance=k))
                parts.append(fut)
                offset += batch.num_rows
        parts = [f.result() for f in parts]
        bar.update(task, description="rating")
        prepared = cdr.concat(parts) if parts else None
        if prepared is None:
            raise InvalidInput("input", "no CDR rows", ", ".join(str(p) for p in inputs))
        engine = Engine(store, ledger, rater, threads)
        try:
            # Names stay dictionary-encoded: the output is the bulk job's
            # (same writer, settings and schema) plus ``replayed``.
            result = engine.commit_prepared(rater, prepared, decode_names=False)
            new = result.rated.filter(pa.array(~result.replayed)) if result.replayed.any() else result.rated
            result.summary.before_cut_over = calls_before_cut_over(ledger.env, new.column("account"),
                                                                   new.column("start"))
            result.summary.in_ended_months = calls_in_ended_months(new.column("start"))
            result.summary.answer_columns_absent = bulk.answer_columns_absent(inputs, rater)
        finally:
            engine.close()
        bar.update(task, description="writing")
        out = bulk.RatedWriter(out_path, fmt)
        out.write(bulk.encode_names(bulk.billing_view(result.rated, pass_through, files))
                  .append_column("replayed", pa.array(result.replayed)))
        out.close()
        # The bounded job's writer: CSV or Parquet by extension, rows from 1, formula cells quoted in a CSV.
        rejects_out = bulk.RejectsWriter(rejects_path or default_rejects(out_path), files)
        rejects_out.write(result.rejects)
        rejects_out.close()
    return result.summary, time.perf_counter() - began


SUMMARY_LABEL_WIDTH = 48  # characters of the rate summary's label column (a reject reason wraps)
RATE_MIN_ROWS = 1000  # the rate summary states CDR/s from this many rows in


def print_summary(summary, seconds, out_path, rejects_path, as_json=False):
    from . import cdr
    from .rater import yuan

    # The reason is one of a fixed list (cdr.REASONS); what to do about it is said here, once.
    why = ": " + cdr.REASONS[cdr.NOT_UTF8]  # keys are "field: reason"
    not_utf8 = sum(n for key, n in summary.rejects_by_reason.items() if key.endswith(why))
    hint = (f"{not_utf8:,} rows not UTF-8 text: the file was read as UTF-8; if it is GBK, rate it again with "
            "--encoding gbk") if not_utf8 else ""
    warnings = (answer_column_warnings(summary.answer_columns_absent) + cut_over_warnings(summary.before_cut_over)
                + ended_month_warnings(summary.in_ended_months))
    if as_json:
        d = summary.as_dict()
        d.update(seconds=round(seconds, 3), out=str(out_path), rejects=str(rejects_path))
        click.echo(json.dumps(d))
        for line in ([hint] if hint else []) + warnings:  # stdout stays one JSON document
            click.echo(line, err=True)
        return
    t = Table(title="rating summary", show_header=False, title_justify="left")
    # A long reject reason wraps in its cell instead of widening the table.
    t.add_column(max_width=SUMMARY_LABEL_WIDTH, overflow="fold")
    t.add_column()
    t.add_row("rows in", f"{summary.rows_in:,}")
    t.add_row("rated", f"{summary.rated:,}")
    t.add_row("rejected", f"{summary.rejected:,}")
    for reason, n in sorted(summary.rejects_by_reason.items(), key=lambda kv: -kv[1]):
        t.add_row(f"  {reason}", f"{n:,}")
    t.add_row("duplicate call ids (rated once)", f"{summary.duplicates:,}")
    if summary.replayed:
        # The output holds the replayed rows with their charges now (as committed,
        # or as rerated since: ``adjustments.as_rerated``): say both figures
        # (newcomer A11: "total charge 0.00" beside a file of 59047.55).
        t.add_row("newly charged", f"{summary.charge_yuan} yuan")
        t.add_row("replayed (committed before, not charged again)",
                  f"{summary.replayed:,} calls, their charges {yuan(summary.replayed_charge)} yuan "
                  "(as committed, or as rerated since)")
    else:
        t.add_row("total charge", f"{summary.charge_yuan} yuan")
    # A rate over a few rows is the start-up time, not a throughput: said from RATE_MIN_ROWS on.
    rate = (f" ({summary.rows_in / max(seconds, 1e-9):,.0f} CDR/s)" if summary.rows_in >= RATE_MIN_ROWS else "")
    t.add_row("time", f"{seconds:.2f} s{rate}")
    t.add_row("rated CDRs", str(out_path))
    t.add_row("rejects", str(rejects_path))
    out.print(t)
    out.print(f"rows in {summary.rows_in:,} = rated {summary.rated:,} + rejected {summary.rejected:,}", highlight=False)
    if summary.ledger_calls:
        out.print(f"dry run (the ledger is not changed) from the ledger's balances as they stand, after "
                  f"{summary.ledger_calls:,} committed call{'' if summary.ledger_calls == 1 else 's'}: a call of this file committed before is not charged "
                  "again but answered with its stored result (replayed), as --commit answers it",
                  highlight=False, markup=False)
    if hint:
        out.print(hint, highlight=False, markup=False)
    for line in warnings:
        err.print(line, highlight=False, markup=False)


def answer_column_warnings(absent: list[dict]) -> list[str]:
    """One warning per input file lacking an answer column whose calls
    would bill from it (``RatingSummary.answer_columns_absent``; newcomer8
    F8: 2,000 CDRs without agent_answer were rated 7.56 yuan, not 577.96,
    without a word). An empty cell is an unanswered call; a column missing
    from the whole file is an export mistake."""
    lines = []
    for a in absent:
        calls = "calls" if a["calls"] is None else f"{a['calls']:,} call{'' if a['calls'] == 1 else 's'}"
        columns = a["columns"]
        if columns == ["ivr_answer"]:
            what = (f"{calls} to numbers billing from the IVR's answer were billed from the agent's answer "
                    "instead (unanswered, 0.00, where it is empty)")
        elif columns == ["agent_answer"]:
            what = f"{calls} to numbers billing from the agent's answer were rated as unanswered (0.00)"
        else:
            what = f"{calls} to numbers billing from an answer were rated as unanswered (0.00)"
        lines.append(f"warning: no {' or '.join(columns)} column in {a['file']}: {what}; if the export left it "
                     "out, export it and rate the file again")
    return lines


CUT_OVER_WARNED = 10  # accounts named one by one in a commit's cut-over warning; the rest counted
CUT_OVER_NOTE = ("note: those months' calls, rental and minimum are on the accounts' statements (nothing the ledger "
                 "holds is left off one); if the old platform billed them, commit only calls from the cut-over on")


def cut_over_warnings(before: list[dict]) -> list[str]:
    """The commit's warning lines for calls dated before their account's
    cut-over (``RatingSummary.before_cut_over``): one per account, at most
    ``CUT_OVER_WARNED`` of them, then one line counting the others, then
    what it means (``CUT_OVER_NOTE``) once; none for none."""
    lines = [f"warning: {b['calls']:,} call(s) of {b['account']} dated before its cut-over "
             f"{b['billing_from_day']} committed: its billing now starts at {b['billing_starts']}, their month"
             for b in before[:CUT_OVER_WARNED]]
    if len(before) > CUT_OVER_WARNED:
        rest = before[CUT_OVER_WARNED:]
        lines.append(f"warning: and {sum(b['calls'] for b in rest):,} call(s) of {len(rest)} more account(s) dated "
                     "before their cut-over (rate --json lists them all: before_cut_over)")
    if lines:
        lines.append(CUT_OVER_NOTE)
    return lines


def calls_in_ended_months(start, now_ms: int | None = None) -> dict[str, int]:
    """Calls (``start``: the committed rows' start times, an Arrow timestamp
    column) that started before the current month (Asia/Shanghai, at
    ``now_ms``, default now), counted by month "YYYY-MM", oldest first."""
    import numpy as np
    import pyarrow as pa

    from .billing.statements import month_index, month_label

    if not len(start):
        return {}
    ms = start.cast(pa.int64()).to_numpy(zero_copy_only=False)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    months = month_index(np.asarray(ms, np.int64))
    current = int(month_index(np.array([now], np.int64))[0])
    ended, counts = np.unique(months[months < current], return_counts=True)
    return {month_label(int(m)): int(n) for m, n in zip(ended, counts)}


def ended_month_warnings(in_ended: dict[str, int]) -> list[str]:
    """The commit's warning for calls of months already ended
    (``RatingSummary.in_ended_months``): their months' statements change, and
    a statement already sent to the customer no longer matches (newcomer
    2026-12-02 #5: October's amount due moved from 27.64 to 26.44 with no
    word); none for none."""
    if not in_ended:
        return []
    months = ", ".join(f"{m}: {n:,}" for m, n in in_ended.items())
    return [f"warning: {sum(in_ended.values()):,} call(s) of ended months committed ({months}): those months' "
            "statements change (bill --ledger shows them as they are now); a statement already sent is corrected "
            "on the current one with accounts adjust, or sent again"]


# --- catalog ----------------------------------------------------------------
@cli.group()
def catalog():
    """Compile, activate and inspect catalog versions."""


@catalog.command("compile")
@click.argument("catalog_path", type=click.Path(exists=True, dir_okay=False))
@STORE
@click.option("--activate", is_flag=True, help="Make the new version the active one.")
def catalog_compile(catalog_path, store_dir, activate):
    """Validate and compile CATALOG (YAML) into a new version.

    With --activate, a version lacking a package or feature live accounts
    hold is compiled but not activated: exit 1, ``refused: package_in_use:
    ...`` (see ``catalog activate``)."""
    from .store import Store

    with user_errors():
        store = Store(store_dir)
        v = store.compile(catalog_path)
        if activate:
            _activate(store, v, f"compiled {catalog_path} -> version {v} (not active)")
    out.print(f"compiled {catalog_path} -> version {v}" + (" (active)" if activate else ""), highlight=False)


def _activate(store, version: int, refused_out: str = "") -> None:
    """``store.activate(version)``; its refusal (a package or feature in use
    that the version lacks) printed as ``refused: REASON: why`` on stderr
    (``refused_out``, if any, on stdout first), exit 1."""
    from .errors import Refused

    try:
        store.activate(version)
    except Refused as e:
        if refused_out:
            out.print(refused_out, highlight=False)
        err.print(f"refused: {e.reason}: {e.message}", highlight=False, markup=False, soft_wrap=True)
        raise SystemExit(1) from None


@catalog.command("activate")
@click.argument("version", type=int)
@STORE
def catalog_activate(version, store_dir):
    """Make VERSION the active catalog (atomic; also rolls back).

    Refused (exit 1, ``refused: package_in_use: ...`` or ``feature_in_use``)
    when VERSION lacks a package live accounts are on, wait for or ran under
    (a package period of the ledger), or a feature they hold."""
    from .store import Store

    with user_errors():
        _activate(Store(store_dir, create=False), version)
    out.print(f"version {version} is active", highlight=False)


def _compiled(meta: dict) -> str:
    """A version's compile time for people, in Asia/Shanghai like every other
    time the CLI prints (the store records it in UTC: ``compiled_at``)."""
    import datetime as dt

    from . import layout

    at = meta.get("compiled_at") or ""
    try:
        return dt.datetime.fromisoformat(at).astimezone(layout.LOCAL_TZ).isoformat(timespec="seconds")
    except ValueError:
        return at  # not a time: as recorded


@catalog.command("list")
@STORE
def catalog_list(store_dir):
    """Catalog versions in the store."""
    from .store import Store

    import datetime as dt

    from . import layout

    with user_errors():
        store = Store(store_dir, create=False)
        versions, dated = store.versions(), store.activations()
    if not versions:
        out.print("no catalog versions", highlight=False)
    for v in versions:  # one line per version: easy to read and to grep
        c = v.get("counts", {})
        # When it was activated (a month's fees are the version's in force at its start).
        at = [("before activations were dated" if ms == 0 else
               dt.datetime.fromtimestamp(ms / 1000, layout.LOCAL_TZ).isoformat(timespec="seconds"))
              for ms, version in dated if version == v["version"]]
        out.print(f"{'*' if v['active'] else ' '} v{v['version']}  {v.get('catalog', '')}  compiled {_compiled(v)}  "
                  f"accounts {c.get('accounts', '')}  numbers {c.get('numbers', '')}  {v.get('source', '')}"
                  + (f"  activated {', '.join(at)}" if at else ""), highlight=False, markup=False)


@catalog.command("show")
@click.argument("version", type=int, required=False)
@STORE
def catalog_show(version, store_dir):
    """Counts and names of a version (default: the active one)."""
    from .store import Store

    with user_errors():
        snap = Store(store_dir, create=False).open(version)
    m = snap.meta
    out.print(f"[bold]version {snap.version}[/]: {escape(str(m.get('catalog')))}  ({escape(str(m.get('source', '')))})",
              highlight=False, markup=True)
    out.print(f"compiled {_compiled(m)}, region data {m.get('region_data', '')}", highlight=False)
    for k, v in m.get("counts", {}).items():
        out.print(f"  {k}: {v:,}", highlight=False)
    names = m.get("package_names") or m["packages"]
    out.print("packages:", highlight=False)
    for pid, name in zip(m["packages"], names):
        out.print(f"  {pid}: {name}", highlight=False)
    for key in ("destination_classes", "bands", "rates", "accounts", "routing_plans"):
        if m.get(key):
            out.print(f"{key}: {', '.join(m[key])}", highlight=False, soft_wrap=True)


# --- demo -------------------------------------------------------------------
@cli.command()
@click.option("--cdrs", "n", type=IntRange(min=1), default=200_000, show_default=True, help="Synthetic CDRs to rate.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="rating400-demo", show_default=True)
@click.option("--seed", type=int, default=400, show_default=True)
def demo(n, directory, seed):
    """Write the demo catalog, compile it, make N CDRs and rate them."""
    import pyarrow.parquet as pq

    from .demo import demo_cdrs, write_demo_catalog
    from .store import Store

    d = Path(directory)
    with user_errors():
        if (d / "store").exists() or (d / "catalog").exists():
            # Rating new CDRs into an old demo's ledger and store would quietly
            # change every figure the README shows: a demo starts afresh.
            raise UserError(f"{d}: holds a demo or a catalog already (store, ledger, files); remove it "
                            f"(`rm -r {d}`) or give another --dir")
        catalog_path = write_demo_catalog(d / "catalog")
        store = Store(d / "store")
        v = store.compile(catalog_path, activate=True)
        out.print(f"catalog {catalog_path} -> {d / 'store'} version {v} (active)", highlight=False)
        t0 = time.perf_counter()
        table = demo_cdrs(n, seed)
        pq.write_table(table, d / "cdrs.parquet")
        out.print(f"{n:,} synthetic CDRs -> {d / 'cdrs.parquet'} ({time.perf_counter() - t0:.1f} s)", highlight=False)
        summary, seconds = rate_files([d / "cdrs.parquet"], d / "store", d / "rated.parquet", d / "rejects.csv",
                                     store=store)
    print_summary(summary, seconds, d / "rated.parquet", d / "rejects.csv")


# --- serve ------------------------------------------------------------------
@cli.command()
@STORE
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=PORT, default=50051, show_default=True, help="0 picks a free port.")
@click.option("--workers", type=IntRange(min=1), help="Worker processes (default: one per core).")
@click.option("--metrics-port", type=PORT, help="Prometheus endpoint port; 0 picks a free port.")
@click.option("--grace", type=float, default=10.0, show_default=True, help="Seconds to drain on SIGTERM.")
@click.option("--ready-file", type=click.Path(dir_okay=False), help="Write JSON {port, ...} once serving.")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Server certificate chain (PEM): serve TLS.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Server private key (PEM).")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False),
              help="CA (PEM) of client certificates: mutual TLS, roles from the certificate's OU.")
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False),
              help="Bearer tokens file: lines 'ROLE[,ROLE] TOKEN'.")
@click.option("--allow-insecure", is_flag=True, help="Serve a non-loopback address without TLS and roles.")
@click.option("--local-admin", is_flag=True,
              help="Without TLS identities, let local callers use admin methods (single-user host).")
@click.option("--catalog-root", type=click.Path(file_okay=False),
              help="Compile may read catalogs by server path under this directory only.")
@click.option("--max-message-mb", type=IntRange(1, 2047), default=64, show_default=True, help="Largest request message.")
@click.option("--max-batch-rows", type=IntRange(min=1), default=262_144, show_default=True, help="Most CDRs in one batch.")
@click.option("--max-dry-stream-calls", type=IntRange(min=1), default=2_000_000, show_default=True,
              help="Most distinct call ids one dry RateCdrBatches stream rates (the server holds each).")
def serve(store_dir, host, port, workers, metrics_port, grace, ready_file, log_level, tls_cert, tls_key,
          tls_client_ca, tokens_file, allow_insecure, local_admin, catalog_root, max_message_mb, max_batch_rows,
          max_dry_stream_calls):
    """Run the gRPC service (rating400_server)."""
    try:
        from rating400_server.auth import Auth, AuthConfigError
        from rating400_server.main import serve as run
    except ImportError as e:
        raise UserError(f"the gRPC service is not installed ({e})") from None
    from rating400_server.envvars import EnvError, check as check_env

    from .cdr import Limits

    try:
        check_env()  # RATING400_SWEEP_SECONDS, _ENGINE_THREADS, _LOG_LEVEL...: one line naming it
    except EnvError as e:
        raise UserError(str(e)) from None
    try:
        auth = Auth(tls_cert, tls_key, tls_client_ca, tokens_file, local_admin=local_admin)
    except AuthConfigError as e:
        raise UserError(str(e)) from None
    limits = Limits(max_message_bytes=max_message_mb << 20, max_batch_rows=max_batch_rows,
                    max_dry_stream_calls=max_dry_stream_calls)
    sys.exit(run(store_dir, host, port, workers, metrics_port=metrics_port, grace=grace,
                 ready_file=ready_file, log_level=log_level, limits=limits, auth=auth,
                 allow_insecure=allow_insecure, catalog_root=catalog_root))


def _add_commands():
    # Separate modules, one command each; imported here (not at the top) because
    # they import this module for user_errors().
    from . import cli_billing
    from .cli_accounts import accounts_command
    from .cli_explain import explain_command
    from .cli_rerate import rerate_command
    from .cli_route import route_command

    cli.add_command(route_command)
    cli.add_command(explain_command)
    cli_billing.register(cli)
    cli.add_command(accounts_command)
    cli.add_command(rerate_command)


_add_commands()


def not_utf8_argument(argv: list[str]) -> str | None:
    """The first argument that is not UTF-8 text, described for an error
    line (``argument N`` counted from 1 after the program name, or the
    option it is the value of: ``--add``), or None when all are text.
    Python hands such bytes over as lone surrogates (PEP 383); every command
    would otherwise meet them as an internal error when it stores or prints
    them, so they are refused once, here, before any command runs."""
    for i, arg in enumerate(argv):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            if arg.startswith("--") and "=" in arg and arg.split("=", 1)[0].isascii():
                return f"option {arg.split('=', 1)[0]}"
            if i and _takes_value(argv[:i - 1], argv[i - 1]):
                return f"argument {i + 1} (the value of {argv[i - 1]})"
            name = _positional_name(argv, i)
            return f"argument {i + 1} ({name})" if name else f"argument {i + 1}"
    return None


def _subcommand(argv: list[str]) -> tuple[click.Command, int]:
    """The (sub)command the leading words of ``argv`` name (``crm tag ...``
    -> the tag command) and how many words named it."""
    cmd: click.Command = cli
    k = 0
    while k < len(argv) and isinstance(cmd, click.Group) and argv[k] in cmd.commands:
        cmd = cmd.commands[argv[k]]
        k += 1
    return cmd, k


def _positional_name(argv: list[str], i: int) -> str | None:
    """The name of the (sub)command's positional parameter ``argv[i]`` fills
    (``explain X`` -> ``call_id``), or None when it is none of them."""
    cmd, k = _subcommand(argv)
    if k > i:
        return None
    pos, j = 0, k
    while j < i:
        word = argv[j]
        if word.startswith("-") and word != "-":
            if "=" not in word and _takes_value(argv[:k], word):
                j += 1  # its value
        else:
            pos += 1
        j += 1
    names = [p.name for p in cmd.params if isinstance(p, click.Argument)]
    return names[pos] if pos < len(names) else None


def _takes_value(before: list[str], option: str) -> bool:
    """Whether ``option`` is an option taking a value of the (sub)command the
    words ``before`` it name (``crm tag`` -> the tag command's ``--add``)."""
    cmd, _ = _subcommand(before)
    return any(isinstance(p, click.Option) and option in p.opts and not p.is_flag and not p.count
               for p in cmd.params)


def main(argv=None):
    """The command line. Every operator error is one line on stderr and exit
    status 2: click's usage errors too (its default is three lines with the
    usage), and arguments that are not UTF-8 text (``not_utf8_argument``).
    ``RATING400_*`` environment values that are not UTF-8 text or hold a
    control character (``cdr.check_environment``) likewise, naming the variable.
    Anything else escaping a command is a bug: one line naming it
    (the traceback with RATING400_TRACEBACK=1) and exit status 1."""
    import os

    from .cdr import check_environment
    from .errors import InvalidInput

    args = list(sys.argv[1:] if argv is None else argv)
    if (bad := not_utf8_argument(args)) is not None:
        err.print(f"error: {bad}: not UTF-8 text", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    try:
        check_environment()  # RATING400_* values: UTF-8 text without control characters
    except InvalidInput as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    try:
        rv = cli.main(args=args, prog_name="rating400", standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)  # as click's standalone mode ends
    except click.UsageError as e:
        hint = f" (see `rating400 {e.ctx.command_path.split(' ', 1)[1]} --help`)" if e.ctx and " " in e.ctx.command_path else ""
        err.print(f"error: {e.format_message()}{hint}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.Abort:
        sys.exit(1)
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - see the docstring
        if os.environ.get("RATING400_TRACEBACK"):
            raise
        err.print(f"error: internal error, please report it: {type(e).__name__}: {str(e)[:300]}"
                  " (RATING400_TRACEBACK=1 shows the traceback)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
