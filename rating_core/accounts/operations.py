"""Customer operations: accounts, real-name, number inventory, destinations,
packages, credit, lifecycle. The CLI and the gRPC ``AccountService`` are
faces on this one API.

Every operation:

* is one LMDB write transaction on the ledger (state, credit, audit event,
  request id, generation bump commit together or not at all);
* is idempotent by the client's ``request_id``: a repeated id with the same
  content returns the first answer (``replayed=True``) and changes nothing;
  an id reused for a different operation, or with different content (other
  account, amount, ...; compared by a digest stored with the id, see
  ``request_digest``; or an explicit ``at_ms`` other than the effective
  time the first was booked at: ``OperationResult.at_ms``, none given
  replays), is ``InvalidInput("request_id")``; a refused operation
  stores nothing, so it can be retried under the same id once allowed;
* appends one audit ``Event`` per record it changes: actor, effective time
  ``at_ms`` (default now), wall-clock time, operation, the record before and
  after;
* raises ``InvalidInput`` (field named), ``NotFound`` (field named) or
  ``Refused`` (machine-readable ``reason``) and then changes nothing.

Money: int64 minor units (1/10000 yuan); one operation's amount and any
balance at most ``MAX_AMOUNT_MINOR`` / ``MAX_BALANCE_MINOR`` (10^15). Times:
epoch ms in the edge's range (``cdr.MIN_TIME_MS`` .. ``MAX_TIME_MS``); months are
calendar months in Asia/Shanghai local time (``add_months_ms``).
The rules (minimums, windows) come from the active catalog's
``customer_rules``; the lifecycle is README "Accounts: lifecycle".
"""
from __future__ import annotations

import contextvars
import datetime as dt
import dataclasses
import fnmatch
import functools
import hashlib
import inspect
import json
import re
import time
from pathlib import Path

from pydantic import ValidationError

from .. import layout
from ..catalog.routing import (PROVINCE_ALIASES, RoutingPlan, canonical_plan_regions, near_region, nearest_region,
                               region_names)
from ..catalog.schema import CustomerRules, error_message
from ..cdr import check_characters, check_text, check_time_ms, excerpt
from ..errors import InvalidInput, NotFound, Refused
from ..money import MAX_AMOUNT_MINOR, in_yuan
from ..ledger import AccountTerms, InsufficientCredit, package_credit_limits
from ..ledger import customers as C
from ..ledger import usage
from ..ledger.envs import LedgerFull
from ..numbers import normalize
from ..routes import resolve_region
from ..routing_layout import NEEDS_VERIFIED_DESTINATION
from .notify import check_webhook_url
from .view import account_event_seqs, layer_dbs, plan_json

LOCAL = layout.LOCAL_TZ
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_NUMBER_400 = re.compile(r"^400[0-9]{7}$")
REQUIRED_DOCUMENTS = ("business_licence", "legal_representative_id")
DOCUMENT_KINDS = REQUIRED_DOCUMENTS + ("authorisation_letter", "other")
# Money bounds (minor units, 1/10000 yuan). One operation moves at most 10^15
# (10^11 yuan, beyond any 400 account's real money; ``money.MAX_AMOUNT_MINOR``)
# and no balance may pass 10^15 either: int64 holds 9.2 * 10^18, so every sum
# the ledger and the rating kernels form (credit + credit limit, credit - a
# call's charge) keeps 3 decimal orders of headroom and can never overflow.
MAX_BALANCE_MINOR = 10**15


# The digest of the operation running in this context (``_operation``),
# read by ``Accounts._run``; "" for internal operations (sweep, alerts).
_CONTENT: contextvars.ContextVar[str] = contextvars.ContextVar("content_digest", default="")
_NOT_CONTENT = frozenset({"self", "request_id", "actor", "at_ms", "allow_ended_months"})
# Flags added after requests were stored: left out of the digest at their
# default, so a request stored before them and retried still replays.
_LATER_FLAGS = frozenset({"reopen"})
# Arguments with a rule of their own: a routing plan is a document its
# model validates (its JSON text may hold newlines between tokens); the
# request id and the actor are checked by ``_run`` (``_actor``: the
# character refused named, not only "a control character").
_OWN_RULE = frozenset({"plan", "request_id", "actor"})


# The longest free text an operation stores (a company name, a reason, a
# note, a document reference), UTF-8 bytes: the audit log keeps it for ever,
# and gRPC let a 3 MiB reason in (breaker).
FREE_TEXT_BYTES = 1024
# The most numbers one search lists (an offer is ~50 bytes: ~50 KB).
SEARCH_MOST = 1000
# The most accounts one ``list_accounts`` page lists (a row is ~400 bytes of
# JSON: ~400 KB), and the page when none is asked for.
LIST_MOST = 1000
LIST_DEFAULT = 100


def _check_free_text(field: str, value) -> None:
    """The edge's text rule (``cdr.check_characters``: no control, DEL, C1,
    bidi or zero-width character) and ``FREE_TEXT_BYTES`` for every string
    an operation receives and may store (company name, reasons, notes,
    document references, actor), inside lists and tuples too
    (``documents[0][1]``) and in a routing plan document's names and values
    (``plan.groups``): InvalidInput naming the field, the value shown escaped."""
    if isinstance(value, str):
        if len(value) > FREE_TEXT_BYTES // 4 and len(value.encode("utf-8", "surrogatepass")) > FREE_TEXT_BYTES:
            raise InvalidInput(field, f"longer than {FREE_TEXT_BYTES} bytes")
        check_characters(field, value)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_free_text(f"{field}[{i}]", item)
    elif isinstance(value, dict):  # a plan document: its names (keys) too, as the catalog's are
        for key, item in value.items():
            if isinstance(key, str):
                check_characters(field, key)  # the refused name shown escaped, never raw in the field
            _check_free_text(f"{field}.{key}", item)


def _operation(method):
    """Mark a public operation: its arguments other than request id, actor
    and effective time are the request's content; their digest is stored
    with the request id (``request_digest``)."""
    sig = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        content = {k: v for k, v in bound.arguments.items()
                   if k not in _NOT_CONTENT and not (k in _LATER_FLAGS and v is False)}
        for name, value in bound.arguments.items():
            if name not in _OWN_RULE:
                _check_free_text(name, value)
        token = _CONTENT.set(request_digest({"operation": method.__name__, **content}))
        try:
            return method(self, *args, **kwargs)
        finally:
            _CONTENT.reset(token)
    return wrapper


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# How far past now an operation may be dated (``at``, ms): a client's clock
# a little ahead of the server's passes; a later date is almost surely a typo
# (2062 for 2026) that would put money or a state change where no statement
# or sweep looks for it. What is meant for later says so in a field of its
# own, which may lie ahead: ``change_package``'s ``effective``,
# ``subscribe``'s ``start``.
AHEAD_MS = 10 * 60_000
# "Now" for that rule while a sweep applies what is due at its time
# (``sweep(at_ms)``): the transitions it makes are dated then.
_SWEEP_AT: contextvars.ContextVar[int | None] = contextvars.ContextVar("sweep_at", default=None)


def _at(value) -> int:
    """An operation's effective time given (``_ms``): at most ``AHEAD_MS``
    after now (the wall clock, or a running sweep's time); else
    ``InvalidInput("at")``."""
    at = _ms(value, "at")
    now = _SWEEP_AT.get()
    ahead = too_far_ahead(at, now_ms() if now is None else now)
    if ahead:
        raise InvalidInput("at", f"{ahead}: date an operation when it happened; a package change for later takes "
                                 "--effective, a first package --start")
    return at


def too_far_ahead(at: int, now: int) -> str | None:
    """Why ``at`` (epoch ms) is too far after ``now`` to date money or an
    operation (more than ``AHEAD_MS``), or None: the one rule of the
    operations (``_at``) and of an events file's rows
    (``billing.events.read_events``)."""
    if at <= now + AHEAD_MS:
        return None
    return f"{_local(at)} is in the future (now {_local(now)}; at most {AHEAD_MS // 60_000} minutes ahead)"


def _not_in_ended_month(ms: int, package: str, account: str, ref_ms: int) -> None:
    """Refused ``month_ended`` when ``ms`` (epoch ms: a package change's
    effective instant or a renewal's date) lies in an Asia/Shanghai month
    before the month of ``ref_ms`` (epoch ms: now, or the operation's own
    date for a story the API is told dated back): that month's statement was issued under the package in
    force, and finance corrects it by a credit or debit now (``accounts
    adjust``), not by re-billing it. Breaker N15 (``--effective 2026-10-01``
    on 2 December moved October's 504.32 to 603.32) and breaker 12-02 F2
    (the same by ``--at 2026-11-20``; ``renew --at 2026-11-15`` rewrote
    November's closing credit 1188.42 -> 2388.42)."""
    from .importer import month_start

    begun = month_start(ref_ms)
    if ms < begun:
        raise Refused("month_ended",
                      f"{_local(ms)} is in a month that has ended (this month began {_local(begun)}): its "
                      f"statement was billed under package {package!r} of account {account!r}; date the "
                      f"operation this month, and correct an ended month with `rating400 accounts adjust`")


def _in_current_month(at: int, what: str) -> None:
    """Refuse ``InvalidInput("at")`` (gRPC ``meta.at_ms``) when ``at``
    (epoch ms) lies in a month that has ended (Asia/Shanghai): ``what``
    re-opens bills, which a finance team shows on the current statement,
    the news of now; dated back, it rewrote the issued statements of ended
    months (breaker N14 F2: October's amount due 0.00 -> 27.64)."""
    current = _local(now_ms())[:7]
    if _local(at)[:7] < current:
        raise InvalidInput("at", f"{_local(at)} is in {_local(at)[:7]}, a month that has ended: {what} re-opens "
                                 f"the bills it paid, so it is dated in the current month ({current}, "
                                 "Asia/Shanghai; default now): the statement of the month it is recorded in shows "
                                 "them unpaid again, and the ended months' statements, issued, keep their figures")


def add_months_ms(ms: int, months: int) -> int:
    """``ms`` plus calendar months in local time (day clamped to the
    month's last day), as epoch ms."""
    t = dt.datetime.fromtimestamp(ms / 1000, LOCAL)
    m = t.month - 1 + months
    year, month = t.year + m // 12, m % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31,
            30, 31][month - 1]
    return int(t.replace(year=year, month=month, day=min(t.day, last)).timestamp() * 1000)


def _local(ms: int) -> str:
    """Epoch ms -> ``YYYY-MM-DDTHH:MM:SS+08:00`` (Asia/Shanghai), for messages."""
    return dt.datetime.fromtimestamp(ms / 1000, LOCAL).isoformat(timespec="seconds")


def _prepaid_months_from(when: int) -> int:
    """The first month start (epoch ms, Asia/Shanghai) at or after a change
    effective ``when``: the first month the new package bills (a month is
    billed under the package in force at its first instant)."""
    from ..billing.statements import month_bounds, parse_month

    _, _, lo, hi = month_bounds(parse_month(_local(when)[:7]))
    return when if when == lo else hi


