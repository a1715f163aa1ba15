"""The ledger: every piece of state that changes, and its record formats.

One package owns every mutable database of a store (the catalog snapshots
beside it are immutable). It has two LMDB environments; ``formats`` lists
every database, key and value byte by byte:

* ``ledger.lmdb`` (durable, fsynced per commit) -- money:
  ``balances`` (credit, bundle use, package start per account),
  ``calls`` + ``call_batches`` (committed rated records: call id -> batch,
  row; each batch one Arrow IPC stream; ``records``), ``call_layouts``
  (legacy JSON records, read only), ``meta`` (batch counter),
  ``adjustments`` (one row per call and rerating run that changed it),
  ``crm`` + ``crm_seen`` (the caller CRM: one record per account and caller,
  which is also caller memory: ``callers``).
* ``live.lmdb`` (not fsynced; discarded after a reboot) -- calls in progress:
  ``holds`` (reserved credit and bundle seconds per account),
  ``reservations`` + ``reservation_deadline`` (one credit reservation per
  authorised call), ``route_active`` / ``route_calls`` / ``route_deadline``
  (live calls per destination line, caps), ``route_cursor`` (round-robin
  positions, generation counter).
* the customer layer (in ``ledger.lmdb``, so an operation and the credit it
  moves commit together): accounts, 400 numbers, request ids, the audit log;
  its formats are in ``customers``, its operations in ``rating_core.accounts``.

Public API:

``Ledger(root)``                      open (shared per process); ``close()``
``Ledger.write()``                    context: one money operation (``LedgerTxn``)
``Ledger.apply_credit(w, account, delta_minor, terms, at_ms)``
                                      top-up / adjustment / refund; refuses a debit
                                      below the available balance (``InsufficientCredit``)
``Ledger.balance(account, terms, at_ms)`` -> ``Balance`` (credit_minor, reserved_minor,
                                      available_minor, credit_limit_minor,
                                      bundle_left_seconds, reserved_seconds, ...)
``AccountTerms.from_snapshot(snapshot, account)``  what a balance means
``Ledger.opening_state / write_state`` the rating kernel's per-account arrays
``records.committed / store / load``  exactly-once rated records (``committed_entries`` /
                                      ``load_table``: the same as Arrow columns)
``call_key(call_id)``                 the key of a call in every database
``adjustments.put / latest / of_call``  rerating adjustments (``rating_core.rerate``)

Units: money int64 in 1/10000 yuan (``*_minor``), bundle time in seconds,
instants in epoch ms.
"""
from .core import (
    DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR, AccountTerms, Balance, InsufficientCredit, Ledger, LedgerTxn,
    Stored, month_of, month_opening_kinds, package_credit_limits, prepaid_follows_in_month,
)
from .formats import call_key

__all__ = [
    "Ledger", "LedgerTxn", "AccountTerms", "Balance", "Stored", "InsufficientCredit",
    "DEFAULT_POSTPAID_CREDIT_LIMIT_MINOR", "call_key", "month_of", "month_opening_kinds", "package_credit_limits",
    "prepaid_follows_in_month",
]
