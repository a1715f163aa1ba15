"""``rating400 accounts import``: move a catalog's YAML/CSV accounts into the
customer layer, so a platform can migrate from editing YAML to operations.

Each catalog account becomes one operation (request id
``import:<account>``, so running the import again changes nothing): the
account opens already real-name ``verified`` (it was live), on its package
from its ``package_start`` with its opening credit, its numbers in the
inventory in their catalog status (``closed`` ones are skipped), each number's
routing plan copied from the catalog and every destination that plan names
bound and verified with proof ``imported from catalog``. A balance the
ledger already holds for the same package start is kept, so credit already
used stays used.

The **cut-over** (``Account.billing_from_ms``): this ledger bills an imported
account from the first instant of a month, the month of the import by
default or the one ``billing_from_ms`` names; the months before it were
billed by the platform the accounts come from, so their rentals, minimums,
yearly fees and unpaid balances are not owed here (``billing.statements``).
The cut-over month is billed whole (its calls are committed here from its
first day, and a month's rental and minimum are one month's).
"""
from __future__ import annotations

import datetime as dt

import msgspec

from ..errors import InvalidInput, Refused, StoreError
from ..ledger import customers as C
from . import operations
from .operations import LOCAL, Accounts, _local, _Tx
from .view import plan_json

_NUMBER_STATE = {"active": "active", "suspended": "suspended", "pending_verification": "pending_verification",
                 "frozen": "frozen"}
_ACCOUNT_STATE = {"active": "active", "suspended": "suspended", "frozen": "frozen", "closed": "closed",
                  "pending_verification": "active"}


def _midnight(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL).timestamp() * 1000)


def month_start(ms: int) -> int:
    """The first instant (epoch ms) of the Asia/Shanghai month holding ``ms``."""
    day = dt.datetime.fromtimestamp(ms / 1000, LOCAL).date()
    return _midnight(day.replace(day=1))


def latest_cut_over_ms(now: int) -> int:
    """The latest cut-over allowed at ``now`` (epoch ms): the first instant
    of the Asia/Shanghai month after now's. A platform imports in late
    November for a 1 December cut-over; a later one is a typo (2062 for
    2026) that would bill none of the accounts' months until then."""
    return operations.add_months_ms(month_start(now), 1)


def cut_over_too_late(cut_ms: int) -> str | None:
    """Why ``cut_ms`` (epoch ms) is refused as a cut-over at the accounts'
    now (``operations.now_ms``, the clock tests set), or None when it is
    at most ``latest_cut_over_ms``: the message says the cut-over, the
    latest allowed and what a later one would do (breaker / newcomer N11:
    ``--billing-from 2062-11-01`` was taken and billed no account)."""
    now = operations.now_ms()
    latest = latest_cut_over_ms(now)
    if cut_ms <= latest:
        return None
    return (f"cut-over {_local(cut_ms)[:10]} is after {_local(latest)[:10]}, the month after the current one "
            f"(now {_local(now)[:10]}, Asia/Shanghai): the cut-over is the first month this ledger bills, the "
            "months before it the old platform's, so a later one would bill none of the account's months until "
            "then (a mistyped year?)")


