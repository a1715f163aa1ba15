"""The customer layer's record formats: accounts, 400 numbers, request ids,
the audit log. Live data changed by operations (``rating_core.accounts``),
never by a catalog compile.

They live in the ledger's LMDB environment (``ledger.lmdb``), beside the
balances, so an operation that moves money and changes state (a top-up that
restores a suspended account) is one LMDB write transaction. LMDB
serialises writers across threads and processes; readers never block.

Databases (keys are bytes; values msgpack of the structs below):

``cust_accounts``     account id (UTF-8)            -> ``Account``
``cust_numbers``      400 number (10 ASCII digits)  -> ``Number``
``cust_requests``     client request id (UTF-8)     -> first ``OperationResult``
``cust_events``       seq (8 bytes big-endian)      -> ``Event`` (append-only)
``cust_event_index``  account + NUL + at ms (8B BE) + seq (8B BE) -> b""
``cust_account_numbers`` account + NUL + 400 number -> b"" (the numbers an account holds)
``cust_meta``         ``generation`` / ``next_row`` / ``next_seq`` -> int64 LE
``cust_changes``      generation (8B BE) + kind (``a`` account / ``n`` number / ``g`` the
                      operation's own marker) + id -> b"" (what each generation changed)

Invariants:

* ``Account.row`` is assigned once at open (``next_row``), dense from 0 and
  never reused, so a per-process view can index its arrays by it and the
  rated output's account ids stay stable while accounts are added.
* ``generation`` is bumped by every committed operation; a process whose
  view was built at another generation updates it (``accounts.view``): from
  ``cust_changes``, which lists every account and number an operation wrote
  under the generation it committed, plus one ``g`` marker per generation
  (a generation without its marker is not known: the view is rebuilt).
* Events are only ever appended (``next_seq``), never rewritten.
Times are epoch milliseconds (UTC); money is int64 minor units (1/10000 yuan).
"""
from __future__ import annotations

import struct

import msgspec
from typing import TypeVar

ACCOUNTS_DB = b"cust_accounts"
NUMBERS_DB = b"cust_numbers"
REQUESTS_DB = b"cust_requests"
EVENTS_DB = b"cust_events"
EVENT_INDEX_DB = b"cust_event_index"
META_DB = b"cust_meta"
ACCOUNT_NUMBERS_DB = b"cust_account_numbers"
CHANGES_DB = b"cust_changes"
DATABASES = (ACCOUNTS_DB, NUMBERS_DB, REQUESTS_DB, EVENTS_DB, EVENT_INDEX_DB, META_DB, ACCOUNT_NUMBERS_DB,
             CHANGES_DB)

GENERATION = b"generation"
WEBHOOK_SEQ = b"webhook_seq"  # the last event delivered to webhooks
NEXT_ROW = b"next_row"
NEXT_SEQ = b"next_seq"

NEVER_MS = (1 << 63) - 1

ACCOUNT_STATES = ("active", "suspended", "frozen", "closed")
REALNAME_STATES = ("none", "pending", "verified", "rejected")
# The 400 number's inventory life (README "Lifecycle").
NUMBER_STATES = ("available", "locked", "pending_verification", "active", "suspended", "frozen",
                 "reclaimed", "cooling")
HELD_STATES = ("locked", "pending_verification", "active", "suspended", "frozen")  # held by an account

_I64 = struct.Struct("<q")
_BE = struct.Struct(">q")


class Document(msgspec.Struct, frozen=True):
    """A real-name document on file: ``kind`` (business_licence,
    legal_representative_id, authorisation_letter, phone_bill, ...),
    ``reference`` (the operator's archive id), when it was recorded."""

    kind: str
    reference: str
    at_ms: int


class Account(msgspec.Struct):
    """An enterprise. ``package`` is the subscribed catalog package (``""``:
    none yet); prepaid credit runs ``[package_start_ms, period_end_ms)``.
    ``pending_*``: a package change waiting for its effective date."""

    id: str
    row: int
    company: str
    created_ms: int
    status: str = "active"  # ACCOUNT_STATES
    realname: str = "none"  # REALNAME_STATES
    realname_note: str = ""
    documents: list[Document] = []
    package: str = ""
    package_start_ms: int = 0
    period_end_ms: int = NEVER_MS
    opening_credit_minor: int = 0  # credit granted at package_start_ms
    # A migrated account's cut-over (``accounts import``): the first instant
    # (local midnight of a month's 1st) this ledger bills; fees, minimums and
    # unpaid balances before it were the old platform's. 0: billed from the
    # package start (an account opened live).
    billing_from_ms: int = 0
    features: list[str] = []
    pending_package: str = ""
    pending_effective_ms: int = 0
    suspended_ms: int = 0  # when it was suspended (0: not)
    suspend_reason: str = ""  # arrears | expired | manual
    frozen_ms: int = 0
    alert_credit_below_minor: int = 0  # raise credit_low when available credit falls below (0: off)
    alert_expiry_days: int = 0  # raise expiring when the prepaid period ends within N days (0: off)
    # raise credit_days_low when the available credit covers fewer than N days of typical use (0: off)
    alert_credit_days: int = 0
    webhook_url: str = ""  # where the account's notifications are POSTed
    alerts: list[str] = []  # alerts raised and not yet cleared (once per crossing)


