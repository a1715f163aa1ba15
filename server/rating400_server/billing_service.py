"""BillingService: package advice, statements, caller CRM and reports over
gRPC, from the ledger's committed calls (``rating_core.billing``).

The reads (Advise, GetStatement, ListCallers, ExportCallers, GetReport) run
on the worker's billing-read threads (``EngineHost.read``: read transactions
only, bounded, never in front of call events and CDR commits); UpdateCaller
writes, so it runs on the engine thread (``EngineHost.run``). Bad requests
end with INVALID_ARGUMENT naming the field.
"""
from __future__ import annotations

import logging

from rating400.v1 import billing_pb2, billing_pb2_grpc

from rating_core.cdr import excerpt  # an error repeats at most 40 characters of a value

from .auth import caller_roles
from .convert import BadRequest
from .engine import EngineHost
from .metrics import Metrics
from .services import rpc

log = logging.getLogger("rating400.billing")
REPORT_KINDS = ("number", "region", "hour", "weekday", "destination", "campaign")


def _months(from_month: str, to_month: str) -> list[int] | None:
    from rating_core.billing.statements import MONTH_RULE, parse_month

    if not from_month and not to_month:
        return None
    if not (from_month and to_month):
        raise BadRequest("from_month" if not from_month else "to_month", "give both months or neither")
    try:
        lo = parse_month(from_month)
    except ValueError:
        raise BadRequest("from_month", f"{excerpt(from_month)} is not {MONTH_RULE}") from None
    try:
        hi = parse_month(to_month)
    except ValueError:
        raise BadRequest("to_month", f"{excerpt(to_month)} is not {MONTH_RULE}") from None
    if hi < lo:
        raise BadRequest("to_month", "before from_month")
    return list(range(lo, hi + 1))