def import_catalog(ops: Accounts, catalog_path, actor: str = "import", billing_from_ms: int | None = None) -> dict:
    """Import every account of the catalog at ``catalog_path``; returns
    ``{"imported": [...], "skipped": [...], "billing_from_ms": cut-over}``
    (skipped: already in the layer, its stored cut-over unchanged; the
    cut-over is the one given to the accounts imported by this run, or
    when none was, the one the skipped accounts keep, None when theirs
    differ), and ``detail.warnings`` when a ``billing_from_ms`` given was
    not applied to skipped accounts that keep another. ``billing_from_ms``
    (epoch ms, a local month's first instant): the cut-over, default the
    import's month (``month_start`` of its time); stored on each imported
    account. Raises StoreError when the store has no active catalog version
    (the packages the accounts are on live there; breaker: ``KeyError:
    'packages'``), InvalidInput (``billing_from``) when ``billing_from_ms`` is not
    a month's first instant or is later than the month after the current
    one (``cut_over_too_late``), Refused (``not_in_active_catalog``,
    nothing imported) when the active version lacks a package or feature an
    account to import is on, or has its package as another kind
    (``_lacking``). That check and the accounts' commits run in one
    ``Store.pinned``, as ``subscribe`` and ``change_package`` do: an
    activation waits for the import, and its own in-use check then sees
    the imported accounts (an import racing an activation could leave an
    account on a package the active version lacks)."""
    if billing_from_ms is not None and month_start(billing_from_ms) != billing_from_ms:
        raise InvalidInput("billing_from", f"{billing_from_ms} is not the first instant of a month (Asia/Shanghai)")
    if billing_from_ms is not None and (late := cut_over_too_late(billing_from_ms)):
        raise InvalidInput("billing_from", late)
    from ..catalog import load_catalog

    if ops.store.current() is None:
        raise StoreError(f"{ops.store.root}: no active catalog version, so none of its packages to put accounts "
                         f"on: run `rating400 catalog compile {catalog_path} --store {ops.store.root} --activate` "
                         f"first")

    cat = load_catalog(catalog_path)
    with ops.store.pinned():
        return _import(ops, cat, catalog_path, actor, billing_from_ms)


def _import(ops: Accounts, cat, catalog_path, actor: str, billing_from_ms: int | None) -> dict:
    """``import_catalog``'s check and commits, in its ``Store.pinned``."""
    if problems := _lacking(ops, cat):
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise Refused("not_in_active_catalog",
                      f"{catalog_path}: nothing imported: {'; '.join(problems[:3])}{more}; compile and activate "
                      f"this catalog first (`rating400 catalog compile {catalog_path} --store {ops.store.root} "
                      "--activate`), then import")
    imported, skipped = [], []
    cut_ms = month_start(operations.now_ms()) if billing_from_ms is None else billing_from_ms
    for aid, acc in cat.accounts.items():
        pkg = cat.packages[acc.package]

        def fn(tx: _Tx, aid=aid, acc=acc, pkg=pkg):
            if tx.txn.get(aid.encode(), db=ops.db[C.ACCOUNTS_DB]) is not None:
                raise Refused("account_exists", f"account {aid!r} is already in the customer layer")
            row = C.take_row(tx.txn, ops.db[C.META_DB])
            start = _midnight(acc.package_start)
            prepaid = pkg.kind.value == "prepaid"
            credit = (pkg.fee if acc.opening_credit is None else acc.opening_credit) if prepaid else 0
            a = C.Account(id=aid, row=row, company=acc.name or aid, created_ms=tx.at,
                          status=_ACCOUNT_STATE[acc.status.value], realname="verified",
                          realname_note="imported from catalog", package=acc.package, package_start_ms=start,
                          period_end_ms=_midnight(_add_months(acc.package_start, pkg.period_months)) if prepaid
                          else C.NEVER_MS, opening_credit_minor=credit, features=list(acc.features), billing_from_ms=cut_ms)
            if a.status == "suspended":
                a.suspended_ms, a.suspend_reason = tx.at, "manual"
            tx.put_account(a, None, {"source": str(catalog_path)})
            for num in acc.numbers:
                state = _NUMBER_STATE.get(num.status.value)
                if state is None:
                    continue
                if tx.txn.get(C.number_key(num.number), db=ops.db[C.NUMBERS_DB]) is not None:
                    raise Refused("number_exists", f"{num.number} is already in the inventory")
                n = C.Number(num.number, ops.grade_of(num.number), state, tx.at, [(state, tx.at)], account=aid,
                             billing_start=num.billing_start.value, home_city=num.home_city)
                if num.routing:
                    plan = cat.routing_plans[num.routing]
                    n.plan_name, n.plan = num.routing, plan_json(plan)
                    seen = []
                    for g in plan.groups.values():
                        seen += [d.number for d in g.destinations if d.number not in seen]
                    n.destinations = [C.Destination(d, tx.at, True, "imported from catalog", tx.at) for d in seen]
                tx.put_number(n, None)
            return ops._result(tx, a)

        try:
            res = ops._run("import_account", f"import:{aid}", actor, None, fn)
        except Refused:
            res = {"replayed": True}
        (skipped if res["replayed"] else imported).append(aid)
    with ops.ledger.env.begin() as txn:  # what the accounts already imported keep
        kept = {aid: C.decode(C.Account, txn.get(aid.encode(), db=ops.db[C.ACCOUNTS_DB])).billing_from_ms
                for aid in skipped}
    stored = {cut_ms} if imported else set(kept.values())
    result: dict = {"imported": imported, "skipped": skipped,
                    "billing_from_ms": stored.pop() if len(stored) == 1 else None}
    warnings = []
    ignored = [aid for aid in skipped if billing_from_ms is not None and kept[aid] != billing_from_ms]
    if ignored and billing_from_ms is not None:  # breaker 3 F5: a re-import printed the new cut-over as if stored
        warnings.append(
            f"billing_from {_local(billing_from_ms)[:10]} not applied to {len(ignored)} account(s) already imported "
            f"({', '.join(ignored[:3])}{', ...' if len(ignored) > 3 else ''}): each keeps its cut-over "
            "(accounts show; to change one: accounts billing-from ACCOUNT YYYY-MM-01)")
    earlier = held_before_cut_over(ops, imported)
    if earlier:
        warnings.append(held_warning(earlier))
    if warnings:
        result["detail"] = {"warnings": warnings, **({"before_cut_over": earlier} if earlier else {})}
    return result


