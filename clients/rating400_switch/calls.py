"""One call as the switch sees it: hunt list, dialog timeout, CDR.

Kamailio handles the INVITE, each branch's failure and the hang-up in
whichever worker process receives the message, so nothing about a call may
live in Python memory between them: the switch keeps it in dialog variables
(shared memory). ``Hunt`` and ``Leg`` are the two values it keeps there,
as short text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The dialled number: 400 + 7 digits, optionally with +86 / 0086 / 86.
_NUMBER = re.compile(r"^(?:\+?86|0086)?(400[0-9]{7})$")
_CALLER = re.compile(r"^\+?[0-9]{3,20}$")

BILLING_STARTS = ("ring", "ivr_answer", "agent_answer")


def is_400_number(user: str) -> str | None:
    """R-URI user part -> the 10-digit 400 number, or None when the call is
    not for a 400 number (the switch answers 404 without asking the engine)."""
    m = _NUMBER.match((user or "").replace("-", ""))
    return m.group(1) if m else None


def caller_of(user: str) -> str:
    """From user part -> caller for the engine: digits (a leading + kept, the
    engine normalises +86), or "" for a withheld or non-numeric caller
    (``anonymous``), which the engine treats as a caller of unknown region."""
    user = (user or "").strip()
    return user if _CALLER.match(user) else ""


@dataclass(frozen=True)
class Hunt:
    """Destinations still to try, in hunt order: ``(number, ring_timeout_s)``
    pairs. Text form ``"02083001234:20,13902001234:30"`` (dialog variable)."""

    destinations: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, decision) -> "Hunt":
        """From an ``AuthorizeResponse`` (its ``destinations``, in order)."""
        return cls(tuple((d.number, int(d.ring_timeout_seconds)) for d in decision.destinations))

    @classmethod
    def parse(cls, text: str) -> "Hunt":
        out = []
        for item in filter(None, (text or "").split(",")):
            number, _, timeout = item.partition(":")
            out.append((number, int(timeout or 0)))
        return cls(tuple(out))

    def text(self) -> str:
        return ",".join(f"{n}:{t}" for n, t in self.destinations)

    def pop(self) -> tuple[tuple[str, int] | None, "Hunt"]:
        """(next destination or None, the rest)."""
        if not self.destinations:
            return None, self
        return self.destinations[0], Hunt(self.destinations[1:])


@dataclass(frozen=True)
class Leg:
    """What the switch records about one call between INVITE and hang-up.
    Times are epoch ms (0 = did not happen); ``max_duration_s`` is the
    engine's granted maximum billable seconds (0 = no limit)."""

    call_id: str
    number: str
    caller: str
    start_ms: int
    billing_start: str = "agent_answer"
    max_duration_s: int = 0
    ivr_answer_ms: int = 0
    destination: str = ""  # the destination rung now, then the one that answered
    answer_ms: int = 0

    _FIELDS = ("call_id", "number", "caller", "start_ms", "billing_start", "max_duration_s",
               "ivr_answer_ms", "destination", "answer_ms")

    def text(self) -> str:
        """One line, ``|``-separated (call ids never contain ``|`` in practice;
        it is refused at parse)."""
        return "|".join(str(getattr(self, f)) for f in self._FIELDS)

    @classmethod
    def parse(cls, text: str) -> "Leg":
        parts = (text or "").split("|")
        if len(parts) != len(cls._FIELDS):
            raise ValueError(f"leg record has {len(parts)} fields, expected {len(cls._FIELDS)}")
        v = dict(zip(cls._FIELDS, parts))
        return cls(call_id=v["call_id"], number=v["number"], caller=v["caller"], start_ms=int(v["start_ms"]),
                   billing_start=v["billing_start"], max_duration_s=int(v["max_duration_s"]),
                   ivr_answer_ms=int(v["ivr_answer_ms"]), destination=v["destination"],
                   answer_ms=int(v["answer_ms"]))

    def billing_start_ms(self, answer_ms: int) -> int:
        """When billing starts for this call if it is answered at ``answer_ms``."""
        if self.billing_start == "ring":
            return self.start_ms
        if self.billing_start == "ivr_answer" and self.ivr_answer_ms:
            return self.ivr_answer_ms
        return answer_ms


# Seconds the switch cuts before the granted maximum. Kamailio's dialog
# timer keeps whole-second ticks and runs once a second, so a timeout of T s
# fires between T - 1 and T + 1 s after it was set, and billable seconds are
# rounded up from ms: 1 s of margin keeps an on-time cut within the grant.
# The second is for the switch running late on a busy machine (a cut 0.82 s
# past that worst case was seen in CI with 100 calls on 2 cores): a cut
# past the grant is charged in full and the call's overage is arrears.
CUT_MARGIN_S = 2


def dialog_timeout(leg: Leg, answer_ms: int, margin_s: int = CUT_MARGIN_S) -> int:
    """Seconds the dialog may last from the answer so the billable time never
    exceeds the granted maximum: ``max_duration_s - (answer - billing start)
    - margin_s``, at least 1 s; 0 = no limit.

    ``margin_s`` (default ``CUT_MARGIN_S``, 2 s) covers the dialog timer's
    whole-second ticks and a switch running late; see ``CUT_MARGIN_S``.
    Rule: README "Routing and authorization", maximum call duration.
    """
    if leg.max_duration_s <= 0:
        return 0
    spent = max(0, answer_ms - leg.billing_start_ms(answer_ms)) // 1000
    return max(1, leg.max_duration_s - spent - margin_s)


def cdr_of(leg: Leg, end_ms: int, hangup_cause: str) -> dict:
    """The CDR for ``RateCdr`` (engine column names, times in epoch ms):
    the call's real timestamps as the switch saw them. ``forwarded_to`` is
    the destination that answered, or the last one rung for an unanswered
    call (rated with no billable time under agent/IVR-answer billing)."""
    cdr = {"call_id": leg.call_id, "caller": leg.caller, "number": leg.number,
           "forwarded_to": leg.destination, "start": leg.start_ms, "end": max(end_ms, leg.start_ms),
           "hangup_cause": hangup_cause}
    if leg.ivr_answer_ms:
        cdr["ivr_answer"] = leg.ivr_answer_ms
    if leg.answer_ms:
        cdr["agent_answer"] = leg.answer_ms
    return cdr


def cut_at_ms(leg: Leg, grant_s: int, answer_ms: int, margin_s: int = CUT_MARGIN_S) -> int:
    """Epoch ms at which the switch cuts an answered call whose grant is
    ``grant_s`` seconds from billing start (see ``dialog_timeout``)."""
    return leg.billing_start_ms(answer_ms) + max(1, grant_s - margin_s) * 1000


def interim_due(cut_ms: int, now_ms: int, lead_s: int) -> bool:
    """True when a live call's cut is within ``lead_s`` seconds: time to ask
    the engine for more (``CallEvent interim``) before the switch must cut."""
    return cut_ms - now_ms <= lead_s * 1000