def local_midnight_ms(ms: int) -> int:
    t = dt.datetime.fromtimestamp(ms / 1000, LOCAL)
    return int(t.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


class _Tx:
    """One operation's write transaction: reads, writes, audit events."""

    def __init__(self, ops: "Accounts", w, at_ms: int, actor: str, request_id: str, operation: str,
                 txn=None):
        # w: the ledger's LedgerTxn (None for reads); txn: its durable transaction.
        self.ops, self.w, self.at, self.actor, self.request_id, self.operation = (
            ops, w, at_ms, actor, request_id, operation)
        self.txn = w.txn if w is not None else txn
        self.db = ops.db
        self.seq = 0
        self.detail: dict = {}  # the result's detail, unless the operation gives its own

    # records
    def account(self, account_id: str, field: str = "account") -> C.Account:
        """The account record named ``account_id``: the one edge where an
        operation or a read names an account. An empty id is
        ``InvalidInput(field, "required")``: never an LMDB key (an empty key
        is a key error) and never "no account given" (breaker N13 F8: ``events("")``
        listed every account's audit log); an unknown one ``NotFound``."""
        if not account_id:
            raise InvalidInput(field, "required")
        raw = self.txn.get(account_id.encode(), db=self.db[C.ACCOUNTS_DB])
        if raw is None:
            # The id as given, cut (``excerpt``: 40 characters and its size): a
            # 100,000-character id was echoed to 4,000 characters (breaker8 L3).
            raise NotFound(field, f"no account {excerpt(account_id)}")
        return C.decode(C.Account, raw)

    def number(self, number: str, field: str = "number") -> C.Number:
        raw = self.txn.get(C.number_key(number), db=self.db[C.NUMBERS_DB])
        if raw is None:
            raise NotFound(field, f"no 400 number {number} in the inventory")
        return C.decode(C.Number, raw)

    def put_account(self, acc: C.Account, before: C.Account | None, detail: dict | None = None) -> None:
        self.txn.put(acc.id.encode(), C.encode(acc), db=self.db[C.ACCOUNTS_DB])
        self.changed(b"a", acc.id)
        self.event(acc.id, "", detail or {}, before, acc)
        self.detail = detail or self.detail  # the account's change is the operation's own

    def put_number(self, num: C.Number, before: C.Number | None, detail: dict | None = None) -> None:
        self.txn.put(C.number_key(num.number), C.encode(num), db=self.db[C.NUMBERS_DB])
        self.changed(b"n", num.number)
        held = num.account if num.state in C.HELD_STATES else ""
        was = before.account if before is not None and before.state in C.HELD_STATES else ""
        if held != was:  # the account -> numbers index follows the holder
            if was:
                self.txn.delete(C.account_number_key(was, num.number), db=self.db[C.ACCOUNT_NUMBERS_DB])
            if held:
                self.txn.put(C.account_number_key(held, num.number), b"", db=self.db[C.ACCOUNT_NUMBERS_DB])
        self.event(num.account or (before.account if before else ""), num.number, detail or {}, before, num)

    def changed(self, kind: bytes, ident: str) -> None:
        """Log a record this operation writes under the generation it
        commits as (``cust_changes``: how every view updates itself)."""
        gen = C.get_counter(self.txn, self.db[C.META_DB], C.GENERATION) + 1
        self.txn.put(C.change_key(gen, kind, ident), b"", db=self.db[C.CHANGES_DB])

    def set_state(self, num: C.Number, state: str) -> None:
        num.state = state
        num.since_ms = self.at
        num.history = [*num.history, (state, self.at)]

    def event(self, account: str, number: str, detail: dict, before, after) -> int:
        meta = self.db[C.META_DB]
        seq = C.get_counter(self.txn, meta, C.NEXT_SEQ) + 1
        C.put_counter(self.txn, meta, C.NEXT_SEQ, seq)
        ev = C.Event(seq, self.at, now_ms(), self.actor, self.operation, self.request_id, account, number,
                     detail, C.as_dict(before) if before is not None else {},
                     C.as_dict(after) if after is not None else {})
        if not self.detail:
            self.detail = detail
        self.txn.put(C.seq_key(seq), C.encode(ev), db=self.db[C.EVENTS_DB])
        if account:
            self.txn.put(C.event_index_key(account, self.at, seq), b"", db=self.db[C.EVENT_INDEX_DB])
        self.seq = seq
        return seq

    # credit: the ledger's balances, under the account's terms
    def balance(self, acc: C.Account):
        """The ledger's ``Balance`` of the account's current period, or None
        without a package."""
        terms = self.ops.terms(acc)
        if terms is None:
            return None
        live = self.w.live if self.w is not None else None
        return self.ops.ledger.balance(acc.id, terms, self.at, txn=self.txn, live=live)

    def credit(self, acc: C.Account, delta_minor: int):
        """Top-up (> 0) or debit (< 0) through the ledger; a debit below the
        available balance is refused ``insufficient_credit``."""
        try:
            after = self.ops.ledger.apply_credit(self.w, acc.id, delta_minor, self.ops.terms(acc), self.at)
        except InsufficientCredit as e:
            raise Refused("insufficient_credit", f"available is {in_yuan(e.available_minor)}; "
                                                 f"cannot debit {in_yuan(e.debit_minor)}") from None
        if after.credit_minor > MAX_BALANCE_MINOR:  # raising aborts the write: nothing stored
            raise Refused("balance_limit", f"credit would be {in_yuan(after.credit_minor)}, above the "
                                           f"limit of {in_yuan(MAX_BALANCE_MINOR)}")
        return after


# The longest ``actor`` (who asks, recorded in every audit event), in
# characters: a person's or a system's name. Unbounded, a gRPC Sweep's actor
# of megabytes was written into every event it made (hostile-input round).
MAX_ACTOR_CHARS = 64

# What a money operation is called in a message (``_first_held``).
_MONEY_WORDS = {"top_up": "a top-up", "pay": "a bill payment", "adjust": "a credit adjustment", "refund": "a refund"}


def _actor(actor: str | None) -> str | None:
    """``actor`` as given (None or "" for the caller's default); raises
    InvalidInput naming ``actor`` when it is longer than MAX_ACTOR_CHARS,
    blank (spaces only: an audit event names who asked, and "" already
    means the default), or holds a character ``str.isprintable`` refuses
    (control and format characters, and every space other than U+0020,
    e.g. U+00A0 NO-BREAK SPACE: it is printed back in event listings and
    searched for); the message shows the value escaped and names the
    character (breaker N11 F15: it blamed length and control characters)."""
    if not actor:
        return actor
    if len(actor) > MAX_ACTOR_CHARS:
        raise InvalidInput("actor", f"at most {MAX_ACTOR_CHARS} characters (got {len(actor):,})")
    if not actor.strip():
        raise InvalidInput("actor", f"{actor!r} is blank: name who asks, or leave it empty for the default")
    bad = next((c for c in actor if not c.isprintable()), None)
    if bad is not None:
        import unicodedata

        name = unicodedata.name(bad, "a control character")
        raise InvalidInput("actor", f"{actor!r} holds U+{ord(bad):04X} ({name}), at character "
                                    f"{actor.index(bad) + 1}: an actor is printable text, its only space "
                                    "U+0020")
    return actor


class Accounts:
    """Customer operations over one store's ledger (see the module doc).

    ``Accounts(store, ledger)``; every operation takes ``request_id``
    (client-chosen, unique per operation), ``actor`` (who asks; recorded)
    and optional ``at_ms`` (effective time, default now) and returns the
    result as a dict: ``request_id``, ``operation``, ``seq`` (audit event),
    ``account`` / ``number`` (records after), ``balance`` (minor units and
    seconds), ``detail``, ``replayed``."""

    def __init__(self, store, ledger):
        self.store = store
        self.ledger = ledger
        self.env = ledger.env
        self.db = layer_dbs(self.env)
        self._meta_version = None
        self._meta: dict = {}

    @classmethod
    def open(cls, store_dir: str | Path) -> "Accounts":
        from ..store import Ledger, Store

        return cls(Store(store_dir, create=False), Ledger(store_dir))

    # -- the catalog's products and rules --------------------------------------
    def catalog(self) -> dict:
        """The active catalog version's meta (packages, grades, rules)."""
        v = self.store.current()
        if v != self._meta_version:
            snap = self._snapshot = self.store.open(v)  # held: its tables are views of the map
            self._meta, self._tables = snap.meta, snap.tables
            self._limits = package_credit_limits(snap.tables)
            self._meta_version = v
        return self._meta

    def terms(self, acc: C.Account) -> AccountTerms | None:
        """What the account's balance means (``ledger.AccountTerms``) under
        its package in the active catalog; None without a package."""
        meta = self.catalog()
        if acc.package not in meta["packages"]:
            return None
        p = meta["packages"].index(acc.package)
        t = self._tables
        return AccountTerms(
            kind=layout.PACKAGE_KIND[int(t["package_kind"][p])], package_start_ms=acc.package_start_ms,
            expiry_ms=acc.period_end_ms, opening_credit_minor=acc.opening_credit_minor,
            credit_limit_minor=int(self._limits[p]), included_seconds=int(t["package_included_seconds"][p]),
            overage_rate=int(t["package_overage_rate"][p]))

    def rules(self) -> CustomerRules:
        # Stored already in minor units: constructed, not validated again.
        return CustomerRules.model_construct(**self.catalog().get("customer_rules", {}))

    def _package(self, name: str, field: str = "package") -> dict:
        pkgs = self.catalog().get("package_rules", {})
        if name not in pkgs:
            raise InvalidInput(field, f"unknown package {name!r} (catalog has: {', '.join(pkgs) or 'none'})")
        return pkgs[name]

    # -- the runner --------------------------------------------------------------
    def _run(self, operation: str, request_id: str, actor: str, at_ms, fn) -> dict:
        if not request_id or len(request_id) > 200:
            raise InvalidInput("request_id", "required, at most 200 characters")
        if not request_id.strip() or not request_id.isprintable():
            # A key people and logs must be able to read back and quote.
            raise InvalidInput("request_id", "blank, or holds a control character")
        if request_id != request_id.strip():
            # ' r1' and 'r1 ' were ids other than 'r1', so a padded retry (a CSV or
            # spreadsheet cell) booked a second payment (breaker8 F2). Refused, never
            # trimmed: a trimmed ' r1' would be taken for the 'r1' of another request.
            raise InvalidInput("request_id", f"{excerpt(request_id)}: begins or ends with a space "
                                             "(give the id exactly, with no surrounding whitespace)")
        at = now_ms() if at_ms is None else _at(at_ms)
        actor = _actor(actor) or "operator"
        rid = request_id.encode()
        with self.ledger.write() as w:
            txn = w.txn
            raw = txn.get(rid, db=self.db[C.REQUESTS_DB])
            digest = _CONTENT.get()
            if raw is not None:
                first = C.decode(C.OperationResult, raw)
                if first.operation != operation:
                    raise InvalidInput("request_id", f"already used for {first.operation}")
                # Records from before digests were stored ("") replay as before.
                if first.content_digest and digest and first.content_digest != digest:
                    raise InvalidInput("request_id", f"request id reused with different content "
                                                     f"(first used for {first.operation} seq {first.seq})")
                # An explicit date is content too: a retry that gives another one
                # would be told its date was applied when the first one's stands
                # (breaker N13 F11). No date given (now) replays, as does a
                # sweep's transition, keyed by its own state and date.
                if at_ms is not None and first.at_ms and first.at_ms != at and _SWEEP_AT.get() is None:
                    raise InvalidInput("request_id", f"request id reused with different content (first used for "
                                                     f"{first.operation} seq {first.seq} dated "
                                                     f"{_local(first.at_ms)}, this one dated {_local(at)})")
                return {**_public(first), "replayed": True}
            tx = _Tx(self, w, at, actor, request_id, operation)
            res = fn(tx)
            res.request_id, res.operation, res.seq = request_id, operation, tx.seq
            res.detail = res.detail or tx.detail
            res.content_digest, res.at_ms = digest, at
            txn.put(rid, C.encode(res), db=self.db[C.REQUESTS_DB])
            meta = self.db[C.META_DB]
            tx.changed(b"g", "")  # this generation's log is complete
            C.put_counter(txn, meta, C.GENERATION, C.get_counter(txn, meta, C.GENERATION) + 1)
        return {**_public(res), "replayed": False}

    def _result(self, tx: _Tx, acc: C.Account | None = None, num: C.Number | None = None, **detail):
        bal = self._balance_dict(tx, acc) if acc is not None else None
        return C.OperationResult("", "", 0, account=C.as_dict(acc) if acc else None,
                                 number=C.as_dict(num) if num else None, balance=bal, detail=detail)

    def _balance_dict(self, tx: _Tx, acc: C.Account) -> dict | None:
        bal = tx.balance(acc)
        if bal is None:
            return None
        # Balance holds plain ints and a str: a flat copy is what asdict's
        # recursive deep copy gives, at a tenth of its cost (per operation).
        out = {f.name: getattr(bal, f.name) for f in dataclasses.fields(bal)}
        if bal.kind != "bundle":  # no bundle, so no bundle seconds: null, not 0 (as the rated output's)
            out.update(bundle_left_seconds=None, reserved_seconds=None, available_seconds=None)
        return out

    # -- accounts and real-name ------------------------------------------------------
    @_operation
    def open_account(self, request_id: str, account: str, company: str, actor: str = "", at_ms=None) -> dict:
        """A new enterprise account (no package, real-name ``none``).
        Refused: ``account_exists``."""
        if not _ACCOUNT_ID.match(account or ""):
            raise InvalidInput("account", "1-64 letters, digits, '_', '.', '-'")
        if not (company or "").strip():
            raise InvalidInput("company", "required (the enterprise's registered name)")

        def fn(tx: _Tx):
            if tx.txn.get(account.encode(), db=self.db[C.ACCOUNTS_DB]) is not None:
                raise Refused("account_exists", f"account {account!r} is already open")
            row = C.take_row(tx.txn, self.db[C.META_DB])
            acc = C.Account(id=account, row=row, company=company.strip(), created_ms=tx.at)
            tx.put_account(acc, None)
            return self._result(tx, acc)
        return self._run("open_account", request_id, actor, at_ms, fn)

    @_operation
    def submit_documents(self, request_id: str, account: str, documents: list[tuple[str, str]],
                         actor: str = "", at_ms=None) -> dict:
        """Record real-name documents ((kind, archive reference) pairs) and
        put the account's real-name review to ``pending``. The file must then
        hold a business licence and the legal representative's ID.
        Refused: ``already_verified``, ``documents_missing``."""
        if not documents:
            raise InvalidInput("documents", "at least one (kind, reference)")
        for i, (kind, ref) in enumerate(documents):
            if kind not in DOCUMENT_KINDS:
                raise InvalidInput(f"documents[{i}].kind", f"{kind!r}: one of {', '.join(DOCUMENT_KINDS)}")
            if not (ref or "").strip():
                raise InvalidInput(f"documents[{i}].reference", "required (the document's archive id)")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if acc.realname == "verified":
                raise Refused("already_verified", f"account {account!r} is already real-name verified")
            acc.documents = [*acc.documents, *(C.Document(k, r.strip(), tx.at) for k, r in documents)]
            missing = [k for k in REQUIRED_DOCUMENTS if k not in {d.kind for d in acc.documents}]
            if missing:
                raise Refused("documents_missing", f"the file still needs: {', '.join(missing)}")
            acc.realname = "pending"
            acc.realname_note = ""
            tx.put_account(acc, before, {"documents": [list(d) for d in documents]})
            return self._result(tx, acc)
        return self._run("submit_documents", request_id, actor, at_ms, fn)

    @_operation
    def review_realname(self, request_id: str, account: str, approve: bool, note: str = "",
                        actor: str = "", at_ms=None) -> dict:
        """The review's verdict: pending -> verified, or pending -> rejected
        (``note`` says why; required). Refused: ``not_pending``."""
        if not approve and not (note or "").strip():
            raise InvalidInput("note", "a rejection needs the reason")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if acc.realname != "pending":
                raise Refused("not_pending", f"real-name status is {acc.realname}, not pending")
            acc.realname = "verified" if approve else "rejected"
            acc.realname_note = note.strip()
            tx.put_account(acc, before)
            return self._result(tx, acc)
        return self._run("review_realname", request_id, actor, at_ms, fn)

    # -- number inventory ---------------------------------------------------------------
    def grade_of(self, number: str) -> str:
        """The first catalog grade whose pattern matches, else ``standard``
        (or the first grade)."""
        grades = self.catalog().get("number_grades") or {"standard": {}}
        for g, spec in grades.items():
            if any(fnmatch.fnmatchcase(number, p) for p in spec.get("patterns", [])):
                return g
        return "standard" if "standard" in grades else next(iter(grades))

    @_operation
    def add_numbers(self, request_id: str, numbers: list[str], grade: str | None = None,
                    actor: str = "", at_ms=None) -> dict:
        """Take 400 numbers into the inventory as ``available``, with a grade
        (given, or by the catalog's grade patterns). The result's ``number``
        is the number's record when one is added, None when several are (it
        held the last one, read as the only one); ``detail.numbers`` lists
        every one added, in order (``count`` of them). InvalidInput for a
        number given twice.
        Refused: ``number_exists``."""
        if not numbers:
            raise InvalidInput("numbers", "at least one 400 number")
        normal = [_number_400(n, f"numbers[{i}]") for i, n in enumerate(numbers)]
        # A number given twice is refused, not added once: it is most likely a
        # typo for another number, and "already in the inventory" (what the
        # second one met) would say nothing was added when none was.
        first: dict[str, int] = {}
        for i, n in enumerate(normal):
            if n in first:
                raise InvalidInput(f"numbers[{i}]", f"{n} is given twice (also numbers[{first[n]}]): "
                                                    "give each number once")
            first[n] = i
        self._grades(grade)

        def fn(tx: _Tx):
            added = []
            for n in normal:
                if tx.txn.get(C.number_key(n), db=self.db[C.NUMBERS_DB]) is not None:
                    raise Refused("number_exists", f"{n} is already in the inventory")
                added.append(C.Number(n, grade or self.grade_of(n), "available", tx.at, [("available", tx.at)]))
                tx.put_number(added[-1], None)
            return self._result(tx, num=added[0] if len(added) == 1 else None, count=len(normal),
                                numbers=[{"number": a.number, "grade": a.grade, "state": a.state} for a in added])
        return self._run("add_numbers", request_id, actor, at_ms, fn)

    def search_numbers(self, pattern: str = "*", grade: str | None = None, state: str = "available",
                       limit: int = 50) -> list[dict]:
        """Numbers in ``state`` whose digits match ``pattern`` (shell style:
        ``400?888*``; a pattern without wildcards matches as a substring),
        with their grade and its catalog price (minor units), at most
        ``limit`` (1..SEARCH_MOST). ``InvalidInput`` naming ``pattern``,
        ``state``, ``limit`` or ``grade`` (one the catalog does not have)."""
        if not re.fullmatch(r"[0-9*?]{1,20}", pattern or ""):  # no [...] classes (breaker: [0-9] found nothing)
            raise InvalidInput("pattern", "digits with * and ? wildcards")
        if state not in C.NUMBER_STATES:
            raise InvalidInput("state", f"one of {', '.join(C.NUMBER_STATES)}")
        if not 1 <= limit <= SEARCH_MOST:
            raise InvalidInput("limit", f"1 to {SEARCH_MOST}, not {limit}")
        pat = pattern if any(c in pattern for c in "*?") else f"*{pattern}*"
        grades = self._grades(grade)
        out = []
        with self.env.begin(db=self.db[C.NUMBERS_DB]) as txn:
            for k, v in txn.cursor():
                if not fnmatch.fnmatchcase(bytes(k).decode(), pat):
                    continue
                num = C.decode(C.Number, v)
                if num.state != state or (grade and num.grade != grade):
                    continue
                g = grades.get(num.grade, {})
                out.append({"number": num.number, "grade": num.grade, "state": num.state,
                            "opening_fee_minor": g.get("opening_fee", 0),
                            "monthly_rental_minor": g.get("monthly_rental", 0)})
                if len(out) >= limit:
                    break
        return out

    def list_accounts(self, status=None, package: str | None = None, after: str = "",
                      limit: int = LIST_DEFAULT) -> list[dict]:
        """The live accounts in id order (UTF-8 byte order, the key order of
        ``cust_accounts``) after the id ``after`` (``""``: from the first; an
        id no account has lists the ones that sort after it), at most
        ``limit`` (1..LIST_MOST): the next page is ``after`` = the last id
        listed. ``status``: the statuses kept (a str, comma-separated, or a
        list of them; None or empty: all), each one of ``ACCOUNT_STATES``;
        ``package``: only accounts subscribed to it (a catalog package).

        Each row: ``id``, ``company``, ``status`` (``ACCOUNT_STATES``),
        ``suspend_reason`` (the sweep's ``arrears`` | ``expired``, or an
        operator's reason, ``manual`` when none was given; "" for an account
        never suspended or restored since; a frozen or closed account keeps
        its suspension's), ``suspended_ms`` / ``frozen_ms`` (0: not),
        ``realname``,
        ``package`` ("" none), ``package_kind`` (prepaid | bundle | payg;
        None without a package), ``period_end_ms``, and the
        ledger's ``credit_minor`` and ``available_minor`` (int64 minor
        units, 1/10000 yuan, as ``balance`` names them; None without a
        package). One read transaction: a cursor over the accounts and one
        ledger balance read per row listed, never a statement build.
        ``InvalidInput`` naming ``status``, ``package``, ``after`` or ``limit``."""
        wanted = _statuses(status)
        if package is not None and package != "":
            packages = self.catalog().get("packages", [])
            if package not in packages:
                raise InvalidInput("package", f"unknown package {excerpt(package)} "
                                              f"(catalog has: {', '.join(packages) or 'none'})")
        else:
            package = None
        if not isinstance(after, str):
            raise InvalidInput("after", f"{after!r}: an account id")
        key = after.encode("utf-8", "surrogatepass")
        if len(key) > 256:  # LMDB keys are at most 511 bytes; no account id is near
            raise InvalidInput("after", "longer than any account id (256 bytes)")
        if after:
            check_characters("after", after)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_MOST:
            raise InvalidInput("limit", f"{limit!r}: the most accounts listed, 1 to {LIST_MOST}")
        at = now_ms()
        out: list[dict] = []
        with self.env.begin() as txn, self.ledger.live.begin() as live:
            cur = txn.cursor(db=self.db[C.ACCOUNTS_DB])
            if not cur.set_range(key):
                return out
            for k, v in cur:
                if after and bytes(k) == key:
                    continue
                acc = C.decode(C.Account, v)
                if (wanted and acc.status not in wanted) or (package is not None and acc.package != package):
                    continue
                terms = self.terms(acc) if acc.package else None
                bal = self.ledger.balance(acc.id, terms, at, txn=txn, live=live) if terms is not None else None
                out.append({"id": acc.id, "company": acc.company, "status": acc.status,
                            "suspend_reason": acc.suspend_reason, "suspended_ms": acc.suspended_ms,
                            "frozen_ms": acc.frozen_ms, "realname": acc.realname, "package": acc.package,
                            "package_kind": terms.kind if terms is not None else None,
                            "period_end_ms": acc.period_end_ms,
                            "credit_minor": bal.credit_minor if bal is not None else None,
                            "available_minor": bal.available_minor if bal is not None else None})
                if len(out) >= limit:
                    break
        return out

    def _grades(self, grade: str | None) -> dict:
        """The catalog's number grades (name -> fees); ``InvalidInput``
        naming ``grade`` when it is given and not one of them."""
        grades = self.catalog().get("number_grades") or {"standard": {}}
        if grade is not None and grade not in grades:
            raise InvalidInput("grade", f"unknown grade {excerpt(grade)} (catalog has: {', '.join(grades)})")
        return grades

    def _number_op(self, operation, request_id, number, actor, at_ms, step) -> dict:
        n = _number_400(number, "number")

        def fn(tx: _Tx):
            num = tx.number(n)
            before = C.decode(C.Number, C.encode(num))
            detail = step(tx, num) or {}
            if num.state != before.state and tx.at < before.since_ms and (len(before.history) > 1
                                                                          or not before.account):
                # A number's states are a dated history: a move dated before
                # its current state began rewrote it (issue 12 breaker:
                # beta's activation dated before beta locked the recycled
                # number made it active for beta while acme held it, and
                # acme's late call was charged to beta). An imported
                # number's one state (held by its account) counts since
                # ever: a move of it may be dated back; a number added to
                # the inventory did not exist before its add (breaker 12-02
                # F10: a lock dated before it was taken).
                raise Refused("before_current_state",
                              f"dated {_local(tx.at)}, before number {num.number} became {before.state} "
                              f"({_local(before.since_ms)}); date it at or after that (default now)")
            tx.put_number(num, before, detail)
            acc = tx.account(num.account) if num.account else None
            return self._result(tx, acc, num, **detail)
        return self._run(operation, request_id, actor, at_ms, fn)

    @_operation
    def lock_number(self, request_id: str, number: str, account: str, actor: str = "", at_ms=None) -> dict:
        """available -> locked: chosen and paid for, held for ``account``.
        Refused: ``number_not_available``, ``account_closed``."""
        def step(tx: _Tx, num: C.Number):
            acc = tx.account(account)
            _need(num, "available", "number_not_available")
            if acc.status in ("frozen", "closed"):
                raise Refused("account_closed", f"account {account!r} is {acc.status}")
            num.account = account
            tx.set_state(num, "locked")
            grade = (self.catalog().get("number_grades") or {}).get(num.grade, {})
            return {"opening_fee_minor": grade.get("opening_fee", 0)}
        return self._number_op("lock_number", request_id, number, actor, at_ms, step)

    @_operation
    def submit_number(self, request_id: str, number: str, actor: str = "", at_ms=None) -> dict:
        """locked -> pending_verification: the account's real-name material is
        on file for review. Refused: ``wrong_state``, ``realname_missing``."""
        def step(tx: _Tx, num: C.Number):
            _need(num, "locked")
            acc = tx.account(num.account)
            if acc.realname not in ("pending", "verified"):
                raise Refused("realname_missing", f"account {acc.id!r} has no real-name documents under review")
            tx.set_state(num, "pending_verification")
        return self._number_op("submit_number", request_id, number, actor, at_ms, step)

    @_operation
    def activate_number(self, request_id: str, number: str, home_city: str,
                        billing_start: str = "agent_answer", actor: str = "", at_ms=None) -> dict:
        """pending_verification -> active: the service opens. Needs the
        account real-name verified, subscribed to a package and active.
        ``home_city``: the registered city (region data name).
        Refused: ``wrong_state``, ``realname_not_verified``, ``no_package``,
        ``account_not_active``."""
        if billing_start not in layout.BILLING_START:
            raise InvalidInput("billing_start", f"one of {', '.join(layout.BILLING_START)}")
        meta = self.catalog()
        home_city = home_city.strip() if isinstance(home_city, str) else home_city  # '长春 ' from a form
        if isinstance(home_city, str) and home_city.startswith("city:"):
            home_city = home_city[len("city:"):]  # as a routing plan names a city
        aliases = meta.get("city_aliases", {})
        if home_city not in aliases and home_city not in set(meta["cities"]) and isinstance(home_city, str):
            # 'jilin', 'SHENZHEN': region data's name whatever its case (newcomer: refused)
            folded = {name.casefold(): name for name in (*meta["cities"], *aliases)}
            home_city = folded.get(home_city.casefold(), home_city)
        given, home_city = home_city, aliases.get(home_city, home_city)  # Lu'an, 天津: region data's name
        if given == home_city and home_city in set(meta.get("provinces", ())) and home_city in set(meta["cities"]):
            # A city named as a province elsewhere (Hainan, a prefecture of
            # Qinghai: a Haikou company registered there had every local
            # caller out of town); Jilin, the city of Jilin, is no such name.
            where = meta["provinces"][int(self._tables["city_province"][meta["cities"].index(home_city)])]
            if where != home_city:
                of = [c for c, p in zip(meta["cities"], self._tables["city_province"].tolist())
                      if meta["provinces"][p] == home_city]
                raise InvalidInput("home_city", f"{excerpt(home_city)} names the province {home_city} and a city "
                                                f"of {where}: give a city of the province ({', '.join(of)}) or "
                                                f"this one as '{home_city}, {where}'")
        if home_city not in set(meta["cities"]):
            province = PROVINCE_ALIASES.get(home_city, home_city if home_city in set(meta.get("provinces", ())) else None)
            if province is not None:  # 广东, Guangdong: a province, where a number is registered in a city
                raise InvalidInput("home_city", f"{excerpt(home_city)} is a province ({province}); give the city "
                                                "the number is registered in")
            # Provinces are candidates too: 'Guangdon' is nearest the
            # province Guangdong, and was offered the city GuangAn (newcomer).
            provinces = {*PROVINCE_ALIASES, *meta.get("provinces", ())}
            found = nearest_region(home_city, [*aliases, *meta["cities"], *provinces])
            near = ("" if found is None else f"; did you mean {found!r}?" if found not in provinces
                    else f"; did you mean the province {PROVINCE_ALIASES.get(found, found)!r}? give the city "
                         "the number is registered in")
            raise InvalidInput("home_city", f"unknown city {excerpt(home_city)} (not in region data){near}")

        def step(tx: _Tx, num: C.Number):
            _need(num, "pending_verification")
            acc = tx.account(num.account)
            if acc.realname != "verified":
                raise Refused("realname_not_verified", f"account {acc.id!r} real-name status is {acc.realname}")
            if not acc.package:
                raise Refused("no_package", f"account {acc.id!r} has no package")
            if acc.status != "active":
                raise Refused("account_not_active", f"account {acc.id!r} is {acc.status}")
            num.home_city, num.billing_start = home_city, billing_start
            tx.set_state(num, "active")
        return self._number_op("activate_number", request_id, number, actor, at_ms, step)

    # -- destinations and routing ---------------------------------------------------------
    @_operation
    def bind_destination(self, request_id: str, number: str, destination: str, actor: str = "", at_ms=None) -> dict:
        """Bind a phone to a held number. It is routed only after
        ``verify_destination``. Refused: ``number_not_held``, ``already_bound``."""
        dest = normalize(destination, "destination")

        def step(tx: _Tx, num: C.Number):
            if num.state not in C.HELD_STATES:
                raise Refused("number_not_held", f"{num.number} is {num.state}")
            if any(d.number == dest for d in num.destinations):
                raise Refused("already_bound", f"{dest} is already bound to {num.number}")
            if len(num.destinations) >= 100:
                raise Refused("too_many_destinations", "at most 100 destinations per number")
            num.destinations = [*num.destinations, C.Destination(dest, tx.at)]
            return {"destination": dest}
        return self._number_op("bind_destination", request_id, number, actor, at_ms, step)

    @_operation
    def verify_destination(self, request_id: str, number: str, destination: str, proof: str,
                           actor: str = "", at_ms=None) -> dict:
        """Record the bound phone's own real-name proof (its phone bill:
        ``proof`` is the archive reference); from now on it is routed.
        Refused: ``not_bound``, ``already_verified``."""
        dest = normalize(destination, "destination")
        if not (proof or "").strip():
            raise InvalidInput("proof", "required: the phone bill's archive reference")

        def step(tx: _Tx, num: C.Number):
            for i, d in enumerate(num.destinations):
                if d.number == dest:
                    if d.verified:
                        raise Refused("already_verified", f"{dest} is already verified")
                    num.destinations = [*num.destinations[:i],
                                        C.Destination(dest, d.bound_ms, True, proof.strip(), tx.at),
                                        *num.destinations[i + 1:]]
                    return {"destination": dest}
            raise Refused("not_bound", f"{dest} is not bound to {num.number}")
        return self._number_op("verify_destination", request_id, number, actor, at_ms, step)

    @_operation
    def unbind_destination(self, request_id: str, number: str, destination: str, actor: str = "", at_ms=None) -> dict:
        """Unbind a phone; it is no longer routed. Refused: ``not_bound``."""
        dest = normalize(destination, "destination")

        def step(tx: _Tx, num: C.Number):
            kept = [d for d in num.destinations if d.number != dest]
            if len(kept) == len(num.destinations):
                raise Refused("not_bound", f"{dest} is not bound to {num.number}")
            num.destinations = kept
            return {"destination": dest}
        return self._number_op("unbind_destination", request_id, number, actor, at_ms, step)

    @_operation
    def set_routing(self, request_id: str, number: str, template: str | None = None, plan: dict | str | None = None,
                    actor: str = "", at_ms=None) -> dict:
        """Give a number a routing plan: a catalog template by name, or a plan
        document (the catalog's routing-plan form, JSON). Only verified bound
        destinations of the plan are routed. Neither: back to the default (a
        sequential hunt over the bound destinations). Refused: ``number_not_held``."""
        if template and plan:
            raise InvalidInput("plan", "give a template or a plan, not both")
        name, stored = "", ""
        doc: dict | str = ""  # the plan as given (JSON text or decoded); stored: as kept
        if template:
            templates = self.catalog().get("routing_templates", {})
            if template not in templates:
                raise InvalidInput("template", f"unknown routing plan template {template!r}")
            name, doc = template, templates[template]
        elif plan:
            name, doc = "plan", plan
        if doc:
            try:
                model = (RoutingPlan.model_validate_json(doc) if isinstance(doc, str)
                         else RoutingPlan.model_validate(doc))
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise InvalidInput(f"plan.{where}" if where else "plan", error_message(first)) from None
            _check_free_text("plan", model.model_dump(mode="json"))  # `route` prints its names
            stored = plan_json(self._regions_checked(model))

        wanted = [] if not stored else list(dict.fromkeys(
            d.number for g in RoutingPlan.model_validate_json(stored).groups.values() for d in g.destinations))

        def step(tx: _Tx, num: C.Number):
            if num.state not in C.HELD_STATES:
                raise Refused("number_not_held", f"{num.number} is {num.state}")
            before, before_doc = num.plan_name, num.plan  # newcomer N10: a revert lost a catalog plan unnamed
            num.plan_name, num.plan = name, stored
            detail: dict = {"template": template or "", "previous_plan": before}
            warnings = _unrouted_warnings(num, wanted)
            # Named when it is replaced by another: a plan document only when it differs.
            if before and (before != name or (before == "plan" and before_doc != stored)):
                again = ("set it again with --plan FILE (gRPC SetRouting plan)" if before == "plan"
                         else f"rating400 accounts number routing {num.number} --template {before}")
                now = f"template {name}" if template else "a plan document" if plan else (
                    "no plan (calls ring the bound destinations in turn, the default)")
                warnings = [f"{num.number} had routing plan {before!r} before, now {now}; to restore it: {again}",
                            *warnings]
            if warnings:
                detail["warnings"] = warnings
            return detail
        return self._number_op("set_routing", request_id, number, actor, at_ms, step)

    def _regions_checked(self, plan: RoutingPlan) -> RoutingPlan:
        """``plan`` with its region names in region data's spelling (the
        snapshot's ``city_aliases``: ``Lu'an`` -> ``LuAn``); raises
        InvalidInput naming ``plan.<field>`` for a name that is no province
        or city of the active catalog's region data."""
        meta = self.catalog()
        doc = plan.model_dump(mode="json", exclude_defaults=True)
        canonical_plan_regions(doc, meta.get("city_aliases", {}))
        plan = RoutingPlan.model_validate(doc)
        cities = {c: i for i, c in enumerate(meta["cities"])}
        provinces = {p: i for i, p in enumerate(meta["provinces"])}
        for field, name in region_names(plan):
            if resolve_region(name, cities, provinces) is None:
                near = near_region(name, [*meta.get("city_aliases", {}), *PROVINCE_ALIASES, *cities,
                                           *provinces])  # the data's names win
                raise InvalidInput(f"plan.{field}", f"unknown region {excerpt(name)} "
                                                    f"(not a province or city of the region data){near}")
        return plan

    @_operation
    def set_caps(self, request_id: str, number: str, spend_minor: int = 0, calls: int = 0,
                 actor: str = "", at_ms=None) -> dict:
        """Per-number monthly caps on spend (minor units) and on calls (0: none)."""
        _limit(spend_minor, "spend_minor")
        if isinstance(calls, bool) or not isinstance(calls, int) or not 0 <= calls <= 2**31 - 1:
            raise InvalidInput("calls", f"{calls!r}: a whole number 0 .. {2**31 - 1}")

        def step(tx: _Tx, num: C.Number):
            num.cap_spend_minor, num.cap_calls = int(spend_minor), int(calls)
        return self._number_op("set_caps", request_id, number, actor, at_ms, step)

    # -- packages -------------------------------------------------------------------------
    def _start_period(self, tx: _Tx, acc: C.Account, package: str, start_ms: int, carried: int) -> int:
        """Put ``acc`` on ``package`` from ``start_ms``: a new balance period
        whose opening credit is ``carried`` + the package fee (prepaid). The
        ledger's balance of the old start is history from now on (its rule:
        a new package start opens with the terms' opening credit). Returns
        the opening credit."""
        pkg = self._package(package)
        acc.package, acc.package_start_ms = package, start_ms
        acc.pending_package, acc.pending_effective_ms = "", 0
        credit = carried
        if pkg["kind"] == "prepaid":
            credit += pkg["fee"]
            acc.period_end_ms = add_months_ms(start_ms, pkg["period_months"])
        else:
            acc.period_end_ms = C.NEVER_MS
        acc.opening_credit_minor = credit
        return credit

    @_operation
    def subscribe(self, request_id: str, account: str, package: str, start_ms=None,
                  actor: str = "", at_ms=None) -> dict:
        """First package of an account, from ``start_ms`` (default the
        effective time; calls before it are refused ``package_not_started``).
        A prepaid package's fee becomes its call credit.
        Refused: ``already_subscribed``, ``account_closed``, ``month_ended``
        (``start_ms`` in an Asia/Shanghai month before the operation's
        date, default now: its statement has been issued, and
        a start there billed every month since -- breaker8 F8: ``--start
        1970-01-01`` on an account opened today billed 67,716.00 yuan of
        rentals, and a prepaid fee paid today expired in 2002; a platform
        migrating history uses ``accounts import --billing-from``). The package
        is checked and the account put on it while no activation can land
        (``Store.pinned``)."""
        start_ms = None if start_ms is None else _ms(start_ms, "start")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if acc.package:
                raise Refused("already_subscribed", f"account {account!r} has package {acc.package!r}; change it instead")
            if acc.status == "closed":
                raise Refused("account_closed", f"account {account!r} is closed")
            start = tx.at if start_ms is None else start_ms
            from .importer import month_start

            begun = month_start(tx.at)
            if start < begun:
                raise Refused("month_ended",
                              f"start {_local(start)} is in a month that has ended (this month began "
                              f"{_local(begun)}): a package starting there would bill every month since; start "
                              f"it this month or later (a platform moving its history uses `rating400 accounts "
                              f"import --billing-from`)")
            credit = self._start_period(tx, acc, package, start, 0)
            tx.put_account(acc, before, {"package": package, "credit_minor": credit})
            return self._result(tx, acc)
        with self.store.pinned():
            self._package(package)
            return self._run("subscribe", request_id, actor, at_ms, fn)

    @_operation
    def renew(self, request_id: str, account: str, actor: str = "", at_ms=None,
              allow_ended_months: bool = False) -> dict:
        """Renew a prepaid package: a new period starts at the effective time
        with the fee as new credit plus the credit left (early renewal keeps
        what was paid for; a renewal after the period ended starts from zero,
        the old credit having expired). Refused: ``not_prepaid``, ``no_package``,
        ``account_closed``, ``change_scheduled`` (a package change is
        scheduled, ``change_package`` with a later date: the new period
        would drop it, newcomer 12-02 F5; the message names it, its date,
        and how to cancel it first); ``before_package_start`` /
        ``at_package_start`` (the effective time before / at the current
        period's start: the new period would start before the one it renews,
        or replace it the instant it began, whose ledger balance it shares;
        the message names both dates; breaker2 B6); ``month_ended`` (its date, ``at_ms``,
        in an Asia/Shanghai month before now's: ``_not_in_ended_month``;
        breaker 12-02 F2), unless ``allow_ended_months=True``: the one
        opt-in, for a migration replaying a story dated back; the CLI and
        AccountService never pass it."""
        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if not acc.package:
                raise Refused("no_package", f"account {account!r} has no package")
            if not allow_ended_months:
                _not_in_ended_month(tx.at, acc.package, account, now_ms())
            if acc.status == "closed":
                raise Refused("account_closed", f"account {account!r} is closed")
            if self._package(acc.package)["kind"] != "prepaid":
                raise Refused("not_prepaid", f"package {acc.package!r} has no period to renew")
            if acc.pending_package:
                raise Refused("change_scheduled",
                              f"account {account!r} has a change to package {acc.pending_package!r} scheduled "
                              f"for {_local(acc.pending_effective_ms)}; a renewal would drop it. To renew "
                              f"{acc.package!r} instead, cancel the change first (`rating400 accounts "
                              f"change-package {account} {acc.package}`, its current package; gRPC ChangePackage), "
                              f"then renew; to keep the change, do not renew; to move it, `rating400 accounts "
                              f"change-package {account} {acc.pending_package} --effective DATE`")
            if tx.at <= acc.package_start_ms:
                # A renewal starts a new period at its date: one before the
                # current period's start would run before the period it
                # renews (breaker2 B6: `renew --at` 00:00 after a change made
                # at 17:00); one at it would replace that period the instant
                # it began, and the ledger keeps one balance per period start:
                # with a call or money already booked under the period, the
                # renewal's fee was lost (480.00 + 600.00 - 1.00 + 600.00:
                # ledger 1079.00, statement 1679.00; B5's CLI story, 960.00).
                early = tx.at < acc.package_start_ms
                raise Refused("before_package_start" if early else "at_package_start",
                              f"renewal dated {_local(tx.at)} is {'before' if early else 'at'} the start of the "
                              f"current period of package {acc.package!r} of account {account!r} "
                              f"({_local(acc.package_start_ms)}); a renewal is dated after it (or now)")
            carried = max(0, tx.balance(acc).credit_minor)  # 0 once the period has ended: expired
            credit = self._start_period(tx, acc, acc.package, tx.at, carried)
            self._maybe_restore(tx, acc, credit)
            tx.put_account(acc, before, {"carried_minor": carried, "credit_minor": credit})
            return self._result(tx, acc)
        return self._run("renew", request_id, actor, at_ms, fn)

    @_operation
    def change_package(self, request_id: str, account: str, package: str, effective_ms=None,
                       actor: str = "", at_ms=None, allow_ended_months: bool = False) -> dict:
        """Change package from ``effective_ms`` (default now; a later date
        waits, and the sweep applies it then). The rule (README): credit left
        carries over (a prepaid target adds its fee and starts a new period;
        from a postpaid package only what the statements leave unapplied,
        ``_apply_change``);
        a bundle starts fresh at the effective date (seconds used before are
        not carried); the month's minimum is the one of the package in force
        at the month's start (``billing.statements``). Refused: ``no_package``, ``same_package``, ``account_closed``,
        ``before_package_start`` (``effective_ms`` before the current package period's start),
        ``at_package_start`` (``effective_ms`` at that start: the current
        period would run no time; breaker2 B6; both messages name the two dates),
        ``month_ended`` (``effective_ms`` in an Asia/Shanghai month before
        now's or the operation's, whichever is later: that month's statement
        stands, breaker N15; an operation dated back by ``at`` went round
        it, breaker 12-02 F2; ``_not_in_ended_month``. With
        ``allow_ended_months=True``, the opt-in for a migration replaying a
        story dated back, only the operation's own month counts; the CLI
        and AccountService never pass it), ``cancel_takes_no_date``. A
        change replacing a scheduled one (a later date, or now) names it in
        its detail (``replaced_package``, ``replaced_effective_ms``); the
        account's current ``package`` while a change is scheduled cancels
        that change (detail ``cancelled_package``,
        ``cancelled_effective_ms``; newcomer 12-02 F5: how a renewal refused
        ``change_scheduled`` goes ahead). The
        package is checked and the change committed while no activation can
        land (``Store.pinned``: a rollback to a version lacking the package
        racing the change let both pass, issue 12 breaker)."""
        effective_ms = None if effective_ms is None else _ms(effective_ms, "effective")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if not acc.package:
                raise Refused("no_package", f"account {account!r} has no package; subscribe first")
            if acc.package == package and not acc.pending_package:
                raise Refused("same_package", f"account {account!r} is already on {package!r}")
            if acc.status == "closed":
                raise Refused("account_closed", f"account {account!r} is closed")
            if acc.package == package:  # back to the package it is on: the scheduled change is cancelled
                if effective_ms is not None:
                    # A date here cannot be honoured: one change is scheduled at
                    # a time, and a cancel is now (breaker 12-02 F5: "back from
                    # March" cancelled at once, the date dropped without a word).
                    raise Refused("cancel_takes_no_date",
                                  f"account {account!r} is on {package!r}: a change to it cancels the change to "
                                  f"{acc.pending_package!r} scheduled for {_local(acc.pending_effective_ms)}, now, "
                                  f"and takes no effective date (one change is scheduled at a time); cancel without "
                                  f"one, and schedule the next change after the first has taken effect")
                detail = {"package": package, "cancelled_package": acc.pending_package,
                          "cancelled_effective_ms": acc.pending_effective_ms}
                acc.pending_package, acc.pending_effective_ms = "", 0
                tx.put_account(acc, before, detail)
                return self._result(tx, acc)
            when = tx.at if effective_ms is None else effective_ms
            if when < acc.package_start_ms:
                # Calls before the contract would be charged, statements reach
                # back to the change (breaker: effective 1970 billed from 1970-01).
                raise Refused("before_package_start",
                              f"effective {_local(when)} is before package {acc.package!r} of account {account!r} "
                              f"started ({_local(acc.package_start_ms)}); a change takes effect after it")
            # The month of the operation's own date always, and now's unless a story dated back is allowed.
            _not_in_ended_month(when, acc.package, account, tx.at if allow_ended_months else max(tx.at, now_ms()))
            if when == acc.package_start_ms:
                # The current period would run no time: replaced at the
                # instant it began, sharing its ledger balance (one per period
                # start; breaker2 B6: pre_b -> pay -> pre_b at one instant left
                # a statement that a later carry read wrong, 480.00 lost).
                raise Refused("at_package_start",
                              f"effective {_local(when)} is the start of package {acc.package!r} of account "
                              f"{account!r} ({_local(acc.package_start_ms)}): it would run no time; a change "
                              f"takes effect after the current period's start (date it later, or now)")
            if when > tx.at:
                detail = {"package": package, "effective_ms": when, "pending": True, **_replaced(acc)}
                acc.pending_package, acc.pending_effective_ms = package, when
                tx.put_account(acc, before, detail)
                return self._result(tx, acc)
            self._apply_change(tx, acc, package, when, before)
            return self._result(tx, acc, **self._rated_before_change(tx, acc.id, before.package, package, when))
        with self.store.pinned():
            self._package(package)
            return self._run("change_package", request_id, actor, at_ms, fn)

    def _rated_before_change(self, tx: _Tx, account: str, old: str, package: str, when: int) -> dict:
        """A change dated back over calls already committed (epoch ms
        ``when`` at or before their start) leaves them rated under ``old``
        until a rerating re-prices them under the periods now in force
        (breaker8 F5: a 1.80 pay-as-you-go call stayed 1.80 under a prepaid
        change dated before it, and ``rerate`` with the same catalog found
        -0.60). The change is not refused -- dating it as it was agreed is
        the operator's right -- but its result says so, with the command:
        ``{"warnings": [...]}``, empty without such calls."""
        from ..billing.sources import committed_calls

        calls = committed_calls(self.ledger, lo_ms=when, account=account, txn=tx.txn).num_rows
        if not calls:
            return {}
        day, today = _local(when)[:10], _local(max(tx.at, now_ms()))[:10]
        return {"warnings": [
            f"{calls} call(s) of account {account!r} committed since {_local(when)} were rated under package "
            f"{old!r}, not {package!r}: re-price them with `rating400 rerate --store DIR --version "
            f"{self.store.current()} --from {day} --to {today} --account {account}` (README \"Rerating\")"]}

    def _apply_change(self, tx: _Tx, acc: C.Account, package: str, when: int, before: C.Account) -> None:
        """Put ``acc`` on ``package`` from ``when`` (epoch ms; a change now,
        or the sweep applying a scheduled one), carrying its credit above
        zero into the new period (minor units; none once a prepaid period
        has ended; between postpaid packages the credit as it is, a debt
        too, still counted against the new credit limit). From a postpaid package (pay-as-you-go, bundle) to a
        prepaid one the credit carried is what the statements leave
        unapplied at the change (``_unapplied_at_change``), never more than
        the ledger's credit: the ledger never held the postpaid bill's fees
        (rental, features, the minimum's shortfall), which the month's
        statement pays from the payments first (breaker 12-02 F2: a bundle
        with a 200.00 payment carried its 50.00 rental into refundable
        prepaid credit). The rest of the ledger's credit paid those bills and
        leaves the ledger here: ``applied_to_bills_minor`` in the event's
        detail (0 when nothing was applied)."""
        bal = tx.balance(acc)
        carried = max(0, bal.credit_minor) if bal is not None and when < acc.period_end_ms else 0
        old = acc.package
        applied: dict = {}
        after_part: int | None = None  # of the credit carried, the money dated at or after the change
        kinds = {name: rule.get("kind") for name, rule in self.catalog().get("package_rules", {}).items()}
        if bal is not None and kinds.get(old) in layout.POSTPAID_KINDS and kinds.get(package) in layout.POSTPAID_KINDS:
            # Between postpaid packages the credit carries as it is, a debt
            # too: a change is no payment, and the debt the statement still
            # bills stays counted against the new package's credit limit
            # (breaker R4: -12.00 past a 10.00 limit opened the new period on
            # 0, 10.00 available; README "Money rules", package change).
            carried = bal.credit_minor
        if kinds.get(old) in layout.POSTPAID_KINDS and kinds.get(package) == "prepaid":
            if bal is not None and when < acc.period_end_ms:
                # Postpaid calls in a month the prepaid package bills (from
                # the first month start at or after the change: a sweep
                # applying it late) are billed as due by that month's
                # statement, not from the money; the ledger took them from
                # this credit, so it is given back to the carry (breaker3
                # R3: a 1.20 payg call between 12-01 00:00 and the sweep
                # was paid from the credit and billed again). Those of the
                # change's own month, billed under the old package, the
                # statement pays from the money, as the ledger did.
                late = self._postpaid_calls_from(tx, acc.id, _prepaid_months_from(when), kinds)
                # A bundle's overage of a month billed as prepaid that ends
                # on the bundle (the change's instant at or after the next
                # month's first) is billed as due by that month's statement,
                # which the customer pays; the ledger debited it from the
                # credit carried into the bundle, so it is given back to the
                # carry as well (breaker6 F3: pre_b -> bun_a 11-05, a 1.00
                # overage 11-06, pre_a at 12-01 00:00: ledger 1078.00,
                # statement 1079.00 with the 1.00 on November's bill).
                late += self._overage_billed_due(tx, acc, when, kinds)
                carried = max(0, bal.credit_minor + late)
                if late:
                    applied["late_postpaid_calls_minor"] = late
            at_change = self._unapplied_at_change(acc.id, when) if bal is not None and when < acc.period_end_ms \
                else None
            if at_change is None:
                applied["applied_to_bills_minor"] = 0
            else:
                # The money dated at or after the change is the prepaid
                # package's, carried whole (``statements.under_package_from``,
                # the statement's cut); only the ledger's credit without it
                # (the money before the change less what the ledger debited:
                # below zero, a debt the statement bills as due) is bounded by
                # what the bills leave of the money before the change
                # (breaker 12-02 money F1: pay-as-you-go at -12.60, a 10.00
                # top-up at the change's instant carried 0 -- it paid the
                # debt in the ledger -- while the statement billed the 12.60
                # as due and counted the 10.00 as prepaid credit: ledger
                # 600.00, statement 610.00).
                unapplied, money_after = at_change
                before_change = max(0, bal.credit_minor + applied.get("late_postpaid_calls_minor", 0) - money_after)
                kept = min(before_change, unapplied)
                applied["applied_to_bills_minor"] = before_change - kept
                carried = max(0, kept + money_after)
                after_part = carried - kept
        if kinds.get(old) == "prepaid" and kinds.get(package) in layout.POSTPAID_KINDS and bal is not None:
            # A postpaid balance is the money received less the calls (the
            # fees are on the statements only): the calls' debt the prepaid
            # time left unpaid comes back to it (F2a; README "Money rules").
            debt = self._debt_back_at_change(tx, acc, when, kinds)
            if debt:
                carried -= debt
                applied["debt_carried_minor"] = debt
        # The money dated at or after the change and recorded before it (a
        # sweep applying a scheduled change late, a change dated back) is in
        # the credit carried and on the statement as the new period's own
        # money too: named (``carried_after_change_minor``), so a statement
        # opening at the change (``statements._opening_at_first``) counts it
        # once (breaker 12-02 money F2: pay -> pre_b at 12-01 00:00, a 10.00
        # top-up at 05:00, the sweep at 08:00; December opened on the 10.00
        # carried and added the top-up again: 620.00 against the ledger's 610.00).
        if after_part is None and carried:
            money = self._money_dated_from(acc.id, when)
            after_part = money if kinds.get(old) in layout.POSTPAID_KINDS and kinds.get(package) in \
                layout.POSTPAID_KINDS else max(0, min(money, carried))
        if after_part:
            applied["carried_after_change_minor"] = after_part
        # A scheduled change this one replaces is named (the sweep applying it replaces nothing).
        replaced = {} if (acc.pending_package, acc.pending_effective_ms) == (package, when) else _replaced(acc)
        credit = self._start_period(tx, acc, package, when, carried)
        self._maybe_restore(tx, acc, credit)
        tx.put_account(acc, before, {"from": old, "package": package, "effective_ms": when,
                                     "carried_minor": carried, **applied, "credit_minor": credit, **replaced})

    def _debt_back_at_change(self, tx: _Tx, acc: C.Account, when: int, kinds: dict) -> int:
        """The prepaid arrears a change from prepaid to a postpaid package
        effective ``when`` (epoch ms) carries into the new credit as debt
        (minor units, >= 0): each call of the account's prepaid time (its
        trailing run of prepaid periods) charged beyond the credit it
        consumed, at most what the statements leave unpaid at the change
        (a bill payment, ``accounts pay``, may have paid some; the
        statements apply it oldest bill first, and rental, minimum and
        feature fees, which a postpaid ledger never holds, are taken as
        paid before the calls). Without it the ledger held a postpaid
        customer's next payment whole while the statement paid the arrears
        from it first (F2a: 51.20 of arrears, back to pay-as-you-go, a
        100.00 payment: ledger 100.00, statement 48.80). Not carried: a
        postpaid debt the change into the prepaid time left due on the bill
        (README "Money rules": the statement keeps it apart from the credit
        carried back, and so does the ledger)."""
        from ..billing.sources import committed_calls, live_statements
        from . import periods as P
        from .view import account_periods

        periods = [p for p in P.in_force(account_periods(tx.txn, self.db, acc.id), acc) if p.start_ms < when]
        first = len(periods)
        while first and kinds.get(periods[first - 1].package) == "prepaid":
            first -= 1
        if first == len(periods):
            return 0
        calls = committed_calls(self.ledger, lo_ms=periods[first].start_ms, hi_ms=when, account=acc.id, txn=tx.txn)
        owed = sum(int(c) - int(u or 0) for p, c, u in zip(
            calls.column("package").to_pylist(), calls.column("charge").to_pylist(),
            calls.column("credit_consumed").to_pylist()) if kinds.get(p) == "prepaid" and c is not None)
        if owed <= 0:
            return 0
        month = _local(when)[:7]
        statements = [s for s in live_statements(self, acc.id, when) if s.month <= month]
        return min(owed, max(0, statements[-1].outstanding)) if statements else 0

    def _unapplied_at_change(self, account: str, when: int) -> tuple[int, int] | None:
        """What a postpaid ``account``'s statements leave unapplied at a
        change to a prepaid package effective ``when`` (epoch ms), from the statements as committed (one build, read
        transactions, inside the change's write transaction as a refund's
        bound: ``billing.sources.live_statements``): the closing credit of
        the month the old package last ran in (``when``'s, or the month
        before for a change at a month's first instant; Asia/Shanghai;
        payments and credit adjustments no
        bill applied, ``billing.sources.unapplied_payments``' figure for that
        month alone: after the change the later months are prepaid and apply
        no payments, so their bills do not bound it). Money dated at or after
        ``when`` (a change dated back, a sweep applying a scheduled change
        after its date) belongs to the prepaid package once the change is
        recorded (``statements.under_package_from``, the rule the
        statement's cut reads too): it is carried whole. -> (what the money
        before the change leaves unapplied, >= 0; the money at or after the
        change, signed), minor units; None when no statement bills the
        account by then (nothing applied)."""
        from ..billing.sources import live_statements
        from ..billing.statements import money_from

        # The month the old package last ran in: a change at a month's first
        # instant leaves that month to the prepaid package, whose statement
        # (as it stands before the change) still bills the old package's
        # rental there (breaker2 B2: a bundle -> prepaid change at 12-01
        # 00:00 took December's 50.00 bundle rental out of the carry).
        month = _local(when - 1)[:7]
        # Without the calls of the months the prepaid package bills (from
        # the first month start at or after the change): their statements
        # bill them as due, not against the money before the change
        # (``_apply_change`` gives their ledger debit back to the carry).
        statements = [s for s in live_statements(self, account, when, calls_before_ms=_prepaid_months_from(when))
                      if s.month >= month]
        if not statements or statements[0].month != month:
            return None

        # The money dated at or after the change (the statement's cut, one rule).
        after = [money_from(s.credit_events, when) for s in statements]
        # The statements as they stand bill the old package on, so the
        # change's month applied that money too: what the money before the
        # change leaves unapplied is its closing credit less that money,
        # signed -- a refund or debit dated after the change lowered the
        # closing credit and is given back here (breaker8 F1: pay 100.00, a
        # 50.00 refund, then a change to prepaid dated before it: 50.00 was
        # booked as applied to bills with none unpaid, ledger 480.00 against
        # the statement's 530.00) -- and when the bills took all the money,
        # nothing of either is left.
        return max(0, statements[0].closing_credit - after[0]), sum(after)

    def _money_dated_from(self, account: str, when: int) -> int:
        """The money (top-ups, credit adjustments, refunds; signed minor
        units) of ``account`` recorded so far and dated at or after ``when``
        (``statements.money_from``, the rule of a change's instant)."""
        from ..billing.events import from_account_events
        from ..billing.statements import money_from

        return money_from([e for e in from_account_events(self.account_events(account))
                           if e.kind in ("top_up", "credit_adjustment", "refund")], when)

    def _overage_billed_due(self, tx: _Tx, acc: C.Account, when: int, kinds: dict) -> int:
        """The bundle overage (minor units, the committed ``overage``) the
        ledger debited and the statements bill as due, at a postpaid ->
        prepaid change effective ``when``: the calls rated under a bundle
        package in the month the account's postpaid time (its periods since
        the last prepaid one) began, when that month is billed as prepaid
        (opens on a prepaid package) and ends on the postpaid one (``when``
        at or after the next month's first instant). Only that last
        postpaid stretch's: ``statements`` bills the overage of the bundle
        calls after a month's last change to prepaid, and pays the earlier
        bundle stretches' from the credit as postpaid intervals inside the
        month (README "Money rules"; ``ledger.prepaid_follows_in_month``),
        so their overage, taken when committed, stays taken (breaker7 F4:
        pre_b -> bun_a 11-05 (1.00) -> pre_a 11-10 -> bun_a 11-15 (2.00) ->
        pre_b 12-01 00:00 gives back 2.00, not 3.00: carried 1079.00, the
        statement's closing credit). From the change to postpaid on the
        account was postpaid, so the ledger took each such call's overage
        from the credit as it was committed."""
        from ..billing.sources import committed_calls
        from ..billing.statements import month_bounds, parse_month
        from . import periods as P
        from .view import account_periods

        periods = P.in_force(account_periods(tx.txn, self.db, acc.id), acc)
        prepaid = [i for i, p in enumerate(periods) if p.start_ms < when and kinds.get(p.package) == "prepaid"]
        if not prepaid or prepaid[-1] + 1 >= len(periods):
            return 0
        start = periods[prepaid[-1] + 1].start_ms  # the first postpaid instant after the last prepaid period
        _, _, lo, hi = month_bounds(parse_month(_local(start)[:7]))
        if start == lo or when < hi or start >= when:
            return 0  # the month opens postpaid, or ends on the prepaid package (its statement pays the overage)
        calls = committed_calls(self.ledger, lo_ms=start, hi_ms=hi, account=acc.id, txn=tx.txn)
        return sum(int(o) for p, o, s in zip(calls.column("package").to_pylist(), calls.column("overage").to_pylist(),
                                             calls.column("start_ms").to_pylist())
                   if kinds.get(p) == "bundle" and o is not None and start <= s < hi)

    def _postpaid_calls_from(self, tx: _Tx, account: str, when: int, kinds: dict) -> int:
        """What the ledger debited (minor units, the committed ``charge``)
        for ``account``'s calls rated under a postpaid package (pay-as-you-go,
        bundle overage) that start at or after ``when`` (epoch ms), read in
        the operation's write transaction."""
        from ..billing.sources import committed_calls

        calls = committed_calls(self.ledger, lo_ms=when, account=account, txn=tx.txn)
        return sum(int(c) for p, c in zip(calls.column("package").to_pylist(), calls.column("charge").to_pylist())
                   if kinds.get(p) in layout.POSTPAID_KINDS and c is not None)

    # -- credit -----------------------------------------------------------------------------
    @_operation
    def top_up(self, request_id: str, account: str, amount_minor: int, actor: str = "", at_ms=None) -> dict:
        """Add prepaid credit, or record a postpaid account's payment.

        Prepaid: at least the catalog's minimum: max(top_up_min,
        top_up_min_months x the package's monthly minimum), within the
        package period. Postpaid (pay-as-you-go and bundle,
        ``layout.POSTPAID_KINDS``): a payment of the bill, of any amount,
        credited against what was charged (its credit runs down to
        -credit_limit, so an account stopped at its limit is paid back into
        service; README: "a payment is a top-up"). An account suspended for
        arrears is restored when the credit is then above zero and the
        restore window has not closed. Money received, so whole fen, as
        ``pay`` (else ``InvalidInput("amount_minor")``; newcomer 12-02 F3:
        600.005 was booked as 6000050 while the receipt read 600.01).
        Refused: ``no_package``,
        ``below_minimum``, ``period_ended``, ``account_closed``,
        ``before_package_start`` (``at_ms`` before the current package period's start)."""
        amount = _whole_fen(_amount(amount_minor, "amount_minor"), "amount_minor", "a top-up")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if self._money_kind(tx, acc) == "prepaid":  # a payment has no minimum and no period
                minimum = top_up_minimum(self.rules(), self._package(acc.package)["monthly_minimum"])
                if amount < minimum:
                    raise Refused("below_minimum",
                                  f"a top-up is at least {in_yuan(minimum)} ({minimum} minor units)")
                if tx.at >= acc.period_end_ms:
                    raise Refused("period_ended", "the package period has ended; renew instead")
            credit = tx.credit(acc, amount).credit_minor
            restored = self._maybe_restore(tx, acc, credit)
            tx.put_account(acc, before, {"amount_minor": amount, "credit_minor": credit, "restored": restored})
            return self._result(tx, acc, amount_minor=amount, restored=restored)  # the receipt says what was booked
        return self._run("top_up", request_id, actor, at_ms, fn)

    @_operation
    def pay(self, request_id: str, account: str, amount_minor: int, actor: str = "", at_ms=None) -> dict:
        """Record a prepaid account's payment of its bills (arrears, the
        monthly-minimum shortfall, fees): any amount > 0 (minor units), no
        top-up minimum, also after the package period ended and while
        suspended. It never becomes call credit (the ledger's balance is
        unchanged, so it never expires and never pays a call): the
        statements apply it to the oldest bill first, the rest carried to
        later bills (``billing.statements._apply_payments``; README "Money
        rules"). Refused: ``not_prepaid`` (a pay-as-you-go or bundle
        account's payment is its ``top_up``, credited against what was
        charged: one meaning per word, a payment here never touches the
        credit; ``billing.events.payment_refusal``, the rule an events
        file's ``payment`` row is held to too; the kind now decides, not
        the kind of the month whose bill is due: an account changed to a
        bundle pays a month billed as prepaid with ``top_up``, which the
        statements apply to that month, breaker 12-02 F3), ``no_package``, ``account_closed``, ``before_package_start``
        (``at_ms`` before the current package period's start),
        ``balance_limit`` (the account's payments, this one included, would
        total more than ``MAX_BALANCE_MINOR``: README "Bounds"; breaker N11
        F2, 9,400 payments of 10^15 passed int64 in the statements)."""
        from ..billing.events import payment_refusal

        amount = _whole_fen(_amount(amount_minor, "amount_minor"), "amount_minor")

        def fn(tx: _Tx):
            acc = tx.account(account)
            postpaid = payment_refusal(acc.id, self._money_kind(tx, acc, bill_payment=True))
            if postpaid:
                raise Refused("not_prepaid", f"{postpaid} (rating400 accounts top-up {acc.id} YUAN, gRPC TopUp)")
            paid = self._payments_total(tx, acc.id)
            if paid + amount > MAX_BALANCE_MINOR:
                raise Refused("balance_limit", f"the payments of account {acc.id!r} would total "
                                               f"{in_yuan(paid + amount)} ({in_yuan(paid)} before this one), above "
                                               f"the limit of {in_yuan(MAX_BALANCE_MINOR)}")
            tx.put_account(acc, acc, {"amount_minor": amount})  # the account as it was: a receipt, not credit
            return self._result(tx, acc, amount_minor=amount)
        return self._run("pay", request_id, actor, at_ms, fn)

    @_operation
    def adjust(self, request_id: str, account: str, amount_minor: int, reason: str, actor: str = "",
               at_ms=None) -> dict:
        """Manual credit (+) or debit (-) with a reason, e.g. a goodwill
        credit or a correction, on every package kind (``amount_minor``,
        minor units). A pay-as-you-go or bundle account's debit beyond the
        credit its statements carry (what no bill applied, as a refund's
        bound: ``billing.sources.unapplied_payments``) takes back money
        bills were paid with, e.g. a bounced top-up: the statements re-open
        those bills (``Statement.payments_reopened``; README "Money
        rules"), so it is dated in the current month (else
        ``InvalidInput("at")``: the issued statements of ended months keep
        their figures). Refused: ``insufficient_credit`` (a debit never
        takes the available balance, credit + credit limit - open
        reservations, below zero), ``no_package``, ``account_closed``,
        ``before_package_start`` (``at_ms`` before the current package period's start)."""
        amount = _amount(amount_minor, "amount_minor", signed=True)
        if not (reason or "").strip():
            raise InvalidInput("reason", "required")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            kind = self._money_kind(tx, acc)
            credit = tx.credit(acc, amount).credit_minor  # the ledger's bound first (insufficient_credit)
            if amount < 0 and kind in layout.POSTPAID_KINDS and _local(tx.at)[:7] < _local(now_ms())[:7]:
                from ..billing.sources import unapplied_payments

                # The statements as committed (read transactions): the debit is not in them; an
                # exception here aborts this transaction, credit included.
                found = unapplied_payments(self, acc.id, tx.at)
                if found is not None and -amount > found[0]:
                    _in_current_month(tx.at, f"a debit beyond the {in_yuan(found[0])} its statements carry "
                                             f"unapplied from {_local(tx.at)[:7]} on (the bills up to {found[1]} "
                                             "applied the rest)")
            restored = self._maybe_restore(tx, acc, credit) if amount > 0 else False
            tx.put_account(acc, before, {"amount_minor": amount, "reason": reason.strip(),
                                         "credit_minor": credit, "restored": restored})
            return self._result(tx, acc, amount_minor=amount, restored=restored)
        return self._run("adjust", request_id, actor, at_ms, fn)

    @_operation
    def refund(self, request_id: str, account: str, amount_minor: int, reason: str, actor: str = "",
               at_ms=None) -> dict:
        """Pay credit back to the enterprise, ``amount_minor`` (> 0, minor
        units, whole fen: cash paid out, as ``pay``; else
        ``InvalidInput("amount_minor")``), with a ``reason`` (required,
        audited, the statement's note; ``InvalidInput("reason")``: money
        leaving says why, as ``adjust`` and ``reverse_payment``), on every
        package kind: only
        credit above zero and not held by open reservations (a postpaid
        account's credit limit is the platform's money, never refunded),
        and only credit that existed at ``at_ms``: less the top-ups and
        credit adjustments dated after it (``_credited_after``; README
        "Accounts and numbers"). Bounded by the statements too
        (``_statement_bound``): a postpaid account's by the least credit its
        statements carry from ``at_ms``'s month to now (what no bill applied),
        a prepaid account's by its credit less what the bills of the months
        that have ended leave unpaid (README "Money rules"). Refused: ``insufficient_credit``, ``no_package``,
        ``account_closed``, ``before_package_start`` (``at_ms`` before the
        current package period's start)."""
        amount = _whole_fen(_amount(amount_minor, "amount_minor"), "amount_minor", "a refund")
        if not (reason or "").strip():
            raise InvalidInput("reason", "required: why the credit is paid back (audited)")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            kind = self._money_kind(tx, acc, settling=True)
            # Read under the write lock (no other operation of any worker can
            # commit in between): read before it, two workers' refunds both
            # passed one bound (breaker N12 F4: 100.00 refunded of 50.00).
            on_bills = self._statement_bound(acc.id, tx.at)
            bal = tx.balance(acc)
            refundable = max(0, bal.available_minor - bal.credit_limit_minor)  # credit - open reservations
            now, expired = now_ms(), ""
            if tx.at < now:  # and today's: credit that expired since is not paid back (breaker N11 F17)
                live = tx.w.live if tx.w is not None else None
                today = self.ledger.balance(acc.id, self.terms(acc), now, txn=tx.txn, live=live)
                if max(0, today.available_minor - today.credit_limit_minor) < refundable:
                    refundable = max(0, today.available_minor - today.credit_limit_minor)
                    if acc.period_end_ms <= now:
                        expired = f" (the package period ended {_local(acc.period_end_ms)}: its credit expired)"
            # The credit first, then what the statements leave (breaker N12 F13: an
            # expired credit's refund blamed unpaid bills, and was refused after they were paid).
            later = self._credited_after(tx, acc.id)
            # Every bound the amount exceeds, and the refusal quotes the least: the amount that
            # could be refunded, and why (faces 12-02: a refund above the ledger's credit quoted
            # it, 477.60, though the bills of ended months left 38.80 unpaid: 438.80 could be).
            refusals = []
            if amount > refundable - later:
                dated = (f" on {_local(tx.at)} (credit now less {in_yuan(later)} of top-ups and credit "
                         f"adjustments dated after it)" if later else "")
                refusals.append((max(0, refundable - later), f"refundable credit{dated} is "
                                                             f"{_refundable(max(0, refundable - later))}{expired}; "
                                                             f"cannot refund {in_yuan(amount)}"))
            if on_bills is not None:
                refusals += _statement_refusals(acc.id, kind, on_bills, refundable, amount)
            if refusals:
                raise Refused("insufficient_credit", min(refusals, key=lambda r: r[0])[1])  # the first of a tie
            credit = tx.credit(acc, -amount).credit_minor
            tx.put_account(acc, before, {"amount_minor": amount, "reason": reason.strip(), "credit_minor": credit})
            return self._result(tx, acc, amount_minor=amount)
        return self._run("refund", request_id, actor, at_ms, fn)

    def _statement_bound(self, account: str, at_ms: int):
        """What the statements allow a refund of ``account`` dated ``at_ms``
        (epoch ms) to pay back (``billing.sources.RefundBound``: a postpaid
        account's least credit its statements carry from ``at_ms``'s month to
        now, payments not applied to any bill, and the month whose bill left
        that least; what the bills of the months that have ended leave unpaid;
        the current statement's closing credit; minor units), in one
        statement build from read transactions, called inside the operation's
        write transaction (the ledger's one writer, so what it reads is what
        the refund is checked against). None when no statement bills the
        account yet."""
        from ..billing.sources import refund_bound

        return refund_bound(self, account, at_ms)

    @_operation
    def reverse_payment(self, request_id: str, account: str, amount_minor: int, reason: str, actor: str = "",
                        at_ms=None, reopen: bool = False) -> dict:
        """Take back ``amount_minor`` (> 0, minor units) of the account's
        bill payments (``pay``), e.g. a payment keyed as 4000 for 40.00, with
        a reason (audited; the statements show it as a negative payment, at
        ``at_ms``). Only bill payments no statement applied to a bill: at
        most the least ``payments_carried_out`` of the statements from
        ``at_ms``'s month to now (``billing.sources.unapplied_bill_payments``),
        so no bill loses a payment it was paid with; credit (top-ups, a
        postpaid account's payments) is paid back by ``refund``. With
        ``reopen`` (a payment that bounced after bills applied it): dated in
        the current month (Asia/Shanghai; else ``InvalidInput("at")``,
        gRPC ``meta.at_ms``: the issued statements of ended months keep
        their figures), at most the bill payments dated up to ``at_ms``
        less their reversals (``_payments_made``); the bills it paid are
        unpaid again: those of earlier months as the month's
        ``Statement.payments_reopened`` (part of its earlier unpaid), the
        month's own as less paid. The result's ``reopened_minor`` (minor
        units) is what this reversal adds to that ``payments_reopened``:
        the part beyond the bill payments the month carries in and received
        before it (0 for a payment made and bounced in the month).
        Refused: ``insufficient_payments`` (naming what is unapplied and
        why: ``_unapplied_why``, and ``reopen``; for a pay-as-you-go or
        bundle account, which has no bill payment: its top-up is paid back
        by ``refund`` and, bounced, taken back by a debit ``adjust``),
        ``no_package``, ``account_closed``, ``before_package_start``,
        ``before_cut_over``."""
        amount = _whole_fen(_amount(amount_minor, "amount_minor"), "amount_minor")
        if not (reason or "").strip():
            raise InvalidInput("reason", "required")
        from ..billing.sources import unapplied_bill_payments

        def fn(tx: _Tx):
            acc = tx.account(account)  # the account first: '' was an LMDB key error (breaker N12 F2)
            if reopen:  # bad input before any refusal
                _in_current_month(tx.at, "a bounced payment's reversal (--reopen)")
            kind = self._money_kind(tx, acc, bill_payment=True, settling=True)
            # Read under the write lock, as refund's bound (breaker N12 F3: two
            # workers' reversals of 100.00 both passed a bound of 179.99).
            found = unapplied_bill_payments(self, account, tx.at)
            unapplied, month, bill_money = found or (0, _local(tx.at)[:7], 0)
            # Never more than was paid by then: payments dated up to tx.at
            # less every reversal, whatever its date (breaker N12 F15: a
            # reversal dated before the payment it took back).
            made, reversed_, made_by_then = self._payments_made(tx, acc.id, until_ms=tx.at)  # one walk
            paid = made_by_then - reversed_
            postpaid = kind in layout.POSTPAID_KINDS
            hint = (f"; a {kind} account's payment is a top-up: paid back by `rating400 accounts refund {acc.id} "
                    f"YUAN` (gRPC Refund) as far as no bill applied it, and one that bounced is taken back by "
                    f"`rating400 accounts adjust {acc.id} -YUAN --reason TEXT` (gRPC Adjust), which re-opens the "
                    "bills it paid" if postpaid else "")
            if postpaid and made <= 0:
                # newcomer N14 F4 / breaker N14 F7: "are 0.00 yuan ... even re-opening" read as if
                # the payment could not be taken back at all, and --reopen lost the top-up hint.
                raise Refused("insufficient_payments",
                              f"account {acc.id!r} has no bill payment to reverse (`accounts pay` records a "
                              f"prepaid account's){hint}; cannot reverse {in_yuan(amount)}")
            if reopen and amount > paid:
                raise Refused("insufficient_payments",
                              f"bill payments of account {acc.id!r} made up to {_local(tx.at)} less their "
                              f"reversals are {in_yuan(max(0, paid))}{hint}; cannot reverse {in_yuan(amount)}, "
                              "even re-opening the bills they paid")
            if amount > min(unapplied, paid) and not reopen:
                if paid < unapplied:  # dated before payments the statements carry (made later in its month)
                    raise Refused("insufficient_payments",
                                  f"bill payments of account {acc.id!r} made up to {_local(tx.at)} less their "
                                  f"reversals are {in_yuan(max(0, paid))}{hint}; cannot reverse "
                                  f"{in_yuan(amount)}")
                bounced = ("; a payment that bounced after bills applied it is reversed with --reopen (gRPC "
                           "reopen), dated in the current month: the bills it paid are unpaid again"
                           if amount <= paid else "")
                raise Refused("insufficient_payments",
                              f"bill payments of account {acc.id!r} that no statement applied from "
                              f"{_local(tx.at)[:7]} on are {in_yuan(unapplied)} "
                              f"({_unapplied_why(made, reversed_, month)}){hint}; "
                              f"cannot reverse {in_yuan(amount)}{bounced}")
            detail = {"amount_minor": amount, "reason": reason.strip()}
            if reopen:
                # The statement's figure, one meaning (newcomer N14 F3, breaker N14 F6): what the
                # reversal's month's payments_reopened grows by, the part beyond the bill payments
                # that month carries in and receives (earlier months' bills it had paid). The part
                # the month's own charges had applied shows as less paid on them.
                detail["reopened_minor"] = max(0, amount - bill_money) - max(0, -bill_money)
            tx.put_account(acc, acc, detail)  # a receipt, not credit
            if reopen:
                return self._result(tx, acc, amount_minor=amount, reopened_minor=detail["reopened_minor"])
            return self._result(tx, acc, amount_minor=amount)
        return self._run("reverse_payment", request_id, actor, at_ms, fn)

    def _credited_after(self, tx: _Tx, account: str) -> int:
        """Minor units credited to ``account`` by top-ups and positive credit
        adjustments dated after ``tx.at`` (the account's event index, from
        ``tx.at`` + 1 ms): credit that did not exist yet at ``tx.at``."""
        total = 0
        for ev in self._events_of(tx, account, tx.at + 1):
            amount = int((ev.detail or {}).get("amount_minor", 0))
            if ev.operation in ("top_up", "adjust") and not ev.number and amount > 0:
                total += amount
        return total

    def _payments_total(self, tx: _Tx, account: str) -> int:
        """Minor units of all of ``account``'s bill payments (``pay``) less
        their reversals (``reverse_payment``; breaker N12 F11: after a
        99,999,999,999-yuan typo was reversed the account could never be paid
        again), any date: the most the statements can carry as paid ahead,
        which ``pay`` bounds by ``MAX_BALANCE_MINOR``."""
        paid, reversed_, _ = self._payments_made(tx, account)
        return paid - reversed_

    def _payments_made(self, tx: _Tx, account: str, until_ms: int | None = None) -> tuple[int, int, int]:
        """(minor units of all of ``account``'s bill payments, of all their
        reversals, of the payments dated up to ``until_ms`` (epoch ms; None:
        all)), in one walk of the account's event index (its operations, not
        its calls), read where the payment is written: no second copy of the
        payments to keep in step."""
        made = {"pay": 0, "reverse_payment": 0}
        by_then = 0
        for ev in self._events_of(tx, account):
            if ev.operation in made and not ev.number:
                amount = int((ev.detail or {}).get("amount_minor", 0))
                made[ev.operation] += amount
                if ev.operation == "pay" and (until_ms is None or ev.at_ms <= until_ms):
                    by_then += amount
        return made["pay"], made["reverse_payment"], by_then

    def _events_of(self, tx: _Tx, account: str, from_ms: int = -(2**63)):
        """The audit events (``C.Event``) of ``account`` with effective time
        at or after ``from_ms`` (epoch ms), by effective time (the account's
        event index)."""
        cur = tx.txn.cursor(db=self.db[C.EVENT_INDEX_DB])
        prefix = account.encode() + b"\0"
        if cur.set_range(C.event_index_key(account, from_ms, 0) if from_ms >= 0 else prefix):
            for k in cur.iternext(values=False):
                if not bytes(k).startswith(prefix):
                    break
                yield C.decode(C.Event, tx.txn.get(C.seq_key(C.seq_of_index_key(bytes(k))), db=self.db[C.EVENTS_DB]))

    def _money_kind(self, tx: _Tx, acc: C.Account, bill_payment: bool = False, settling: bool = False) -> str:
        """The kind of the package whose money an operation moves
        (``layout.PACKAGE_KIND``), dated ``tx.at``. Refused:
        ``account_closed``, ``no_package``; ``before_package_start``, the
        start said, when ``tx.at`` is before the current package period's
        start: no statement holds a month before it (breaker: a top-up dated
        before the start was credited and shown on no statement);
        ``before_cut_over``, the cut-over said, when ``tx.at`` is before the
        account's cut-over (``billing_from_ms``, 0: none) and before the month
        of the first call or money the ledger holds before it (``_first_held``:
        billing starts there, ``billing.statements.billed_from``): the months
        before are the old platform's, and a payment there pulled them back
        into billing with their rentals (breaker 3 F2). ``bill_payment`` (a
        prepaid account's ``pay``, never credit): the bound is the start of
        the account's first package period, not the current one's: a renewal
        or a package change does not stop a payment of an earlier month's
        bill being booked on the day it arrived, as those months' statements
        exist (newcomer N11 F16). ``settling`` (a refund, a payment's
        reversal: money going back to the customer) is taken on a closed
        account too: closing (by hand, or the sweep's reclaim) must not trap
        the customer's money (breaker N12 F14)."""
        if acc.status == "closed" and not settling:
            raise Refused("account_closed", f"account {acc.id!r} is closed")
        if not acc.package:
            raise Refused("no_package", f"account {acc.id!r} has no package; subscribe first")
        start, package = acc.package_start_ms, acc.package
        if bill_payment and tx.at < start:
            from .view import account_periods

            period = min(account_periods(tx.txn, self.db, acc.id), key=lambda p: p.start_ms, default=None)
            if period is not None and period.start_ms < start:
                start, package = period.start_ms, period.package
        if tx.at < start:
            raise Refused("before_package_start",
                          f"dated {_local(tx.at)}, before package {package!r} of account {acc.id!r} started "
                          f"({_local(start)}); date it at or after the start")
        why = self._before_cut_over(tx, acc)
        if why:
            raise Refused("before_cut_over", why)
        return self._package(acc.package)["kind"]

    def _before_cut_over(self, tx: _Tx, acc: C.Account, call: bool = False) -> str | None:
        """Why money of migrated ``acc`` dated ``tx.at`` is refused
        ``before_cut_over`` (the refusal's words), or None: ``tx.at`` is
        before the account's cut-over (``billing_from_ms``, 0: none) and
        before the month of the first call or money the ledger holds before
        it (``_billing_starts``, the first month the statements bill)."""
        if tx.at >= acc.billing_from_ms:
            return None
        starts, first = self._billing_starts(tx, acc)  # the month of the first call or money held, if earlier
        if tx.at >= starts:
            return None
        day = _local(starts)[:10]
        why = (f"its cut-over {_local(acc.billing_from_ms)}" if first is None else
               f"its cut-over is {_local(acc.billing_from_ms)}, but the ledger holds {first[1]} of it dated "
               f"{_local(first[0])}, and that month is billed here")
        # A cut-over still ahead (next month's): the money cannot be dated
        # there yet (breaker N12 F5: the advice was impossible).
        then = (f"the old platform bills it until {day}: record this money on its books, or here from "
                f"{day} on" if starts > now_ms() else f"date it on or after {day}")
        if call:  # a rated file's call (billing.calls.Known.before_cut_over)
            then = ("a call of that time is billed here only once committed (`rating400 rate --commit` warns, "
                    "and bills its month)")
        return (f"dated {_local(tx.at)}, before {day}, the first month this ledger bills account "
                f"{acc.id!r} ({why}): the months before were billed by the old platform; {then}")

    def money_before_cut_over(self, account: str, at_ms: int, call: bool = False) -> str | None:
        """Why money of ``account`` dated ``at_ms`` (epoch ms) would be
        refused ``before_cut_over`` (the refusal's words: the first month
        this ledger bills the account, its cut-over, the call or money that
        moved billing earlier), or None: an account this ledger does not
        hold, one opened here (no cut-over), or a date from the first month
        billed on. The one rule for the operations (``_money_kind``) and a
        ``bill --events`` file's money rows (``billing.events.read_events``;
        breaker N13 F9: a file's top-up dated June re-billed a migrated
        account's June..September, the old platform's months). ``call``: the
        advice fits a rated file's call instead (``billing.calls.Known``)."""
        with self.env.begin() as txn:
            tx = _Tx(self, None, at_ms, "", "", "read", txn=txn)
            raw = txn.get(account.encode(), db=self.db[C.ACCOUNTS_DB]) if account else None
            return None if raw is None else self._before_cut_over(tx, C.decode(C.Account, raw), call)

    def _billing_starts(self, tx: _Tx, acc: C.Account) -> tuple[int, tuple[int, str] | None]:
        """(the first instant of the first month this ledger bills migrated
        ``acc`` (epoch ms), the earliest call or money held before its
        cut-over or None): the cut-over's month, or the month of a call or
        money the ledger holds before it (``_first_held``), the rule
        ``billing.statements.billed_from`` bills by. ``acc.billing_from_ms``
        (0) for an account opened here."""
        from .importer import month_start

        if not acc.billing_from_ms:
            return 0, None
        first = self._first_held(tx, acc.id, acc.billing_from_ms)
        return (acc.billing_from_ms if first is None else month_start(first[0])), first

    # -- lifecycle ------------------------------------------------------------------------------
    def _numbers_of(self, tx: _Tx, account: str) -> list[C.Number]:
        """The numbers ``account`` holds (locked .. frozen), by the index."""
        prefix = account.encode() + b"\0"
        cur = tx.txn.cursor(db=self.db[C.ACCOUNT_NUMBERS_DB])
        keys = []
        if cur.set_range(prefix):
            for k in cur.iternext(values=False):
                if not bytes(k).startswith(prefix):
                    break
                keys.append(bytes(k)[len(prefix):])
        return [C.decode(C.Number, tx.txn.get(k, db=self.db[C.NUMBERS_DB])) for k in keys]

    def _move_numbers(self, tx: _Tx, account: str, frm: tuple, to: str) -> None:
        for num in self._numbers_of(tx, account):
            if num.state in frm:
                before = C.decode(C.Number, C.encode(num))
                tx.set_state(num, to)
                tx.put_number(num, before, {"by": "account"})

    def _maybe_restore(self, tx: _Tx, acc: C.Account, credit: int) -> bool:
        """Restore an account suspended for arrears or expiry within the
        restore window when credit is above zero again (prepaid: it pays for
        calls) or, postpaid, not below zero (the bill is paid)."""
        postpaid = bool(acc.package) and self._package(acc.package)["kind"] in layout.POSTPAID_KINDS
        if acc.status != "suspended" or acc.suspend_reason not in ("arrears", "expired") or \
                credit < (0 if postpaid else 1):
            return False
        if tx.at >= acc.period_end_ms:
            return False
        if tx.at >= add_months_ms(acc.suspended_ms, self.rules().restore_months):
            return False  # the window closed (the sweep freezes it)
        self._set_account_state(tx, acc, "active")
        return True

    def _set_account_state(self, tx: _Tx, acc: C.Account, state: str, reason: str = "") -> None:
        if state == "suspended":
            acc.suspended_ms, acc.suspend_reason = tx.at, reason
            self._move_numbers(tx, acc.id, ("active",), "suspended")
        elif state == "frozen":
            acc.frozen_ms = tx.at
            self._move_numbers(tx, acc.id, ("active", "suspended"), "frozen")
        elif state == "active":
            acc.suspended_ms, acc.suspend_reason, acc.frozen_ms = 0, "", 0
            self._move_numbers(tx, acc.id, ("suspended", "frozen"), "active")
        elif state == "closed":
            self._reclaim_numbers(tx, acc.id)
        acc.status = state

    def _reclaim_numbers(self, tx: _Tx, account: str) -> None:
        for num in self._numbers_of(tx, account):
            before = C.decode(C.Number, C.encode(num))
            self._reclaim(tx, num)
            tx.put_number(num, before, {"by": "account"})

    def _reclaim(self, tx: _Tx, num: C.Number) -> None:
        tx.set_state(num, "reclaimed")
        num.destinations, num.plan, num.plan_name = [], "", ""
        num.cap_spend_minor = num.cap_calls = 0

    _ACCOUNT_MOVES = {
        "suspend": (("active",), "suspended"),
        "restore": (("suspended", "frozen"), "active"),
        "freeze": (("suspended",), "frozen"),
        "reclaim": (("frozen",), "closed"),
    }

    @_operation
    def account_transition(self, request_id: str, account: str, action: str, reason: str = "",
                           actor: str = "", at_ms=None) -> dict:
        """``suspend`` (active -> suspended, its active numbers too),
        ``restore`` (suspended or frozen -> active; a prepaid account needs
        credit above zero and an unexpired period), ``freeze`` (suspended ->
        frozen), ``reclaim`` (frozen -> closed, every number reclaimed).
        Refused: ``wrong_state``, ``out_of_credit``, ``period_ended``."""
        if action not in self._ACCOUNT_MOVES:
            raise InvalidInput("action", f"one of {', '.join(self._ACCOUNT_MOVES)}")
        frm, to = self._ACCOUNT_MOVES[action]

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if acc.status not in frm:
                raise Refused("wrong_state", f"account {account!r} is {acc.status}; {action} needs {' or '.join(frm)}")
            if action == "restore" and acc.package and self._package(acc.package)["kind"] == "prepaid":
                if tx.at >= acc.period_end_ms:  # first: expired credit is 0 too
                    raise Refused("period_ended", "the package period has ended; renew first")
                if tx.balance(acc).credit_minor <= 0:
                    raise Refused("out_of_credit", "credit is 0; top up first")
            self._set_account_state(tx, acc, to, reason or "manual")
            tx.put_account(acc, before, {"action": action, "reason": reason})
            return self._result(tx, acc)
        return self._run(f"{action}_account", request_id, actor, at_ms, fn)

    _NUMBER_MOVES = {
        "suspend": (("active",), "suspended"),
        "restore": (("suspended", "frozen"), "active"),
        "freeze": (("suspended",), "frozen"),
        "reclaim": (("frozen",), "reclaimed"),
        "cool": (("reclaimed",), "cooling"),
        "release": (("cooling",), "available"),
    }

    @_operation
    def number_transition(self, request_id: str, number: str, action: str, reason: str = "",
                          actor: str = "", at_ms=None) -> dict:
        """One number's move (see ``_NUMBER_MOVES``; README lifecycle table).
        ``restore`` needs its account active. Refused: ``wrong_state``,
        ``account_not_active``."""
        if action not in self._NUMBER_MOVES:
            raise InvalidInput("action", f"one of {', '.join(self._NUMBER_MOVES)}")
        frm, to = self._NUMBER_MOVES[action]

        def step(tx: _Tx, num: C.Number):
            _need(num, *frm)
            if action == "restore" and tx.account(num.account).status != "active":
                raise Refused("account_not_active", f"account {num.account!r} is not active")
            if to == "reclaimed":
                self._reclaim(tx, num)
            else:
                tx.set_state(num, to)
            if to == "cooling":
                num.cooling_until_ms = tx.at + self.rules().cooling_days * layout.MS_PER_DAY
            if to == "available":
                num.account = ""
            return {"action": action, "reason": reason}
        return self._number_op(f"{action}_number", request_id, number, actor, at_ms, step)

    # -- the migration's cut-over ------------------------------------------------------------------
    @_operation
    def set_billing_from(self, request_id: str, account: str, billing_from_ms: int, actor: str = "",
                         at_ms=None) -> dict:
        """Set a migrated account's cut-over (``Account.billing_from_ms``,
        epoch ms: the first instant of an Asia/Shanghai month; README
        "Accounts and numbers"): the first month this ledger bills it; the
        months before it were the old platform's. For a store imported
        before the cut-over was stored (0: every month since the package
        start billed), or a cut-over the import got wrong. InvalidInput
        (``billing_from_ms``) when it is not a month's first instant, or is
        later than the month after the current one (``importer.cut_over_too_late``).
        Refused: ``not_migrated`` (the account was opened on this platform,
        not imported: every month since its package start was billed here,
        and a cut-over would write those bills off), ``ledger_holds_earlier``
        (the ledger holds a call, payment, credit adjustment, refund or
        rerating of the account dated before it: those are on statements
        this ledger issued, and billing would pull the cut-over back to
        them anyway; the first such month is named, and so is a stored
        cut-over later still: an import's, stored over calls committed
        before it; the cut-over set here says where billing starts, so a
        move that still would not is refused too), ``before_package_start``
        (a cut-over before the month of the account's first package period
        started: no month before it is billed anywhere, and ``accounts
        show`` said billing started before the package), ``would_write_off``
        (a stored cut-over, not 0, moved later past months that have ended:
        their statements were this ledger's bills, rental, minimums and
        fees, which the refund netting and the customer's payments counted
        on; the months and what they charged are named; newcomer N13 F2).
        A stored cut-over moves later only over months not ended yet (the
        month in progress, next month: a correction before anything is
        billed). A move earlier over ended months is taken, as the old
        platform's bills may have been wrong; ``detail.warnings`` names the
        months now billed here. The same cut-over again changes nothing and
        records no event (``detail.unchanged``)."""
        from .importer import cut_over_too_late, month_start

        cut = _ms(billing_from_ms, "billing_from_ms")
        if month_start(cut) != cut:
            raise InvalidInput("billing_from_ms", f"{cut} ({_local(cut)}) is not the first instant of a month "
                                                  "(Asia/Shanghai): a statement month is billed whole")
        if late := cut_over_too_late(cut):
            raise InvalidInput("billing_from_ms", late)

        def fn(tx: _Tx):
            acc = tx.account(account)
            if acc.billing_from_ms == cut:
                return self._result(tx, acc, billing_from_ms=cut, unchanged=True)
            if not any(ev.operation == "import_account" for ev in self._events_of(tx, acc.id)):
                raise Refused("not_migrated", f"account {acc.id!r} was opened on this platform, not imported "
                                              "(accounts import): this ledger billed it from its package start")
            first = self._first_held(tx, acc.id, cut)
            if first is not None:
                month = month_start(first[0])
                stored = (f" (the stored cut-over {_local(acc.billing_from_ms)[:10]} is later still, and billing "
                          f"already starts at {_local(month)[:7]} for that reason: accounts show, "
                          "billing_starts_local)" if acc.billing_from_ms > month else "")
                # The hint names a cut-over that is accepted: a stored one moves
                # later over no ended month (newcomer N14 F8: "2026-12-01 or
                # earlier" was then refused would_write_off).
                stored_ms = acc.billing_from_ms
                best = month if not stored_ms or stored_ms >= month_start(now_ms()) else min(month, stored_ms)
                raise Refused("ledger_holds_earlier",
                              f"the ledger holds {first[1]} of account {acc.id!r} dated {_local(first[0])}, before "
                              f"{_local(cut)}: its month is billed here whatever the cut-over after it{stored}; "
                              f"a cut-over says where billing starts, so set it to {_local(best)[:10]} or earlier")
            started = self._first_package_start(tx, acc)
            if started is not None and cut < month_start(started):
                raise Refused("before_package_start",
                              f"cut-over {_local(cut)[:10]} is before account {acc.id!r}'s package started "
                              f"({_local(started)[:10]}): no month before it is billed, here or by the old "
                              f"platform; the earliest cut-over is {_local(month_start(started))[:10]}")
            current = month_start(now_ms())
            warnings = []
            if acc.billing_from_ms and cut > acc.billing_from_ms:
                ended = _months(max(acc.billing_from_ms, month_start(started or 0)), min(cut, current))
                if ended and not self._undoes_last_move(tx, acc, cut):
                    raise Refused("would_write_off", self._write_off_words(acc, ended, cut))
            elif acc.billing_from_ms and cut < acc.billing_from_ms:
                # From where the statements bill now: a call or money held
                # before the stored cut-over already billed its months.
                added = _months(cut, min(self._billing_starts(tx, acc)[0], current))
                if added:
                    warnings.append(f"billed here now: {_month_span(added)} of account {acc.id!r} (rental, "
                                    f"monthly minimum, fees: bill --ledger); make sure the old platform did not "
                                    f"bill them too; a mistake is undone with `accounts billing-from {acc.id} "
                                    f"{_local(acc.billing_from_ms)[:10]}` before any money of the account is "
                                    "recorded")
            before = C.decode(C.Account, C.encode(acc))
            acc.billing_from_ms = cut
            tx.put_account(acc, before, {"billing_from_ms": cut, "previous_billing_from_ms": before.billing_from_ms})
            res = self._result(tx, acc, billing_from_ms=cut, previous_billing_from_ms=before.billing_from_ms)
            if warnings:  # printed as `warning:` lines (cli_accounts.run)
                res.detail["warnings"] = warnings
            return res
        return self._run("set_billing_from", request_id, actor, at_ms, fn)

    def _undoes_last_move(self, tx: _Tx, acc: C.Account, cut: int) -> bool:
        """Whether setting ``acc``'s cut-over to ``cut`` undoes its last
        move: that move (the account's latest ``set_billing_from``) came
        from ``cut``, and no money of the account (a top-up, payment,
        reversal, adjustment or refund) was recorded since. Such a move back
        writes nothing off: the months it pulled in were billed by mistake
        and nothing has counted on them (newcomer N14 F7: 2026-02-01 typed
        for 2026-10-01 could never be undone; 280.00 more owed)."""
        from ..billing.events import LEDGER_MONEY_OPERATIONS

        last, money_after = None, False
        for ev in self._events_of(tx, acc.id):
            if ev.operation == "set_billing_from" and (last is None or ev.seq > last.seq):
                last = ev
        if last is None or int((last.detail or {}).get("previous_billing_from_ms", 0)) != cut:
            return False
        for ev in self._events_of(tx, acc.id):
            if ev.seq > last.seq and ev.operation in LEDGER_MONEY_OPERATIONS and not ev.number:
                money_after = True
        return not money_after

    def _first_package_start(self, tx: _Tx, acc: C.Account) -> int | None:
        """The start (epoch ms) of ``acc``'s first package period (its
        recorded periods; the current one's without a record); None
        without a package."""
        from .view import account_periods

        if not acc.package:
            return None
        return min([p.start_ms for p in account_periods(tx.txn, self.db, acc.id)] + [acc.package_start_ms])

    def _write_off_words(self, acc: C.Account, ended: list[int], cut: int) -> str:
        """Why moving ``acc``'s stored cut-over to ``cut`` (epoch ms) is
        refused ``would_write_off``: the ``ended`` months (their first
        instants) it would take off the statements, and what their
        statements charge (``billing.sources.live_statements``, read inside
        the operation's write transaction, as a refund's bound)."""
        from ..billing.sources import live_statements

        labels = {_local(m)[:7] for m in ended}
        charged = sum(s.charges for s in live_statements(self, acc.id, None) if s.month in labels)
        return (f"moving account {acc.id!r}'s cut-over from {_local(acc.billing_from_ms)[:10]} to "
                f"{_local(cut)[:10]} would write off {_month_span(ended)}, month(s) that have ended and that this "
                f"ledger billed ({in_yuan(charged)} charged: rental, monthly minimum, fees, calls; what the "
                f"customer's payments and the refund netting counted on); a cut-over moves later only over "
                f"months not ended yet: those bills stand, and a correction of them is a money operation with "
                f"its reason (accounts adjust), on the record")

    def _first_held(self, tx: _Tx, account: str, before_ms: int) -> tuple[int, str] | None:
        """The earliest (epoch ms, what) of ``account``'s committed calls and
        money (the operations ``billing.events.LEDGER_MONEY_OPERATIONS``:
        top-ups, bill payments, credit adjustments, refunds; and rerating
        adjustments: every ``MONEY_KINDS`` event the statements have, so
        what ``billing.statements.billed_from`` bills from) dated before
        ``before_ms``; None when the ledger holds none."""
        from ..billing.events import LEDGER_MONEY_OPERATIONS
        from ..billing.sources import committed_records
        from ..ledger import adjustments

        held = []
        calls = committed_records(self.ledger, None, before_ms, account, txn=tx.txn)
        if calls is not None:
            held.append((int(calls.column("start").to_numpy().min()), "a call"))
        held += [(ev.at_ms, _MONEY_WORDS.get(ev.operation, f"a {ev.operation}")) for ev in self._events_of(tx, account)
                 if ev.operation in LEDGER_MONEY_OPERATIONS and not ev.number and ev.at_ms < before_ms]
        held += [(a.rerated_at_ms, "a rerating adjustment") for a in adjustments.all_rows(self.ledger, tx.txn)
                 if a.account == account and a.rerated_at_ms < before_ms]
        return min(held) if held else None

    # -- notifications ----------------------------------------------------------------------------
    @_operation
    def set_notifications(self, request_id: str, account: str, credit_below_minor: int = 0,
                          expiry_within_days: int = 0, webhook_url: str = "", actor: str = "", at_ms=None,
                          credit_below_days: int = 0) -> dict:
        """Thresholds (0: off) and the webhook the account's notifications go
        to. The sweep raises ``credit_low`` / ``expiring`` /
        ``credit_days_low`` (available credit covers fewer than
        ``credit_below_days`` days of typical use, ``ledger.usage.typical_daily``)
        once per crossing (an ``alert`` event), and clears it when back over
        the threshold. Its detail (result and audit event) is what was set
        (newcomer 12-02 F14: it was {}). ``credit_below_minor`` is whole fen,
        as a top-up (``_whole_fen``): an amount an enterprise sets, read back
        in yuan with 2 decimals (a threshold of 0.004 yuan was stored and
        shown as 0.00, the operator reading "no threshold")."""
        _whole_fen(_limit(credit_below_minor, "credit_below_minor"), "credit_below_minor", "a credit threshold")
        for value, field in ((expiry_within_days, "expiry_within_days"), (credit_below_days, "credit_below_days")):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3650:
                raise InvalidInput(field, f"{value!r}: 0-3650 days")
        if webhook_url and (why := check_webhook_url(webhook_url)):
            raise InvalidInput("webhook_url", f"{webhook_url!r}: {why}")

        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            acc.alert_credit_below_minor, acc.alert_expiry_days = int(credit_below_minor), int(expiry_within_days)
            acc.alert_credit_days = int(credit_below_days)
            acc.webhook_url = webhook_url
            tx.put_account(acc, before, {"credit_below_minor": acc.alert_credit_below_minor,
                                         "expiry_within_days": acc.alert_expiry_days,
                                         "credit_below_days": acc.alert_credit_days, "webhook_url": webhook_url})
            return self._result(tx, acc)
        return self._run("set_notifications", request_id, actor, at_ms, fn)

    def _alerts_due(self, a: C.Account, at: int, txn) -> list[tuple[str, bool]]:
        """(alert, raise?) crossings of ``a`` at ``at``."""
        out = []
        terms = self.terms(a)
        if a.alert_credit_below_minor and terms is not None:
            low = self.ledger.balance(a.id, terms, at, txn=txn).available_minor < a.alert_credit_below_minor
            if low != ("credit_low" in a.alerts):
                out.append(("credit_low", low))
        if a.alert_credit_days and terms is not None:
            # Exact: available / (spend / days) < N  <=>  available * days < N * spend.
            spend, days = usage.typical_daily(self.ledger, txn, a.id, at, a.package_start_ms)
            available = self.ledger.balance(a.id, terms, at, txn=txn).available_minor
            low = spend > 0 and available * days < a.alert_credit_days * spend
            if low != ("credit_days_low" in a.alerts):
                out.append(("credit_days_low", low))
        if a.alert_expiry_days and a.period_end_ms != C.NEVER_MS:
            soon = a.period_end_ms - at <= a.alert_expiry_days * layout.MS_PER_DAY
            if soon != ("expiring" in a.alerts):
                out.append(("expiring", soon))
        return out

    def _alert(self, account: str, alert: str, raise_: bool, at: int, actor: str) -> dict:
        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if (alert in acc.alerts) == raise_:
                raise Refused("no_crossing", "already in that state")
            acc.alerts = [*acc.alerts, alert] if raise_ else [x for x in acc.alerts if x != alert]
            bal = tx.balance(acc)
            tx.put_account(acc, before, {"alert": alert, "raised": raise_,
                                         "available_minor": bal.available_minor if bal else 0,
                                         "period_end_ms": acc.period_end_ms})
            return self._result(tx, acc)
        return self._run("alert", f"alert:{alert}:{int(raise_)}:{account}:{at}", actor, at, fn)

    # -- time-driven transitions --------------------------------------------------------------------
    def sweep(self, at_ms=None, actor: str = "sweep") -> list[dict]:
        """Apply every transition due at ``at_ms`` (default now):

        * a package change whose effective date has come;
        * active prepaid account with no credit left -> suspended (``arrears``),
          or past its period end -> suspended (``expired``);
        * suspended for arrears/expiry since >= ``restore_months`` -> frozen;
        * frozen (arrears) since the suspension >= ``reclaim_months`` ->
          closed, numbers reclaimed;
        * reclaimed number -> cooling for ``cooling_days`` -> available;
        * notification thresholds crossed (``set_notifications``): ``alert``.

        Candidates are found in one read transaction; each transition is its
        own operation with a request id derived from (what, whom, since), so
        sweeps running at once in several processes apply each one once.
        Returns the results of the operations that changed something.
        Raises InvalidInput naming ``actor`` (``_actor``) or ``at``."""
        actor = _actor(actor) or "sweep"
        at = now_ms() if at_ms is None else _at(at_ms)
        rules = self.rules()
        pkgs = self.catalog().get("package_rules", {})
        todo: list[tuple] = []
        with self.env.begin() as txn:
            for _k, v in txn.cursor(db=self.db[C.ACCOUNTS_DB]):
                a = C.decode(C.Account, v)
                if a.pending_package and a.pending_effective_ms <= at:
                    todo.append(("change", a.id, a.pending_effective_ms))
                prepaid = pkgs.get(a.package, {}).get("kind") == "prepaid"
                if a.status == "active" and prepaid:
                    credit = self.ledger.balance(a.id, self.terms(a), at, txn=txn).credit_minor
                    if at >= a.period_end_ms:
                        todo.append(("suspend", a.id, "expired"))
                    elif credit <= 0 and at >= a.package_start_ms:
                        todo.append(("suspend", a.id, "arrears"))
                if a.status == "suspended" and a.suspend_reason in ("arrears", "expired") and \
                        at >= add_months_ms(a.suspended_ms, rules.restore_months):
                    todo.append(("freeze", a.id, a.suspended_ms))
                if a.status == "frozen" and a.suspend_reason in ("arrears", "expired") and \
                        at >= add_months_ms(a.suspended_ms, rules.reclaim_months):
                    todo.append(("reclaim", a.id, a.suspended_ms))
                for alert, raise_ in self._alerts_due(a, at, txn):
                    todo.append(("alert", a.id, (alert, raise_)))
            for _k, v in txn.cursor(db=self.db[C.NUMBERS_DB]):
                n = C.decode(C.Number, v)
                if n.state == "reclaimed":
                    todo.append(("cool", n.number, n.since_ms))
                elif n.state == "cooling" and at >= n.cooling_until_ms:
                    todo.append(("release", n.number, n.since_ms))
        done = []
        sweeping = _SWEEP_AT.set(at)
        try:
            for what, who, since in todo:
                rid = f"sweep:{what}:{who}:{since}"
                try:
                    if what == "change":
                        res = self._sweep_change(rid, who, at, actor)
                    elif what == "alert":
                        res = self._alert(who, since[0], since[1], at, actor)
                    elif what == "suspend":
                        rid = f"sweep:suspend:{who}:{at}"
                        res = self.account_transition(rid, who, "suspend", since, actor=actor, at_ms=at)
                    elif what in ("freeze", "reclaim"):
                        res = self.account_transition(rid, who, what, "arrears", actor=actor, at_ms=at)
                    else:
                        res = self.number_transition(rid, who, what, "sweep", actor=actor, at_ms=at)
                except Refused:
                    continue  # changed since the scan (an operator got there first)
                if not res["replayed"]:
                    done.append(res)
        finally:
            _SWEEP_AT.reset(sweeping)
        self._prune_changes()
        return done

    CHANGES_KEPT = 100_000  # generations of cust_changes kept for views to update from

    def _prune_changes(self) -> int:
        """Drop ``cust_changes`` entries older than the last ``CHANGES_KEPT``
        generations (a view older than that finds its log incomplete and
        rebuilds). Returns how many were dropped (at most 100k per call).
        Housekeeping after operations already committed: a full map or disk
        (``LedgerFull``: deletes copy pages too) drops nothing this time
        rather than report the committed operation as failed."""
        dropped = 0
        try:
            with self.ledger.durable() as txn:
                cutoff = C.change_key(C.get_counter(txn, self.db[C.META_DB], C.GENERATION) - self.CHANGES_KEPT + 1,
                                      b"", "")
                cur = txn.cursor(db=self.db[C.CHANGES_DB])
                while cur.first() and bytes(cur.key()) < cutoff and dropped < 100_000:
                    cur.delete()
                    dropped += 1
        except LedgerFull:
            return 0
        return dropped

    def _sweep_change(self, request_id: str, account: str, at: int, actor: str) -> dict:
        def fn(tx: _Tx):
            acc = tx.account(account)
            before = C.decode(C.Account, C.encode(acc))
            if not acc.pending_package or acc.pending_effective_ms > at:
                raise Refused("nothing_pending", "no package change due")
            self._apply_change(tx, acc, acc.pending_package, acc.pending_effective_ms, before)
            return self._result(tx, acc)
        return self._run("change_package", request_id, actor, at, fn)

    # -- reads -----------------------------------------------------------------------------------
    def get_account(self, account: str) -> dict:
        """The account record, its numbers and its balance. A migrated
        account's record has ``billing_starts_ms`` after its cut-over
        (``billing_from_ms``): the first instant of the first month its
        statements bill (``_billing_starts``), earlier than the cut-over when
        the ledger holds calls or money before it."""
        with self.env.begin() as txn:
            tx = _Tx(self, None, now_ms(), "", "", "read", txn=txn)
            acc = tx.account(account)
            nums = [C.as_dict(n) for n in self._numbers_of(tx, account)]
            record = {}
            for k, v in C.as_dict(acc).items():
                record[k] = v
                if k == "billing_from_ms" and v:  # a migrated account: where its statements start, beside it
                    record["billing_starts_ms"] = self._billing_starts(tx, acc)[0]
            return {"account": record, "numbers": nums, "balance": self._balance_dict(tx, acc)}

    def get_number(self, number: str, at_ms: int | None = None) -> dict:
        """A number's record and history, with ``month_use``: the month's
        use its monthly caps are checked against at ``at_ms`` (default now;
        ``number_month_use``)."""
        number = _number_400(number, "number")
        with self.env.begin() as txn:
            out = C.as_dict(_Tx(self, None, 0, "", "", "read", txn=txn).number(number))
        out["month_use"] = self.number_month_use(number, now_ms() if at_ms is None else at_ms)
        return out

    def number_month_use(self, number: str, at_ms: int) -> dict:
        """Month-to-date use of a (normalised) 400 number as its monthly caps
        read it at ``at_ms`` (``router.Router._caps``, README "Monthly caps
        per number"): ``month`` (YYYY-MM, Asia/Shanghai), the month's
        committed ``calls`` (billable seconds > 0) and ``spend_minor``
        (``ledger.usage``, reratings included), the ``open_reservations`` of
        its calls now and their ``reserved_minor``, and what the caps compare
        with: ``counted_calls`` = calls + open reservations,
        ``counted_spend_minor`` = spend + reserved (int64 minor units)."""
        from ..ledger import reservations
        from ..ledger.core import month_of
        from ..numbers import key

        nkey, month = key(number), month_of(at_ms)
        with self.ledger.env.begin() as txn:
            spend, calls = usage.get(self.ledger, txn, nkey, month)
        with self.ledger.live.begin() as live:
            reserved, _seconds, n_open = reservations.number_hold(self.ledger, live, nkey)
        return {"month": f"{month // 12}-{month % 12 + 1:02d}", "calls": calls, "spend_minor": spend,
                "open_reservations": n_open, "reserved_minor": reserved, "counted_calls": calls + n_open,
                "counted_spend_minor": spend + reserved}

    def balance(self, account: str) -> dict:
        """The ledger's balance now (``ledger.Balance``: credit, reserved,
        available in minor units; bundle seconds left, reserved), with the
        package and its period end. Refused ``no_package``."""
        with self.env.begin() as txn:
            tx = _Tx(self, None, now_ms(), "", "", "read", txn=txn)
            acc = tx.account(account)
            out = self._balance_dict(tx, acc)
            if out is None:
                raise Refused("no_package", f"account {account!r} has no package, so no balance")
            out["package"] = acc.package
            out["period_end_ms"] = acc.period_end_ms
            return out

    def account_events(self, account: str) -> list[dict]:
        """Every audit event of ``account`` (its numbers' too), in the order
        recorded (by seq): what ``events(None, ...)`` lists of it, read
        through the account's event index (``view.account_event_seqs``), so
        one account's statement never walks every customer's log. [] for an
        id the layer does not hold (a catalog account); an empty one is
        ``InvalidInput("account", "required")``."""
        if not account:
            raise InvalidInput("account", "required")
        with self.env.begin() as txn:
            ev_db = self.db[C.EVENTS_DB]
            return [C.as_dict(C.decode(C.Event, txn.get(C.seq_key(q), db=ev_db)))
                    for q in account_event_seqs(txn, self.db, account)]

    def events(self, account: str | None = None, from_ms: int = 0, to_ms: int = C.NEVER_MS,
               after_seq: int = 0, limit: int = 1000) -> list[dict]:
        """Audit events, oldest first: of one ``account`` with effective time
        in [from_ms, to_ms), in effective-time order (then seq), or
        (``account`` None) every event after ``after_seq``; at most ``limit``
        of them. Of one account, ``after_seq`` (> 0; 0 or less: none) is the seq of the last
        event a page listed, and the next page starts after it in that order:
        paging by time repeated the events of the page's last millisecond
        (an account's suspend writes two; newcomer 12-02 F8), and seqs are
        not in effective-time order (a back-dated operation), so it is
        "after that event", not "seqs above it"; a seq of no event of the
        account is ``InvalidInput("after_seq")``. An empty ``account`` is
        ``InvalidInput("account", "required")`` (``_Tx.account``), never
        every account's events; an unknown one ``NotFound``. ``from_ms`` and
        ``to_ms`` (epoch ms) lie in the range every effective time does
        (``_ms``: 1970 .. 2200; ``to_ms`` may be ``C.NEVER_MS``, no end) and
        ``from_ms`` is before ``to_ms``; ``limit`` is 1 or more; else
        ``InvalidInput`` naming ``from_ms``, ``to_ms`` or ``limit`` (breaker
        N13 F13: gRPC ListEvents answered [] or every event for them)."""
        _ms(from_ms, "from_ms")
        if to_ms != C.NEVER_MS:
            _ms(to_ms, "to_ms")
        if from_ms >= to_ms:
            raise InvalidInput("from_ms", f"{from_ms} ({_local(from_ms)}) is not before to_ms {to_ms} "
                                          f"({_local(to_ms)}) (from_ms is inclusive, to_ms exclusive)")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput("limit", f"{limit!r}: the most events listed, 1 or more")
        if isinstance(after_seq, bool) or not isinstance(after_seq, int):
            raise InvalidInput("after_seq", f"{after_seq!r}: the seq of the last event listed (0 or less: none)")
        out = []
        with self.env.begin() as txn:
            ev_db = self.db[C.EVENTS_DB]
            if account is not None:
                _Tx(self, None, 0, "", "", "read", txn=txn).account(account)
                cur = txn.cursor(db=self.db[C.EVENT_INDEX_DB])
                lo = C.event_index_key(account, from_ms, 0)
                hi = C.event_index_key(account, to_ms, 0)
                if after_seq > 0:  # 0 or less: from the first
                    raw = txn.get(C.seq_key(after_seq), db=ev_db) if after_seq < (1 << 63) - 1 else None
                    last = C.decode(C.Event, raw) if raw is not None else None
                    if last is None or last.account != account:
                        raise InvalidInput("after_seq", f"{after_seq}: no event of account {account!r} has that "
                                                        "seq (give the seq of the last event a page listed)")
                    lo = max(lo, C.event_index_key(account, last.at_ms, last.seq + 1))
                if cur.set_range(lo):
                    for k in cur.iternext(values=False):
                        if bytes(k) >= hi or len(out) >= limit:
                            break
                        out.append(C.as_dict(C.decode(C.Event, txn.get(C.seq_key(C.seq_of_index_key(k)), db=ev_db))))
            elif after_seq < (1 << 63) - 1:  # seq keys are int64: none is after the largest (breaker: INTERNAL)
                cur = txn.cursor(db=ev_db)
                if cur.set_range(C.seq_key(max(0, after_seq) + 1)):
                    for _k, v in cur:
                        out.append(C.as_dict(C.decode(C.Event, v)))
                        if len(out) >= limit:
                            break
        return out

    def check_watch(self, account: str, after_seq: int) -> int:
        """A watch of the audit log (gRPC WatchEvents: every event after
        ``after_seq``, of ``account`` when not empty, then each new one),
        checked before it waits, so a mistyped request is told, not answered
        with a silent endless stream (breaker8 F6): an ``account`` given is
        one ``events`` reads (``_Tx.account``: ``NotFound`` for an unknown
        one, as ListEvents and GetAccount); ``after_seq`` is 0 (from the
        first) up to the last event's seq (that one: wait for the next),
        else ``InvalidInput("after_seq")``: a negative one, or one no event
        has yet (seqs are the store's, one counter for every worker; a seq
        above the last was never seen from this store). Returns the last seq."""
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise InvalidInput("after_seq", f"{after_seq!r}: the seq of the last event seen, 0 or more "
                                            "(0: from the first)")
        with self.env.begin() as txn:
            if account:
                _Tx(self, None, 0, "", "", "read", txn=txn).account(account)
            last = C.get_counter(txn, self.db[C.META_DB], C.NEXT_SEQ)
        if after_seq > last:
            raise InvalidInput("after_seq", f"{after_seq}: after the last event (seq {last}); give the seq of "
                                            "the last event seen (0: from the first)")
        return last


def _statement_refusals(account: str, kind: str, bound, refundable: int, amount: int) -> list[tuple[int, str]]:
    """Every statement rule a refund of ``amount`` (minor units) exceeds
    (``Accounts._statement_bound``: ``bound``, a
    ``billing.sources.RefundBound``) out of ``refundable`` credit of an
    account of ``kind`` (``layout.PACKAGE_KIND``), as (the most that rule
    lets be refunded, the refusal's words naming it and why); ``refund``
    quotes the least. Postpaid: the credit a later bill applied is never
    paid back, however the refund is dated (breaker N11 F13). Every kind:
    the credit is netted against what the ended months' bills leave unpaid
    (newcomer N11 F6; newcomer 2026-12-02 #1: changed from prepaid to a
    bundle, an account with November's bill unpaid was refunded its whole
    credit, which its month billed as prepaid had applied to no bill; README
    "Money rules"). Prepaid: never beyond the current statement's closing
    credit."""
    unpaid = bound.unpaid
    out: list[tuple[int, str]] = []
    if kind in layout.POSTPAID_KINDS:
        if bound.unapplied is None:
            return out
        figure, month = bound.unapplied
        least = max(0, min(refundable, figure) - unpaid)
        if unpaid > 0 and amount > min(refundable, figure) - unpaid:
            out.append((least, f"refundable credit is {_refundable(least)}: "
                               f"the bills of ended months leave {in_yuan(unpaid)} unpaid (minimum "
                               f"shortfalls, rental, fees, arrears), netted against the credit of "
                               f"{in_yuan(min(refundable, figure))}; record the customer's payment first "
                               f"(rating400 accounts top-up {account} YUAN, gRPC TopUp) to refund "
                               f"more; cannot refund {in_yuan(amount)}"))
        if figure < refundable and amount > figure:
            # The ledger's credit holds what paid statement-only fees: never paid back.
            out.append((figure, f"refundable credit is {_refundable(figure)}: the statements applied "
                                f"{in_yuan(refundable - figure)} of the ledger's {in_yuan(refundable)} "
                                f"to bills (rental, minimums, features; the bills up to {month} applied all "
                                f"but {in_yuan(figure)}); cannot refund {in_yuan(amount)}"))
        return out
    if unpaid > 0 and amount > refundable - unpaid:
        least = max(0, refundable - unpaid)
        out.append((least, f"refundable credit is {_refundable(least)}: "
                           f"the bills up to {bound.last_ended} leave {in_yuan(unpaid)} unpaid "
                           f"(minimum shortfalls, rental, fees, arrears), netted against the credit "
                           f"of {in_yuan(refundable)}; record the customer's payment first "
                           f"(rating400 accounts pay {account} YUAN, gRPC Pay) to refund "
                           f"more; cannot refund {in_yuan(amount)}"))
    credit = bound.closing_credit
    if credit < refundable and amount > credit - max(0, unpaid):
        # The ledger holds more than the statements' credit (a late postpaid
        # call of a month billed as pay-as-you-go, paid on the statement from
        # the money the change to prepaid carried: breaker 2026-12-02 F1):
        # what no statement holds as credit is never paid out.
        least = max(0, credit - max(0, unpaid))
        netted = (f", less {in_yuan(unpaid)} the bills up to {bound.last_ended} leave unpaid" if unpaid > 0 else "")
        out.append((least, f"refundable credit is {_refundable(least)}: "
                           f"the statements' credit is {in_yuan(credit)}{netted} (the ledger's "
                           f"{in_yuan(refundable)} includes money the statements applied to "
                           f"postpaid charges); cannot refund {in_yuan(amount)}"))
    return out


def _months(lo_ms: int, hi_ms: int) -> list[int]:
    """The first instants (epoch ms) of the local months from ``lo_ms``'s
    (a month's first instant) up to, not including, ``hi_ms``'s."""
    out = []
    while lo_ms < hi_ms:
        out.append(lo_ms)
        lo_ms = add_months_ms(lo_ms, 1)
    return out


def _month_span(months: list[int]) -> str:
    """Months (first instants, ascending) for people: ``2026-10`` or
    ``2026-10 .. 2026-11`` (both included)."""
    first, last = _local(months[0])[:7], _local(months[-1])[:7]
    return first if first == last else f"{first} .. {last}"


def _public(res: C.OperationResult) -> dict:
    """An operation's answer as the caller sees it (without the digest)."""
    out = C.as_dict(res)
    out.pop("content_digest", None)
    out.pop("at_ms", None)
    return out


def _unrouted_warnings(num: C.Number, wanted: list[str]) -> list[str]:
    """Plain sentences for a routing plan's destinations (``wanted``, plan
    order; empty: the default hunt) that calls will not reach yet: not bound
    to ``num``, or bound and not real-name verified (``view.effective_plan``
    routes only verified bound destinations). A plan may be set before its
    phones are bound, so this warns; it never refuses."""
    bound = {d.number: d.verified for d in num.destinations}
    if not wanted:
        if any(bound.values()):
            return []
        return [f"{num.number} has no verified bound destination: {NEEDS_VERIFIED_DESTINATION}"]
    unbound = [n for n in wanted if n not in bound]
    unverified = [n for n in wanted if bound.get(n) is False]
    out = []
    if unbound:
        out.append(f"not bound to {num.number}: {', '.join(unbound)}; calls are not routed to them until "
                   "they are bound (accounts bind) and verified (accounts verify-destination)")
    if unverified:
        out.append(f"bound to {num.number} but not real-name verified: {', '.join(unverified)}; calls are not "
                   "routed to them until they are verified (accounts verify-destination)")
    return out


def _need(num: C.Number, *states: str, reason: str = "wrong_state") -> None:
    if num.state not in states:
        raise Refused(reason, f"{num.number} is {num.state}; needs {' or '.join(states)}")


def _number_400(raw: str, field: str) -> str:
    """A 400 number from a request -> its normal form. The edge's text rule
    first (``cdr.check_text``: a zero-width space, soft hyphen or bidi
    override is refused, as ``route`` refuses it, never silently stripped by
    the normaliser); then ``400`` + 7 digits. InvalidInput naming ``field``."""
    if isinstance(raw, str):
        check_text(field, raw)
    n = normalize(raw, field)
    if not _NUMBER_400.match(n):
        raise InvalidInput(field, f"{raw!r} is not a 400 number (400 + 7 digits)")
    return n


def _ms(value, field: str) -> int:
    """An effective time: epoch ms inside the edge's range
    (``cdr.MIN_TIME_MS`` .. ``cdr.MAX_TIME_MS``, 1970 .. 2200), else
    ``InvalidInput(field)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"{value!r}: epoch milliseconds")
    return check_time_ms(field, value)  # type: ignore[return-value]  # not None: value is an int


def _amount(value, field: str, signed: bool = False) -> int:
    """A money amount of one operation: a whole number of minor units,
    > 0 (or != 0 when ``signed``), magnitude at most ``MAX_AMOUNT_MINOR``;
    else ``InvalidInput(field)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"{value!r}: a whole number of minor units (1/10000 yuan)")
    if value == 0 or (value < 0 and not signed):
        raise InvalidInput(field, f"{value}: must be {'non-zero' if signed else 'more than 0'} minor units")
    if abs(value) > MAX_AMOUNT_MINOR:
        raise InvalidInput(field, f"{value}: too large; at most {MAX_AMOUNT_MINOR} minor units "
                                  f"({MAX_AMOUNT_MINOR // 10_000} yuan) per operation")
    return value


