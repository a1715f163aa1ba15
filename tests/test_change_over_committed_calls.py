"""A package change dated back over calls already committed (breaker8 F5).

The calls stay rated under the package they were committed under until a
rerating re-prices them under the periods now in force; the change is taken
(dating it as it was agreed is the operator's right) and its result warns,
naming the calls and the ``rerate`` command to run. Catalog
``test_late_cdrs.RENTED``: ``pay`` 0.12/min, ``pre_b`` prepaid 0.10/min.
Money in minor units, 1/10000 yuan.
"""
from __future__ import annotations

from clock import clock_at
from test_late_cdrs import at, cdr, engine_rows, setup_store


def test_a_change_dated_back_over_committed_calls_warns_with_the_rerate_command(tmp_path, rented_catalog):
    """``pay``: a 10-minute call on 11-12 (1.20) committed; on 11-12 a change
    to ``pre_b`` dated 11-10 00:00. The result warns: 1 call committed
    since 2026-11-10 rated under ``pay``, with ``rerate --version 1 --from
    2026-11-10 --to 2026-11-12 --account acme``; that rerating re-prices the
    call under ``pre_b`` (1.00: -0.20). A change dated after the calls, or
    without calls after it, warns nothing."""
    from rating_core.rerate import rerate

    store, ops, _ = setup_store(tmp_path, "pay")
    engine_rows(store, [cdr("on", at(11, 12), 10)])
    with clock_at(at(11, 12, 11)):
        res = ops.change_package("c", "acme", "pre_b", effective_ms=at(11, 10, 0), at_ms=at(11, 12, 11))
    warning, = res["detail"]["warnings"]
    assert warning.startswith("1 call(s) of account 'acme' committed since 2026-11-10T00:00:00+08:00 were rated "
                              "under package 'pay', not 'pre_b'")
    assert "rating400 rerate --store DIR --version 1 --from 2026-11-10 --to 2026-11-12 --account acme" in warning
    with clock_at(at(11, 12, 12)):
        result = rerate(store, 1, "2026-11-10", "2026-11-12", account="acme", dry_run=True, now_ms=at(11, 12, 12))
    assert [a.new_charge_minor - a.old_charge_minor for a in result.adjustments] == [-2_000]
    with clock_at(at(11, 13)):
        later = ops.change_package("d", "acme", "pay", effective_ms=at(11, 13, 0), at_ms=at(11, 13))
    assert "warnings" not in later["detail"]