def _span(months: list[int] | None) -> tuple[int | None, int | None]:
    from rating_core.billing.statements import month_bounds

    if months is None:
        return None, None
    return month_bounds(min(months))[2], month_bounds(max(months))[3]


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, host: EngineHost, metrics: Metrics):
        self.host = host
        self.metrics = metrics

    def _snapshot(self):
        return self.host.engine.rater.snapshot

    def _account(self, account: str) -> str:
        if not account:
            raise BadRequest("account", "required")
        if account not in self._snapshot().meta["accounts"]:
            # NOT_FOUND, worded as AccountService's reads (newcomer5 F6: GetBalance said NOT_FOUND
            # "account: no account 'acmee'", GetStatement INVALID_ARGUMENT "unknown account").
            from grpc import StatusCode as SC

            from .services import RpcFail
            raise RpcFail(SC.NOT_FOUND, f"account: no account {excerpt(account)}")
        return account

    # -- Advise ------------------------------------------------------------------
    def _advise(self, request):
        from rating_core.billing.advisor import Advisor
        from rating_core.billing.sources import committed_records

        account = self._account(request.account)
        months = _months(request.from_month, request.to_month)
        lo, hi = _span(months)
        records = committed_records(self.host.engine.ledger, lo, hi, account)
        if records is None:
            raise BadRequest("account", f"no committed calls of {account!r} in the period")
        advice = Advisor(self._snapshot()).advise(account, records, months)
        resp = billing_pb2.AdviseResponse(account=account, current_package=advice.current, months=advice.months,
                                          calls=advice.calls, calls_per_month=advice.calls_per_month,
                                          left_out_calls=advice.left_out)
        for p in advice.packages:
            resp.packages.add(
                package=p.package, name=p.name, kind=p.kind, applicable=p.applicable,
                unpriced_calls=p.unpriced_calls, usage_minor=p.usage, fixed_minor=p.fixed, total_minor=p.total,
                monthly_minor=p.monthly, saving_monthly_minor=p.saving_monthly,
                has_break_even=p.break_even_calls_per_month is not None,
                break_even_calls_per_month=p.break_even_calls_per_month or 0, rank=p.rank or 0, current=p.current)
        return resp

    @rpc("Advise")
    async def Advise(self, request, context):
        return await self.host.read(self._advise, request)

    # -- GetStatement --------------------------------------------------------------
    def _statement(self, request):
        """The statement with one page of its rerated calls (``_statement_json``)."""
        import json

        from rating_core.billing.render import catalog_names, statement_html
        from rating_core.accounts import Accounts
        from rating_core.billing.sources import committed_calls, ledger_events
        from rating_core.billing.fees import MonthlyFees
        from rating_core.accounts.operations import now_ms
        from rating_core.billing.statements import (MONTH_RULE, build_statements, month_bounds, month_not_begun,
                                                    parse_month)

        account = self._account(request.account)
        try:
            m = parse_month(request.month)
        except ValueError:
            raise BadRequest("month", f"{excerpt(request.month)} is not {MONTH_RULE}") from None
        ahead = month_not_begun(m, now_ms())  # as `bill --month` (breaker N13 F5)
        if ahead:
            raise BadRequest("month", ahead)
        lang = request.lang or "zh"
        if lang not in ("zh", "en"):
            raise BadRequest("lang", "zh or en")
        if request.rerating_page_size < 0:
            raise BadRequest("rerating_page_size", f"must be 0 or more, not {request.rerating_page_size}")
        digest = _filters_digest(account, request.month)
        skip = _page_offset(request.rerating_page_token, digest, "rerating_page_token", "GetStatement")
        _, _, lo, hi = month_bounds(m)
        engine = self.host.engine
        # Every call up to the month's end: the month opens at the previous one's closing credit.
        calls = committed_calls(engine.ledger, None, hi, account)
        # The same events as `bill --ledger`: top-ups, credit adjustments,
        # refunds and rerating adjustments, already in the live balances.
        snapshot = self._snapshot()
        events = ledger_events(Accounts(engine.store, engine.ledger), snapshot, account)
        found = build_statements(calls, snapshot, events, [m], [account], events_in_balances=True,
                                 fees=MonthlyFees(engine.store, snapshot))
        if not found:
            raise BadRequest("month", f"{account!r} has no package running in {request.month}, or that month is "
                                      f"before the one this ledger bills it from (its cut-over, Account.billing_from_ms)")
        s = found[0]
        size = min(request.rerating_page_size or RERATING_PAGE_MOST, RERATING_PAGE_MOST)
        listed = _statement_json(s, skip, size)
        more = skip + size < len(s.rerating)
        resp = billing_pb2.StatementResponse(
            account=s.account, company=s.company, month=s.month, period_start=s.period_start.isoformat(),
            period_end=s.period_end.isoformat(), package=s.package, calls=s.calls, answered=s.answered,
            billed_seconds=s.billed_seconds, usage_minor=s.usage, credit_consumed_minor=s.credit_consumed,
            overage_minor=s.overage, minimum_topup_minor=s.minimum_topup, rental_minor=s.rental,
            features_minor=s.features_total, opening_credit_minor=s.opening_credit,
            closing_credit_minor=s.closing_credit, amount_due_minor=s.amount_due,
            json=json.dumps(listed, ensure_ascii=False), rerating_calls=len(s.rerating),
            next_rerating_page_token=_page_token(skip + size, digest) if more else "",
            package_credit_minor=s.package_credit,
            credit_adjustments_minor=s.credit_adjustments_total, expired_credit_minor=s.expired_credit,
            top_ups_minor=s.top_ups_total, adjustments_minor=s.adjustments_total, rerating_minor=s.rerating_total,
            rerating_credit_minor=s.rerating_credit_total, earlier_unpaid_minor=s.earlier_unpaid,
            paid_to_earlier_minor=s.paid_to_earlier, paid_to_charges_minor=s.paid_to_charges,
            amount_payable_minor=s.amount_payable, rounding_minor=s.rounding, payments_minor=s.payments_total,
            payments_carried_in_minor=s.payments_carried_in, payments_carried_out_minor=s.payments_carried_out,
            refunds_minor=s.refunds_total, payments_reopened_minor=s.payments_reopened,
            outstanding_minor=s.outstanding, package_label=s.package_label,
            rentals=[_rental_message(r) for r in s.rentals])
        if request.include_html:
            resp.html = statement_html(s, calls, lang, catalog_names(snapshot.meta, lang))
        return resp

    @rpc("GetStatement")
    async def GetStatement(self, request, context):
        return await self.host.read(self._statement, request)

    # -- ListCallers / ExportCallers -------------------------------------------------
    def _listed(self, request, role: str, skip: int = 0, limit: int | None = None) -> list:
        """The caller records a ListCallers / ExportCallers request selects.
        A masked ``role`` cannot filter by caller number at all: a prefix
        search reveals the masked digits one query at a time, and a whole
        number 10,000 probes of the 4 hidden digits (breaker finding 35)."""
        import pyarrow as pa

        from rating_core.billing.crm import NO_CALLER_FILTER, UNMASKED_ROLES
        from rating_core.numbers import normalize_array

        account = self._account(request.account)
        prefix = ""
        if request.caller:
            if role not in UNMASKED_ROLES:
                raise BadRequest("caller", NO_CALLER_FILTER)
            normal, ok = normalize_array(pa.array([request.caller]))
            if not ok[0] and not request.caller.isdigit():
                raise BadRequest("caller", f"not a phone number or the start of one: {excerpt(request.caller)}")
            prefix = normal[0].as_py() if ok[0] else request.caller
        return self.host.engine.crm.callers(account, tag=request.tag or None,
                                            awaiting_callback=request.awaiting_callback, caller_prefix=prefix,
                                            skip=skip, limit=limit)

    def _callers(self, request, role: str):
        """One page of ListCallers (AIP-158): at most ``page_size`` records
        (0 or more than CALLERS_PAGE_MOST: that many, so no reply outgrows a
        client's default 4 MB; 200k callers were one 15 MB reply), and a
        ``next_page_token`` when more follow. The token holds how many were
        listed before and a digest of the filters, never a number (a masked
        role must not learn one from it)."""
        records, token = self._page(request, role)
        resp = billing_pb2.ListCallersResponse(next_page_token=token)
        for r in records:
            resp.callers.append(_caller_message(r, role))
        return resp

    def _page(self, request, role: str) -> tuple[list, str]:
        """(the records of the page ``request`` asks for, the next page's
        token or ""), for ListCallers and ExportCallers alike."""
        if request.page_size < 0:
            raise BadRequest("page_size", f"must be 0 or more, not {request.page_size}")
        size = min(request.page_size or CALLERS_PAGE_MOST, CALLERS_PAGE_MOST)
        digest = _filters_digest(request.account, request.caller, request.tag, str(request.awaiting_callback))
        skip = _page_offset(request.page_token, digest, "page_token", "ListCallers")
        records = self._listed(request, role, skip, size + 1)
        return records[:size], _page_token(skip + size, digest) if len(records) > size else ""

    @rpc("ListCallers")
    async def ListCallers(self, request, context):
        return await self.host.read(self._callers, request, crm_role())

    def _export(self, request, role: str):
        import io

        from rating_core.billing.crm import write_csv

        records, token = self._page(request, role)  # each page a CSV with its header
        buf = io.StringIO()
        write_csv(records, buf, role)
        return billing_pb2.ExportCallersResponse(csv=buf.getvalue().encode("utf-8-sig"), callers=len(records),
                                                 next_page_token=token)

    @rpc("ExportCallers")
    async def ExportCallers(self, request, context):
        return await self.host.read(self._export, request, crm_role())

    def _update_caller(self, request, role: str):
        """Tags, a note or a callback on a caller who called the account;
        tags and notes checked and bounded by ``rating_core.billing.crm``
        (INVALID_ARGUMENT naming the field); NOT_FOUND for a number that
        never called the account.

        Only a role that sees whole numbers (supervisor and above) may
        update: a change is addressed by the whole number, so any answer, a
        stored tag found again by ListCallers, or even the time the write
        takes would tell a masked role (``agent``, ``billing``) whether that
        number called (README: "Caller CRM"). A masked role gets
        PERMISSION_DENIED before anything is read."""
        import time

        from grpc import StatusCode as SC

        from rating_core.billing.crm import MAX_TAGS, UNMASKED_ROLES, clean_note, clean_tag, removed_tag
        from rating_core.errors import NotFound

        from .services import RpcFail

        if role not in UNMASKED_ROLES:
            raise RpcFail(SC.PERMISSION_DENIED, "UpdateCaller needs a role that sees whole caller numbers "
                                                "(supervisor): a masked role could learn who called")
        account = self._account(request.account)
        caller = _whole_caller(request.caller)
        if len(request.add_tags) > MAX_TAGS:
            raise BadRequest("add_tags", f"at most {MAX_TAGS} tags per caller ({len(request.add_tags)} given)")
        for i, t in enumerate(request.add_tags):
            clean_tag(t, f"add_tags[{i}]")
        for i, t in enumerate(request.remove_tags):
            removed_tag(t, f"remove_tags[{i}]")
        if request.note:
            clean_note(request.note)
        if not (request.add_tags or request.remove_tags or request.note or request.called_back):
            raise BadRequest("request", "nothing to change (tags, note or called_back)")
        crm, now = self.host.engine.crm, int(time.time() * 1000)
        try:
            rec = crm.get(account, caller)
            if rec is None:
                raise NotFound("caller", f"{caller} never called account {account}")
            if request.add_tags or request.remove_tags:
                rec = crm.tag(account, caller, request.add_tags, request.remove_tags, ("add_tags", "remove_tags"))
            if request.note:
                rec = crm.note(account, caller, request.note, now)
            if request.called_back:
                rec = crm.called_back(account, caller, now)
        except NotFound as e:
            raise RpcFail(SC.NOT_FOUND, str(e)) from None
        return _caller_message(rec, role)

    @rpc("UpdateCaller")
    async def UpdateCaller(self, request, context):
        return await self.host.run(self._update_caller, request, crm_role())

    # -- GetReport ---------------------------------------------------------------------
    def _report(self, request):
        from rating_core.billing.reports import CampaignTag, report
        from rating_core.billing.sources import committed_calls

        if request.by not in REPORT_KINDS:
            raise BadRequest("by", f"one of {', '.join(REPORT_KINDS)}")
        account = self._account(request.account) if request.account else None
        lo, hi = _span(_months(request.from_month, request.to_month))
        tags = []
        for i, c in enumerate(request.campaigns):
            if not c.campaign or not (c.number.startswith("400") and len(c.number) == 10 and c.number.isdigit()):
                raise BadRequest(f"campaigns[{i}]", "needs a campaign name and a 400 number (400 + 7 digits)")
            tags.append(CampaignTag(c.campaign, c.number, c.ivr_keys))
        if request.by == "campaign" and not tags:
            raise BadRequest("campaigns", "required for by = campaign")
        table = report(committed_calls(self.host.engine.ledger, lo, hi, account), request.by, tags)
        names = [c for c in table.column_names if c not in ("calls", "answered", "answer_rate", "billed_seconds",
                                                             "charge_minor")]
        resp = billing_pb2.ReportResponse(key_names=names)
        for row in table.to_pylist():
            resp.rows.add(key=["" if row[k] is None else str(row[k]) for k in names], calls=row["calls"],
                          answered=row["answered"],
                          answer_rate=row["answer_rate"] or 0.0, billed_seconds=row["billed_seconds"],
                          charge_minor=row["charge_minor"])
        return resp

    @rpc("GetReport")
    async def GetReport(self, request, context):
        return await self.host.read(self._report, request)