def _unapplied_why(paid: int, reversed_: int, month: str) -> str:
    """Why ``account``'s bill payments no statement applied are no more
    than they are, for a refused reversal (``paid``, ``reversed_``: the
    account's bill payments and their reversals, minor units,
    ``Accounts._payments_made``; ``month``: the latest month
    whose statement holds the least): it has none; they were all
    reversed (breaker N13 F2: "it has no bill payment" of an account
    whose 50.50 yuan of payments were reversed); some were reversed and
    the bills applied the rest; or the bills applied them (newcomer N12
    F4: not "applied the rest" of nothing)."""
    if paid <= 0:
        return "it has no bill payment"
    if reversed_ >= paid:
        return f"its bill payments of {in_yuan(paid)} were all reversed"
    if reversed_ > 0:
        return (f"of its bill payments of {in_yuan(paid)}, {in_yuan(reversed_)} were reversed and the bills "
                f"up to {month} applied the rest")
    return f"the bills up to {month} applied the rest"


def _replaced(acc: C.Account) -> dict:
    """The scheduled package change of ``acc`` a change replaces, for its
    audit event (none: {}); never dropped without a word (newcomer 12-02 F5)."""
    if not acc.pending_package:
        return {}
    return {"replaced_package": acc.pending_package, "replaced_effective_ms": acc.pending_effective_ms}


