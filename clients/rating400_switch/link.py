"""The switch's link to the engine: one gRPC channel per process, deadlines
on every call, fail closed at call setup.

A Kamailio worker is a forked process and gRPC channels must not cross a
fork, so the channel is opened lazily in the process that uses it and
reopened if the process id changes. The channel reconnects quickly
(100 ms - 1 s backoff instead of gRPC's default of up to 2 minutes), so calls
are routed again within about a second of the engine coming back.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time

import grpc

from rating400_client import NO_RETRY, Client

from .answers import ENGINE_DOWN, answer_for_decision, answer_for_rpc_error
from .settings import Settings
from .spool import Spool

log = logging.getLogger("rating400_switch")

CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
]
# A refusal the engine will give again however often it is asked.
PERMANENT = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                       grpc.StatusCode.FAILED_PRECONDITION})


def now_ms() -> int:
    """Wall clock, epoch ms (the time stamped on events and CDRs)."""
    return time.time_ns() // 1_000_000


class EngineLink:
    """Authorize / CallEvent / RateCdr for one switch process.

    ``authorize`` never raises: it returns ``(decision, None)`` for an
    allowed call and ``(decision_or_None, SipAnswer)`` for a refused one; an
    engine that cannot be reached within ``authorize_timeout_ms`` gives 503.
    Post-call work goes through the spool (``report``) so it survives an
    engine restart.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.spool = Spool(settings.spool_dir)
        self._pid = None
        self._client: Client | None = None
        self._journal_lock = threading.Lock()

    @property
    def client(self) -> Client:
        if self._pid != os.getpid():
            # First use in this process (or a fork of it): never reuse a
            # parent's channel.
            self._client = Client(self.settings.engine, timeout=self.settings.event_timeout_ms / 1000,
                                  retry=NO_RETRY, options=CHANNEL_OPTIONS,
                                  credentials=self.settings.credentials())
            self._pid = os.getpid()
        return self._client

    def authorize(self, number: str, caller: str, ivr_keys: str, call_id: str, at_ms: int):
        """Routing decision at call setup -> ``(AuthorizeResponse | None, SipAnswer | None)``."""
        try:
            d = self.client.authorize(number, caller, ivr_keys=ivr_keys, call_id=call_id, at=at_ms,
                                      timeout=self.settings.authorize_timeout_ms / 1000)
        except grpc.RpcError as err:
            answer = answer_for_rpc_error(err)
            if answer is ENGINE_DOWN:
                log.warning("authorize %s: engine unavailable (%s): 503", call_id, _code(err))
                if _code(err) in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                    # The engine may have decided (and reserved credit) after
                    # we gave up: release it (``ended`` of an unknown call is
                    # a no-op). Spooled only, never sent here: the caller is
                    # waiting for its answer; the timer sends it.
                    self.spool.add(call_id, [event_op(call_id, number, "ended", at_ms, "", caller)])
            return None, answer
        return d, answer_for_decision(d)

    def started(self, call_id: str, number: str, destination: str, caller: str, at_ms: int) -> bool:
        """``started`` on the destination about to be rung: False when the
        engine says the line is at its concurrency cap (try the next one).
        An engine that fails here does not stop a call it already allowed
        (the cap is then not enforced for this call; logged)."""
        try:
            return bool(self.client.call_event(call_id, number, "started", destination=destination,
                                               caller=caller, at=at_ms).accepted)
        except grpc.RpcError as err:
            log.warning("started %s on %s: engine error %s; ringing anyway", call_id, destination, _code(err))
            return True

    def interim(self, call_id: str, number: str, caller: str, at_ms: int) -> int | None:
        """``CallEvent interim`` for a live call -> its new grant (seconds
        from billing start), or None when none is given: no reservation, an
        engine whose contract has no INTERIM, or the engine unreachable. The
        call is then cut at its current grant (never extended on credit the
        engine has not held)."""
        try:
            r = self.client.call_event(call_id, number, "interim", caller=caller, at=at_ms)
        except (grpc.RpcError, KeyError, ValueError):  # KeyError: a client without INTERIM
            return None
        grant = int(getattr(r, "max_duration_seconds", 0) or 0)
        return grant if r.accepted and grant > 0 else None

    # -- post-call work, through the spool -----------------------------
    def report(self, call_id: str, ops: list[dict]) -> bool:
        """Queue ``ops`` (see ``event_op`` / ``cdr_op``) for the call and try
        to send them now; True when the engine has them all."""
        return self.spool.add(call_id, ops, self._send)

    def flush(self) -> int:
        """Send what the spool still holds; returns the calls still pending."""
        return self.spool.flush(self._send)

    def _send(self, op: dict):
        try:
            if op["op"] == "event":
                self.client.call_event(op["call_id"], op["number"], op["kind"], destination=op.get("destination", ""),
                                       caller=op.get("caller", ""), at=op["at"])
                return True
            if op["op"] == "cdr":
                r = self.client.rate_cdr(op["cdr"])
                self._journal(op["cdr"], r)
                return True
            return f"unknown operation {op.get('op')!r}"
        except grpc.RpcError as err:
            if _code(err) in PERMANENT:
                log.error("%s %s refused: %s", op["op"], op.get("call_id") or op["cdr"]["call_id"], err.details())
                return f"{_code(err).name}: {err.details()}"
            return False

    def _journal(self, cdr: dict, r) -> None:
        if not self.settings.cdr_journal:
            return
        rc = r.rated_cdr
        fields = rc.DESCRIPTOR.fields_by_name
        credit_after = (rc.credit_after_minor if "credit_after_minor" in fields and rc.HasField("credit_after_minor")
                        else None)
        # Money named with its unit (1/10000 yuan), as the rated files and
        # RatedCdr name it. A server older than RatedCdr's *_minor fields
        # leaves them 0 and fills only the deprecated charge, credit_consumed,
        # overage (the same values from a newer one): read those there.
        charge, consumed, overage = (getattr(rc, f"{old}_minor") or getattr(rc, old)
                                     for old in ("charge", "credit_consumed", "overage"))
        line = json.dumps({"cdr": cdr, "charge_minor": charge, "billable_seconds": rc.billable_seconds,
                           "credit_consumed_minor": consumed, "overage_minor": overage,
                           "credit_after_minor": credit_after, "account": rc.account, "status": rc.status,
                           "replayed": r.replayed}, separators=(",", ":"))
        with self._journal_lock, open(self.settings.cdr_journal, "a", encoding="utf-8") as f:
            f.write(line + "\n")  # one write() of one line: O_APPEND keeps lines whole across processes


def event_op(call_id: str, number: str, kind: str, at_ms: int, destination: str = "", caller: str = "") -> dict:
    """A spooled ``CallEvent`` (kind: answered / ended)."""
    return {"op": "event", "call_id": call_id, "number": number, "kind": kind, "at": at_ms,
            "destination": destination, "caller": caller}


def cdr_op(cdr: dict) -> dict:
    """A spooled ``RateCdr`` (``cdr``: engine column names, times epoch ms)."""
    return {"op": "cdr", "cdr": cdr}


def _code(err) -> grpc.StatusCode | None:
    return err.code() if hasattr(err, "code") else None