def crm_role() -> str:
    """The CRM role (``rating_core.billing.crm.ROLES``) of the gRPC call
    being handled: the most trusted CRM role its authenticated identity holds
    (``auth.caller_roles``), else ``agent`` (numbers masked). Read in the
    call's task, before work moves to the engine thread."""
    from rating_core.billing.crm import ROLES

    held = caller_roles()
    return next((r for r in reversed(ROLES) if r in held), "agent")


def _whole_caller(text: str) -> str:
    """A whole caller number, normalised; INVALID_ARGUMENT naming ``caller``
    (a zero-width, soft-hyphen or bidi character too, as routing refuses it:
    ``cdr.check_text``, never stripped by the normaliser)."""
    import pyarrow as pa

    from rating_core.cdr import check_text
    from rating_core.errors import InvalidInput
    from rating_core.numbers import normalize_array

    try:
        check_text("caller", text)
    except InvalidInput as e:
        raise BadRequest("caller", e.message) from None

    normal, ok = normalize_array(pa.array([text or None], pa.string()))
    if not ok[0]:
        raise BadRequest("caller", f"not a whole phone number: {excerpt(text)}")
    return normal[0].as_py()


# The most caller records one ListCallers reply holds (about 1.5 MB).
CALLERS_PAGE_MOST = 10_000