def _refundable(minor: int) -> str:
    """A refund refusal's refundable credit (``minor`` >= 0, minor units) as
    a clerk can refund it: whole fen, rounded down (a refund is whole fen,
    ``_whole_fen``), and the exact figure beside it when finer: "475.35 yuan
    (of 475.3550 yuan: a refund is whole fen)" (breaker 12-02 F6: "refundable
    credit is 475.3550 yuan", an amount no refund can be; a call's charge,
    and so the credit, may be finer than a fen)."""
    fen = minor - minor % 100
    return in_yuan(fen) if fen == minor else f"{in_yuan(fen)} (of {in_yuan(minor)}: a refund is whole fen)"


def top_up_minimum(rules, monthly_minimum_minor: int) -> int:
    """The least prepaid top-up (minor units, 1/10000 yuan): max(the
    catalog's ``top_up_min``, ``top_up_min_months`` x the package's monthly
    minimum), e.g. 600.00 yuan, or 750.00 at a 250.00 minimum (DOMAIN.md:
    at least 3 months of minimum spend and at least 600 yuan). ``rules``:
    the catalog's ``CustomerRules``. One rule for ``Accounts.top_up`` and
    the suspension hint (``cli_route.restore_payment``)."""
    return max(int(rules.top_up_min), int(rules.top_up_min_months) * int(monthly_minimum_minor))


