"""RerateService: ``Rerate`` runs ``rating_core.rerate.rerate_in`` (the
same rerating as ``rating400 rerate``) on the worker's store and ledger.

Admin only (``auth.ROLES``): it moves money. Work runs on the engine thread
(``EngineHost.run``), which owns the LMDB handles and serialises ledger
writes with the commits of rated calls. Bad requests end with
INVALID_ARGUMENT naming the field; a rerating that would take a prepaid
account below zero with FAILED_PRECONDITION (nothing written).
"""
from __future__ import annotations

import grpc

from rating400.v1 import rerate_pb2, rerate_pb2_grpc

from .convert import BadRequest
from .engine import EngineHost
from .metrics import Metrics
from .services import RpcFail, rpc

SERVICE = rerate_pb2.DESCRIPTOR.services_by_name["RerateService"]


class RerateServicer(rerate_pb2_grpc.RerateServiceServicer):
    def __init__(self, host: EngineHost, metrics: Metrics):
        self.host = host
        self.metrics = metrics

    def _rerate(self, request) -> rerate_pb2.RerateResponse:
        from rating_core.errors import InvalidInput
        from rating_core.layout import CATALOG_VERSION_BOUND, MAX_CATALOG_VERSION
        from rating_core.ledger import InsufficientCredit
        from rating_core.rerate import rerate_in

        if not 1 <= request.catalog_version <= MAX_CATALOG_VERSION:
            raise BadRequest("catalog_version", f"{request.catalog_version}: {CATALOG_VERSION_BOUND}")
        for name in ("from_day", "to_day"):
            if not getattr(request, name):
                raise BadRequest(name, "required (YYYY-MM-DD, local day)")
        engine = self.host.engine
        try:
            r = rerate_in(engine.store, engine.ledger, int(request.catalog_version), request.from_day,
                          request.to_day, account=request.account or None, number=request.number or None,
                          dry_run=request.dry_run, reason=request.reason or None)
        except InsufficientCredit as e:
            raise RpcFail(grpc.StatusCode.FAILED_PRECONDITION, f"refused, nothing written: {e}") from None
        except InvalidInput as e:
            # The core names its own fields (from/to/version); answer with the request's.
            name = {"from": "from_day", "to": "to_day", "version": "catalog_version"}.get(e.field, e.field)
            raise BadRequest(name, e.message) from None
        resp = rerate_pb2.RerateResponse(
            catalog_version=r.version, dry_run=r.dry_run, seen=r.seen, unchanged=r.unchanged, skipped=r.skipped,
            not_rerated=r.not_rerated, delta_total_minor=sum(a.delta_minor for a in r.adjustments),
            credit_change_total_minor=sum(r.ledger_change_minor.values()))
        for a in r.adjustments:
            resp.adjustments.add(call_id=a.call_id, account=a.account, catalog_version=a.version,
                                 old_charge_minor=a.old_charge_minor, new_charge_minor=a.new_charge_minor,
                                 delta_minor=a.delta_minor, ledger_delta_minor=a.ledger_delta_minor,
                                 reason=a.reason, rerated_at_ms=a.rerated_at_ms)
        for acct, c in r.by_account().items():
            resp.corrections.add(account=acct, credit_change_minor=c.balance_minor, package_kind=c.kind,
                                 charge_change_minor=c.charge_minor, billed_change_minor=c.billed_minor)
        return resp

    @rpc("Rerate")
    async def Rerate(self, request, context):
        return await self.host.run(self._rerate, request)