def _lacking(ops: Accounts, cat) -> list[str]:
    """What the active catalog version lacks of what ``cat``'s accounts not
    yet in the layer are on, one phrase each: a package it has not, a
    package it has as another kind (the import opens an account by the
    file's kind: credit and period), a feature it has not. Empty: the
    import may go on. Read in the caller's ``Store.pinned``."""
    meta, v = ops.catalog(), f"the active catalog version {ops.store.current()}"
    rules, features = meta.get("package_rules", {}), set(meta["billing"]["features"])
    with ops.ledger.env.begin() as txn:
        new = [aid for aid in cat.accounts if txn.get(aid.encode(), db=ops.db[C.ACCOUNTS_DB]) is None]
    out = []
    for aid in new:
        acc = cat.accounts[aid]
        kind, rule = cat.packages[acc.package].kind.value, rules.get(acc.package)
        if rule is None:
            out.append(f"account {aid!r} is on package {acc.package!r}, which {v} lacks")
        elif rule["kind"] != kind:
            out.append(f"account {aid!r} is on package {acc.package!r}, {kind} in the file and {rule['kind']} in {v}")
        out += [f"account {aid!r} has feature {f!r}, which {v} lacks" for f in acc.features if f not in features]
    return out


IMPORT_WARNED = 10  # accounts named one by one in the import's warning of calls or money before the cut-over


def held_before_cut_over(ops: Accounts, accounts: list[str]) -> list[dict]:
    """The ``accounts`` (ids just imported) whose ledger already holds a
    call or money dated before their cut-over (calls committed before the
    import, as in the demo flow), by id: ``{"account", "billing_from_day"
    (YYYY-MM-DD; ``*_local`` names full timestamps), "billing_starts" (YYYY-MM, the first month their
    statements bill: ``Accounts._billing_starts``, the statements' rule),
    "first" (what the earliest is, e.g. "a call"), "first_ms"}`` (newcomer
    N11 F4: the import stored 2026-12-01 over October calls and said
    nothing, while ``rate --commit`` warns in the other order). One
    ``_first_held`` per account: the calls of the months before the
    cut-over (the ledger's account-month index) and the account's events."""
    out = []
    with ops.ledger.env.begin() as txn:
        tx = _Tx(ops, None, operations.now_ms(), "", "", "read", txn=txn)
        for aid in sorted(accounts):
            acc = tx.account(aid)
            starts, first = ops._billing_starts(tx, acc)
            if first is not None:
                out.append({"account": aid, "billing_from_day": _local(acc.billing_from_ms)[:10],
                            "billing_starts": _local(starts)[:7], "first": first[1], "first_ms": first[0]})
    return out


