"""Every ledger database and record format, written down once.

Two LMDB environments live in a store directory beside the snapshots:

``ledger.lmdb`` -- money, durable: every write transaction is fsynced before
it returns (``sync=True``), so a committed charge or top-up survives a power
cut.

==================  ==========================  =======================================
database            key                         value
==================  ==========================  =======================================
``balances``        account name (UTF-8)        ``BALANCE``: credit_minor int64,
                                                bundle_period int32 (year*12+month-1,
                                                -1 none), bundle_used_seconds int64,
                                                package_start_ms int64
``calls``           call key (``call_key``)     ``COMMITTED``: batch id uint64, row
                                                uint32 (legacy: 8-byte layout id +
                                                JSON list, read only)
``call_batches``    batch id (big-endian u64)   Arrow IPC stream: the rated records
                                                committed together (times as int64 ms;
                                                buffers LZ4-compressed, older batches
                                                plain: the reader takes both; money
                                                columns named as the rated output's,
                                                ``charge_minor`` ..., older batches'
                                                ``charge`` ...: ``records.read_batch``
                                                takes both)
``call_layouts``    8-byte layout id            JSON column names (legacy records only)
``meta``            ``b"next_batch"``           ``COUNT`` int64
``adjustments``     call key + NUL + ``\x01`` +  ``ADJUSTMENT_SEQ``: old_charge_minor int64,
                    the call's rerating         new_charge_minor, delta_minor,
                    sequence number (``>I``,    ledger_delta_minor (the part that moved
                    1 = its first rerating)     the balance), rerated_at_ms int64, target
                                                catalog version int32, then account NUL
                                                reason (UTF-8) NUL the new billable
                                                seconds NUL the prepaid credit's part
                                                of ledger_delta_minor, decimals (the
                                                last absent in rows written before
                                                it; the seconds may then be empty).
                                                Older rows: key call
                                                key + NUL + target version (``>i``),
                                                value ``ADJUSTMENT`` (no version), the
                                                billable seconds possibly absent
``crm``             account NUL caller (UTF-8,  ``CRM_RECORD`` (82 bytes): version
                    the normalised number)      byte 2, flags (``CRM_HAS_EXTRA``: tags
                                                or notes in ``crm_extra``), the 8
                                                ``CRM_COUNTS``, then the name ids
                                                (uint32, 0 none, ``crm_names``) of the
                                                destination that last answered, city,
                                                province, carrier. Older records (read,
                                                rewritten as ``CRM_RECORD`` when next
                                                written): ``CRM_COUNTS`` + msgspec JSON
                                                {d, c, p, k: those names, t: tags,
                                                n: notes}, always over 82 bytes
``crm_names``       name id (``>I``, from 1)    the name (UTF-8): a destination, city,
                                                province or carrier of a caller record
``crm_name_ids``    ``name_key``: ``\x00`` +     the name's id (``>I``); ids are never
                    the name's UTF-8, or        reused or renumbered
                    ``\x01`` + its sha256
``crm_extra``       the ``crm`` record's key    msgspec JSON {t: tags, n: notes}:
                                                only callers with tags or notes
``crm_seen``        call key                    empty: counted from a rated file
``settlements``     call key                    ``RESERVATION`` + account name: the
                                                credit reservation the call held when
                                                its CDR was committed (and released)
``account_batches`` ``MONTH_BATCH``: local      the accounts with calls of that batch
                    month (``>I``, year*12 +     starting in that month: sorted uint64
                    month-1), batch id (``>Q``)  (little-endian), each the first 8 bytes
                                                 of the account's blake2b digest
                                                 (``records.account_batches``); meta
                                                 ``b"indexed_from"``: the first batch
                                                 indexed (older ones are read in full)
``number_usage``    400 number key (``>q``) +   ``USAGE``: spend_minor int64 (the committed
                    month id (``>i``, year*12   calls' charges), calls int64 (committed
                    + month-1, Asia/Shanghai)   calls with billable seconds > 0)
``account_daily``   account (UTF-8) + NUL +      ``USAGE``: spend_minor, calls of that
                    local day (``>i``, days      account's committed calls started that
                    since 1970-01-01 +08:00)     day (Asia/Shanghai)
``bundle_usage``    account (UTF-8) + NUL +      ``COUNT``: bundle seconds used in that
                    ``PERIOD_MONTH``: package    month of that package period, for its
                    period start (``>q`` epoch   late CDRs (README "Late CDRs"): a month
                    ms), month id (``>i``)       the current period left behind, or a
                                                 period that ended (the ``balances``
                                                 record's month at the change); the
                                                 current month lives in ``balances``
==================  ==========================  =======================================

``CRM_COUNTS`` (the caller CRM, ``rating_core.billing.crm``): first_ms,
last_ms, calls, answered, talk_seconds, last_answered_ms, last_missed_ms,
called_back_ms (int64; times epoch ms, 0 = never). The same record is caller
memory: the ``answered`` call event sets last_answered_ms and the
destination (``callers.remember_answer``), the router reads them
(``callers.last_answer``); a commit changes them only for a later answer.
Every commit reads and rewrites the records of its callers, so the record
is fixed-size and small (a name is an id, interned once per ledger in the
commit's own transaction; tags and notes, written only by people, live
beside it); ``ledger.callers`` reads and writes it, and reads the older
JSON-tailed form.

``number_usage`` is what the per-number monthly caps are checked against
(``ledger.usage``); it is written in the transaction that commits the calls,
so it counts each call exactly once; ``account_daily`` likewise gives the
typical daily use the "credit below N days" notification compares with.

One ``adjustments`` row per call and rerating run that changed it, numbered
per call, so a run back to an earlier version (v2 -> v3 -> v2) is a row of
its own; a repeated run finds the call's newest row already at the
version's outcome and writes nothing (``ledger.adjustments``). One ``settlements`` row per committed call
that held a credit reservation, written in the commit's transaction, so a
charge explanation can name the hold its charge replaced
(``reservations.record_settled``).

``live.lmdb`` -- state of calls in progress, fast: commits are not fsynced
(``sync=False``: a crashed process loses nothing, the page cache has it; an
OS crash may lose the last commits, so after a reboot the file is discarded,
see ``ledger.live``). Authorize writes here on every call, so it must cost
microseconds, not an fsync.

========================  ==============================  ==========================================
database                  key                             value
========================  ==============================  ==========================================
``holds``                 account name                    ``HOLD``: reserved_minor int64,
                                                          reserved_seconds int64, open int64
``reservations``          call key                        ``RESERVATION`` + account name: see below
``reservation_deadline``  deadline ms (``>q``) + call key  empty (expiry sweep order)
``route_active``          line key (``>q``)               ``COUNT``: live calls on that line
``route_calls``           call key                        ``CALL``: line key, started ms, deadline ms
``route_deadline``        deadline ms (``>q``) + call key  empty (stale sweep order)
``route_cursor``          plan NUL group                  ``COUNT``: round-robin start;
                          ``b"\\x00generation"``          ``COUNT``: bumped by every routing change
``route_ended``           call key                        ``COUNT``: until when (ms) the call is
                                                          known to have ended (a late ``started`` /
                                                          ``answered`` is refused); its expiry is
                                                          also in ``route_deadline``
``number_holds``          400 number key (``>q``)         ``HOLD``: reserved_minor int64,
                                                          reserved_seconds int64, open int64
                                                          (every reservation of calls on that number)
========================  ==============================  ==========================================

``RESERVATION`` (``reservations.Reservation.pack``): reserved_minor int64
(1/10000 yuan), reserved_seconds int64 (bundle seconds), granted_seconds
int64 (from billing start: the call's limit), authorized_ms int64,
deadline_ms int64, answered_ms int64 (0 none), catalog_version int32,
package int32, billing_start int8, money int8 (1 money, 0 bundle seconds),
caller_class int8, n_classes int8, then n_classes int32 destination class
ids (the listed destinations'; the dearest prices the hold), then the
account name (UTF-8), then NUL and the 400 number's key (``>q``; its hold is
also summed in ``number_holds``, so a monthly cap set while the call is in
progress counts it), then, once the call's ``ended`` shrank the hold,
held_seconds int64 (the seconds it still covers; granted_seconds keeps the
grant).

All integers are little-endian unless marked ``>`` (big-endian keys sort by
value, which the deadline sweeps rely on).
"""
from __future__ import annotations

