"""Webhook delivery of account notifications, at least once, in order per account.

Events whose operation is in ``NOTIFY`` go to their account's ``webhook_url``
as a POST of the event's JSON with header ``X-Rating400-Event: <seq>`` (the
receiver's idempotency key). ``Webhooks.deliver`` runs one pass:

1. **Queue**: every audit event after the cursor (``cust_meta``
   ``webhook_seq``) is read once, in one read transaction; a notifiable event
   of an account with a webhook gets an outbox key (``cust_meta``
   ``webhook_out`` NUL account NUL seq) and the cursor moves past all of them
   in one durable write. Other events (an ``AddNumbers`` of 20,000 numbers
   writes 20,000) cost a decode each, never a write or a wait.
2. **Deliver**: each account with an outbox is delivered by its own job on a
   thread pool, oldest event first, to the URL the account has *now* (a fixed
   URL drains the backlog; a cleared one drops it). A POST is tried ``tries``
   times with doubling pauses; when it still fails the account's job stops and
   its events stay queued for the next pass, while other accounts' jobs go on:
   one account's broken receiver (a malformed stored URL, connection refused, a
   timeout, HTTP 500) never holds back another's events. Delivered events
   leave the outbox in a durable write (a crash in between delivers again:
   at least once).

The server runs a pass every second on worker 0 without waiting for jobs still
posting (``wait=False``), so a receiver that times out delays only itself.
``check_webhook_url`` is the one rule for a URL, when it is set and before
every POST.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..ledger import customers as C
from .view import layer_dbs

log = logging.getLogger("rating400.webhooks")

# Events a platform turns into an SMS or e-mail to the enterprise.
NOTIFY = frozenset(("alert", "suspend_account", "restore_account", "freeze_account", "reclaim_account",
                    "top_up", "change_package", "renew"))

_OUT = b"webhook_out\0"  # + account + NUL + seq (8B BE) -> b"": queued, not yet delivered


def check_webhook_url(url: str) -> str | None:
    """Why ``url`` cannot be a webhook (a sentence), or None when it can:
    printable ASCII, scheme http or https, a host, a valid port, no
    user:password (urllib would not send it), and not a link-local, unspecified
    or multicast IP literal (169.254.169.254 is the cloud metadata service; no
    receiver lives there). Loopback and private addresses are allowed: a relay
    on the same host or a CRM on the internal network are ordinary receivers,
    and only an administrator sets a webhook. Host names are not resolved."""
    if not url.isascii() or not url.isprintable() or " " in url:
        return "printable ASCII without spaces (write a non-ASCII host in its xn-- form, a path %-encoded)"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"not a URL: {e}"
    if parts.scheme.lower() not in ("http", "https"):
        return "an http:// or https:// URL"
    # A fully qualified name's trailing dot names the same host to the
    # resolver and to urllib ("169.254.169.254." reached the metadata
    # service: breaker 12-02 F7); the address is read without it.
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "a URL with a host (http://host/path)"
    if port == 0:
        return "port 0 is not a port a receiver listens on"
    if parts.username is not None or parts.password is not None:
        return "no user:password@ in the URL (it is not sent); put a token in the path or query"
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        try:  # the forms the resolver also reads as IPv4: 2852039166, 0xa9.0xfe.0xa9.0xfe, 169.254.43518
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            ip = None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip is not None and (ip.is_link_local or ip.is_unspecified or ip.is_multicast):
        return f"{ip} is a link-local, unspecified or multicast address, not a receiver"
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a 3xx is a failure: never POST where the URL did not say
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: bytes, headers: dict, timeout: float = 5.0) -> None:
    """POST ``body`` (JSON bytes) to ``url`` with ``headers``; redirects are
    not followed. Raises ValueError for a URL ``check_webhook_url`` refuses,
    OSError (urllib's URLError / HTTPError) for a transport error or a
    non-2xx answer, TimeoutError after ``timeout`` seconds."""
    why = check_webhook_url(url)
    if why:
        raise ValueError(f"webhook_url {url!r}: {why}")
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with _opener.open(req, timeout=timeout) as resp:  # noqa: S310 - checked above
        if not 200 <= resp.status < 300:
            raise OSError(f"HTTP {resp.status}")


def _out_key(account: str, seq: int) -> bytes:
    return _OUT + account.encode() + b"\0" + C.seq_key(seq)


class Webhooks:
    """The delivery state of one ``Accounts`` (``ops``): the thread pool of
    per-account jobs and the accounts whose receiver is failing (logged once
    when it starts failing and once when it recovers). ``post(url, body,
    headers)`` is ``post_json`` or a test's stand-in; ``tries`` attempts per
    pass with pauses ``backoff_s``, doubling; ``batch`` events per account per
    pass; ``scan`` events queued per pass."""

    def __init__(self, ops, post: Callable[[str, bytes, dict], None] = post_json, tries: int = 3,
                 backoff_s: float = 0.2, batch: int = 200, scan: int = 50_000, workers: int = 16) -> None:
        self.ops, self.post, self.tries, self.backoff_s = ops, post, tries, backoff_s
        self.batch, self.scan = batch, scan
        self.dbs = layer_dbs(ops.env)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        self._running: dict[str, Future] = {}
        self.failing: dict[str, str] = {}  # account -> the last failure, while its receiver fails

    def close(self) -> None:
        """Stop taking jobs; a POST under way finishes (its event stays queued)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def queue(self) -> int:
        """Queue the notifiable events after the cursor; returns how many."""
        meta, accounts = self.dbs[C.META_DB], self.dbs[C.ACCOUNTS_DB]
        keys, last = [], 0
        with self.ops.env.begin() as txn:
            after = C.get_counter(txn, meta, C.WEBHOOK_SEQ)
            cur = txn.cursor(db=self.dbs[C.EVENTS_DB])
            if cur.set_range(C.seq_key(after + 1)):
                for n, raw in enumerate(cur.iternext(keys=False)):
                    if n >= self.scan:
                        break
                    ev = C.decode(C.Event, raw)
                    last = ev.seq
                    if ev.operation in NOTIFY and ev.account:
                        acc = txn.get(ev.account.encode(), db=accounts)
                        if acc is not None and C.decode(C.Account, acc).webhook_url:
                            keys.append(_out_key(ev.account, ev.seq))
        if last:
            with self.ops.ledger.durable() as txn:  # full: LedgerFull, nothing moved (the next pass retries)
                for k in keys:
                    txn.put(k, b"", db=meta)
                C.put_counter(txn, meta, C.WEBHOOK_SEQ, last)
        return len(keys)

    def _backlogs(self) -> dict[str, tuple[str, list[tuple[bytes, bytes]]]]:
        """Account -> (its webhook_url now, [(outbox key, JSON body)] oldest
        first, at most ``batch``); an account without a URL now is given ""."""
        meta = self.dbs[C.META_DB]
        out: dict[str, tuple[str, list[tuple[bytes, bytes]]]] = {}
        with self.ops.env.begin() as txn:
            cur = txn.cursor(db=meta)
            ok = cur.set_range(_OUT)
            while ok and bytes(cur.key()).startswith(_OUT):
                key = bytes(cur.key())
                account = key[len(_OUT):-9].decode()
                raw = txn.get(account.encode(), db=self.dbs[C.ACCOUNTS_DB])
                url = C.decode(C.Account, raw).webhook_url if raw is not None else ""
                items = out.setdefault(account, (url, []))[1]
                if len(items) < self.batch:
                    ev = C.decode(C.Event, txn.get(key[-8:], db=self.dbs[C.EVENTS_DB]))
                    items.append((key, json.dumps(
                        {k: getattr(ev, k) for k in ("seq", "at_ms", "operation", "account", "number", "actor",
                                                     "detail")} | {"status": ev.after.get("status")},
                        ensure_ascii=False).encode()))
                    ok = cur.next()
                else:  # the rest waits for a later pass
                    ok = cur.set_range(_OUT + account.encode() + b"\1")
        return out

    def _job(self, url: str, items: list[tuple[bytes, bytes]]) -> tuple[list[bytes], str]:
        """POST ``items`` in order; (the keys delivered, the failure that stopped it or "")."""
        done: list[bytes] = []
        for key, body in items:
            for attempt in range(self.tries):
                try:
                    self.post(url, body, {"X-Rating400-Event": str(C.seq_of_index_key(key))})
                    break
                except Exception as e:  # noqa: BLE001 - any failure is retried
                    if attempt == self.tries - 1:
                        return done, f"{type(e).__name__}: {e}"
                    time.sleep(self.backoff_s * (2 ** attempt))
            done.append(key)
        return done, ""

    def _finish(self, account: str, result: tuple[list[bytes], str]) -> int:
        done, why = result
        if done:
            with self.ops.ledger.durable() as txn:
                for k in done:
                    txn.delete(k, db=self.dbs[C.META_DB])
        if why and account not in self.failing:
            log.warning("webhook of account %s fails: %s; its events wait (others are delivered) and are "
                        "retried every pass; fix it with `accounts notify %s --webhook URL`", account, why, account)
        elif not why and account in self.failing:
            log.info("webhook of account %s delivers again", account)
        if why:
            self.failing[account] = why
        else:
            self.failing.pop(account, None)
        return len(done)

    def deliver(self, wait: bool = True) -> int:
        """One pass: queue new events, start a job for each account with a
        backlog and no job running, record the jobs that ended. With
        ``wait``, wait for this pass's jobs. Returns the events delivered by
        the jobs recorded. Raises ``LedgerFull`` (nothing of the write kept;
        the next pass retries)."""
        delivered = self._collect(wait=False)
        self.queue()
        for account, (url, items) in self._backlogs().items():
            if account in self._running:
                continue
            if not url:  # the webhook was cleared: its queued events are not sent
                with self.ops.ledger.durable() as txn:
                    for k, _ in items:
                        txn.delete(k, db=self.dbs[C.META_DB])
                self.failing.pop(account, None)
                continue
            self._running[account] = self._pool.submit(self._job, url, items)
        return delivered + (self._collect(wait=True) if wait else 0)

    def _collect(self, wait: bool) -> int:
        delivered = 0
        for account, fut in list(self._running.items()):
            if wait or fut.done():
                del self._running[account]
                delivered += self._finish(account, fut.result())
        return delivered

def deliver_webhooks(ops, post: Callable[[str, bytes, dict], None] = post_json, tries: int = 3,
                     backoff_s: float = 0.2, batch: int = 200) -> int:
    """One complete pass (``Webhooks.deliver``, waiting for every job);
    returns the events delivered."""
    hooks = Webhooks(ops, post, tries, backoff_s, batch)
    try:
        return hooks.deliver()
    finally:
        hooks.close()
