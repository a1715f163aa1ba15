"""Which SIP final answer a refused call gets.

The one table of the contract (``DENY_ANSWERS``), documented in
``clients/kamailio/README.md``. The rule a 400 operator follows: the code
says whether trying again can help. 403 (and 402) say "not for this
caller / account, do not retry", 404 "no such number", 480 "nobody there
now" (schedule), 486 "every line busy", 503 "this switch cannot decide now,
retry elsewhere" -- the only code an upstream carrier should retry on, and
the answer whenever the engine cannot be asked (fail closed: a call the
engine has not allowed is never connected, so nothing is ever carried
unbilled).
"""
from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class SipAnswer:
    """A SIP final response: ``code`` (int, 4xx/5xx), ``phrase`` (reason
    phrase), ``reason`` (the engine's reason name, sent in the
    ``X-Rating400-Reason`` header so an IVR or carrier can play the right
    announcement)."""

    code: int
    phrase: str
    reason: str


# Engine deny reason (routing.proto DenyReason, lower case) -> SIP answer.
DENY_ANSWERS: dict[str, tuple[int, str]] = {
    "unknown_number": (404, "Not Found"),
    "number_not_active": (403, "Number Not In Service"),
    "number_suspended": (403, "Number Suspended"),
    "pending_verification": (403, "Number Pending Verification"),
    "account_suspended": (403, "Account Suspended"),
    "package_not_started": (403, "Number Not In Service"),
    "caller_blocked": (403, "Caller Blocked"),
    "region_blocked": (403, "Region Blocked"),
    "invalid_ivr_key": (404, "Invalid IVR Key"),
    "no_route": (480, "Temporarily Unavailable"),
    "all_destinations_busy": (486, "Busy Here"),
    "no_rate": (403, "No Rate"),
    "out_of_credit": (402, "Payment Required"),
    # The enterprise's own monthly cap on the number: final until next month.
    "monthly_spend_cap": (403, "Monthly Spend Cap Reached"),
    "monthly_calls_cap": (403, "Monthly Call Cap Reached"),
}
OTHER = (403, "Forbidden")

ENGINE_DOWN = SipAnswer(503, "Service Unavailable", "engine_unavailable")
NOT_A_400_NUMBER = SipAnswer(404, "Not Found", "not_a_400_number")
IVR_KEYS_REQUIRED = SipAnswer(484, "Address Incomplete", "ivr_keys_required")
HUNT_EXHAUSTED_NO_ANSWER = SipAnswer(480, "No Answer", "no_answer")


def answer_for_reason(reason: str) -> SipAnswer:
    """SIP answer for an engine reason name (``caller_blocked`` ...);
    unknown names get 403."""
    code, phrase = DENY_ANSWERS.get(reason, OTHER)
    return SipAnswer(code, phrase, reason or "other")


def answer_for_decision(decision) -> SipAnswer | None:
    """``AuthorizeResponse`` -> None when allowed, else the SIP answer for
    its ``reason`` (the engine's reason name)."""
    if decision.allow:
        return None
    return answer_for_reason(decision.reason)


def answer_for_rpc_error(err: grpc.RpcError) -> SipAnswer:
    """An Authorize that failed with a gRPC status -> SIP answer.

    NOT_FOUND is the engine's unknown number (404), FAILED_PRECONDITION a
    number or account not in service (403), INVALID_ARGUMENT a request the
    engine cannot read (404: the dialled digits are not a 400 number of ours).
    Everything else -- UNAVAILABLE (engine down), DEADLINE_EXCEEDED,
    RESOURCE_EXHAUSTED, INTERNAL -- fails closed with 503.
    """
    code = err.code() if hasattr(err, "code") else None
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
        details = (err.details() if hasattr(err, "details") else "") or ""
        named = [r for r in DENY_ANSWERS if r in details]
        if named:  # the engine names its reason in the status message
            return answer_for_reason(max(named, key=len))
    if code == grpc.StatusCode.NOT_FOUND:
        return answer_for_reason("unknown_number")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return SipAnswer(403, "Number Not In Service", "not_in_service")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return SipAnswer(404, "Not Found", "invalid_argument")
    return ENGINE_DOWN