import hashlib
import struct

# -- ledger.lmdb (durable)
BALANCES = b"balances"
CALLS = b"calls"
CALL_BATCHES = b"call_batches"
CALL_LAYOUTS = b"call_layouts"
META = b"meta"
NEXT_BATCH = b"next_batch"
ADJUSTMENTS = b"adjustments"
CRM = b"crm"
CRM_SEEN = b"crm_seen"
CRM_NAMES = b"crm_names"
CRM_NAME_IDS = b"crm_name_ids"
CRM_EXTRA = b"crm_extra"
SETTLEMENTS = b"settlements"
ACCOUNT_BATCHES = b"account_batches"
INDEXED_FROM = b"indexed_from"
NUMBER_USAGE = b"number_usage"
ACCOUNT_DAILY = b"account_daily"
BUNDLE_USAGE = b"bundle_usage"
DURABLE_DBS = (BALANCES, CALLS, CALL_BATCHES, CALL_LAYOUTS, META, ADJUSTMENTS, CRM, CRM_SEEN, SETTLEMENTS,
               ACCOUNT_BATCHES, NUMBER_USAGE, ACCOUNT_DAILY, BUNDLE_USAGE, CRM_NAMES, CRM_NAME_IDS, CRM_EXTRA)

# -- live.lmdb (calls in progress)
HOLDS = b"holds"
RESERVATIONS = b"reservations"
RESERVATION_DEADLINE = b"reservation_deadline"
ROUTE_ACTIVE = b"route_active"
ROUTE_CALLS = b"route_calls"
ROUTE_DEADLINE = b"route_deadline"
ROUTE_CURSOR = b"route_cursor"
ROUTE_ENDED = b"route_ended"
NUMBER_HOLDS = b"number_holds"
GENERATION = b"\x00generation"  # in ROUTE_CURSOR
LIVE_DBS = (HOLDS, RESERVATIONS, RESERVATION_DEADLINE, ROUTE_ACTIVE, ROUTE_CALLS, ROUTE_DEADLINE,
            ROUTE_CURSOR, NUMBER_HOLDS, ROUTE_ENDED)