# Rerated calls a GetStatement answer lists at most: a rerated call is about
# 150 bytes of JSON (25,552 calls were 3.77 MB), so a page stays near 1 MB
# whatever the reasons' length, under a client's default 4 MB.
RERATING_PAGE_MOST = 5_000


def _filters_digest(*filters: str) -> str:
    """What a page token is tied to: the request's filters (a token used
    with other filters would skip the wrong records)."""
    import hashlib

    seen = "\0".join(filters)
    return hashlib.sha256(seen.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _page_token(offset: int, digest: str) -> str:
    import base64

    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode()


def _page_offset(token: str, digest: str, field: str, rpc_name: str) -> int:
    """How many records the pages before this one listed (0 without a
    ``token``). INVALID_ARGUMENT naming ``field`` for a token this server
    did not give for these filters (``digest``)."""
    import base64
    import binascii

    if not token:
        return 0
    try:
        offset, given = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").split(":")
        if given != digest or not offset.isdigit() or len(offset) > 12:
            raise ValueError
        return int(offset)
    except (ValueError, UnicodeError, binascii.Error):
        raise BadRequest(field, f"not a next_{field} of a {rpc_name} request with these filters") from None


def _statement_json(s, skip: int, size: int) -> dict:
    """``Statement.as_dict`` of ``s`` with its reratings summarised, every
    page: "rerating_runs" (one per rerating run: ``RerateRun``'s fields,
    money in minor units) and "rerating_calls" (the count); "rerating"
    lists the rerated calls ``skip`` .. ``skip + size`` only, and
    "rerating_listed" says which ({"first": skip, "count": n})."""
    from dataclasses import asdict

    d = s.as_dict()
    d["rerating"] = d["rerating"][skip:skip + size]
    d["rerating_listed"] = {"first": skip, "count": len(d["rerating"])}
    d["rerating_runs"] = [asdict(r) for r in s.rerating_runs]
    return d


def _rental_message(r: dict) -> billing_pb2.StatementRental:
    """One of ``Statement.rentals`` (the JSON's "rentals" part, its "from"
    the message's ``from_date``; money in 1/10000 yuan)."""
    return billing_pb2.StatementRental(package=r["package"], name=r["name"], from_date=r["from"],
                                       rental_minor=r["rental_minor"])


def _caller_message(r, role: str) -> billing_pb2.CallerRecordMessage:
    d = r.as_dict(role)
    return billing_pb2.CallerRecordMessage(
        caller=d["caller"], first_ms=r.first_ms, last_ms=r.last_ms, calls=r.calls, answered=r.answered,
        missed=r.missed, talk_seconds=r.talk_seconds, destination=r.destination or "", province=r.province or "",
        city=r.city or "", carrier=r.carrier or "", awaiting_callback=r.awaiting_callback, tags=r.tags,
        notes=len(r.notes))


SERVICE = billing_pb2.DESCRIPTOR.services_by_name["BillingService"]