class Destination(msgspec.Struct):
    """A phone bound to a 400 number. Routed only once ``verified``: its own
    real-name registration proven (the phone bill, ``proof``)."""

    number: str
    bound_ms: int
    verified: bool = False
    proof: str = ""
    verified_ms: int = 0


class Number(msgspec.Struct):
    """A 400 number in the inventory. ``history``: every (state, at ms) it
    went through, oldest first. ``plan``: the routing plan as JSON (catalog
    ``RoutingPlan`` form; ``""``: a sequential hunt over the verified bound
    destinations in bind order). Caps: 0 means none."""

    number: str
    grade: str
    state: str
    since_ms: int
    history: list[tuple[str, int]] = []
    account: str = ""
    billing_start: str = "agent_answer"
    home_city: str = ""
    plan_name: str = ""
    plan: str = ""
    destinations: list[Destination] = []
    cooling_until_ms: int = 0
    cap_spend_minor: int = 0  # per calendar month
    cap_calls: int = 0  # per calendar month


class Event(msgspec.Struct, frozen=True):
    """One audited change: who (``actor``), when (``at_ms`` the effective
    time, ``recorded_ms`` the wall clock), what (``operation``, ``detail``),
    the state before and after (record dicts; empty when none)."""

    seq: int
    at_ms: int
    recorded_ms: int
    actor: str
    operation: str
    request_id: str
    account: str
    number: str
    detail: dict
    before: dict
    after: dict


class OperationResult(msgspec.Struct):
    """What an operation answered; stored under its request id so a retry
    gets the very same answer."""

    request_id: str
    operation: str
    seq: int  # the audit event's seq (the last one when it wrote several)
    account: dict | None = None
    number: dict | None = None
    balance: dict | None = None
    detail: dict = {}
    # SHA-256 hex of the request's content (its arguments but request id,
    # actor, time): a reused id with another digest is refused. "" in records
    # written before digests were kept, and for internal operations.
    content_digest: str = ""
    # The effective time the operation was dated (epoch ms): a retry that
    # gives another one explicitly is refused as other content (breaker N13
    # F11). 0 in records written before it was kept.
    at_ms: int = 0


_encoders = msgspec.msgpack.Encoder()
_dec = {cls: msgspec.msgpack.Decoder(cls) for cls in (Account, Number, Event, OperationResult)}


def encode(record) -> bytes:
    return _encoders.encode(record)


_S = TypeVar("_S", bound=msgspec.Struct)

def decode(cls: type[_S], raw) -> _S:
    """A record of type ``cls`` from its stored bytes."""
    return _dec[cls].decode(raw)  # type: ignore[index, return-value]  # the decoder of cls decodes a cls


def as_dict(record) -> dict:
    return msgspec.to_builtins(record)


def number_key(number: str) -> bytes:
    return number.encode("ascii")


def account_number_key(account: str, number: str) -> bytes:
    return account.encode() + b"\0" + number.encode("ascii")


def seq_key(seq: int) -> bytes:
    return _BE.pack(seq)


def change_key(generation: int, kind: bytes, ident: str) -> bytes:
    """``cust_changes`` key: what ``generation`` changed (kind ``a``/``n``/``g``)."""
    return _BE.pack(generation) + kind + ident.encode()


def parse_change_key(key: bytes) -> tuple[int, bytes, str]:
    return _BE.unpack(key[:8])[0], key[8:9], key[9:].decode()


def event_index_key(account: str, at_ms: int, seq: int) -> bytes:
    return account.encode() + b"\0" + _BE.pack(at_ms) + _BE.pack(seq)


def seq_of_index_key(key: bytes) -> int:
    return _BE.unpack(key[-8:])[0]


def get_counter(txn, db, name: bytes) -> int:
    raw = txn.get(name, db=db)
    return _I64.unpack(raw)[0] if raw else 0


def put_counter(txn, db, name: bytes, value: int) -> None:
    txn.put(name, _I64.pack(value), db=db)


def take_row(txn, meta) -> int:
    """A new account's row: the next one no account has, taken in ``txn``
    (``NEXT_ROW`` in the layer's ``meta`` moves past it). Opening an account
    (``Operations.open_account``) and importing one (``accounts.importer``)."""
    row = get_counter(txn, meta, NEXT_ROW)
    put_counter(txn, meta, NEXT_ROW, row + 1)
    return row
