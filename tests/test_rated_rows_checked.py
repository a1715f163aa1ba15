"""Breaker N11 F5, F6, F7, F16: the one rated-row check
(``billing.calls.from_rated_table``) refuses, naming file, row and field,
the edited cells ``bill`` and ``explain --rated`` took without a word; and
explain keeps a lean file's sentence beside the disagreement note."""
from __future__ import annotations

import csv
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from test_explain import run


@pytest.fixture(scope="module")
def lean_csv(demo, tmp_path_factory):
    """The demo's CDRs rated to a lean CSV (``rate``'s default columns: no
    answer or end times) and its first rated row (a dict of its cells)."""
    rated = tmp_path_factory.mktemp("lean") / "lean.csv"
    assert run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--out", rated).exit_code == 0
    with open(rated, newline="", encoding="utf-8-sig") as f:
        first = next(csv.DictReader(f))
    return rated, first


def _edited(src, tmp_path, name, which, **cells):
    """A copy of rated CSV ``src`` with ``cells`` of call ``which``'s row
    replaced -> (its path, that row's data row from 1)."""
    path = tmp_path / name
    with open(src, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    at = next(i for i, r in enumerate(rows) if r["call_id"] == which)
    rows[at].update(cells)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path, at + 1


def _refused_alike(demo, tmp_path, path, call_id, line, explain=True):
    """``bill`` (and ``explain --rated``) of ``path``: exit 2, one error ``line``."""
    billed = run("bill", path, "--store", demo / "store", "--out", tmp_path / "bill.json")
    assert billed.exit_code == 2 and billed.output.strip() == f"error: {line}", billed.output
    if explain:
        told = run("explain", call_id, "--store", demo / "store", "--rated", path, "--lang", "en")
        assert told.exit_code == 2 and told.output.strip() == f"error: {line}", told.output


def test_a_row_before_its_account_s_package_start_is_the_file_s_error(demo, lean_csv, tmp_path):
    """F5: a row's start edited to 2000-01-01 was on no statement (its
    charge lost, no warning) and widened every account's billing to 2000
    (433 statements). Now bill and explain name file, row and start."""
    from rating_core.billing.calls import Known
    from rating_core.store import Store

    rated, first = lean_csv
    path, row = _edited(rated, tmp_path, "early.csv", first["call_id"], start="2000-01-01 00:00:00+0800")
    snap = Store(demo / "store", create=False).open()
    try:
        begins = Known.of(snap).starts[first["account"]]
    finally:
        snap.close()
    from rating_core.billing.calls import _local
    line = (f"{path}: start: row {row}: 2000-01-01T00:00:00+08:00 is before account {first['account']}'s package "
            f"start {_local(begins)}: the rater refuses such a call (package_not_started), and no statement "
            "would hold its charge")
    _refused_alike(demo, tmp_path, path, first["call_id"], line)


@pytest.mark.parametrize("field, text, why", [
    ("units", "2147483648", "2147483648 is outside [0, 172800] increments on a rated row"),
    ("credit_after_minor", "-99999999", "-99999999 is outside [0, 1000000000000000] minor units on a rated row"),
    ("replayed", "banana", "'banana' is not true/false on a rated row"),
    ("package", "nonesuch", "'nonesuch' is not a package of this catalog version (bill or explain with the "
                            "--version that rated the file)"),
])
def test_an_edited_cell_billing_does_not_sum_is_refused(demo, lean_csv, tmp_path, field, text, why):
    """F16 (and the LOW of F6): units above any call, a prepaid credit below
    zero, replayed 'banana' and a package the catalog lacks were taken by
    bill and explain without a word."""
    rated, first = lean_csv
    path, row = _edited(rated, tmp_path, "edited.csv", first["call_id"], **{field: text})
    _refused_alike(demo, tmp_path, path, first["call_id"], f"{path}: {field}: row {row}: {why}")


def test_a_call_id_holding_a_nul_is_refused(demo, lean_csv, tmp_path):
    """F16: a call id holding NUL (``a\\x00b``), which the rater refuses,
    was billed."""
    rated, first = lean_csv
    path, row = _edited(rated, tmp_path, "nul.csv", first["call_id"], **{"call_id": "a\x00b"})
    _refused_alike(demo, tmp_path, path, None,
                   f"{path}: call_id: row {row}: 'a\\x00b' holds a control character (the rater refuses one)",
                   explain=False)


def test_answered_not_true_or_false_names_the_row_and_value(demo, lean_csv, tmp_path):
    """F7: "e.csv: answered: not true/false", without the row or the value,
    from a CSV and from a Parquet file's text column."""
    rated, first = lean_csv
    path, row = _edited(rated, tmp_path, "maybe.csv", first["call_id"], answered="maybe")
    _refused_alike(demo, tmp_path, path, first["call_id"],
                   f"{path}: answered: row {row}: 'maybe' is not true/false on a rated row")
    from rating_core import cdr

    t = cdr.read_rated(rated)
    words = ["true"] * t.num_rows
    words[1] = "yes"
    parquet = tmp_path / "yes.parquet"
    pq.write_table(t.set_column(t.schema.get_field_index("answered"), "answered", pa.array(words)), parquet)
    _refused_alike(demo, tmp_path, parquet, t.column("call_id")[1].as_py(),
                   f"{parquet}: answered: row 2: 'yes' is not true/false on a rated row")


def test_a_lean_row_the_catalog_disagrees_with_keeps_the_lean_sentence(demo, lean_csv, tmp_path):
    """F6: a lean rated row whose figures differ from the catalog's was
    explained "The call was not answered ... billing never started" and then
    "Charged: 0.4680 yuan": the disagreement note replaced the lean-file
    one. Both are told now, and never "not answered" for a charged call."""
    rated, first = lean_csv
    assert int(first["charge_minor"]) > 0 and first["answered"] == "true"
    path, _ = _edited(rated, tmp_path, "other.csv", first["call_id"],
                      billed_seconds=str(int(first["billed_seconds"]) + 600))
    told = run("explain", first["call_id"], "--store", demo / "store", "--rated", path, "--lang", "en")
    assert told.exit_code == 0, told.output
    assert "The rated file holds no answer or end times: billable seconds and band as recorded." in told.output
    assert "Note: this catalog version gives" in told.output
    assert "not answered" not in told.output, told.output


def _answered_row(rated):
    """The first rated row with a charge and billed seconds above its billable ones."""
    with open(rated, newline="", encoding="utf-8-sig") as f:
        return next(r for r in csv.DictReader(f)
                    if int(r["charge_minor"]) > 0 and int(r["billed_seconds"]) > int(r["billable_seconds"]) > 1)


@pytest.mark.parametrize("edit, field, why", [
    (lambda r: {"units": "0"}, "units",
     lambda r: f"0 increment(s) beside {r['billed_seconds']} billed seconds: a call is billed in whole increments, "
               "and one billed nothing has none"),
    (lambda r: {"units": "0", "billed_seconds": "0", "billable_seconds": "0"}, "units",
     lambda r: f"0 increments beside a charge of {r['charge_minor']} minor units: a call billed nothing is charged "
               "nothing"),
    (lambda r: {"billed_seconds": str(int(r["billable_seconds"]) - 1)}, "billed_seconds",
     lambda r: f"{int(r['billable_seconds']) - 1} is less than billable_seconds {r['billable_seconds']}: increments "
               "are added until they cover the billable time"),
])
def test_a_row_whose_figures_disagree_is_refused(demo, lean_csv, tmp_path, edit, field, why):
    """Breaker N12 F7: units 0 beside a charge of 4680, and 15 billed
    seconds of a 152-second call, were billed without a word. A rated row's
    figures agree as the rater makes them (reference.py, Charge)."""
    rated, _ = lean_csv
    first = _answered_row(rated)
    path, row = _edited(rated, tmp_path, f"{field}.csv", first["call_id"], **edit(first))
    _refused_alike(demo, tmp_path, path, first["call_id"], f"{path}: {field}: row {row}: {why(first)}")


def test_a_replayed_row_keeps_a_charge_a_rerating_gave_a_free_call(demo, lean_csv, tmp_path):
    """A replayed row carries the call's charge after a rerating beside the
    units it was committed with: a call free when committed (0 units) may
    be charged now. Its charge is not compared with its units."""
    rated, _ = lean_csv
    first = _answered_row(rated)
    path, _ = _edited(rated, tmp_path, "replayed.csv", first["call_id"], units="0", billed_seconds="0",
                      billable_seconds="0", replayed="true")
    billed = run("bill", path, "--store", demo / "store", "--out", tmp_path / "bill.json")
    assert billed.exit_code == 0, billed.output


def _row_of(demo, rated, kind, test):
    """The first rated row of a ``kind`` package (the demo catalog's) for which ``test(row)`` holds."""
    from rating_core import layout
    from rating_core.store import Store

    snap = Store(demo / "store", create=False).open()
    try:
        kinds = {p: layout.PACKAGE_KIND[int(k)] for p, k in zip(snap.meta["packages"], snap.tables["package_kind"])}
    finally:
        snap.close()
    with open(rated, newline="", encoding="utf-8-sig") as f:
        return next(r for r in csv.DictReader(f) if kinds[r["package"]] == kind and test(r))


def _n(r, name):
    return int(r[name])


@pytest.mark.parametrize("kind, test, edit, field, why", [
    # The breaker's: an overage of 5.00 on a bundle call charged 0 (the statement's overage line, in no total).
    ("bundle", lambda r: _n(r, "charge_minor") == 0, lambda r: {"overage_minor": "50000"}, "overage_minor",
     lambda r: "credit_consumed_minor 0 + overage_minor 50000 is neither 0 nor the charge 0: both are parts of the "
               "charge (prepaid: from credit and arrears; bundle: all overage; pay-as-you-go: neither)"),
    # Credit consumed + arrears beyond a prepaid call's charge.
    ("prepaid", lambda r: _n(r, "charge_minor") > 0,
     lambda r: {"overage_minor": str(_n(r, "overage_minor") + 100)}, "overage_minor",
     lambda r: f"credit_consumed_minor {r['credit_consumed_minor']} + overage_minor {_n(r, 'overage_minor') + 100} "
               f"is neither 0 nor the charge {r['charge_minor']}: both are parts of the charge (prepaid: from credit "
               "and arrears; bundle: all overage; pay-as-you-go: neither)"),
    # A prepaid call whose charge is neither from credit nor arrears.
    ("prepaid", lambda r: _n(r, "charge_minor") > 0,
     lambda r: {"overage_minor": "0", "credit_consumed_minor": "0"}, "overage_minor",
     lambda r: f"credit_consumed_minor 0 + overage_minor 0 is not the charge {r['charge_minor']} of a prepaid call: "
               "its charge is paid from credit, the rest is arrears"),
    # A pay-as-you-go call "paid from credit": charges less credit consumed made it free.
    ("payg", lambda r: _n(r, "charge_minor") > 0, lambda r: {"credit_consumed_minor": r["charge_minor"]},
     "credit_consumed_minor",
     lambda r: f"{r['charge_minor']} on a call of payg package {r['package']!r}: only a prepaid package's calls "
               "consume credit"),
    # A bundle call charged, with no overage.
    ("bundle", lambda r: _n(r, "charge_minor") == 0 and _n(r, "units") > 0, lambda r: {"charge_minor": "4680"},
     "overage_minor", lambda r: "0 is not the charge 4680 of a bundle call: its charge is the overage of the seconds "
                                "beyond the bundle"),
    # More bundle seconds than billed.
    ("bundle", lambda r: _n(r, "billed_seconds") > 0,
     lambda r: {"bundle_seconds_consumed": str(_n(r, "billed_seconds") + 60)}, "bundle_seconds_consumed",
     lambda r: f"{_n(r, 'billed_seconds') + 60} is more than billed_seconds {r['billed_seconds']}: a bundle covers "
               "at most the seconds billed"),
    # Fewer billed seconds than increments.
    ("payg", lambda r: _n(r, "units") > 1,
     lambda r: {"billed_seconds": str(_n(r, "units") - 1)}, "units",
     lambda r: f"{r['units']} increment(s) beside {_n(r, 'units') - 1} billed seconds: an increment lasts 1 to "
               "3600 seconds"),
])
def test_a_row_whose_money_parts_disagree_is_refused(demo, lean_csv, tmp_path, kind, test, edit, field, why):
    """Breaker N14 F3: an overage of 5.00 on a zero-charge row, credit
    consumed + overage beyond the charge, were billed (the overage line in
    no total). A row's parts agree as the rater settles them, per package
    kind (reference.py): refused naming file, row and field."""
    rated, _ = lean_csv
    row = _row_of(demo, rated, kind, test)
    path, at = _edited(rated, tmp_path, f"{kind}.csv", row["call_id"], **edit(row))
    _refused_alike(demo, tmp_path, path, row["call_id"], f"{path}: {field}: row {at}: {why(row)}")


def test_a_charged_unanswered_call_and_a_replayed_row_s_charge_are_billed(demo, lean_csv, tmp_path):
    """What the rater does make is not refused: an unanswered call charged
    (a number billed from ring or from the IVR answer: 'answered' is an
    agent's answer, rating_core.answered), and a replayed row whose charge
    (after a rerating) is not its committed credit + arrears."""
    rated, _ = lean_csv
    with open(rated, newline="", encoding="utf-8-sig") as f:
        assert any(r["answered"] == "false" and int(r["charge_minor"]) > 0 for r in csv.DictReader(f))
    row = _row_of(demo, rated, "prepaid", lambda r: _n(r, "charge_minor") > 0)
    path, _ = _edited(rated, tmp_path, "rerated.csv", row["call_id"], replayed="true",
                      charge_minor=str(_n(row, "charge_minor") * 2))
    billed = run("bill", path, "--store", demo / "store", "--out", tmp_path / "bill.json")
    assert billed.exit_code == 0, billed.output
