"""ExplainService: ``ExplainCharge`` for a committed call
(``rating_core.explain`` over the engine's view -- the active catalog
version with the customer layer, as it rates -- and the ledger).

Work runs on the engine thread (``EngineHost.run``), which owns the LMDB
handles. Bad requests end with INVALID_ARGUMENT naming the field.
"""
from __future__ import annotations

from rating400.v1 import explain_pb2, explain_pb2_grpc

from .convert import BadRequest
from .engine import EngineHost
from .metrics import Metrics
from .services import rpc

SERVICE = explain_pb2.DESCRIPTOR.services_by_name["ExplainService"]


class ExplainServicer(explain_pb2_grpc.ExplainServiceServicer):
    def __init__(self, host: EngineHost, metrics: Metrics):
        self.host = host
        self.metrics = metrics

    def _explain(self, request):
        from rating_core.cdr import excerpt
        from rating_core.errors import InvalidInput
        from rating_core.explain import explain_committed

        if not request.call_id:
            raise BadRequest("call_id", "required")
        lang = request.lang or "en"
        if lang not in ("en", "zh"):
            raise BadRequest("lang", f"{excerpt(lang)}: use en or zh")
        engine = self.host.engine
        rater = engine.rater  # one view for the whole walk (the refresh tick may swap the engine's)
        try:
            # The view the engine rates with: the catalog version with the
            # customer layer (accounts, numbers, package periods) applied.
            x = explain_committed(rater.snapshot, engine.ledger, request.call_id)
        except InvalidInput as e:
            raise BadRequest(e.field, e.message) from None
        resp = explain_pb2.ExplainChargeResponse(
            call_id=x.call_id, text=x.text(lang), account=x.account or "", package=x.package or "",
            rate=x.rate or "", bands=x.bands, billing_start_mode=x.billing_start_mode or "",
            billing_start_used=x.billing_start_used or "", billable_rule=x.billable_rule or "",
            billable_seconds=x.billable_seconds, billed_seconds=x.billed_seconds, units=x.units,
            rounding=x.rounding or "",
            exact_total_minor=f"{x.exact_total.numerator}/{x.exact_total.denominator}",
            connect_fee_minor=x.connect_fee, charge_minor=x.charge, credit_consumed_minor=x.credit_consumed,
            bundle_seconds_consumed=x.bundle_seconds_consumed, overage_minor=x.overage,
            consistent=x.consistent, catalog_version=rater.version,
            rule_index=-1 if x.rule_index is None else x.rule_index)
        # The balance after in its own unit, absent where the package has none
        # (RatedCdr's rule); the deprecated unitless fields keep their values
        # for older clients (F11).
        if x.package_kind == "prepaid":
            resp.credit_after_minor = x.balance_after
        elif x.package_kind == "bundle":
            resp.bundle_left_seconds = x.balance_after
        resp.exact_total = resp.exact_total_minor
        resp.connect_fee, resp.charge, resp.credit_consumed = x.connect_fee, x.charge, x.credit_consumed
        resp.overage, resp.balance_after = x.overage, x.balance_after
        if x.reservation_held:
            resp.reservation.SetInParent()
            for f in ("reserved_minor", "reserved_seconds", "granted_seconds", "settled_minor", "settled_seconds"):
                setattr(resp.reservation, f, getattr(x, f))
            resp.reservation.authorized_ms = x.authorized_ms or 0
            if x.held_seconds is not None:
                resp.reservation.held_seconds = x.held_seconds
        for r in x.runs:
            cost = f"{r.cost.numerator}/{r.cost.denominator}"
            step = resp.steps.add(start_seconds=r.start, band=r.band or "", rate=r.rate, tier=r.tier,
                                  count=r.count, increment_seconds=r.seconds, price_minor=r.price_minor,
                                  unit_seconds=r.unit, cost_minor=cost)
            step.price, step.cost = r.price_minor, cost  # deprecated names, same values (F11)
        return resp

    @rpc("ExplainCharge")
    async def ExplainCharge(self, request, context):
        return await self.host.run(self._explain, request)
