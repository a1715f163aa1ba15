"""``rating400 rerate``: re-rate committed calls of a period under another
catalog version, writing one adjustment per changed call and the balance
corrections in one ledger transaction (rules: ``rating_core.rerate``)."""
from __future__ import annotations

import click


@click.command("rerate")
@click.option("--store", "store_dir", envvar="RATING400_STORE", required=True,
              type=click.Path(file_okay=False), help="Catalog store directory (env RATING400_STORE).")
@click.option("--version", "version", type=int, required=True, help="Catalog version to rerate under.")
@click.option("--from", "day_from", required=True, help="First local day of the period (YYYY-MM-DD).")
@click.option("--to", "day_to", required=True, help="Last local day of the period, inclusive (YYYY-MM-DD).")
@click.option("--account", help="Only this account's calls.")
@click.option("--number", help="Only this 400 number's calls.")
@click.option("--reason", help="Reason written on each adjustment (default: the version).")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write the adjustments to this CSV.")
@click.option("--dry-run", is_flag=True, help="Show the adjustments; write nothing to the ledger.")
def rerate_command(store_dir, version, day_from, day_to, account, number, reason, out, dry_run):
    """Rerate the committed calls of a period (an account, a number or all)
    under catalog VERSION. Running it again changes nothing."""
    import pyarrow.csv as pacsv

    from . import cells, layout
    from .cli import UserError, user_errors
    from .errors import InvalidInput
    from .ledger import InsufficientCredit
    from .rerate import adjustments_table, rerate

    with user_errors():
        if not 1 <= version <= layout.MAX_CATALOG_VERSION:
            raise UserError(f"--version: {version}: {layout.CATALOG_VERSION_BOUND}")
        if out:  # checked before the ledger is touched: a bad --out never fails after the commit
            check_adjustments_out(out, store_dir)
        try:
            result = rerate(store_dir, version, day_from, day_to, account=account, number=number,
                            dry_run=dry_run, reason=reason)
        except InsufficientCredit as e:
            raise UserError(f"refused, nothing written: {e}") from None
        except InvalidInput as e:
            # ``rerate`` names its request's fields (gRPC's); the CLI names
            # them as typed, the options (newcomer N10: "to:" for --to).
            if e.record is None and f"--{e.field}" in _OPTIONS:
                raise UserError(f"--{e.field}: {e.message}") from None
            raise
    total = sum(a.delta_minor for a in result.adjustments)
    verb = "would adjust" if dry_run else "adjusted"
    click.echo(f"{result.seen} calls: {verb} {len(result.adjustments)} ({_signed(total)} yuan), "
               f"{result.unchanged} unchanged, {result.skipped} already rerated under version {version}, "
               f"{result.not_rerated} not rateable under it")
    for acct, c in result.by_account().items():
        if c.kind == "prepaid":  # what moved the credit and what moved the arrears
            click.echo(f"  {acct} (prepaid): charges {_signed(c.charge_minor)} yuan: "
                       f"prepaid credit {_signed(c.credit_minor)}, arrears {_signed(c.billed_minor)}")
        else:
            click.echo(f"  {acct} ({c.kind}): charges {_signed(c.charge_minor)} yuan, on the bill "
                       f"(balance {_signed(c.balance_minor)})")
    try:
        if out:
            table = adjustments_table(result)  # for people: a call id or --reason starting like a formula is quoted
            pacsv.write_csv(cells.table(table, cells.text_columns(table)), out)
    except OSError as e:  # after the checks only a full disk or a race is left: say what was committed
        done = "nothing was written to the ledger" if dry_run else "the rerating IS committed to the ledger"
        raise UserError(f"--out: {out}: {e.strerror or e}; {done}") from None


# The options a ``rerate`` field error can name (its InvalidInput fields with "--").
_OPTIONS = frozenset(o for p in rerate_command.params for o in p.opts if o.startswith("--"))


def check_adjustments_out(out: str, store_dir: str) -> None:
    """``--out`` of ``rerate``: a writable file outside the store, and, when
    it exists, an adjustments list written before (its CSV header): a CDR
    file, a catalog or any other file is never overwritten. Raises
    InvalidInput naming ``--out``."""
    from pathlib import Path

    from .cli_types import check_output_path, check_outputs_apart
    from .errors import InvalidInput

    check_output_path("--out", out)
    check_outputs_apart([store_dir], out, None)
    target = Path(out)
    if target.is_file() and target.stat().st_size:
        with open(target, "rb") as f:
            head = f.read(len(ADJUSTMENTS_HEADER))
        if head != ADJUSTMENTS_HEADER:
            raise InvalidInput("--out", f"{out} exists and is not an adjustments list written by rerate; "
                                        "it would be overwritten (write elsewhere)")


# The first bytes of the CSV ``rerate --out`` writes (pyarrow quotes the names).
ADJUSTMENTS_HEADER = b'"call_id","account","version"'


def _signed(minor: int) -> str:
    """Minor units as signed yuan with 2 decimals, for display."""
    from .rater import yuan

    return ("+" if minor >= 0 else "") + yuan(minor)
