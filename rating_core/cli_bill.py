"""``rating400 bill``: monthly bills from rated CDRs (see billing.py)."""
from __future__ import annotations

import click
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table



@click.command("bill")
@click.argument("rated", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--store", "store_dir", envvar="RATING400_STORE", required=True, type=click.Path(file_okay=False))
@click.option("--version", type=int, help="Catalog version the CDRs were rated with (default: active).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Bills (.parquet or .csv).")
def bill_command(rated, store_dir, version, out_path):
    """Monthly bills per account from rated CDR files."""
    from . import cdr
    from .billing import monthly_bill
    from .cli import user_errors
    from .rater import yuan
    from .store import Store

    with user_errors():
        tables = []
        for path in rated:
            t = cdr.read_table(path)
            if pa.types.is_string(t.schema.field("start").type):  # rated CSV
                t = t.set_column(t.schema.get_field_index("start"), "start",
                                 pc.cast(t["start"], pa.timestamp("ms", "UTC")))
            tables.append(t.select(["account", "start", "billable_seconds", "billed_seconds",
                                    "charge", "credit_consumed", "overage"]))
        snapshot = Store(store_dir, create=False).open(version)
        bills = monthly_bill(pa.concat_tables(tables, promote_options="permissive"), snapshot.meta)
        cdr.write_table(bills, out_path)
    console = Console()
    view = Table(title=f"{bills.num_rows} bill(s) -> {out_path}")
    for col in ("account", "month", "calls", "usage", "minimum_topup", "rental", "features", "amount_due"):
        view.add_column(col, justify="left" if col in ("account", "month") else "right")
    for row in bills.slice(0, 15).to_pylist():
        view.add_row(row["account"], row["month"], f"{row['calls']:,}",
                     *(yuan(row[c]) for c in ("usage", "minimum_topup", "rental", "features", "amount_due")))
    console.print(view)
    total = pc.sum(bills["amount_due"]).as_py() or 0
    console.print(f"total due {yuan(total)} yuan over {bills.num_rows} account-month(s)")