BALANCE = struct.Struct("<qiqq")  # credit_minor, bundle_period, bundle_used_seconds, package_start_ms
COMMITTED = struct.Struct("<QI")  # batch id, row in the batch
BATCH_KEY = struct.Struct(">Q")
HOLD = struct.Struct("<qqq")  # reserved_minor, reserved_seconds, open reservations
USAGE = struct.Struct("<qq")  # spend_minor, calls (number_usage)
MONTH = struct.Struct(">i")  # big-endian: a number's months (an account's days) sort by value
COUNT = struct.Struct("<q")
PERIOD_MONTH = struct.Struct(">qi")  # bundle_usage: package period start ms, month id (sorts by value)
# old_charge_minor, new_charge_minor, delta_minor, ledger_delta_minor, rerated_at_ms
ADJUSTMENT = struct.Struct("<qqqqq")
# the same, then the target catalog version (rows keyed by sequence)
ADJUSTMENT_SEQ = struct.Struct("<qqqqqi")
SEQ = struct.Struct(">I")  # a call's rerating sequence number (big-endian: sorts by value)
SEQ_MARK = b"\x01"  # after call key + NUL: a sequenced row (version-keyed rows have none)
VERSION = struct.Struct(">i")
CALL = struct.Struct("<qqq")  # line key (0: none), started ms, deadline ms
LINE = struct.Struct(">q")  # big-endian: keys sort by value
CRM_COUNTS = struct.Struct("<qqqqqqqq")  # see the crm database above
# version, flags, CRM_COUNTS, name ids of destination, city, province, carrier
CRM_RECORD = struct.Struct("<BB8q4I")
CRM_VERSION = 2  # the first byte of a CRM_RECORD (the older records have no version byte)
CRM_HAS_EXTRA = 1  # CRM_RECORD flags: the caller has tags or notes (crm_extra)
NAME_ID = struct.Struct(">I")
MONTH_BATCH = struct.Struct(">IQ")  # local month, batch id: see account_batches

MAX_KEY = 480  # LMDB keys are at most 511 bytes; leave room for a deadline prefix


def call_key(call_id: str) -> bytes:
    """The ledger key of a call id: its UTF-8 bytes, or ``#sha256:`` + the
    digest when longer than ``MAX_KEY`` bytes. Used by every database keyed
    by call (committed calls, reservations, live calls), so one call is one
    key everywhere. Raises ``ValueError`` for an empty id."""
    key = call_id.encode()
    if not key:
        raise ValueError("call_id: required")
    return key if len(key) <= MAX_KEY else b"#sha256:" + hashlib.sha256(key).digest()


def name_key(name: str) -> bytes:
    """The ``crm_name_ids`` key of a caller record's name: ``\\x00`` + its
    UTF-8 bytes (never empty, so an empty name is a key too), or ``\\x01`` +
    their sha256 when longer than ``MAX_KEY`` bytes."""
    raw = name.encode()
    return b"\x00" + raw if len(raw) <= MAX_KEY else b"\x01" + hashlib.sha256(raw).digest()
