"""A monthly minimum spend is owed for the months its package is in force
(README "Monthly statements", Monthly minimum; newcomer N10-2 finding 5:
40.00 charged for a December after the prepaid period ended and the account
was suspended as expired)."""
import datetime as dt
import json

import pytest

from rating_core.cli import main
from test_billing import CATALOG, CST, YUAN, at, statements, world  # noqa: F401  (world: a fixture)


def test_no_minimum_in_a_month_after_the_prepaid_period_ended(world):  # noqa: F811
    """From rated files: `expiring`'s period ends on 2026-11-15. November
    (in force half the month) keeps its whole minimum; December has none;
    the rental runs on (the number is still held)."""
    st = statements(world)[0]
    nov, dec = st[("expiring", "2026-11")], st[("expiring", "2026-12")]
    assert (nov.monthly_minimum, nov.minimum_topup) == (40 * YUAN, 40 * YUAN - 6000)
    assert (dec.monthly_minimum, dec.minimum_topup, dec.rental) == (0, 0, 5 * YUAN)
    assert dec.amount_due == 5 * YUAN


def bill(capsys, store, out, *months):
    with pytest.raises(SystemExit) as e:
        main(["bill", "--ledger", "--store", str(store), "--out", str(out), "--account", "expiring",
              *[x for m in months for x in ("--month", m)]])
    assert e.value.code == 0, capsys.readouterr().err
    return {s["month"]: s for s in json.loads(out.read_text("utf-8"))["statements"]}


def test_the_live_ledger_bills_no_minimum_until_a_renewal(tmp_path, capsys):
    """The live ledger (package periods from its events): no minimum in
    December, the period having ended on 2026-11-15; renewed (now), the
    renewal's month is under a package again and has its minimum."""
    from rating_core.accounts import Accounts
    from rating_core.accounts.importer import import_catalog
    from rating_core.store import Store

    (tmp_path / "c.yaml").write_text(CATALOG, encoding="utf-8")
    store = tmp_path / "store"
    Store(store).compile(tmp_path / "c.yaml", activate=True)
    ops = Accounts.open(store)
    import_catalog(ops, tmp_path / "c.yaml", billing_from_ms=at(11, 1, 0))
    ops.ledger.close()
    got = bill(capsys, store, tmp_path / "b.json", "2026-11", "2026-12")
    assert (got["2026-11"]["monthly_minimum_minor"], got["2026-11"]["minimum_topup_minor"]) == (40 * YUAN, 40 * YUAN)
    assert (got["2026-12"]["monthly_minimum_minor"], got["2026-12"]["minimum_topup_minor"]) == (0, 0)
    assert got["2026-12"]["rental_minor"] == 5 * YUAN
    ops = Accounts.open(store)
    renewed = ops.renew("r-1", "expiring")  # now: a renewal after the gap
    ops.ledger.close()
    month = dt.datetime.fromtimestamp(renewed["account"]["package_start_ms"] / 1000, CST).strftime("%Y-%m")
    got = bill(capsys, store, tmp_path / "c.json", month)
    assert (got[month]["monthly_minimum_minor"], got[month]["minimum_topup_minor"]) == (40 * YUAN, 40 * YUAN)
