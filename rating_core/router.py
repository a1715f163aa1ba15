"""Router: a call at setup in, a routing decision out; call events in.

``Router(snapshot, ledger)`` answers ``authorize`` (one call; with a call id
it reserves the call's credit) and ``authorize_batch`` (columns) through the
same compiled core (``kernels/routing.pyx``; the rules:
``reference_routing.py``), and records ``call_event``s (started / answered /
interim / ended) in the ledger's live environment (``rating_core.ledger``).

State that changes lives in the ledger's LMDB environment, in the routing
side's own databases, keyed by names and number keys (never snapshot row
ids), so it carries across catalog versions and restarts:

``route_active``   line key (8 bytes, big-endian base-11 number key) -> live calls
``route_calls``    call id -> (line key, started ms, deadline ms) of a live call
``route_deadline`` deadline ms (big-endian) + call id -> b"" (stale sweep order)
``route_cursor``   plan + NUL + group -> round-robin start; NUL"generation" -> counter
``route_ended``    call id -> until when it is remembered as ended (expiry in ``route_deadline`` too)

Caller memory (a group with ``caller_memory``): a returning caller goes
first to the destination that answered them last time, if it is still in
the group and the answer is within the plan's memory lifetime. It is read
from the caller CRM record (``crm`` in the durable ``ledger.lmdb``, per
account and caller: the destination that last answered and when;
``ledger.callers``), the same record the CRM shows, so there is one store.
The ``answered`` event writes it (a ledger write transaction of its own,
after the live one); committing the call's CDR keeps it.

Consistency rules:

* Every change is one LMDB write transaction; LMDB serialises them across
  threads and processes. ``route_active[line]`` always equals the number of
  ``route_calls`` records holding that line (both change in the same
  transaction), so a count never drifts.
* The cap is enforced where the slot is taken: ``started`` on a destination
  checks and increments in one transaction and refuses (returns False) when
  the line is at its cap; the switch then tries the next destination.
  ``authorize`` never writes: it reads the last committed state (one read
  transaction, never blocked by writers) and offers no destination that was
  at its cap then; a destination it offers may be refused at ``started`` when
  another call took the last slot in between.
* Round robin: a group's cursor points past the destination the latest call
  *started* at (set by ``started``). Calls authorised before that event see
  the same cursor. A cursor is a position, taken modulo the group's size, so
  a new catalog version that changes the group just starts elsewhere.
  Caller memory is written by ``answered`` and names the destination number,
  so it survives catalog versions (and reboots: it is durable) while that
  destination stays in the group.
* Events are idempotent per call id: ``started`` twice on the same line is
  one call; ``answered`` by another line moves the slot with the call (no cap
  check: the call is already connected); ``ended`` of an unknown call
  releases nothing.
* An ended call stays ended: ``ended`` remembers the call id for
  ``CDR_GRACE_S`` (``route_ended``; also when it held nothing, so an
  ``ended`` that overtook its ``started`` counts; only while ``live.lmdb``
  is below its new-call share, past which such a ``started`` is refused as
  a new call anyway), and a later ``started`` or ``answered`` of it
  (late, replayed or out of order) answers False and changes nothing: no
  line slot, no cursor, no caller memory. ``interim`` of an ended call
  answers None (its hold is settled: ``reservations.take_open``), and a
  reserving ``authorize`` of it raises ``InvalidInput`` (``call_id``).
* Stale calls: a call whose ``ended`` never comes is released once it
  outlives its deadline = start + its maximum duration (the decision's
  ``max_duration_seconds``, or 86400 s when unlimited) + ``SETUP_GRACE_S``
  for ringing and IVR before billing starts. Every event transaction first
  releases the calls past their deadline at the event's time (a scan of
  ``route_deadline`` from its start, so only stale entries are touched);
  ``release_stale`` does the same on demand.
* Credit reservation (Diameter credit control: initial / update /
  terminate). ``authorize(..., call_id=...)`` decides against the AVAILABLE
  balance (credit + credit limit - open reservations; bundle seconds left -
  reserved seconds), grants g = min(the longest call the available balance
  pays for at the dearest listed destination, ``quota_seconds``) and holds
  the dearest listed destination's cost of g, all in one live write transaction
  (holds are read there, so two calls of one account in any process are
  ordered). ``answered`` records the answer time. ``interim`` re-prices the
  call for min(used + quota, what available + its own hold pays for), never
  less than already granted. ``ended`` shrinks the hold to the dearest cost
  of the time the call can have used (from authorisation; for a call billed
  from agent answer with no ``answered`` yet, the same bound, kept only
  ``ANSWER_WAIT_S`` for an ``answered`` that the ``ended`` overtook: a late
  ``answered`` is accepted to correct the settlement; without ``at``, measured on the
  server's clock + ``CLOCK_SKEW_S``, and refused when the authorization is
  further ahead than that: ``_end_time``) and keeps it ``CDR_GRACE_S`` for the
  CDR; committing the CDR (``Engine.rate_and_commit``) debits the true
  charge and then releases the hold. A hold past its deadline (authorised
  + grant + ``SETUP_GRACE_S``; ended + ``CDR_GRACE_S``) expires at the next
  event or ``release_stale``. Since every hold covers the most its call can
  cost, a call cut at its grant never takes the balance below zero.
* Credit is read under this router's view of the customer layer (a worker
  refreshes it every 0.1 s): the stored balance of the view's package
  period, or the catalog's opening when none is stored for that period yet.
  A balance stored for a NEWER period than the view's (a package change or
  renewal since the view was built, then a money operation of the new
  period), while the layer's generation is past the view's, is never read
  as a renewal granting the old package's opening: the decision raises
  ``StaleView`` (nothing decided or held; the live transaction aborts) and
  ``Engine`` refreshes and asks again (``Engine._fresh``; the server's loop
  through ``EngineHost.authorize``, refreshing on the engine thread).
* The router keeps an in-process mirror of active counts and cursors for the
  kernel, reloaded whenever the ledger's routing ``generation`` (bumped by
  every event that changes them, in any process) differs from the mirror's.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import layout
from .catalog.routing import IVR_KEYS, STRATEGIES, Strategy
from .errors import InvalidInput, StaleView, StoreError
from .ledger import callers, customers, envs, formats, month_of, package_credit_limits, reservations, usage
from .ledger.formats import BALANCE
from .ledger.reservations import Reservation
from .kernels.routing import CALL_SECONDS_LIMIT, OUTCOME_FIELDS, RoutingCore
from .numbers import NORMAL, WITHHELD_CALLERS, keys_of, normalize, normalize_array
from .routing_layout import NEEDS_VERIFIED_DESTINATION, NO_CAP, REASONS, ROUTING_TABLES, ivr_path_code, route_sizes, text_of

# Kernel codes, then the edge's own, then the router's monthly caps (README: monthly caps).
ROUTE_REASON = REASONS + ("invalid_input", "monthly_spend_cap", "monthly_calls_cap")
INVALID_INPUT = len(REASONS)
MONTHLY_SPEND_CAP, MONTHLY_CALLS_CAP = INVALID_INPUT + 1, INVALID_INPUT + 2
INVALID_FIELDS = ("", "number", "caller", "at")  # authorize_batch's invalid_field codes
SETUP_GRACE_S = 600
_AGENT_ANSWER = layout.BILLING_START.index("agent_answer")
# Messages show a refused ``at`` as a local time when it is one (years 1..9999).
_EPOCH_LOCAL = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc).astimezone(layout.LOCAL_TZ)
_DISPLAYABLE = (-62_135_596_800_000 + layout.LOCAL_OFFSET_MS, 253_402_300_799_999 - layout.LOCAL_OFFSET_MS)
EVENT_KINDS = ("started", "answered", "interim", "ended")
QUOTA_SECONDS = 3600  # the longest grant one Authorize or interim event gives (README: credit reservation)
CDR_GRACE_S = 3600  # an ended call's hold waits this long for its CDR
# How far the clock that dated a call's Authorize (the switch's, when it sent
# ``at``) and the server's may disagree (README "Credit reservation": the end
# time). NTP keeps servers within milliseconds; 5 s covers a switch without it.
CLOCK_SKEW_S = 5
# How long the hold of a call billed from agent answer whose ``ended`` came
# with no ``answered`` waits for that ``answered`` (events overtaking each
# other on the way) before the call counts as unanswered (README "Credit
# reservation": ended before answered).
ANSWER_WAIT_S = 60

ACTIVE_DB, CALLS_DB, DEADLINE_DB, CURSOR_DB, ENDED_DB = (
    formats.ROUTE_ACTIVE, formats.ROUTE_CALLS, formats.ROUTE_DEADLINE, formats.ROUTE_CURSOR, formats.ROUTE_ENDED)
GENERATION = formats.GENERATION
_COUNT, _CALL, _LINE = formats.COUNT, formats.CALL, formats.LINE
_DIGITS = str.maketrans("0123456789", "123456789a")  # base-11 digit of a number digit


_WITHHELD = frozenset(("", *WITHHELD_CALLERS))  # a caller that is no number: key 0
_already_normal = re.compile(NORMAL, re.ASCII).fullmatch  # ``normalize``'s first rule, for a value it keeps as it is


def number_key(normal: str) -> int:
    """``numbers.key`` of a normalised number, via int(..., 11)."""
    return int(normal.translate(_DIGITS).ljust(18, "0"), 11)


@functools.lru_cache(maxsize=1 << 16)
def _line_key(destination: str) -> int:
    """Line key of a destination as a caller record holds it (normalised)."""
    return number_key(normalize(destination, "destination"))


def numbers_of_keys(keys: np.ndarray) -> np.ndarray:
    """The normalised numbers (ASCII bytes, ``S18``) ``number_key`` made the
    int64 ``keys`` from (its inverse, vectorised): 18 base-11 digits, most
    significant first, 0 the padding, d + 1 the number digit d."""
    k = np.asarray(keys, np.int64).copy()
    digits = np.zeros((len(k), 18), np.uint8)
    for pos in range(17, -1, -1):
        k, d = np.divmod(k, 11)
        digits[:, pos] = d
    # Padding becomes NUL bytes, which an S18 value drops from its end.
    chars = np.where(digits > 0, digits + (ord("0") - 1), 0).astype(np.uint8)
    return chars.view("S18").ravel()


@functools.lru_cache(maxsize=1 << 16)
def _dialled_key(number: str) -> int:
    """Key of a dialled 400 number as written; few distinct ones, so cached."""
    return number_key(normalize(number, "number"))


def _call_key(call_id: str) -> bytes:
    if not call_id:
        raise InvalidInput("call_id", "required")
    return formats.call_key(call_id)


class _AccountRow(NamedTuple):
    key: bytes  # the account name, UTF-8: its key in ``balances`` and ``holds``
    limited: bool  # Authorize limits (and reserves for) its calls (``Router._limited``)
    money: bool  # its budget is money (else bundle seconds)
    overage: bool  # a bundle that sells overage
    credit_limit: int  # minor units
    start_ms: int  # package start
    opening_credit: int  # minor units


@dataclass(frozen=True, slots=True)
class Destination:
    """One phone a decision hunts: its number as bound (digits, a landline
    with its area code) and how long it rings before the next, seconds."""

    number: str
    ring_timeout_seconds: int


@dataclass(slots=True)
class Decision:
    """What ``Router.authorize`` answers for one call (README "Routing and
    authorization", "Credit reservation"): allowed or the reason refused,
    the destinations in hunt order, the caller's region, and the grant:
    ``max_duration_seconds`` from the billing start, priced at the dearest
    destination listed (``rate``), with the credit (1/10000 yuan) or bundle
    seconds held for it under ``call_id``. Built per request; never raises."""

    allow: bool
    reason: str  # "ok" or a ROUTE_REASON name
    destinations: list[Destination] = field(default_factory=list)  # hunt order
    ivr_menu: dict | None = None  # {"prompt", "options": [{"key", "label", "group", "menu"?}]}
    billing_start: str | None = None  # layout.BILLING_START name
    caller_city: str | None = None
    caller_province: str | None = None
    caller_carrier: str | None = None
    caller_class: str | None = None
    max_duration_seconds: int = 0  # from billing start; 0: no limit
    announcement: str | None = None  # to play when refused for lack of a route / destination
    plan: str | None = None
    rule: int | None = None  # 0-based index of the matching rule in the plan (text shows it + 1)
    group: str | None = None
    rate: str | None = None  # the rate the max duration was computed with (the dearest listed)
    catalog_version: int = 0
    call_id: str | None = None  # the call the grant is reserved for (None: nothing reserved)
    reserved_minor: int = 0  # credit held for the grant, 1/10000 yuan
    reserved_seconds: int = 0  # bundle seconds held for the grant
    # What bounds max_duration_seconds (a GRANT_LIMITS name), or for an
    # out_of_credit deny what ran out (CREDIT_DENIALS); None otherwise.
    limit: str | None = None
    spend_left_minor: int | None = None  # limit "spend_cap": what is left of the number's cap, 1/10000 yuan
    # An out_of_credit deny on money (CREDIT_DENIALS but "spend_cap"): the
    # account's committed credit, its package's credit limit and the credit
    # held by its calls in progress, 1/10000 yuan; None otherwise.
    credit_minor: int | None = None
    credit_limit_minor: int | None = None
    held_minor: int | None = None
    # That deny's account id (the remedy names it: `accounts top-up tea YUAN`); None otherwise.
    account: str | None = None
    # A prepaid account's out_of_credit deny (limit "credit"): the least top-up
    # ``Accounts.top_up`` takes, 1/10000 yuan in whole fen (``top_up_minimum``,
    # named in the remedy; newcomer8 F2: `top-up tea YUAN`, then 100 refused
    # below_minimum); None otherwise.
    top_up_min_minor: int | None = None

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__slots__}
        out["destinations"] = [{"number": d.number, "ring_timeout_seconds": d.ring_timeout_seconds}
                               for d in self.destinations]
        return out


def deny_detail(d: Decision) -> str | None:
    """A sentence for an operator saying why a ``no_route``,
    ``all_destinations_busy`` or ``out_of_credit`` deny happened and what to
    do (the machine-readable code stays ``d.reason``); None for any other
    decision. ``no_route`` has three causes: no plan to route by (a number
    without a verified bound destination), no rule of the plan matching the
    call (out of hours, a caller region not listed), or a matching rule
    whose group and overflow have no destination left."""
    if d.reason == "out_of_credit":
        return credit_denial(d) or OUT_OF_CREDIT_DETAIL
    if d.reason == "no_route":
        if d.plan is None:
            return f"the number has no routing plan and no verified bound destination; {NEEDS_VERIFIED_DESTINATION}"
        if d.group is None:
            return (f"no rule of plan {d.plan} matches this call (its schedule, caller regions or IVR keys: "
                    "e.g. out of hours) and no IVR option selects a group")
        return (f"group {d.group} (with its overflow) has no destination bound to the number and verified; "
                f"{NEEDS_VERIFIED_DESTINATION}")
    if d.reason == "all_destinations_busy":
        return f"every destination of group {d.group} (with its overflow) is at its max_calls cap (calls in progress)"
    return None


# What bounds an allowed call's max_duration_seconds (``Decision.limit``),
# decided where the router decides the grant: ``Router._limit`` for the
# account's money or bundle, ``_caps`` and ``_overage_grant`` for the
# number's monthly spend cap, ``_grant`` for one Authorize's quota.
GRANT_LIMITS = ("credit", "credit_limit", "bundle", "bundle_overage", "spend_cap", "quota")


def grant_detail(d: Decision) -> str | None:
    """A phrase for an operator naming what limits an allowed call's
    ``max_duration_seconds`` (``d.limit``, a ``GRANT_LIMITS`` name), e.g.
    "the number's monthly spend cap (9.88 yuan left) allows 5340 s"; the
    spend cap's room is shown in yuan with 2 decimals (half-up). None for a
    denied call or a decision with no limit (an IVR menu before a key)."""
    if not d.allow or d.limit is None:
        return None
    if d.limit == "quota":
        return f"one Authorize grants at most {QUOTA_SECONDS} s (a quota), extended by interim events"
    day = CALL_SECONDS_LIMIT
    allows = (f"{d.max_duration_seconds} s" if 0 < d.max_duration_seconds < day
              else f"any length (a call is at most {day} s)")
    if d.limit == "spend_cap":
        from .rater import yuan

        return f"the number's monthly spend cap ({yuan(d.spend_left_minor or 0)} yuan left) allows {allows}"
    what = {"credit": "credit allows", "credit_limit": "credit with the account's credit limit allows",
            "bundle": "the bundle's seconds left allow",
            "bundle_overage": "the bundle's seconds left and the credit for overage allow"}[d.limit]
    return f"{what} {allows}"


def decision_detail(d: Decision) -> str | None:
    """The operator's sentence for any decision: why it was denied
    (``deny_detail``) or what limits its grant (``grant_detail``)."""
    return grant_detail(d) if d.allow else deny_detail(d)


# What ran out in an ``out_of_credit`` deny (``Decision.limit``), named
# where the router decides it: ``Router._limit`` (the kernel's deny: a
# prepaid account's credit or period, a pay-as-you-go account's credit
# limit), ``_overage_grant`` (a bundle's overage money, or the number's
# spend cap bounding it). A bundle without overage is not among them (its
# seconds: the general sentence).
CREDIT_DENIALS = ("credit", "period_ended", "credit_limit", "bundle_overage", "spend_cap")


def credit_denial(d: Decision) -> str | None:
    """The ``out_of_credit`` deny's sentence with its figures (``d.limit``
    a ``CREDIT_DENIALS`` name), e.g. "credit -2616.62 yuan against a
    credit limit of 1000.00 yuan (0.00 yuan held by calls in progress): the
    account's bill is owed up to its credit limit; ..."; yuan with 2
    decimals (half-up). None when the deny has no figures (a batch
    decision, a bundle's seconds) or is another."""
    if d.allow or d.reason != "out_of_credit" or d.limit not in CREDIT_DENIALS:
        return None
    from .rater import yuan

    if d.limit == "spend_cap":
        return (f"the number's monthly spend cap ({yuan(d.spend_left_minor or 0)} yuan left) pays for none of the "
                "bundle's overage (raise it: rating400 accounts number caps)")
    held = f"{yuan(d.held_minor or 0)} yuan held by calls in progress"
    acc = d.account or ACCOUNT_OF_NUMBER
    if d.limit == "period_ended":
        return (f"the prepaid package period has ended: its credit ({yuan(d.credit_minor or 0)} yuan) expired with it "
                f"(renew: rating400 accounts renew {acc})")
    if d.limit == "credit":
        if d.top_up_min_minor is None:
            return (f"credit {yuan(d.credit_minor or 0)} yuan ({held}) does not pay for this call: the prepaid "
                    f"credit is used up (top it up or renew: rating400 accounts top-up {acc} YUAN / renew {acc})")
        least = yuan(d.top_up_min_minor)
        return (f"credit {yuan(d.credit_minor or 0)} yuan ({held}) does not pay for this call: the prepaid credit "
                f"is used up (top it up, at least {least} yuan, the top-up minimum, or renew: rating400 accounts "
                f"top-up {acc} {least} / renew {acc})")
    owed = (f"credit {yuan(d.credit_minor or 0)} yuan against a credit limit of {yuan(d.credit_limit_minor or 0)} "
            f"yuan ({held})")
    what = ("does not pay for this call" if d.limit == "credit_limit"
            else "does not pay for this call past the bundle's minutes (calls inside them are never refused for money)")
    return (f"{owed} {what}: the bill is owed up to the credit limit (record the customer's payment: "
            f"rating400 accounts top-up {acc} YUAN, gRPC TopUp)")


# The account in a remedy when the deny does not name it (a batch
# decision): where to read it (newcomer LOW F1: the hint said "ACCOUNT").
ACCOUNT_OF_NUMBER = "<the number's account, as `rating400 accounts number show NUMBER` names it>"

# README "Money rules": who may call again, after what.
OUT_OF_CREDIT_DETAIL = (
    "the account's money does not pay for this call: a prepaid account's credit is used up (top it up or renew: "
    f"rating400 accounts top-up {ACCOUNT_OF_NUMBER} YUAN / renew); a pay-as-you-go account, or a bundle's calls "
    "past its minutes, owes its bill up to the credit limit (record the customer's payment: the same top-up, "
    "gRPC TopUp; calls inside the bundle's minutes are never refused for money)")


class Router:
    """Routing and authorization over one catalog view (snapshot + live
    customer layer) and the ledger's live environment: picks destinations
    with the compiled routing kernel (``kernels.routing``), counts calls in
    progress per line, and reserves credit for each grant (``ledger.reservations``).
    One per view, shared by threads and worker processes: the live state is
    read and written in LMDB transactions (one writer at a time), and its
    in-memory mirror (lines in use, hunt cursors) is refreshed under a lock."""

    def __init__(self, snapshot, ledger, seed: int | None = None, threads: int = 2,
                 quota_seconds: int = QUOTA_SECONDS, previous: "Router | None" = None):
        """The router of ``snapshot``. ``previous``: the router of an older
        view whose routing tables this one shares (``accounts.view`` update):
        what was derived from them is reused, not derived again."""
        t = snapshot.tables
        self.quota_seconds = quota_seconds  # the longest grant per Authorize / interim
        self.threads = threads  # authorize_batch: selection threads (kernel)
        try:
            layout.check(t, ROUTING_TABLES)
        except ValueError as e:
            from .store.snapshot import stale_message

            raise StoreError(stale_message(snapshot.path, snapshot.version, e)) from None
        self.snapshot = snapshot  # keeps the mapped arrays alive
        self.ledger = ledger
        self.version = snapshot.version
        self.meta = snapshot.meta
        self.tables = t
        env = ledger.live  # calls in progress: ledger.formats, the live environment
        self.env = env
        self._db = ledger.live_db
        self._crm = ledger.db[formats.CRM]  # caller records: caller memory (ledger.callers)
        self._lock = threading.Lock()
        self._generation: bytes | None = b"unread"
        self.active = np.zeros(len(t["route_line_key"]), np.int32)
        self.cursor = np.zeros(len(t["route_group_n_dest"]), np.int32)
        self.core = RoutingCore(t, self.active, self.cursor)
        self._seed = int.from_bytes(os.urandom(8), "little") if seed is None else seed
        self._count = 0

        self._routes_id = getattr(snapshot, "routes_id", None)
        shared = previous is not None and all(previous.tables.get(k) is t[k] for k in ROUTING_TABLES if k.startswith("route_"))
        if previous is not None and shared:
            self._reuse(previous)
        elif previous is not None and previous._routes_id is not None \
                and getattr(snapshot, "routes_from", None) == previous._routes_id:
            self._extend(previous, t)
        else:
            self._derive(t)
        self._finish_init(t, env, previous)

    _DERIVED = ("_plans", "_groups", "_group_key", "_dest_number", "_dest_ring", "_dest_objs", "_line_index",
                "_texts", "_menus", "_line_rules")

    def _reuse(self, previous: "Router") -> None:
        for name in self._DERIVED:
            setattr(self, name, getattr(previous, name))

    def _derive(self, t) -> None:
        """Names and per-line rules derived from the routing tables."""
        self._plans, self._groups, self._dest_number, self._dest_ring = [], [], [], []
        self._group_key = {}  # route_cursor key -> group id
        self._dest_objs: dict[int, Destination] = {}  # entry -> its Destination (``_destination``)
        self._line_index = {}  # line key -> line
        self._texts: dict[int, str | None] = {}
        self._menus: dict[int, dict] = {}
        # (plan, line) -> (cap, [(group, cursor after it)]) for the started event.
        self._line_rules: dict[tuple[int, int], tuple[int, list]] = {}
        self._derive_from(t, {"plan": 0, "group": 0, "dest": 0, "line": 0}, len(t["route_dest_group"]))

    def _extend(self, previous: "Router", t) -> None:
        """Derive only the rows appended to ``previous``'s routing tables (the
        live view's ``routes_from``): its ids are unchanged in ``t``."""
        sizes = route_sizes(previous.tables)
        self._plans = previous._plans[:sizes["plan"]]
        self._groups = previous._groups[:sizes["group"]]
        self._dest_number = previous._dest_number[:sizes["dest"]]
        self._dest_ring = previous._dest_ring[:sizes["dest"]]
        self._line_index = {k: i for k, i in previous._line_index.items() if i < sizes["line"]} \
            if sizes["line"] < len(previous._line_index) else dict(previous._line_index)
        self._group_key = dict(previous._group_key)
        self._dest_objs = dict(previous._dest_objs)
        self._texts, self._menus = dict(previous._texts), dict(previous._menus)
        self._line_rules = dict(previous._line_rules)
        self._derive_from(t, sizes, route_sizes(t)["dest"])

    def _derive_from(self, t, start: dict, n_dests: int) -> None:
        """Append what rows ``start[part]`` on of ``t`` give to the derived
        names and rules (all of them from 0: ``_derive``)."""
        text = lambda i: text_of(t, int(i))  # noqa: E731
        self._plans += [text(i) for i in t["route_plan_name"][start["plan"]:]]
        self._groups += [text(i) for i in t["route_group_name"][start["group"]:]]
        g0, line0, e0 = start["group"], start["line"], start["dest"]
        for g, plan in enumerate(t["route_group_plan"][g0:].tolist(), g0):
            if plan >= 0:  # not the inert row of a catalog without plans
                self._group_key[(self._plans[plan] + "\0" + self._groups[g]).encode()] = g
        self._line_index.update(zip(t["route_line_key"][line0:].tolist(), range(line0, len(t["route_line_key"]))))
        line_numbers = t["route_line_number"]
        dest_lines = t["route_dest_line"][e0:].tolist()
        self._dest_number += [text(line_numbers[line]) for line in dest_lines]
        self._dest_ring += t["route_dest_ring"][e0:].tolist()
        strat = t["route_group_strategy"]
        round_robin = STRATEGIES.index(Strategy.round_robin)
        for e, g, line in zip(range(e0, n_dests), t["route_dest_group"][e0:].tolist(), dest_lines):
            if g < 0:
                continue  # the inert row of a catalog without plans
            plan = int(t["route_group_plan"][g])
            cap, rr = self._line_rules.get((plan, line), (NO_CAP, []))
            cap = min(cap, int(t["route_dest_cap"][e]))
            if strat[g] == round_robin:
                pos = e - int(t["route_group_first_dest"][g])
                rr = rr + [(g, (pos + 1) % int(t["route_group_n_dest"][g]))]
            self._line_rules[(plan, line)] = (cap, rr)

    def _finish_init(self, t, env, previous: "Router | None" = None) -> None:
        self._cities, self._provinces, self._carriers = self.meta["cities"], self.meta["provinces"], self.meta["carriers"]
        self._accounts = accounts = self.meta["accounts"]
        # Caller record keys start so; a live view's accounts only ever grow
        # (rows are dense and kept), so the previous Router's are extended.
        known = previous._accounts if previous is not None else []
        self._account_prefixes: list[bytes]
        if previous is not None and known and (
                known is accounts or (len(known) <= len(accounts) and accounts[:len(known)] == known)):
            self._account_prefixes = previous._account_prefixes + [callers.key(a, "") for a in accounts[len(known):]] \
                if len(known) < len(accounts) else previous._account_prefixes
        else:
            self._account_prefixes = [callers.key(a, "") for a in accounts]
        # The kernel limits (and the router reserves for) every account but a
        # bundle that sells overage; that one the router limits itself, by the
        # bundle left plus what the credit pays at the overage rate (``_overage_grant``).
        kind = t["package_kind"][t["account_package"]]
        overage = t["package_overage_rate"][t["account_package"]]
        bundle = kind == layout.PACKAGE_KIND.index("bundle")
        self._limited = ~bundle | (overage < 0)
        self._account_rows: dict[int, _AccountRow] = {}  # ``_account_row``
        self._number_rows: dict[int, tuple[int, int]] = {}  # ``_number_row``
        self._overage = bundle & (overage >= 0)
        self._dest_class = t["route_dest_class"]
        self._money = ~bundle  # the budget is money (else bundle seconds)
        self._payg = kind == layout.PACKAGE_KIND.index("payg")
        self._credit_limit = package_credit_limits(t)[t["account_package"]]
        self._number_account = t["number_account"]
        self._number_routing = t["number_routing"]
        # Monthly caps per number (the live view's; a catalog snapshot has none).
        n_numbers = len(t["number_key"])
        self._cap_spend = t.get("number_cap_spend_minor", np.zeros(n_numbers, np.int64))
        self._cap_calls = t.get("number_cap_calls", np.zeros(n_numbers, np.int64))
        self._any_cap = bool(self._cap_spend.any() or self._cap_calls.any())
        self._memory_ms = t["route_plan_memory_ms"]
        first = int(t["calendar_first_day"][0])
        self._at_range = ((first * layout.MS_PER_DAY - layout.LOCAL_OFFSET_MS),
                          (first + len(t["day_kind"])) * layout.MS_PER_DAY - layout.LOCAL_OFFSET_MS)
        # The customer layer's generation this view was built at, and the
        # handle to read the layer's (``_behind``), opened here: ``open_db``
        # takes the write lock holding the GIL, never done per call.
        self._view_generation = int(getattr(self.snapshot, "generation", 0))
        from .accounts.view import layer_dbs

        self._layer_meta = layer_dbs(self.ledger.env)[customers.META_DB]
        with env.begin() as txn:
            self._refresh(txn)

    # -- state mirror --------------------------------------------------------
    def _refresh(self, txn) -> None:
        gen = txn.get(GENERATION, db=self._db[CURSOR_DB])
        if gen == self._generation:
            return
        with self._lock:
            active = np.zeros_like(self.active)
            for k, v in txn.cursor(db=self._db[ACTIVE_DB]):
                line = self._line_index.get(_LINE.unpack(k)[0])
                if line is not None:
                    active[line] = _COUNT.unpack(v)[0]
            cursor = np.zeros_like(self.cursor)
            for k, v in txn.cursor(db=self._db[CURSOR_DB]):
                g = self._group_key.get(bytes(k))
                if g is not None:
                    cursor[g] = _COUNT.unpack(v)[0]
            self.active[:] = active
            self.cursor[:] = cursor
            self._generation = gen

    # -- names ---------------------------------------------------------------
    def _text(self, i: int) -> str | None:
        if i not in self._texts:
            self._texts[i] = text_of(self.tables, i)
        return self._texts[i]

    def menu_at(self, plan: int, path: int) -> dict:
        """The (sub)menu a key path reaches, as the catalog wrote it."""
        key = plan * 10**9 + path
        if key not in self._menus:
            menu = json.loads(self._text(int(self.tables["route_plan_menu"][plan])) or "null")  # a menu plan has one
            for digit in _path_keys(path):
                menu = next(o["menu"] for o in menu["options"] if o["key"] == digit)
            self._menus[key] = menu
        return self._menus[key]

    def _destination(self, e: int) -> Destination:
        """Destination entry ``e`` as decisions list it: one immutable object
        per entry, shared by every decision that lists it."""
        d = self._dest_objs[e] = Destination(self._dest_number[e], self._dest_ring[e])
        return d

    def _decision(self, o, dests) -> Decision:
        (reason, caller_class, billing_start, plan, rule, group, _n, city, province, carrier, rate,
         max_s, announcement, menu_path) = o
        t = self.tables
        dest = self._dest_objs
        return Decision(
            allow=reason == 0,
            reason=ROUTE_REASON[reason],
            destinations=[dest.get(e) or self._destination(e) for e in dests],
            ivr_menu=self.menu_at(plan, menu_path) if menu_path >= 0 and reason == 0 else None,
            billing_start=layout.BILLING_START[billing_start] if billing_start >= 0 else None,
            caller_city=self._cities[city] if city >= 0 else None,
            caller_province=self._provinces[province] if province >= 0 else None,
            caller_carrier=self._carriers[carrier] if carrier >= 0 else None,
            caller_class=layout.CALLER_CLASS[caller_class],
            max_duration_seconds=max_s,
            announcement=self._text(announcement) if announcement >= 0 else None,
            plan=self._plans[plan] if plan >= 0 else None,
            rule=rule - int(t["route_plan_first_rule"][plan]) if rule >= 0 else None,
            group=self._groups[group] if group >= 0 else None,
            rate=self.meta["rates"][rate] if rate >= 0 else None,
            catalog_version=self.version,
        )

    # -- the edge --------------------------------------------------------------
    def _at(self, at_ms) -> int:
        if at_ms is None:
            return time.time_ns() // 1_000_000
        at = int(at_ms)
        if not self._at_range[0] <= at < self._at_range[1]:
            def local(ms: int) -> datetime.datetime:  # display only; ms inside years 1..9999
                return _EPOCH_LOCAL + datetime.timedelta(milliseconds=ms)

            shown = (local(at).isoformat(timespec="seconds") if _DISPLAYABLE[0] <= at < _DISPLAYABLE[1]
                     else "a time")
            raise InvalidInput("at", f"{shown} ({at} ms) is outside the calendar the catalog was compiled with: "
                                     f"{local(self._at_range[0]).date()} to {local(self._at_range[1] - 1).date()}, "
                                     "Asia/Shanghai")
        return at

    @staticmethod
    def _caller(caller) -> tuple[str | None, int]:
        """Withheld callers (None, blank, a ``WITHHELD_CALLERS`` word) have no number: key 0."""
        if type(caller) is str and _already_normal(caller):  # most callers: ``normalize`` keeps it as it is
            return caller, number_key(caller)
        if caller is None or str(caller).strip().lower() in _WITHHELD:
            return None, 0
        normal = normalize(caller, "caller")
        return normal, number_key(normal)

    def _budget(self, live, acc: int, at: int, txn=None) -> tuple[int, int, int]:
        """The kernel's (credit_left, bundle_used, bundle_period) for a limited
        account: its AVAILABLE balance. Money: credit (+ the credit limit)
        minus open reservations; bundle: seconds used this month plus
        reserved. Credit is read in ``txn`` (a read of ``ledger.lmdb``; a new
        one when None) begun after ``live``: a settlement (debit, then release
        of the hold) landing between the two is then counted twice (safe),
        never not at all (see ``Ledger.balance``)."""
        a = self._account_row(acc)
        reserved_minor, reserved_seconds, _n = reservations.hold_of(self.ledger, live, a.key)
        credit, used, period = self._stored(acc, txn)
        if a.money:
            return credit + a.credit_limit - reserved_minor, used, period
        month = month_of(at)
        return credit, (used if period == month else 0) + reserved_seconds, month

    def _stored(self, acc: int, txn=None) -> tuple[int, int, int]:
        """(credit_minor, bundle_used_seconds, bundle_period) committed for
        an account's current package start (the catalog's opening when none),
        read in ``txn`` (a read of ``ledger.lmdb``; a new one when None)."""
        if txn is None:
            with self.ledger.env.begin() as own:
                return self._stored(acc, own)
        a = self._account_row(acc)
        raw = txn.get(a.key, db=self.ledger.balances)
        if raw is None:
            return a.opening_credit, 0, -1
        credit, period, used, start = BALANCE.unpack(raw)
        if start != a.start_ms:
            if start > a.start_ms and self._behind(txn):
                # A period this view does not know (a package change or
                # renewal since it was built) holds the stored balance: the
                # view's catalog opening is a balance nobody has (breaker
                # 12-02: for up to a refresh tick after a change to pre_b
                # refunded down to 1.00, pre_a's opening 480.00 was granted,
                # 3600 s holding 7.20). Decide under the latest view instead.
                raise StaleView(f"account {self._accounts[acc]!r} changed package period since this view of the "
                                f"customer layer (generation {self._view_generation}); nothing was decided or held: "
                                "refresh the view and authorize again")
            # Not written for the view's period yet (the change or renewal the
            # view knows, before its first money operation), or a period the
            # view made current again (an older catalog version active again):
            # the catalog's opening applies, as the rater reads it.
            return a.opening_credit, 0, -1
        return credit, used, period

    def _behind(self, txn) -> bool:
        """True when the customer layer's generation, read in ``txn`` (of
        ``ledger.lmdb``), is not the one this Router's view was built at."""
        return customers.get_counter(txn, self._layer_meta, customers.GENERATION) != self._view_generation

    def _account_row(self, acc: int) -> "_AccountRow":
        """What Authorize reads of account row ``acc`` per call, as Python
        values (made once per account, on its first call)."""
        a = self._account_rows.get(acc)
        if a is None:
            t = self.tables
            a = self._account_rows[acc] = _AccountRow(
                self._accounts[acc].encode(), bool(self._limited[acc]), bool(self._money[acc]),
                bool(self._overage[acc]), int(self._credit_limit[acc]), int(t["account_start_ms"][acc]),
                int(t["account_opening_credit"][acc]))
        return a

    def _overage_budget(self, live, acc: int, at: int) -> tuple[int, int, int, int]:
        """A bundle that sells overage: (bundle seconds available, money
        available, slack when in the bundle, slack when over it). Seconds:
        included - used this month - reserved; money: credit + credit limit -
        reserved (the overage comes off credit, ``engine._debit_postpaid``).
        Slack (README: bundle overage): one overage unit (the charge of its
        shortest call) per call that may end up over the bundle when the
        calls settle in another order than they were authorised: the call's
        own when money is already held, and one per open call for a call
        that goes over the bundle."""
        name = self._accounts[acc]
        reserved_minor, reserved_seconds, n_open = reservations.hold(self.ledger, live, name)
        credit, used, period = self._stored(acc)
        package = int(self.tables["account_package"][acc])
        left = int(self.tables["package_included_seconds"][package]) - (used if period == month_of(at) else 0)
        unit = self.core.overage_charge(package, 1)
        # A debt past the credit limit is 0 money, not less (README "Money rules"): a call inside
        # the bundle costs nothing and is granted its seconds; only the overage needs money.
        money = max(0, credit + int(self._credit_limit[acc]) - reserved_minor)
        return left - reserved_seconds, money, unit if reserved_minor > 0 else 0, (n_open + 1) * unit

    def _overage_grant(self, live, d: Decision, o, dests, acc: int, at: int, room: int | None):
        """Limit an allowed decision on a bundle that sells overage (in
        place): the grant is the longest time whose hold -- bundle seconds
        up to what is left, the overage charge of the rest plus the slack --
        fits the money available (and the number's spend-cap ``room``).
        Returns the priced (package, classes, bundle seconds, money) or None
        when denied ``out_of_credit``."""
        package = int(self.tables["account_package"][acc])
        classes = tuple(sorted({int(self._dest_class[e]) for e in dests} - {-1}))
        seconds_left, money_left, slack_in, slack_over = self._overage_budget(live, acc, at)
        capped = room is not None and room < money_left
        if room is not None:
            money_left = min(money_left, room)
        g, s, m = self.core.bundle_grant(package, o[1], at, classes, seconds_left, money_left, slack_in, slack_over,
                                         self.quota_seconds)
        if g <= 0:
            d.allow, d.reason, d.destinations, d.max_duration_seconds = False, "out_of_credit", [], 0
            if capped:
                d.limit, d.spend_left_minor = "spend_cap", room
            else:
                self._limit(d, acc, live, at)
            return None
        d.max_duration_seconds = g
        d.limit = "spend_cap" if room is not None and room == money_left else "bundle_overage"
        d.spend_left_minor = room if d.limit == "spend_cap" else None
        return package, classes, s, m

    def _memory(self, acc: int, plan: int, caller: str | None, at: int, txn) -> int:
        """Line key of the destination that last answered this caller of
        the account (its caller record, read in ``txn`` of ``ledger.lmdb``),
        when the plan has caller memory and the answer is within its
        lifetime; 0 none."""
        if plan < 0 or not caller:
            return 0
        lifetime = self._memory_ms[plan]
        if lifetime == 0:
            return 0
        raw = txn.get(callers.key(self._accounts[acc], caller), db=self._crm)
        destination, answered = callers.last_answer(self.ledger, txn, raw)
        if destination is None or not 0 <= at - answered <= lifetime:
            return 0
        return _line_key(destination)

    def authorize(self, number: str, caller: str | None, at_ms: int | None = None, ivr_keys: str = "",
                  call_id: str | None = None) -> Decision:
        """The decision for one call (see ``reference_routing`` for the rules).

        With ``call_id`` the call's grant is RESERVED (one write transaction
        on the live ledger): ``max_duration_seconds`` is the grant (at most
        ``quota_seconds``), and the decision's ``reserved_minor`` /
        ``reserved_seconds`` are held against the account until the call's
        CDR is committed, its ``ended`` event settles it, or it expires.
        Authorising the same call id again replaces its reservation, unless
        the call ended (``InvalidInput`` naming ``call_id``: its settled hold
        waits for the CDR, see "An ended call stays ended" in the module doc).
        Without ``call_id`` nothing is written: the answer an operator's query
        gets."""
        nkey = _dialled_key(number)
        normal, ckey = self._caller(caller)
        at = self._at(at_ms)
        path = ivr_path_code(ivr_keys or "")
        key = _call_key(call_id) if call_id is not None else None
        if key is None:
            with self.env.begin() as live:
                return self._decided(live, nkey, ckey, normal, at, path)[0]
        # Decided and reserved in one live write transaction: every money
        # operation (a debit, a commit, a rerating) takes this lock too, so
        # the decision sees every change of credit before it holds any.
        # (Deciding in a read snapshot and writing only when no transaction
        # committed meanwhile was tried and removed: a money operation that
        # writes nothing in live.lmdb commits no transaction there, so a
        # debit could pass unseen and a hold overspend the credit.)
        with envs.live_write(self.ledger) as live:
            reservations.expire(self.ledger, live, at)
            held = reservations.get(self.ledger, live, key)
            if self._has_ended(live, key, held):
                # Its hold waits for the CDR: replacing it (or dropping it when
                # the new decision denies) would let the CDR charge past it.
                raise InvalidInput("call_id", f"call {str(call_id)[:60]!r} already ended: its hold waits for its CDR; "
                                              "a new call needs a new call id")
            if held is not None:  # a repeated Authorize replaces the hold
                reservations.close(self.ledger, live, key, held)
            d, holds = self._grant(live, nkey, ckey, normal, at, path)
            if holds:
                envs.room_for_new_call(self.ledger, live)  # a full live.lmdb refuses new calls
            for r in holds:
                reservations.put(self.ledger, live, key, r)
        d.call_id = call_id
        return d

    def _decided(self, live, nkey: int, ckey: int, normal: str | None, at: int,
                 path: int) -> tuple[Decision, Any, Any, int, Any]:
        """The decision for one call read in the live transaction ``live``,
        as an operator's query and a reserving Authorize (``_grant``) both
        answer it: routed (``_decide``), limited by the account's credit
        (``_limit``) and the number's monthly caps (``_caps``), an allowed
        call on a bundle selling overage granted what its overage pays for
        (``_overage_grant``). Returns (decision, outcome row, priced, account
        row, the overage grant: None without one); nothing is written."""
        o, dests, priced, acc = self._decide(live, nkey, ckey, normal, at, path)
        d = self._decision(o, dests)
        self._limit(d, acc, live, at)
        room = self._caps(live, d, o, priced, acc, nkey, at) if self._any_cap else None
        over = None
        if d.allow and acc >= 0 and self._overage[acc] and not d.ivr_menu:
            over = self._overage_grant(live, d, o, dests, acc, at, room)
        return d, o, priced, acc, over

    def _grant(self, live, nkey: int, ckey: int, normal: str | None, at: int,
               path: int) -> tuple[Decision, list[Reservation]]:
        """The decision of a reserving Authorize, read in the live write
        transaction ``live``, and the reservations it opens, in order (the
        caller puts them in the same transaction); nothing is written here."""
        holds: list[Reservation] = []
        d, o, priced, acc, over = self._decided(live, nkey, ckey, normal, at, path)
        if over is not None:
            package, classes, s, m = over
            g = d.max_duration_seconds
            # Positional, in ``Reservation``'s field order (a third of the keyword call's cost): account,
            # reserved minor, seconds, granted, authorized, deadline, answered (0), catalog version,
            # billing start, money, package, caller class, destination classes, number key.
            holds.append(Reservation(self._accounts[acc], m, s, g, at, at + (g + SETUP_GRACE_S) * 1000, 0,
                                     self.version, int(o[2]), False, package, int(o[1]), classes, nkey))
            d.reserved_minor, d.reserved_seconds = m, s
        if d.allow and priced:
            package, classes = priced
            money = bool(self._money[acc])
            grant = min(d.max_duration_seconds, self.quota_seconds)
            if grant < d.max_duration_seconds:
                d.limit = "quota"
            cost = self.core.cost(package, o[1], at, classes, grant, money)
            holds.append(Reservation(self._accounts[acc], cost if money else 0, 0 if money else cost, grant, at,
                                     at + (grant + SETUP_GRACE_S) * 1000, 0, self.version, int(o[2]), money,
                                     package, int(o[1]), classes, nkey))  # positional, as above
            d.max_duration_seconds = grant
            d.reserved_minor = cost if money else 0
            d.reserved_seconds = 0 if money else cost
        return d, holds

    def _caps(self, live, d: Decision, o, priced, acc: int, nkey: int, at: int) -> int | None:
        """Apply the number's monthly caps to an allowed decision ``d`` (in
        place), inside the live transaction ``live``. Month-to-date use =
        committed (``ledger.usage``, the month of ``at``, Asia/Shanghai) plus
        every open reservation of calls on the number (``number_hold``;
        every reservation is summed per number, so one made before the cap
        was set counts too): calls + open >= ``cap_calls`` denies
        ``monthly_calls_cap``; spend + reserved >= ``cap_spend_minor``
        denies ``monthly_spend_cap``; otherwise a money grant is cut to what
        the room left under the spend cap pays for at the dearest listed
        destination (so a call cut at its grant cannot pass the cap), and
        denied ``monthly_spend_cap`` when that is no more than the rate's
        free seconds. Returns the spend room left (None without a spend cap)."""
        n = self.core.number_index(nkey)
        if n < 0:
            return None
        cap_spend, cap_calls = int(self._cap_spend[n]), int(self._cap_calls[n])
        if not (cap_spend or cap_calls) or not d.allow:
            return None
        spent, calls = self._month_use(nkey, at)
        held_minor, _held_seconds, n_open = reservations.number_hold(self.ledger, live, nkey)
        if cap_calls and calls + n_open >= cap_calls:
            return self._deny(d, "monthly_calls_cap")
        if not cap_spend:
            return None
        room = cap_spend - spent - held_minor
        if room <= 0:
            return self._deny(d, "monthly_spend_cap")
        if priced and self._money[acc]:
            package, classes = priced
            seconds, _cost = self.core.grant(package, o[1], at, classes, room, True)
            if seconds <= int(self.tables["rate_free_seconds"][o[10]]):
                return self._deny(d, "monthly_spend_cap")
            if seconds < d.max_duration_seconds:
                d.max_duration_seconds = seconds
                d.limit, d.spend_left_minor = "spend_cap", room
        return room

    def _month_use(self, nkey: int, at: int) -> tuple[int, int]:
        with self.ledger.env.begin() as txn:
            return usage.get(self.ledger, txn, nkey, month_of(at))

    def _room(self, live, nkey: int, at: int) -> int | None:
        """The spend room left under a capped number's spend cap (None: no
        spend cap), its open reservations counted."""
        n = self.core.number_index(nkey) if nkey else -1
        if n < 0 or not self._cap_spend[n]:
            return None
        held_minor, _s, _n = reservations.number_hold(self.ledger, live, nkey)
        return int(self._cap_spend[n]) - self._month_use(nkey, at)[0] - held_minor

    @staticmethod
    def _deny(d: Decision, reason: str) -> None:
        d.allow, d.reason, d.destinations, d.max_duration_seconds, d.ivr_menu = False, reason, [], 0, None
        d.limit = d.spend_left_minor = d.credit_minor = d.credit_limit_minor = d.held_minor = d.account = None
        d.top_up_min_minor = None

    def _limit(self, d: Decision, acc: int, live=None, at: int = 0) -> None:
        """Name what bounds the kernel's grant of an allowed decision ``d``
        on account row ``acc`` (in place, ``d.limit``): credit (with the
        credit limit when the account's package has one), bundle seconds, or
        a bundle's seconds and the credit for its overage; the spend cap
        (``_caps``, ``_overage_grant``) and the quota (``_grant``) refine it.
        No limit for a menu awaiting a key. For the kernel's ``out_of_credit``
        deny on money (a bundle's overage too), with ``live`` (the
        decision's transaction of ``live.lmdb``) and ``at`` (epoch ms): what
        ran out and its figures (``_credit_figures``)."""
        if acc < 0:
            return
        if not d.allow:
            if d.reason == "out_of_credit" and live is not None and (self._money[acc] or self._overage[acc]):
                ended = self._money[acc] and not self._payg[acc] and at >= self.tables["account_expiry_ms"][acc]
                self._credit_figures(d, acc, live, "bundle_overage" if self._overage[acc] else "period_ended"
                                     if ended else "credit_limit" if self._credit_limit[acc] else "credit")
            return
        if d.ivr_menu is not None and not d.destinations:
            return
        if self._limited[acc]:
            d.limit = ("credit_limit" if self._credit_limit[acc] else "credit") if self._money[acc] else "bundle"
        elif self._overage[acc]:
            d.limit = "bundle_overage"

    def _credit_figures(self, d: Decision, acc: int, live, limit: str) -> None:
        """Set an ``out_of_credit`` deny's ``limit`` (a ``CREDIT_DENIALS``
        name) and figures: account row ``acc``'s committed credit, credit
        limit and the credit its open reservations hold (read in ``live``),
        and its account id (``d.account``, named in the remedy)."""
        a = self._account_row(acc)
        held, _seconds, _n = reservations.hold_of(self.ledger, live, a.key)
        d.limit, d.credit_minor, d.credit_limit_minor, d.held_minor = limit, self._stored(acc)[0], a.credit_limit, held
        d.account = self._accounts[acc]
        if limit == "credit":
            d.top_up_min_minor = self._top_up_min(acc)

    def _top_up_min(self, acc: int) -> int:
        """The least top-up account row ``acc``'s package takes (1/10000
        yuan, whole fen): ``accounts.operations.top_up_minimum``, the one
        rule ``Accounts.top_up`` refuses by (as ``cli_route.restore_payment``)."""
        from .accounts.operations import top_up_minimum
        from .catalog.schema import CustomerRules

        package = self.meta["packages"][int(self.tables["account_package"][acc])]
        rules = CustomerRules.model_construct(**self.meta.get("customer_rules", {}))
        least = top_up_minimum(rules, self.meta.get("package_rules", {}).get(package, {}).get("monthly_minimum", 0))
        fen = 100  # minor units: a top-up is whole fen
        return -(-least // fen) * fen

    def _decide(self, live, nkey: int, ckey: int, caller: str | None, at: int, path: int):
        """Kernel decision for one call inside a live transaction:
        (outcome, destination ids, (package, listed destination classes) or
        () when the call is not limited, account row or -1)."""
        memory = credit = used = 0
        period = acc = -1
        self._refresh(live)
        n = self.core.number_index(nkey)
        if n >= 0:
            acc, plan = self._number_rows.get(n) or self._number_row(n)
            # One read of ledger.lmdb, begun after ``live`` (``_budget``): caller memory and credit.
            with self.ledger.env.begin() as txn:
                memory = self._memory(acc, plan, caller, at, txn)
                if self._account_row(acc).limited:
                    credit, used, period = self._budget(live, acc, at, txn)
        index = self._count  # this call's place in the router's random stream
        self._count += 1
        o, dests, priced = self.core.decide_one(nkey, ckey, at, path, memory, credit, used, period, self._seed,
                                                index, with_classes=True)
        return o, dests, priced, acc

    def _number_row(self, n: int) -> tuple[int, int]:
        """(account row, routing plan) of number row ``n``, as Python ints (made once per number)."""
        row = self._number_rows[n] = (int(self._number_account[n]), int(self._number_routing[n]))
        return row

    def prepare_batch(self, columns):
        """The edge of ``authorize_batch`` (keyed columns ``number_key``,
        ``caller_key``, ``ivr_path`` skip their parsing): columns -> the kernel's call
        columns (numbers keyed, IVR keys coded, caller memory and balances
        read from the ledger), the invalid-field codes, and working copies of
        the live-call counts and cursors."""
        is_table = isinstance(columns, pa.Table)
        names = columns.column_names if is_table else list(columns)
        get = columns.column if is_table else columns.__getitem__

        def strings(name):
            col = get(name)
            if isinstance(col, (pa.Array, pa.ChunkedArray)):
                return col
            return pa.array(col) if isinstance(col, np.ndarray) and col.dtype.kind == "U" else pa.array(col, pa.string())

        if "number_key" in names:
            nkeys = np.ascontiguousarray(get("number_key"), np.int64)
            n = len(nkeys)
            invalid = np.zeros(n, np.int8)
            ckeys = np.ascontiguousarray(get("caller_key"), np.int64) if "caller_key" in names else np.zeros(n, np.int64)
        else:
            normal, ok_number = normalize_array(strings("number"))
            nkeys = keys_of(normal)
            n = len(nkeys)
            invalid = np.where(ok_number, 0, 1).astype(np.int8)
            ckeys = np.zeros(n, np.int64)
            if "caller" in names:
                raw = strings("caller")
                withheld = pc.fill_null(pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(raw, pa.string()))),
                                                 pa.array(["", *WITHHELD_CALLERS])), True)
                withheld = np.asarray(withheld.to_numpy(zero_copy_only=False), bool)
                cnormal, ok_caller = normalize_array(raw)
                ckeys = keys_of(cnormal)
                ckeys[withheld] = 0
                invalid[~ok_caller & ~withheld & (invalid == 0)] = 2
        if "at_ms" in names:
            at = np.ascontiguousarray(get("at_ms"), np.int64)
            lo, hi = self._at_range
            bad_at = (at < lo) | (at >= hi)
            if bad_at.any():
                invalid[bad_at & (invalid == 0)] = 3
                at = np.where(bad_at, lo, at)
        else:
            at = np.full(n, time.time_ns() // 1_000_000, np.int64)
        paths = np.zeros(n, np.int64)
        if "ivr_path" in names:  # already coded (routes.ivr_path_code)
            paths = np.ascontiguousarray(get("ivr_path"), np.int64)
        elif "ivr_keys" in names:
            coded = pc.dictionary_encode(pc.fill_null(pc.cast(strings("ivr_keys"), pa.string()), ""))
            if isinstance(coded, pa.ChunkedArray):
                coded = coded.combine_chunks()
            codes = np.array([ivr_path_code(k) for k in coded.dictionary.to_pylist()], np.int64)
            paths = codes[coded.indices.to_numpy(zero_copy_only=False)] if len(codes) else paths

        pos = self.core.number_rows(nkeys)
        known = pos >= 0
        acc = np.where(known, self._number_account[pos], -1)
        plan = np.where(known, self._number_routing[pos], -1)
        memory = np.zeros(n, np.int64)
        with self.env.begin() as txn:
            self._refresh(txn)
            rows = np.flatnonzero((plan >= 0) & (ckeys != 0))
            rows = rows[self._memory_ms[plan[rows]] > 0]
            if len(rows):
                line, answered = self._memory_rows(acc[rows], ckeys[rows])
                age = at[rows] - answered
                fresh = (line != 0) & (age >= 0) & (age <= self._memory_ms[plan[rows]])
                memory[rows] = np.where(fresh, line, 0)
            # Balances: once per account, then gathered per row.
            limited = acc >= 0
            limited[limited] = self._limited[acc[limited]]
            lim_rows = np.flatnonzero(limited)
            accounts, first = np.unique(acc[lim_rows], return_index=True)
            a_credit = np.zeros(len(self._accounts), np.int64)
            a_used = np.zeros(len(self._accounts), np.int64)
            a_period = np.full(len(self._accounts), -1, np.int32)
            for a, r in zip(accounts.tolist(), lim_rows[first].tolist()):  # once per account, at its first call
                a_credit[a], a_used[a], a_period[a] = self._budget(txn, a, int(at[r]))
            active, cursor = self.active.copy(), self.cursor.copy()
        safe = np.where(limited, acc, 0)
        calls = {"number_key": nkeys, "number_row": pos, "caller_key": ckeys, "at_ms": at, "ivr_path": paths,
                 "memory_key": memory,
                 "credit_left": np.where(limited, a_credit[safe], 0), "bundle_used": np.where(limited, a_used[safe], 0),
                 "bundle_period": np.where(limited, a_period[safe], -1).astype(np.int32)}
        return calls, invalid, active, cursor

    def authorize_batch(self, columns, reserve: bool = True, seed: int | None = None) -> dict[str, np.ndarray]:
        """Decisions for many calls at once, from columns ``number``, ``caller``
        (strings, or ``number_key`` / ``caller_key`` already keyed),
        ``at_ms`` (default now) and ``ivr_keys`` (default none).

        With ``reserve`` (the default) the batch is a set of simultaneous call
        setups in input order: each allowed call counts against the caps and
        moves round-robin cursors for the calls after it, as if it started at
        its first destination (nothing is written to the ledger). Rows whose
        number, caller or time is malformed get reason ``invalid_input`` and
        ``invalid_field`` (codes into ``INVALID_FIELDS``) names the field; the
        other rows are decided. Returns the kernel's columns
        (``OUTCOME_FIELDS``; ``destinations`` as destination entry ids, -1
        padded) plus ``allow``, ``account`` (account rows, -1 for an unknown
        number) and ``at_ms`` (the rows' times, epoch ms); ``decisions``
        renders them.
        """
        calls, invalid, active, cursor = self.prepare_batch(columns)
        n = len(invalid)
        seed = self._seed if seed is None else seed
        out = self.core.decide_batch(calls, seed, self._count, reserve, active, cursor, self.threads)
        self._count += n
        bad = invalid != 0
        if bad.any():
            out["reason"][bad] = INVALID_INPUT
            out["n_destinations"][bad] = 0
            out["destinations"][bad] = -1
        pos = calls["number_row"]
        out["account"] = np.where(pos >= 0, self._number_account[np.maximum(pos, 0)], -1)  # account rows, -1 none
        if self._any_cap:
            self._batch_caps(calls, out, reserve)
        if self._overage.any():
            self._batch_overage(calls, out)
        out["invalid_field"] = invalid
        out["allow"] = out["reason"] == 0
        out["at_ms"] = calls["at_ms"]
        return out

    def _batch_overage(self, calls: dict, out: dict) -> None:
        """Grants of ``authorize_batch`` rows on a bundle that sells overage
        (in place): each row as its own query Authorize would answer it
        (``_overage_grant``, nothing held, the rows not counted against
        each other), once per (account, caller class, destination classes,
        minute)."""
        acc = out["account"]
        rows = np.flatnonzero((out["reason"] == 0) & (acc >= 0) & (out["menu_path"] < 0)
                              & self._overage[np.maximum(acc, 0)])
        if not len(rows):
            return
        t = self.tables
        seen: dict[tuple, int] = {}
        with self.env.begin() as live:
            for r in rows.tolist():
                a, at = int(acc[r]), int(calls["at_ms"][r])
                dests = out["destinations"][r, : int(out["n_destinations"][r])].tolist()
                package = int(t["account_package"][a])
                classes = tuple(sorted({int(self._dest_class[e]) for e in dests} - {-1}))
                # Bands change on minute boundaries: the minute stands for the band.
                key = (a, int(out["caller_class"][r]), classes, at // 60_000, month_of(at))
                g = seen.get(key)
                if g is None:
                    seconds_left, money_left, slack_in, slack_over = self._overage_budget(live, a, at)
                    g = seen[key] = self.core.bundle_grant(package, key[1], at, classes, seconds_left, money_left,
                                                           slack_in, slack_over, self.quota_seconds)[0]
                if g <= 0:
                    out["reason"][r] = REASONS.index("out_of_credit")
                    out["n_destinations"][r] = 0
                    out["destinations"][r] = -1
                out["max_duration_seconds"][r] = max(g, 0)

    def _batch_caps(self, calls: dict, out: dict, reserve: bool) -> None:
        """The monthly caps over ``authorize_batch`` rows (in place): an
        allowed row on a capped number is denied ``monthly_calls_cap`` /
        ``monthly_spend_cap`` when the number's month-to-date use (committed
        plus open reservations, as in ``_caps``) has reached the cap; with
        ``reserve`` each allowed row counts as one more call for the rows
        after it. The grant is not cut to the spend room here (a batch holds
        nothing; the call's own Authorize does)."""
        pos = calls["number_row"]
        known = pos >= 0
        safe = np.where(known, pos, 0)
        capped = known & (out["reason"] == 0) & ((self._cap_spend[safe] > 0) | (self._cap_calls[safe] > 0))
        rows = np.flatnonzero(capped)
        if not len(rows):
            return
        months = usage.month_ids(calls["at_ms"][rows])
        seen: dict[tuple[int, int], list[int]] = {}
        with self.ledger.env.begin() as txn, self.env.begin() as live:
            for r, month in zip(rows.tolist(), months.tolist()):
                nkey, p = int(calls["number_key"][r]), int(pos[r])
                use = seen.get((nkey, month))
                if use is None:
                    spent, n_calls = usage.get(self.ledger, txn, nkey, month)
                    held_minor, _s, n_open = reservations.number_hold(self.ledger, live, nkey)
                    use = seen[(nkey, month)] = [spent + held_minor, n_calls + n_open]
                cap_calls, cap_spend = int(self._cap_calls[p]), int(self._cap_spend[p])
                code = (MONTHLY_CALLS_CAP if cap_calls and use[1] >= cap_calls else
                        MONTHLY_SPEND_CAP if cap_spend and use[0] >= cap_spend else 0)
                if code:
                    out["reason"][r] = code
                    out["n_destinations"][r] = 0
                    out["destinations"][r] = -1
                    out["max_duration_seconds"][r] = 0
                elif reserve:
                    use[1] += 1

    def _memory_rows(self, accs: np.ndarray, ckeys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Caller memory (line key, answered ms; 0 when none) for many
        (account row, caller key) pairs: each distinct caller record read
        once, by one multi-get in one read transaction of ``ledger.lmdb``."""
        pairs, back = np.unique(np.stack([accs, ckeys]), axis=1, return_inverse=True)
        prefix = self._account_prefixes
        keys = [prefix[a] + c for a, c in zip(pairs[0].tolist(), numbers_of_keys(pairs[1]).tolist())]
        vals = np.zeros((len(keys), 2), np.int64)
        with self.ledger.env.begin() as txn:
            found = dict(txn.cursor(db=self._crm).getmulti(keys))
            for i, k in enumerate(keys):
                raw = found.get(k)
                if raw is not None:
                    destination, answered = callers.last_answer(self.ledger, txn, raw)
                    if destination:
                        vals[i] = _line_key(destination), answered
        return vals[back.ravel(), 0], vals[back.ravel(), 1]

    def decisions(self, out: dict[str, np.ndarray]) -> list[Decision]:
        """Render ``authorize_batch`` columns as Decisions (an ``out_of_credit``
        deny's figures read from the ledger now, as ``authorize`` reads them)."""
        cols = [out[f] for f in OUTCOME_FIELDS]
        res = []
        with contextlib.ExitStack() as stack:
            live = (stack.enter_context(self.env.begin())
                    if (out["reason"] == REASONS.index("out_of_credit")).any() else None)
            for i in range(len(out["reason"])):
                o = tuple(int(c[i]) for c in cols)
                if o[0] == INVALID_INPUT:
                    res.append(Decision(False, "invalid_input", catalog_version=self.version))
                    continue
                d = self._decision(o, out["destinations"][i, : o[6]].tolist())
                self._limit(d, int(out["account"][i]), live, int(out["at_ms"][i]))
                res.append(d)
        return res

    # -- call events -------------------------------------------------------------
    def call_event(self, call_id: str, number: str, kind: str, destination: str | None = None,
                   caller: str | None = None, at_ms: int | None = None,
                   max_duration_seconds: int | None = None) -> bool:
        """Record call progress. ``started`` (on ``destination``, the first
        one rung) takes a slot on that line: False when the line is at its
        cap (nothing recorded; try the next destination). ``answered`` by
        ``destination`` moves the call's slot there and remembers the
        destination for this caller. ``ended`` frees the slot. See the
        module doc for the consistency and stale-call rules."""
        if kind not in EVENT_KINDS:
            raise InvalidInput("kind", f"{kind!r}: one of {', '.join(EVENT_KINDS)}")
        ckey = _call_key(call_id)
        nkey = number_key(normalize(number, "number"))
        line_key = number_key(normalize(destination, "destination")) if destination else 0
        caller_normal, caller_key = self._caller(caller)
        at = self._at(at_ms)
        if kind == "interim":
            return self.interim(call_id, at) is not None
        if kind == "started":
            if max_duration_seconds is None:
                with self.env.begin() as live:
                    held = reservations.get(self.ledger, live, ckey)
                max_duration_seconds = (held.granted_seconds if held is not None else
                                        self.authorize(number, caller_normal, at).max_duration_seconds)
            limit = max_duration_seconds if max_duration_seconds and max_duration_seconds > 0 else CALL_SECONDS_LIMIT
            return self._started(ckey, nkey, line_key, at, at + (limit + SETUP_GRACE_S) * 1000)
        if kind == "answered":
            answered = self._answered(ckey, line_key, at)
            n = self.core.number_index(nkey)
            if answered and destination and caller_normal and n >= 0:
                # The caller record (CRM and caller memory): after the live
                # transaction, never inside it (Ledger.write takes live first).
                with self.ledger.durable() as txn:  # full: LedgerFull
                    callers.remember_answer(self.ledger, txn, self._accounts[int(self._number_account[n])],
                                            caller_normal, normalize(destination, "destination"), at)
            return answered
        return self._ended(ckey, at, at_ms is not None, call_id)

    def _plan_line(self, nkey: int, line_key: int):
        """(cap, round-robin updates) of a line for the number's plan."""
        n = self.core.number_index(nkey)
        line = self._line_index.get(line_key)
        if n < 0 or line is None:
            return NO_CAP, []
        return self._line_rules.get((int(self._number_routing[n]), line), (NO_CAP, []))

    def _add(self, txn, line_key: int, delta: int) -> int:
        db = self._db[ACTIVE_DB]
        k = _LINE.pack(line_key)
        raw = txn.get(k, db=db)
        count = (_COUNT.unpack(raw)[0] if raw else 0) + delta
        if count > 0:
            txn.put(k, _COUNT.pack(count), db=db)
        else:
            txn.delete(k, db=db)
        return count

    def _bump(self, txn) -> None:
        raw = txn.get(GENERATION, db=self._db[CURSOR_DB])
        txn.put(GENERATION, _COUNT.pack((_COUNT.unpack(raw)[0] if raw else 0) + 1), db=self._db[CURSOR_DB])

    def _hold(self, txn, call: bytes, line_key: int, started: int, deadline: int) -> None:
        txn.put(call, _CALL.pack(line_key, started, deadline), db=self._db[CALLS_DB])
        txn.put(_LINE.pack(deadline) + call, b"", db=self._db[DEADLINE_DB])

    def _drop(self, txn, call: bytes) -> int:
        """Forget a live call; returns the line key it held (0 none, -1 unknown)."""
        raw = txn.get(call, db=self._db[CALLS_DB])
        if raw is None:
            return -1
        line_key, _started, deadline = _CALL.unpack(raw)
        txn.delete(call, db=self._db[CALLS_DB])
        txn.delete(_LINE.pack(deadline) + call, db=self._db[DEADLINE_DB])
        if line_key:
            self._add(txn, line_key, -1)
        return line_key

    def _sweep(self, txn, at: int) -> int:
        """Release the calls past their deadline at ``at``, and forget the
        ended calls remembered until before ``at``. Returns the live calls
        released."""
        cur = txn.cursor(db=self._db[DEADLINE_DB])
        stale = []
        if cur.first():
            for k in cur.iternext(values=False):
                if _LINE.unpack(k[:8])[0] >= at:
                    break
                stale.append(bytes(k))
        released = 0
        for k in stale:
            call = k[8:]
            raw = txn.get(call, db=self._db[CALLS_DB])
            if raw is not None and _LINE.pack(_CALL.unpack(raw)[2]) == k[:8]:
                self._drop(txn, call)
                released += 1
                continue
            ended = txn.get(call, db=self._db[ENDED_DB])
            if ended is not None and _LINE.pack(_COUNT.unpack(ended)[0]) == k[:8]:
                txn.delete(call, db=self._db[ENDED_DB])
            txn.delete(k, db=self._db[DEADLINE_DB])
        return released

    def _has_ended(self, txn, call: bytes, held: Reservation | None) -> bool:
        """The call's ``ended`` came already (remembered ``CDR_GRACE_S``, or
        its reservation ``held``, as read in ``txn``, is settled and waits
        for the CDR)."""
        return (held is not None and held.ended) or txn.get(call, db=self._db[ENDED_DB]) is not None

    def _remember_end(self, txn, call: bytes, at: int) -> None:
        """Remember that call ``call`` ended (until ``at + CDR_GRACE_S``; the
        first ``ended`` counts), while ``live.lmdb`` is below its new-call
        share: the reserve above it is for settling writes. Past the share
        nothing is lost: a ``started`` of a call ``live.lmdb`` does not hold
        is a new call, refused there anyway, and a settled reservation
        keeps its own ended mark."""
        if txn.get(call, db=self._db[ENDED_DB]) is not None:
            return
        try:
            envs.room_for_new_call(self.ledger, txn)
        except envs.LiveLedgerFull:
            return
        until = at + CDR_GRACE_S * 1000
        txn.put(call, _COUNT.pack(until), db=self._db[ENDED_DB])
        txn.put(_LINE.pack(until) + call, b"", db=self._db[DEADLINE_DB])

    def _started(self, call: bytes, nkey: int, line_key: int, at: int, deadline: int) -> bool:
        cap, rr = self._plan_line(nkey, line_key)
        with envs.live_write(self.ledger) as txn:
            changed = self._sweep(txn, at) > 0
            raw = txn.get(call, db=self._db[CALLS_DB])
            if raw is not None and _CALL.unpack(raw)[0] == line_key:
                claimed = True  # the same event again
            elif self._has_ended(txn, call, reservations.get(self.ledger, txn, call)):
                claimed = False  # late or replayed: an ended call takes no line again
            else:
                if raw is not None:
                    self._drop(txn, call)
                    changed = True
                elif reservations.get(self.ledger, txn, call) is None:
                    envs.room_for_new_call(self.ledger, txn)  # a call not yet known: a new call
                claimed = True
                if line_key:
                    raw_count = txn.get(_LINE.pack(line_key), db=self._db[ACTIVE_DB])
                    if (_COUNT.unpack(raw_count)[0] if raw_count else 0) >= cap:
                        claimed = False
                    else:
                        self._add(txn, line_key, +1)
                        for g, nxt in rr:
                            key = (self._plans[int(self.tables["route_group_plan"][g])] + "\0" + self._groups[g]).encode()
                            txn.put(key, _COUNT.pack(nxt), db=self._db[CURSOR_DB])
                        changed = True
                if claimed:
                    self._hold(txn, call, line_key, at, deadline)
            if changed:
                self._bump(txn)
        self._refresh_now()
        return claimed

    def _answered(self, call: bytes, line_key: int, at: int) -> bool:
        with envs.live_write(self.ledger) as txn:
            changed = self._sweep(txn, at) > 0
            if self._has_ended(txn, call, reservations.get(self.ledger, txn, call)):
                # Late or replayed: nothing changes, unless it is the answer an
                # ``ended`` overtook (``_answer_after_end``).
                answered = self._answer_after_end(txn, call, at)
                if changed:
                    self._bump(txn)
            else:
                answered = self._answer(txn, call, line_key, at, changed)
        self._refresh_now()
        return answered

    def _answer_after_end(self, txn, call: bytes, at: int) -> bool:
        """``answered`` of an ended call, inside the live write ``txn``: True
        when it is the answer of a call billed from agent answer whose
        ``ended`` came first and whose hold still waits for it (``_settle``,
        ``ANSWER_WAIT_S``): the answer time is recorded and the hold now waits
        ``CDR_GRACE_S`` from the end for the CDR, as for any answered call.
        No line slot is taken (the call is over). Else (a replay, or an
        answer after the wait) False and nothing changes."""
        held = reservations.get(self.ledger, txn, call)
        if held is None or not held.ended or held.answered_ms != 0 or held.billing_start != _AGENT_ANSWER:
            return False
        ended_at = held.deadline_ms - ANSWER_WAIT_S * 1000
        skew = CLOCK_SKEW_S * 1000
        if at > ended_at + skew or at > held.deadline_ms or at < held.authorized_ms - skew:
            return False  # an answer after the call's end, or before its authorization, is no answer of it
        reservations.drop(self.ledger, txn, call)
        reservations.put(self.ledger, txn, call, held.with_(answered_ms=at, deadline_ms=ended_at + CDR_GRACE_S * 1000))
        return True

    def _answer(self, txn, call: bytes, line_key: int, at: int, changed: bool) -> bool:
        """``answered`` of a call not ended, inside the live write ``txn``."""
        held = reservations.get(self.ledger, txn, call)
        if held is not None and held.answered_ms == 0:
            reservations.drop(self.ledger, txn, call)
            reservations.put(self.ledger, txn, call, held.with_(answered_ms=at))
        raw = txn.get(call, db=self._db[CALLS_DB])
        on_line = _CALL.unpack(raw) if raw is not None else None  # (line key, started, deadline)
        if line_key and (on_line is None or on_line[0] != line_key):
            if on_line is None and reservations.get(self.ledger, txn, call) is None:
                envs.room_for_new_call(self.ledger, txn)  # a call not yet known: a new call
            started, deadline = ((on_line[1], on_line[2]) if on_line
                                 else (at, at + (CALL_SECONDS_LIMIT + SETUP_GRACE_S) * 1000))
            if on_line is not None:
                self._drop(txn, call)
            self._add(txn, line_key, +1)  # connected: the slot follows the call
            self._hold(txn, call, line_key, started, deadline)
            changed = True
        if changed:
            self._bump(txn)
        return True

    def _ended(self, call: bytes, at: int, at_given: bool = True, call_id: str = "") -> bool:
        """True when the call held something here (a line slot from
        ``started`` or a credit reservation from Authorize) that this ended
        released; False when nothing was held (never started nor authorised
        with this call id, already ended, or swept as stale): nothing
        changes, and the call's CDR still rates as usual. ``at_given``:
        ``at`` came with the event (else it is the server's now); an end time
        that cannot be measured against the call's authorization raises
        ``InvalidInput`` (``at``) and changes nothing (``_end_time``)."""
        with envs.live_write(self.ledger) as txn:
            held = reservations.get(self.ledger, txn, call)
            used_at = at if held is None or held.ended else self._end_time(call_id, held, at, at_given)
            changed = self._sweep(txn, at) > 0
            line = self._drop(txn, call)
            changed = line > 0 or changed
            settled = self._settle(txn, call, used_at)
            self._remember_end(txn, call, at)
            if changed:
                self._bump(txn)
        self._refresh_now()
        return line != -1 or settled

    # -- credit reservations (rules: module doc) ---------------------------------
    def _end_time(self, call_id: str, held: Reservation, at: int, at_given: bool) -> int:
        """The end time the hold of an ``ended`` is settled at (README "Credit
        reservation": the end time). ``at`` given: the switch's own clock,
        the one that dated the Authorize; more than ``CLOCK_SKEW_S`` before
        the authorization it contradicts it (``InvalidInput`` naming
        ``at``). ``at`` missing (the server's now): the Authorize may have
        been dated by a clock up to ``CLOCK_SKEW_S`` ahead, so the call is
        counted that much longer (the safe side: the CDR settles the true
        charge); an authorization more than ``CLOCK_SKEW_S`` after now
        cannot be measured at all and is refused the same way, the hold
        kept whole for the CDR or its deadline."""
        skew = CLOCK_SKEW_S * 1000
        call_id = call_id if len(call_id) <= 60 else call_id[:57] + "..."
        if at_given:
            if at < held.authorized_ms - skew:
                raise InvalidInput("at", f"{at} ms is {(held.authorized_ms - at) // 1000} s before call "
                                         f"{call_id}'s authorization ({held.authorized_ms} ms): an end cannot "
                                         "come before the start")
            return at
        if held.authorized_ms > at + skew:
            raise InvalidInput("at", f"required for call {call_id}: it was authorized at {held.authorized_ms} ms, "
                                     f"{(held.authorized_ms - at) // 1000} s after the server's clock now ({at} ms), "
                                     "so the server cannot tell how long it ran; send the end time on the clock "
                                     "that dated the Authorize (its hold is kept until then)")
        return at + skew

    def _elapsed(self, held: Reservation, at: int) -> int:
        """Billable seconds the call can have used by ``at``, at most its
        grant: counted from authorisation (an upper bound of any billing
        start), 0 for a call billed from agent answer that was never answered."""
        if held.billing_start == _AGENT_ANSWER and held.answered_ms == 0:
            return 0
        return min(held.granted_seconds, max(0, -((held.authorized_ms - at) // 1000)))

    def _settle(self, txn, call: bytes, at: int) -> bool:
        """``ended``: the hold shrinks to the dearest cost of the time the call
        can have used and waits ``CDR_GRACE_S`` for the CDR (which releases it).
        False when the call held no reservation."""
        held = reservations.take_open(self.ledger, txn, call)
        if held is None:  # none, or settled by an earlier ``ended``: nothing changes
            return False
        # No ``answered`` yet for a call billed from it: the answer may be on
        # its way (events overtake each other), so the call is counted as
        # answered at authorization (the bound every other call gets) for
        # ANSWER_WAIT_S; a late ``answered`` then keeps the hold for the CDR
        # (``_answer_after_end``), else it expires as unanswered.
        pending = held.billing_start == _AGENT_ANSWER and held.answered_ms == 0
        wait = ANSWER_WAIT_S if pending else CDR_GRACE_S
        used = self._elapsed(held.with_(answered_ms=held.authorized_ms) if pending else held, at)
        if held.catalog_version == self.version:
            cost = self.core.cost(held.package, held.caller_class, held.authorized_ms, held.classes, used, held.money)
        else:  # priced by another catalog version: keep the hold as it was
            cost = held.reserved_minor if held.money else held.reserved_seconds
        minor, seconds = (cost, 0) if held.money else (0, cost)
        if not held.money and held.reserved_minor > 0:
            # A bundle that sells overage: the bundle seconds shrink to the time
            # used; the money (overage and slack) stays until the CDR, unless
            # nothing was used.
            minor, seconds = (held.reserved_minor, min(cost, held.reserved_seconds)) if used > 0 else (0, 0)
        if minor > 0 or seconds > 0:
            reservations.put(self.ledger, txn, call, held.with_(
                held_seconds=used, reserved_minor=minor, reserved_seconds=seconds,
                deadline_ms=at + wait * 1000, ended=True))
        return True

    def interim(self, call_id: str, at_ms: int | None = None) -> int | None:
        """Interim update of a live call (Diameter CCR-Update): the hold is
        recomputed for a new grant = min(what the available balance plus the
        call's own hold pays for, used so far + ``quota_seconds``), never less
        than the grant already given. Returns the new grant (seconds from
        billing start), or None when the call holds no reservation (never
        authorised with a call id, settled or expired: cut it or authorise
        again)."""
        call = _call_key(call_id)
        at = self._at(at_ms)
        with envs.live_write(self.ledger) as live:
            reservations.expire(self.ledger, live, at)
            held = reservations.take_open(self.ledger, live, call)
            if held is None:  # none, or ended: an ended call is not extended
                return None
            grant = held.granted_seconds
            if held.catalog_version == self.version and self._overage[self._accounts.index(held.account)]:
                acc = self._accounts.index(held.account)
                seconds_left, money_left, slack_in, slack_over = self._overage_budget(live, acc, at)
                room = self._room(live, held.number_key, at)
                if room is not None:
                    money_left = min(money_left, room)
                affordable, _s, _m = self.core.bundle_grant(
                    held.package, held.caller_class, held.authorized_ms, held.classes, seconds_left, money_left,
                    slack_in, slack_over, self._elapsed(held, at) + self.quota_seconds)
                grant = max(grant, affordable)
                s, m = self.core.bundle_hold(held.package, held.caller_class, held.authorized_ms, held.classes, grant,
                                             seconds_left, slack_in, slack_over)
                held = held.with_(granted_seconds=grant, reserved_minor=m, reserved_seconds=s,
                                  deadline_ms=held.authorized_ms + (grant + SETUP_GRACE_S) * 1000)
            elif held.catalog_version == self.version:
                acc = self._accounts.index(held.account)
                credit, used, period = self._budget(live, acc, at)
                if self._money[acc] and not self._payg[acc] and at >= self.tables["account_expiry_ms"][acc]:
                    credit = 0  # prepaid credit expired: nothing more to grant
                budget = credit if held.money else int(
                    self.tables["package_included_seconds"][self.tables["account_package"][acc]]) - used
                room = self._room(live, held.number_key, at) if held.money else None
                if room is not None:
                    budget = min(budget, room)  # the number's spend cap bounds the extension too
                affordable, _ = self.core.grant(held.package, held.caller_class, held.authorized_ms, held.classes,
                                                budget, held.money)
                grant = max(grant, min(affordable, self._elapsed(held, at) + self.quota_seconds))
                cost = self.core.cost(held.package, held.caller_class, held.authorized_ms, held.classes, grant,
                                      held.money)
                held = held.with_(granted_seconds=grant, reserved_minor=cost if held.money else 0,
                                  reserved_seconds=0 if held.money else cost,
                                  deadline_ms=held.authorized_ms + (grant + SETUP_GRACE_S) * 1000)
            reservations.put(self.ledger, live, call, held)
        return grant

    def release_stale(self, at_ms: int | None = None) -> int:
        """Release every call past its deadline at ``at_ms`` (default now),
        and expire the reservations past theirs."""
        at = self._at(at_ms)
        with envs.live_write(self.ledger) as txn:
            reservations.expire(self.ledger, txn, at)
            released = self._sweep(txn, at)
            if released:
                self._bump(txn)
        self._refresh_now()
        return released

    def _refresh_now(self) -> None:
        with self.env.begin() as txn:
            self._refresh(txn)

    # -- inspection ----------------------------------------------------------------
    def active_calls(self, destination: str) -> int:
        """Live calls on a destination line, as committed in the ledger."""
        with self.env.begin() as txn:
            raw = txn.get(_LINE.pack(number_key(normalize(destination, "destination"))), db=self._db[ACTIVE_DB])
        return _COUNT.unpack(raw)[0] if raw else 0


def _path_keys(path: int) -> str:
    keys = ""
    while path:
        path, d = divmod(path, 13)
        keys = IVR_KEYS[d - 1] + keys
    return keys