def _whole_fen(amount: int, field: str, what: str = "a payment") -> int:
    """``amount`` (minor units) when it is whole fen (a multiple of 100):
    cash moved through a bank (a top-up, a bill payment and its reversal,
    received; a refund, paid out: ``what`` names it) is never finer than a fen
    (newcomer N11 F15: `pay 0.0001` was taken, and the statement carried
    45.5001; breaker N13 F1: `refund 0.001` was paid out); else
    ``InvalidInput(field)``."""
    if amount % 100:
        raise InvalidInput(field, f"{amount}: {what} is whole fen (a multiple of 100 minor units, 0.01 yuan); "
                                  f"{in_yuan(amount)} is not")
    return amount


def _statuses(value) -> frozenset[str]:
    """Account statuses to keep, from None, a str (comma-separated) or a
    list of str (each may be comma-separated too): empty means all;
    ``InvalidInput("status")`` naming one not in ``C.ACCOUNT_STATES``."""
    if value is None:
        return frozenset()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(isinstance(x, str) for x in items):
        raise InvalidInput("status", f"{value!r}: account statuses ({', '.join(C.ACCOUNT_STATES)})")
    out = set()
    for item in items:
        for word in item.split(","):
            word = word.strip()
            if not word:
                continue
            if word not in C.ACCOUNT_STATES:
                raise InvalidInput("status", f"{excerpt(word)}: not an account status "
                                             f"(one of {', '.join(C.ACCOUNT_STATES)})")
            out.add(word)
    return frozenset(out)


def _limit(value, field: str) -> int:
    """A threshold or cap in minor units: 0 (off) .. ``MAX_BALANCE_MINOR``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BALANCE_MINOR:
        raise InvalidInput(field, f"{value!r}: a whole number of minor units, 0 .. {MAX_BALANCE_MINOR}")
    return value


def request_digest(content: dict) -> str:
    """SHA-256 (hex) of an operation's content: its arguments other than
    request id, actor and effective time, canonical JSON. Stored with the
    request id so a reused id with other content is refused, not replayed."""
    raw = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
