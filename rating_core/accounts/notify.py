"""Webhook delivery of account notifications, at least once, in order.

``deliver_webhooks(ops)`` POSTs every audit event after the delivery cursor
(``cust_meta`` ``webhook_seq``) whose operation is in ``NOTIFY`` and whose
account has a ``webhook_url``: JSON of the event, header
``X-Rating400-Event: <seq>`` (the receiver's idempotency key). A delivery is
tried ``tries`` times with doubling pauses; when it still fails the cursor
stays on that event, so the next pass retries it (nothing is skipped, later
events wait behind it). The server runs a pass every second on worker 0.
"""
from __future__ import annotations

import json
import time
import urllib.request

from ..ledger import customers as C
from .view import layer_dbs

# Events a platform turns into an SMS or e-mail to the enterprise.
NOTIFY = frozenset(("alert", "suspend_account", "restore_account", "freeze_account", "reclaim_account",
                    "top_up", "change_package", "renew"))


def post_json(url: str, body: bytes, headers: dict, timeout: float = 5.0) -> None:
    """POST; raises on a transport error or a non-2xx answer."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - operator-configured URL
        if not 200 <= resp.status < 300:
            raise OSError(f"HTTP {resp.status}")


def deliver_webhooks(ops, post=post_json, tries: int = 3, backoff_s: float = 0.2, batch: int = 200) -> int:
    """One delivery pass; returns the events delivered."""
    dbs = layer_dbs(ops.env)
    with ops.env.begin() as txn:
        after = C.get_counter(txn, dbs[C.META_DB], C.WEBHOOK_SEQ)
    delivered = 0
    for ev in ops.events(None, after_seq=after, limit=batch):
        url = ""
        if ev["operation"] in NOTIFY and ev["account"]:
            with ops.env.begin() as txn:
                raw = txn.get(ev["account"].encode(), db=dbs[C.ACCOUNTS_DB])
            url = C.decode(C.Account, raw).webhook_url if raw is not None else ""
        if url:
            body = json.dumps({k: ev[k] for k in ("seq", "at_ms", "operation", "account", "number", "actor",
                                                  "detail")} | {"status": ev["after"].get("status")},
                              ensure_ascii=False).encode()
            for attempt in range(tries):
                try:
                    post(url, body, {"X-Rating400-Event": str(ev["seq"])})
                    break
                except Exception:  # noqa: BLE001 - any failure is retried
                    if attempt == tries - 1:
                        return delivered  # the cursor stays: the next pass retries this event
                    time.sleep(backoff_s * (2 ** attempt))
            delivered += 1
        with ops.ledger.durable() as txn:  # full: LedgerFull (the next pass retries)
            C.put_counter(txn, dbs[C.META_DB], C.WEBHOOK_SEQ, ev["seq"])
    return delivered