def held_warning(earlier: list[dict]) -> str:
    """The import's one warning line for ``held_before_cut_over``'s
    accounts: at most ``IMPORT_WARNED`` named with the month their billing
    starts, the rest counted."""
    named = ", ".join(f"{e['account']} from {e['billing_starts']}" for e in earlier[:IMPORT_WARNED])
    more = f" and {len(earlier) - IMPORT_WARNED} more (detail.before_cut_over)" if len(earlier) > IMPORT_WARNED else ""
    cuts = sorted({e["billing_from_day"] for e in earlier})
    return (f"the ledger already holds calls or money of {len(earlier)} imported account(s) dated before their "
            f"cut-over {', '.join(cuts)}, so their statements start earlier, in the month of the first: "
            f"{named}{more}; those months' calls, rental and minimum are on their statements (nothing the ledger "
            "holds is left off one; accounts show: billing_starts_local)")


def _add_months(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31,
            30, 31][month - 1]
    return dt.date(year, month, min(day.day, last))


class _CutOver(msgspec.Struct):
    """The one field of an ``C.Account`` record that ``calls_before_cut_over``
    reads; the rest of the record is skipped by the decoder, not built."""

    billing_from_ms: int = 0


def calls_before_cut_over(env, accounts, start) -> list[dict]:
    """Calls just committed (``accounts``: their account ids, a string or
    dictionary array; ``start``: their start times, a timestamp array)
    dated before their account's cut-over, one entry per such account:
    ``{"account", "calls", "billing_from_ms", "billing_from_day",
    "billing_starts"}`` (the count; the cut-over in epoch ms and as a local
    date ``YYYY-MM-DD``, not ``*_local``, which names full timestamps; the month of the earliest of those calls,
    ``YYYY-MM``, where the account's statements now start), by account id. Such
    calls move the account's billing start back to their month
    (``statements.billed_from``: nothing the ledger holds is left off a
    statement), so a commit warns once per account (newcomer N10-2 finding
    3: a backlog of the old platform's calls loaded after the import was
    billed here a second time, with the rentals of the months between).
    One group-by over the rows and one record read per account in them; an
    empty customer layer (no account imported) reads nothing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .view import layer_dbs, layer_in_use

    if not len(start) or not layer_in_use(env):
        return []
    ms = pc.cast(pc.cast(start, pa.timestamp("ms", "UTC")), pa.int64())
    t = pa.table({"account": pc.cast(accounts, pa.string()), "ms": ms})
    firsts = t.group_by("account").aggregate([("ms", "min")])
    db = layer_dbs(env)[C.ACCOUNTS_DB]
    cuts = {}
    with env.begin(db=db) as txn:
        for a, first in zip(firsts.column("account").to_pylist(), firsts.column("ms_min").to_pylist()):
            raw = None if a is None else txn.get(a.encode())
            cut = msgspec.msgpack.decode(raw, type=_CutOver).billing_from_ms if raw is not None else 0
            if first is not None and first < cut:
                cuts[a] = cut
    out = []
    for a in sorted(cuts):
        mine = t.filter(pc.and_(pc.equal(t.column("account"), a), pc.less(t.column("ms"), cuts[a])))
        first = dt.datetime.fromtimestamp(pc.min(mine.column("ms")).as_py() / 1000, LOCAL)
        out.append({"account": a, "calls": mine.num_rows, "billing_from_ms": cuts[a],
                    "billing_from_day": dt.datetime.fromtimestamp(cuts[a] / 1000, LOCAL).date().isoformat(),
                    "billing_starts": first.strftime("%Y-%m")})
    return out
