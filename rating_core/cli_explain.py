"""``rating400 explain CALL_ID``: why a rated call cost what it did, in
plain words (English, or Chinese with ``--lang zh``), from a rated file or from the calls
committed to the ledger. Reads only."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("explain")
@click.argument("call_id", type=click.STRING)
@click.option("--store", "store_dir", envvar="RATING400_STORE", required=True,
              type=click.Path(file_okay=False), help="Catalog store directory (env RATING400_STORE).")
@click.option("--rated", "rated_file", type=click.Path(dir_okay=False),
              help="A rated file (rating400 rate's output); default: the calls committed to the ledger.")
@click.option("--version", "version", type=int, help="Catalog version that rated the call (default: the active one).")
# One language by default, English as gRPC ExplainCharge's (newcomer LOW F2: both
# languages, one after the other, unless --lang was given).
@click.option("--lang", type=click.Choice(["en", "zh", "both"]), default="en", show_default=True,
              help="Language of the explanation: en, zh (Chinese), or both (English, then Chinese).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation's fields as JSON.")
def explain_command(call_id, store_dir, rated_file, version, lang, as_json):
    """Explain the charge of CALL_ID: account, package, billing start,
    billable seconds, band(s), rate rule, increments, exact total, rounding,
    connect fee, credit or bundle used."""
    from .cli import user_errors  # the CLI's one way of reporting operator errors
    from .explain import close_view, explain, explain_committed, layer_billing_start, rating_view, record_from_file
    from .store import Ledger, Store

    from .cdr import check_text
    from .errors import InvalidInput

    if not call_id.strip():
        raise click.BadParameter("empty; give the call id of a rated CDR", param_hint="CALL_ID")
    with user_errors():
        try:  # the edge's rule for a call id (length, control characters); a shell may pass bytes that are not UTF-8
            check_text("call_id", call_id).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("call_id", "not UTF-8 text; give the call id of a rated CDR") from None
        store = Store(store_dir, create=False)
        if not rated_file and not (Path(store_dir) / "ledger.lmdb").exists():
            raise InvalidInput("call_id", "nothing has been committed to this store (no ledger); "
                                          "give the rated file with --rated")
        if rated_file and not (Path(store_dir) / "ledger.lmdb").exists():
            # A rated file explained against a store that never had a ledger:
            # the catalog alone (no customer layer), and no ledger created
            # by a command that only reads.
            snapshot = store.open(version)
            try:
                record = record_from_file(rated_file, call_id, snapshot)
                x = explain(snapshot, record)
            finally:
                snapshot.close()
        else:
            ledger = Ledger(store_dir)
            try:
                # The view the rater used: the catalog version with the customer
                # layer's accounts, numbers and package periods (a number added by
                # `accounts number add` is in no catalog snapshot).
                view = rating_view(store, ledger, version)
                try:
                    if rated_file:
                        record = record_from_file(rated_file, call_id, view)
                        x = explain(view, record, billing_start=layer_billing_start(ledger, record.get("number")))
                    else:
                        x = explain_committed(view, ledger, call_id)
                finally:
                    close_view(view)
            finally:
                ledger.close()
    if as_json:
        click.echo(json.dumps(x.as_dict(), ensure_ascii=False, indent=2, default=str))
        return
    langs = ["en", "zh"] if lang == "both" else [lang]
    click.echo("\n\n".join(x.text(code) for code in langs))
