"""The live view: a catalog snapshot with its customer tables taken from the
customer layer, in the very arrays the kernels read.

``open_view(store, ledger, version)`` returns what ``Rater`` and ``Router``
take as a snapshot. When the customer layer holds no account (a store that
has not migrated, see ``rating400 accounts import``) that is the catalog
snapshot itself. Otherwise it is a ``LiveSnapshot``: the snapshot's product
tables (rates, bands, packages, prefixes, regions, calendar) shared as they
are, and these rebuilt from the layer, at one ``generation`` of it:

* ``number_*``: the numbers held by an account (locked .. frozen), sorted by
  key; locked and pending-verification numbers are ``pending_verification``
  to the kernels, so they are refused with that reason;
  ``number_cap_spend_minor`` / ``number_cap_calls`` (int64, 0: none) are
  the monthly caps the router enforces at Authorize (the kernels do not
  read them);
* ``account_*``: one row per account (``Account.row``); ``meta["accounts"]``
  names them, so the rated output and the balances use the same ids;
* history (``kernels.rating.HISTORY``): each account's package periods
  (``accounts.periods``, from the audit log) and each held number's states
  since its holding began (``Number.history``), so a late CDR is rated under
  the period and number state in force at its start. Rows are located per
  account / number by ``*_first`` and ``*_count``; ``update_view`` appends a
  changed record's rows and repoints it (the old rows stay unused until the
  next full build);
* ``route_*``: each number's routing plan with only its verified bound
  destinations (see ``effective_plan``), identical plans compiled once.

A process checks ``generation`` (one LMDB read) and updates its view when
it moved; ``Engine.refresh`` does it on the server's refresh tick, so an
operation reaches every worker within that tick plus one update.

Incremental update (``update_view``): the records each generation changed
are listed in ``cust_changes``; they are decoded and patched into copies of
the arrays they touch (account rows, the number rows whose routing did not
change, new accounts appended). The routing tables are shared with the
previous view, so ``Router(previous=...)`` reuses what it derived from
them. A change the patch cannot express (a number entering or leaving the
held set, its destinations, plan or account changing), a generation whose
log is missing, or another catalog version falls back to ``build_view``.
"""
from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Iterator, cast

import msgspec
import numpy as np
import pyarrow as pa

from .. import layout
from ..catalog.routing import RoutingPlan
from ..ledger import customers as C
from . import periods as P
from ..routes import ROUTING_TABLES
from ..routing_layout import ROUTE_PARTS, route_sizes
from ..numbers import keys_of

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..store.snapshot import Snapshot

# Number inventory state -> the kernels' number status (layout.STATUS).
_NUMBER_STATUS = {"active": 0, "suspended": 1, "locked": 2, "pending_verification": 2, "frozen": 3}
_ACCOUNT_STATUS = {"active": 0, "suspended": 1, "frozen": 3, "closed": 4}
_NOT_HELD = layout.STATUS.index("closed")  # a number's state no account holds it in (available, cooling, ...)
DEFAULT_GROUP = "bound"
NUMBER_COLUMNS = ("number_key", "number_account", "number_status", "number_billing_start", "number_home_city",
                  "number_routing", "number_cap_spend_minor", "number_cap_calls", "number_hist_first",
                  "number_hist_count")
_route_ids = itertools.count(1)
# Plans no number uses are left in the routing tables by ``update_view`` until
# the tables hold more than twice the held numbers plus this many plans; then
# one full rebuild compacts them (amortised over that many routing changes).
SPARE_PLANS = 4096


def generation(txn, db) -> int:
    return C.get_counter(txn, db, C.GENERATION)


_dbs: dict = {}


def layer_dbs(env) -> dict:
    """The customer layer's database handles for ``env``, opened once per
    process and environment (``open_db`` takes LMDB's write lock, so never
    per request)."""
    held = _dbs.get(id(env))
    if held is None or held[0] is not env:  # an id can be reused once an environment is gone
        held = _dbs[id(env)] = (env, {name: env.open_db(name) for name in C.DATABASES})
    return held[1]


def effective_plan(number: C.Number) -> tuple[str, RoutingPlan] | None:
    """The plan a number routes by: its own plan with every destination
    that is not bound to it and verified taken out, or, without a plan, a
    sequential hunt over its verified bound destinations in bind order.
    None when nothing can be routed (the kernels answer ``no_route``)."""
    verified = [d.number for d in number.destinations if d.verified]
    if not verified:
        return None
    if not number.plan:
        plan = RoutingPlan.model_validate({"groups": {DEFAULT_GROUP: {"destinations": [{"number": n} for n in verified]}},
                                           "rules": [{"group": DEFAULT_GROUP}]})
        return DEFAULT_GROUP, plan
    plan = RoutingPlan.model_validate_json(number.plan)
    ok = set(verified)
    groups = {}
    for name, g in plan.groups.items():
        kept = [d for d in g.destinations if d.number in ok]
        # A group left empty offers nothing; the plan's overflow still applies.
        groups[name] = g if len(kept) == len(g.destinations) else g.model_copy(update={"destinations": kept})
    return number.plan_name or "plan", plan.model_copy(update={"groups": groups})


@dataclass
class LiveSnapshot:
    """Snapshot-shaped (``tables``, ``meta``, ``version``) view of one
    catalog version and one customer-layer generation."""

    base: Snapshot  # the catalog Snapshot; keeps its mapped arrays alive
    tables: dict
    meta: dict
    generation: int
    # What ``update_view`` needs: each held number's routing key (``_routing_key``).
    numbers: dict = field(default_factory=dict, repr=False)
    # The routing tables' identity: ``routes_id`` names these route_* arrays;
    # ``routes_from`` the ones they extend by appending (None: built afresh),
    # so ``Router(previous=...)`` derives only the appended rows.
    routes_id: int = field(default_factory=lambda: next(_route_ids))
    routes_from: int | None = None

    @property
    def version(self) -> int:
        return self.base.version

    @property
    def path(self):
        return self.base.path

    def __repr__(self) -> str:
        return f"<LiveSnapshot v{self.version} gen {self.generation}>"


def layer_in_use(env) -> bool:
    """True when the customer layer holds an account (it then replaces the
    catalog's accounts)."""
    db = layer_dbs(env)[C.META_DB]
    with env.begin(db=db) as txn:
        return C.get_counter(txn, db, C.NEXT_ROW) > 0


def read_layer(env) -> tuple[int, list[C.Account], list[C.Number], dict[str, list[P.Period]]]:
    """(generation, accounts by row, numbers held by accounts, each account's
    recorded package periods) in one read transaction."""
    dbs = layer_dbs(env)
    with env.begin() as txn:
        gen = generation(txn, dbs[C.META_DB])
        dec_a = cast("msgspec.msgpack.Decoder[C.Account]", C._dec[C.Account]).decode
        dec_n = cast("msgspec.msgpack.Decoder[C.Number]", C._dec[C.Number]).decode
        accounts = [dec_a(v) for v in txn.cursor(db=dbs[C.ACCOUNTS_DB]).iternext(keys=False)]
        held = C.HELD_STATES
        numbers = [n for n in map(dec_n, txn.cursor(db=dbs[C.NUMBERS_DB]).iternext(keys=False)) if n.state in held]
        periods: dict[str, list[P.Period]] = {}
        for p in P.package_periods(_period_events(txn.cursor(db=dbs[C.EVENTS_DB]).iternext(keys=False))):
            periods.setdefault(p.account, []).append(p)
    accounts.sort(key=lambda a: a.row)
    return gen, accounts, numbers, periods


class _Terms(msgspec.Struct, frozen=True):
    """The package terms of an audit event's ``before`` / ``after`` record
    (an empty record: the defaults, which match no real period)."""

    package: str = ""
    package_start_ms: int = -1
    opening_credit_minor: int = -1
    period_end_ms: int = C.NEVER_MS


class _Carried(msgspec.Struct, frozen=True):
    carried_minor: int = 0


class _PeriodFields(msgspec.Struct):
    """The fields of an audit ``C.Event`` that ``periods.package_periods``
    reads; the rest of each record is skipped by the decoder, not built."""

    account: str = ""
    number: str = ""
    detail: _Carried = _Carried()
    before: _Terms = _Terms()
    after: _Terms = _Terms()


_period_decoder = msgspec.msgpack.Decoder(_PeriodFields)


def _period_events(raws) -> Iterator[dict]:
    """The audit events (raw records, in the order recorded) that may open a
    period, as the dicts ``periods.package_periods`` reads: account events
    (not a number's) after which the account has a package."""
    for raw in raws:
        e = _period_decoder.decode(raw)
        if not e.number and e.after.package:
            yield {"account": e.account, "number": "", "detail": {"carried_minor": e.detail.carried_minor},
                   "before": msgspec.structs.asdict(e.before), "after": msgspec.structs.asdict(e.after)}


def account_event_seqs(txn, dbs, account: str) -> list[int]:
    """The seqs of every audit event of ``account`` (its numbers' too), in
    the order recorded: its keys in ``cust_event_index`` (account NUL at_ms
    seq), sorted by seq. A stored id is never empty; an empty ``account``
    (prefix NUL) matches no key."""
    cur = txn.cursor(db=dbs[C.EVENT_INDEX_DB])
    prefix = account.encode() + b"\0"
    seqs = []
    if cur.set_range(prefix):
        for k in cur.iternext(values=False):
            k = bytes(k)
            if not k.startswith(prefix):
                break
            seqs.append(C.seq_of_index_key(k))
    return sorted(seqs)


def account_periods(txn, dbs, account: str) -> list[P.Period]:
    """The recorded package periods of one account, in the order recorded
    (``account_event_seqs``)."""
    ev_db = dbs[C.EVENTS_DB]
    return P.package_periods(_period_events(txn.get(C.seq_key(q), db=ev_db)
                                            for q in account_event_seqs(txn, dbs, account)))


def _period_rows(accounts: list[C.Account], recorded: dict[str, list[P.Period]], packages: dict[str, int],
                 offset: int) -> tuple[dict[str, np.ndarray], list[int], list[int]]:
    """Period arrays (``period_start_ms`` / ``period_package`` /
    ``period_expiry_ms``) for ``accounts`` and, per account, its first row
    (from ``offset``) and count. An account without a package, or with a
    period under a package this catalog version does not have, gets none
    (its current ``account_*`` row then applies to every call, as before)."""
    starts: list[int] = []
    pkgs: list[int] = []
    expiry: list[int] = []
    first, count = [], []
    for a in accounts:
        own = recorded.get(a.id)
        if own is None and a.package in packages:  # no logged period (written directly): the record's only
            first.append(offset + len(starts))
            count.append(1)
            starts.append(a.package_start_ms)
            pkgs.append(packages[a.package])
            expiry.append(a.period_end_ms)
            continue
        ps = P.in_force(own or [], a) if a.package else []
        ids = [packages.get(p.package) for p in ps]
        if any(i is None for i in ids):
            ps, ids = [], []
        first.append(offset + len(starts))
        count.append(len(ps))
        starts += [p.start_ms for p in ps]
        pkgs += [int(i) for i in ids if i is not None]
        expiry += [p.until_ms for p in ps]
    cols: dict[str, np.ndarray] = {
        "period_start_ms": np.array(starts, np.int64), "period_package": np.array(pkgs, np.int32),
        "period_expiry_ms": np.array(expiry, np.int64)}
    return cols, first, count


def _history_rows(numbers: list[C.Number], offset: int) -> tuple[dict[str, np.ndarray], list[int], list[int]]:
    """State arrays (``hist_ms`` / ``hist_status``) of ``numbers`` (their
    ``periods.held_history``) and, per number, its first row (from
    ``offset``) and count."""
    ms: list[int] = []
    status: list[int] = []
    first, count = [], []
    for n in numbers:
        h = [(n.history[0][0], P.SINCE_EVER)] if len(n.history) == 1 else P.held_history(n.history)
        first.append(offset + len(ms))
        count.append(len(h))
        ms += [at for _s, at in h]
        status += [_NUMBER_STATUS.get(state, _NOT_HELD) for state, _at in h]
    return {"hist_ms": np.array(ms, np.int64), "hist_status": np.array(status, np.int8)}, first, count


def build_view(snapshot, env) -> LiveSnapshot:
    """Rebuild the customer tables of ``snapshot`` from the layer in ``env``.
    The cyclic GC is paused meanwhile: hundreds of thousands of fresh records
    would otherwise trigger full collections that cost more than the build."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_view(snapshot, env)
    finally:
        if enabled:
            gc.enable()


def _build_view(snapshot, env) -> LiveSnapshot:
    gen, accounts, numbers, recorded = read_layer(env)
    base = snapshot.tables
    meta = dict(snapshot.meta)
    packages = {p: i for i, p in enumerate(meta["packages"])}
    cities = {c: i for i, c in enumerate(meta["cities"])}
    n_acc = (accounts[-1].row + 1) if accounts else 0
    names = [""] * n_acc
    a_pkg = np.zeros(n_acc, np.int32)
    a_status = np.full(n_acc, _ACCOUNT_STATUS["closed"], np.int8)
    a_start = np.zeros(n_acc, np.int64)
    a_expiry = np.full(n_acc, layout.NEVER, np.int64)
    a_credit = np.zeros(n_acc, np.int64)
    for a in accounts:
        names[a.row] = a.id
        pkg = packages.get(a.package)
        if pkg is None:
            continue  # no package (or one this catalog version dropped): closed to calls
        a_pkg[a.row] = pkg
        a_status[a.row] = _ACCOUNT_STATUS[a.status]
        a_start[a.row] = a.package_start_ms
        a_expiry[a.row] = a.period_end_ms
        a_credit[a.row] = a.opening_credit_minor
    row_of = {a.id: a.row for a in accounts}

    n_route, plan_models, hunts = _routes(numbers)
    tables = dict(base)
    keys = keys_of(pa.array([n.number for n in numbers], pa.string())) if numbers else np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    cols = {
        "number_key": (keys, np.int64),
        "number_account": ([row_of[n.account] for n in numbers], np.int32),
        "number_status": ([_NUMBER_STATUS[n.state] for n in numbers], np.int8),
        "number_billing_start": ([layout.BILLING_START.index(n.billing_start) for n in numbers], np.int8),
        "number_home_city": ([cities.get(n.home_city, -1) for n in numbers], np.int32),
        "number_routing": (n_route, np.int32),
        # Monthly caps (0: none), enforced by the router at Authorize.
        "number_cap_spend_minor": ([n.cap_spend_minor for n in numbers], np.int64),
        "number_cap_calls": ([n.cap_calls for n in numbers], np.int64),
    }
    hist, h_first, h_count = _history_rows(numbers, 0)
    cols["number_hist_first"] = (h_first, np.int32)
    cols["number_hist_count"] = (h_count, np.int32)
    for name, (values, dtype) in cols.items():
        tables[name] = np.ascontiguousarray(np.asarray(values, dtype).reshape(-1)[order])
    tables.update(account_package=a_pkg, account_status=a_status, account_start_ms=a_start,
                  account_expiry_ms=a_expiry, account_opening_credit=a_credit)
    rows = [C.Account(id="", row=i, company="", created_ms=0) for i in range(n_acc)]  # no package: no periods
    for a in accounts:
        rows[a.row] = a
    period_cols, p_first, p_count = _period_rows(rows, recorded, packages, 0)
    tables.update(hist, **period_cols, account_period_first=np.array(p_first, np.int32),
                  account_period_count=np.array(p_count, np.int32))
    tables.update(_routing(plan_models, hunts, meta, base))
    layout.check(tables)

    meta["accounts"] = names
    meta["customer_generation"] = gen
    billing = dict(meta.get("billing", {}))
    by_row = {a.row: a for a in accounts}
    billing["account_package_index"] = [packages.get(by_row[i].package, 0) if i in by_row else 0 for i in range(n_acc)]
    local_days = ((a_start + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY).astype("datetime64[D]")
    billing["account_package_start"] = np.datetime_as_string(local_days).tolist()
    billing["account_features"] = [list(by_row[i].features) if i in by_row else [] for i in range(n_acc)]
    billing["account_names"] = [by_row[i].company if i in by_row else names[i] for i in range(n_acc)]  # statements
    meta["billing"] = billing
    return LiveSnapshot(snapshot, tables, meta, gen, {n.number: _routing_key(n) for n in numbers})


def _route_of(num: C.Number) -> tuple[str, RoutingPlan] | list[str] | None:
    """How a held number routes: (plan id, its effective plan) when it has a
    plan; the verified destinations of its sequential hunt when it has none;
    None when nothing can be routed. A plan is the number's own (id
    ``name@number``), never shared with another number's, so a number's
    plan id and round-robin cursor do not depend on which other numbers
    exist, and a change to one number recompiles only its plan."""
    if not num.plan:
        return [d.number for d in num.destinations if d.verified] or None
    eff = effective_plan(num)
    if eff is None:
        return None
    name, plan = eff
    return f"{name}@{num.number}", plan


def _routes(numbers: list[C.Number]) -> tuple[list[int], dict[str, RoutingPlan], list[list[str]]]:
    """Per number its route id (-1: none) among the plans then the hunts
    that ``_routing`` compiles from the returned (plans, hunts)."""
    plans: dict[str, RoutingPlan] = {}
    hunts: list[list[str]] = []
    ids = []
    for num in numbers:
        route = _route_of(num)
        if route is None:
            ids.append(-1)
        elif isinstance(route, list):
            ids.append(-2 - len(hunts))  # -2 - i: hunt i, placed after the plans
            hunts.append(route)
        else:
            ids.append(len(plans))
            plans[route[0]] = route[1]
    return [len(plans) - 2 - r if r <= -2 else r for r in ids], plans, hunts


def _routing_key(n: C.Number | None):
    """What of a number the routing tables and the number set depend on."""
    if n is None or n.state not in C.HELD_STATES:
        return None
    return (n.account, n.plan_name, n.plan, tuple((d.number, d.verified) for d in n.destinations))


def update_view(view: "LiveSnapshot", env) -> "LiveSnapshot | None":
    """``view`` brought to the layer's generation by patching only what
    changed since (module doc); ``view`` itself when nothing did; None when
    the change needs a full ``build_view``."""
    dbs = layer_dbs(env)
    with env.begin() as txn:
        gen = generation(txn, dbs[C.META_DB])
        if gen == view.generation:
            return view
        if gen < view.generation:
            return None
        accounts: dict[str, C.Account] = {}
        numbers: dict[str, C.Number | None] = {}
        marked = set()
        cur = txn.cursor(db=dbs[C.CHANGES_DB])
        if cur.set_range(C.change_key(view.generation + 1, b"", "")):
            for k in cur.iternext(values=False):
                g, kind, ident = C.parse_change_key(bytes(k))
                if g > gen:
                    break
                if kind == b"g":
                    marked.add(g)
                elif kind == b"a":
                    accounts[ident] = C.decode(C.Account, txn.get(ident.encode(), db=dbs[C.ACCOUNTS_DB]))
                elif kind == b"n":
                    raw = txn.get(C.number_key(ident), db=dbs[C.NUMBERS_DB])
                    numbers[ident] = C.decode(C.Number, raw) if raw is not None else None
        if len(marked) != gen - view.generation:
            return None  # a generation written without its log
        account_rows = {}  # the row of each account a changed number is held by
        for n in numbers.values():
            if n is not None and n.state in C.HELD_STATES and n.account not in account_rows:
                acc = accounts.get(n.account) or C.decode(C.Account, txn.get(n.account.encode(), db=dbs[C.ACCOUNTS_DB]))
                account_rows[n.account] = acc.row
        # Package periods of the accounts whose period moved (or that are new).
        t, n_rows = view.tables, len(view.meta["accounts"])
        periods = {a.id: account_periods(txn, dbs, a.id) for a in accounts.values()
                   if a.row >= n_rows or a.package_start_ms != t["account_start_ms"][a.row]
                   or a.opening_credit_minor != t["account_opening_credit"][a.row]
                   or a.package != view.meta["packages"][t["account_package"][a.row]]}
    return _patch(view, gen, accounts, numbers, account_rows, periods)


def _patch(view: "LiveSnapshot", gen: int, changed_accounts: dict, changed_numbers: dict, account_rows: dict,
           periods: dict[str, list[P.Period]]):
    meta = dict(view.meta)
    packages = {p: i for i, p in enumerate(meta["packages"])}
    cities = {c: i for i, c in enumerate(meta["cities"])}
    names = meta["accounts"]  # shared with ``view`` until an account is appended
    tables = dict(view.tables)
    copied: set[str] = set()

    def col(name):
        if name not in copied:
            tables[name] = tables[name].copy()
            copied.add(name)
        return tables[name]

    billing = dict(meta.get("billing", {}))
    lists = ("account_package_index", "account_package_start", "account_features", "account_names")
    if changed_accounts:
        for key in lists:
            billing[key] = list(billing.get(key, []))
    for a in sorted(changed_accounts.values(), key=lambda a: a.row):
        if a.row > len(names):
            return None  # rows are dense; a gap means records this view never saw
        if a.row == len(names):  # a new account: one more row
            if names is view.meta["accounts"]:
                names = list(names)
            names.append(a.id)
            for name, fill in (("account_package", 0), ("account_status", _ACCOUNT_STATUS["closed"]),
                               ("account_start_ms", 0), ("account_expiry_ms", layout.NEVER),
                               ("account_opening_credit", 0), ("account_period_first", 0),
                               ("account_period_count", 0)):
                tables[name] = np.append(tables[name], np.array([fill], tables[name].dtype))
                copied.add(name)
            for key in lists:
                billing[key].append(None)
        pkg = packages.get(a.package)
        if pkg is None:  # as build_view: closed to calls
            col("account_status")[a.row] = _ACCOUNT_STATUS["closed"]
            col("account_package")[a.row] = 0
            col("account_start_ms")[a.row] = 0
            col("account_expiry_ms")[a.row] = layout.NEVER
            col("account_opening_credit")[a.row] = 0
        else:
            col("account_package")[a.row] = pkg
            col("account_status")[a.row] = _ACCOUNT_STATUS[a.status]
            col("account_start_ms")[a.row] = a.package_start_ms
            col("account_expiry_ms")[a.row] = a.period_end_ms
            col("account_opening_credit")[a.row] = a.opening_credit_minor
        if a.id in periods:  # its periods appended, the account repointed at them
            p_cols, p_first, p_count = _period_rows([a], periods, packages, len(tables["period_start_ms"]))
            for name, arr in p_cols.items():
                tables[name] = np.concatenate([tables[name], arr])
            col("account_period_first")[a.row] = p_first[0]
            col("account_period_count")[a.row] = p_count[0]
        local_day = (a.package_start_ms + layout.LOCAL_OFFSET_MS) // layout.MS_PER_DAY
        billing["account_package_index"][a.row] = pkg if pkg is not None else 0
        billing["account_package_start"][a.row] = str(np.datetime64(int(local_day), "D"))
        billing["account_features"][a.row] = list(a.features)
        billing["account_names"][a.row] = a.company
    numbers = view.numbers
    routes_id, routes_from = view.routes_id, view.routes_from
    held = [new for number, new in changed_numbers.items()
            if new is not None and new.state in C.HELD_STATES]
    moved = {number: new for number, new in changed_numbers.items() if view.numbers.get(number) != _routing_key(new)}
    if moved:
        # The number set or a number's routing changed: rows leave and join
        # the sorted number_* arrays, and the new routes are compiled alone
        # and appended to the routing tables (old plan ids stay valid; a
        # plan no number uses any more is left in place until a rebuild).
        numbers = dict(view.numbers)
        gone = [n for n in moved if n in numbers]
        if gone:
            at = np.searchsorted(tables["number_key"], keys_of(pa.array(gone, pa.string())))
            for name in NUMBER_COLUMNS:
                tables[name] = np.delete(tables[name], at)
                copied.add(name)
            for n in gone:
                del numbers[n]
        joining = [new for new in moved.values() if _routing_key(new) is not None]
        if joining:
            new_keys = np.sort(keys_of(pa.array([n.number for n in joining], pa.string())))
            at = np.searchsorted(tables["number_key"], new_keys)
            for name in NUMBER_COLUMNS:  # placeholders, filled in with every held change below
                placeholder = new_keys if name == "number_key" else np.zeros(len(new_keys), tables[name].dtype)
                tables[name] = np.insert(tables[name], at, placeholder)
                copied.add(name)
            route_ids, plans, hunts = _routes(joining)
            first = route_sizes(tables)["plan"]
            tables.update(_append_routes(tables, _routing(plans, hunts, meta, view.base.tables)))
            routes_id, routes_from = next(_route_ids), view.routes_id
            if route_sizes(tables)["plan"] > 2 * (len(numbers) + len(joining)) + SPARE_PLANS:
                return None  # mostly plans no number uses: compact them by a rebuild (amortised)
            route = {n.number: (r + first if r >= 0 else -1) for n, r in zip(joining, route_ids)}
            for n in joining:
                numbers[n.number] = _routing_key(n)
    if held:
        at = np.searchsorted(tables["number_key"], keys_of(pa.array([n.number for n in held], pa.string())))
        hist, h_first, h_count = _history_rows(held, len(tables["hist_ms"]))
        for name, arr in hist.items():
            tables[name] = np.concatenate([tables[name], arr])
        for i, h_at, h_n in zip(at.tolist(), h_first, h_count):
            col("number_hist_first")[i] = h_at
            col("number_hist_count")[i] = h_n
        for i, new in zip(at.tolist(), held):
            col("number_status")[i] = _NUMBER_STATUS[new.state]
            col("number_billing_start")[i] = layout.BILLING_START.index(new.billing_start)
            col("number_home_city")[i] = cities.get(new.home_city, -1)
            col("number_cap_spend_minor")[i] = new.cap_spend_minor
            col("number_cap_calls")[i] = new.cap_calls
            if new.number in moved:
                col("number_account")[i] = account_rows[new.account]
                col("number_routing")[i] = route[new.number]
    meta["accounts"] = names
    meta["customer_generation"] = gen
    meta["billing"] = billing
    return LiveSnapshot(view.base, tables, meta, gen, numbers, routes_id, routes_from)


def _append_routes(old: dict, new: dict) -> dict:
    """Routing tables ``old`` with the standalone tables ``new`` (``_routing``
    of some plans and hunts) appended: every id ``new`` holds is moved past
    ``old``'s rows, destination numbers ``old`` already has keep their line
    (concurrency counts per line, whichever plan offered it), new ones get
    lines appended, and the text pools are joined. ``old``'s ids are
    unchanged. Lines are then in order of arrival, not sorted by key (no
    reader searches them by key)."""
    so, sn = route_sizes(old), route_sizes(new)
    old_keys = old["route_line_key"][:so["line"]]
    new_keys = new["route_line_key"][:sn["line"]]
    line_map = np.empty(len(new_keys), np.int64)
    found = np.zeros(len(new_keys), bool)
    if len(old_keys) and len(new_keys):
        sorter = np.argsort(old_keys, kind="stable")
        pos = np.minimum(np.searchsorted(old_keys, new_keys, sorter=sorter), len(old_keys) - 1)
        found = old_keys[sorter[pos]] == new_keys
        line_map[found] = sorter[pos[found]]
    fresh = np.flatnonzero(~found)
    line_map[fresh] = so["line"] + np.arange(len(fresh))
    out = {}
    for name, dtype in ROUTING_TABLES.items():
        if name.startswith("route_text_"):
            continue
        part = next(p for prefix, p in ROUTE_PARTS.items() if name.startswith(prefix))
        a, b = old[name][:so[part]], new[name][:sn[part]]
        if name == "route_dest_line":
            b = line_map[b]
        elif name in ("route_line_key", "route_line_number"):
            b = b[fresh] + (so["text"] if name == "route_line_number" else 0)
        elif name in _ROUTE_REFS:
            shift = so[_ROUTE_REFS[name]]
            b = np.where(b >= 0, b + shift, b)
        out[name] = np.concatenate([a, b.astype(dtype)]) if len(b) else a
    off_old, off_new = old["route_text_offsets"], new["route_text_offsets"]
    out["route_text_offsets"] = np.concatenate([off_old[:so["text"] + 1], off_new[1:sn["text"] + 1] + so["text_bytes"]])
    out["route_text_bytes"] = np.concatenate([old["route_text_bytes"][:so["text_bytes"]],
                                              new["route_text_bytes"][:sn["text_bytes"]]])
    for name, arr in out.items():
        if arr.size == 0:  # an empty part keeps one inert row, as the compiler gives it
            arr = old[name][:1]
        out[name] = np.ascontiguousarray(arr, ROUTING_TABLES[name])
    return out


# Routing columns holding ids of another part (``route_sizes`` key; -1 stays -1).
_ROUTE_REFS = {
    "route_plan_name": "text", "route_plan_announcement": "text", "route_plan_closed_announcement": "text",
    "route_plan_menu": "text", "route_group_name": "text",
    "route_plan_first_rule": "rule", "route_plan_first_group": "group", "route_plan_ivr_first": "ivr",
    "route_plan_exact_first": "exact", "route_plan_list_first": "list", "route_plan_region_row": "region_row",
    "route_rule_group": "group", "route_rule_sched_first": "sched", "route_rule_region_first": "region",
    "route_ivr_group": "group", "route_group_plan": "plan", "route_group_overflow": "group",
    "route_group_first_dest": "dest", "route_dest_group": "group",
}


def _routing(plans: dict[str, RoutingPlan], hunts: list[list[str]], meta: dict, base: dict) -> dict:
    """Route tables: the plan documents in ``plans`` compiled by the catalog's
    compiler (one compiler, no second copy), then one plan per entry of
    ``hunts`` appended in bulk: a sequential hunt over those destination
    numbers with the plan defaults (max 5 hops, 15 s rings, no lists, no
    schedule). Most numbers route that way, so a view of 100k numbers costs
    array work, not 100k plan compilations. Plan ids: ``plans`` first, in
    order, then the hunts."""
    from ..routes import NO_CAP, NO_IVR, routing_tables
    from ..catalog.routing import RING_TIMEOUT_DEFAULT
    from ..numbers import lookup

    cities = {c: i for i, c in enumerate(meta["cities"])}
    ids = SimpleNamespace(plans={p: i for i, p in enumerate(plans)}, cities=cities,
                          regions=SimpleNamespace(provinces=meta["provinces"]))
    # A stored plan naming a region the region data lacks (stored before
    # set_routing checked names) matches no caller there, and is logged:
    # one number's plan never stops every number's routing.
    unknown: list[str] = []
    out = routing_tables(cast(Any, SimpleNamespace(routing_plans=plans)), ids, base,  # the plans part of a Catalog
                         unknown_regions=unknown, aliases=meta.get("city_aliases", {}))
    if unknown:
        log.warning("routing plans name regions not in the region data (they match no caller): %s",
                    "; ".join(unknown[:5]))
    if not hunts:
        return out
    # Real lengths (the compiler gives an empty part one inert row).
    n_plans = len(plans)
    n_rules = int(out["route_plan_n_rules"][:n_plans].sum())
    n_groups = int(out["route_plan_n_groups"][:n_plans].sum())
    n_dests = int(out["route_group_n_dest"][:n_groups].sum()) if n_groups else 0
    real = {"route_plan_": n_plans, "route_rule_": n_rules, "route_group_": n_groups, "route_dest_": n_dests,
            "route_sched_": int(out["route_rule_sched_count"][:n_rules].sum()) if n_rules else 0,
            "route_region_kind": int(out["route_rule_region_count"][:n_rules].sum()) if n_rules else 0,
            "route_region_id": int(out["route_rule_region_count"][:n_rules].sum()) if n_rules else 0,
            "route_ivr_": int(out["route_plan_ivr_count"][:n_plans].sum()),
            "route_exact_": int(out["route_plan_exact_count"][:n_plans].sum())}

    def cut(name):
        for prefix, n in real.items():
            if name.startswith(prefix):
                return out[name][:n]
        return out[name]

    t = {name: cut(name) for name in out}
    h = len(hunts)
    k = np.array([len(x) for x in hunts], np.int64)
    flat = [n for x in hunts for n in x]
    # Lines: every destination number, old and new, sorted by key.
    old_keys = t["route_line_key"][t["route_dest_line"]] if n_dests else np.zeros(0, np.int64)
    new_keys = keys_of(pa.array(flat, pa.string()))
    line_keys, inverse = np.unique(np.concatenate([old_keys, new_keys]), return_inverse=True)
    # Text pool: the old strings, then "bound" and the new destination numbers.
    offsets = out["route_text_offsets"]
    blob = bytes(out["route_text_bytes"][: offsets[-1]]) if len(offsets) > 1 else b""
    n_text = len(offsets) - 1
    names = [DEFAULT_GROUP] + flat
    data = [x.encode() for x in names]
    new_off = offsets[-1] + np.cumsum([len(x) for x in data])
    text_offsets = np.concatenate([offsets, new_off]).astype(np.int64)
    text_bytes = np.frombuffer(blob + b"".join(data) or b"\0", np.uint8).copy()
    bound_text = n_text
    line_text = np.full(len(line_keys), -1, np.int64)
    if n_dests:
        line_text[inverse[:n_dests]] = t["route_line_number"][t["route_dest_line"]]
    line_text[inverse[n_dests:]] = n_text + 1 + np.arange(len(flat))
    plan_ids = np.arange(h)
    first_dest = n_dests + np.concatenate([[0], np.cumsum(k)[:-1]])
    dest_group = np.repeat(n_groups + plan_ids, k)
    z = lambda v, dtype: np.full(h, v, dtype)  # noqa: E731
    add = {
        "route_plan_name": z(bound_text, np.int32), "route_plan_max_hops": z(5, np.int32),
        "route_plan_announcement": z(-1, np.int32), "route_plan_closed_announcement": z(-1, np.int32),
        "route_plan_memory_ms": z(0, np.int64), "route_plan_first_rule": n_rules + plan_ids,
        "route_plan_n_rules": z(1, np.int32), "route_plan_first_group": n_groups + plan_ids,
        "route_plan_n_groups": z(1, np.int32), "route_plan_ivr_first": z(real["route_ivr_"], np.int32),
        "route_plan_ivr_count": z(0, np.int32), "route_plan_menu": z(-1, np.int32),
        "route_plan_exact_first": z(real["route_exact_"], np.int32), "route_plan_exact_count": z(0, np.int32),
        "route_plan_list_first": z(0, np.int32), "route_plan_list_count": z(0, np.int32),
        "route_plan_region_row": z(-1, np.int32),
        "route_rule_group": n_groups + plan_ids, "route_rule_ivr": z(NO_IVR, np.int64),
        "route_rule_sched_first": z(real["route_sched_"], np.int32), "route_rule_sched_count": z(0, np.int32),
        "route_rule_region_first": z(real["route_region_kind"], np.int32),
        "route_rule_region_count": z(0, np.int32),
        "route_group_name": z(bound_text, np.int32), "route_group_plan": n_plans + plan_ids,
        "route_group_strategy": z(0, np.int8), "route_group_memory": z(0, np.int8),
        "route_group_overflow": z(-1, np.int32), "route_group_first_dest": first_dest,
        "route_group_n_dest": k, "route_group_total_weight": z(0, np.int32),
        "route_dest_group": dest_group, "route_dest_ring": np.full(len(flat), RING_TIMEOUT_DEFAULT, np.int32),
        "route_dest_cap": np.full(len(flat), NO_CAP, np.int32), "route_dest_weight": np.zeros(len(flat), np.int32),
        "route_dest_class": lookup(base["dest_starts"], base["dest_values"], new_keys).astype(np.int32),
    }
    res = {}
    for name, arr in t.items():
        if name in add:
            res[name] = np.concatenate([arr, add[name].astype(arr.dtype)])
        else:
            res[name] = arr
    res["route_dest_line"] = inverse.astype(np.int32)
    res["route_line_key"] = line_keys.astype(np.int64)
    res["route_line_number"] = line_text.astype(np.int32)
    res["route_text_bytes"], res["route_text_offsets"] = text_bytes, text_offsets
    for name, arr in res.items():
        if arr.size == 0:  # an empty part keeps one inert row, as the compiler gives it
            res[name] = out[name][:1]
        res[name] = np.ascontiguousarray(res[name], ROUTING_TABLES[name])
    return res


def open_view(store, env, version: int | None = None, previous=None, checked: bool = True):
    """The catalog snapshot (``version``, default the active one) with the
    customer layer applied when it is in use; see the module doc. With
    ``previous`` (a ``LiveSnapshot`` of the same catalog version) only what
    changed since is applied (``update_view``) when it can be. A
    ``version`` other than the active one must hold the packages in use
    (``Store.check_in_use``; StoreError otherwise) unless ``checked`` is
    False: the engine's refresh, which follows activations (checked when
    made) and must never read the ledger's layer inside its own
    transaction or stall a reload (CI: a hot reload under load timed out)."""
    if isinstance(previous, LiveSnapshot) and (version is None or version == previous.version) \
            and store.current() == previous.version:
        updated = update_view(previous, env)
        if updated is not None:
            return updated
    snapshot = store.open(version)
    if not layer_in_use(env):
        return snapshot
    if checked and version is not None and version != store.current():
        # An older version read for the live accounts (rate, rerate, explain,
        # bill --version) must hold their packages as activation requires:
        # else they are rated and billed under another (breaker N15 F2:
        # `rate --version 1` charged a bundle account's call as payg_015).
        from ..errors import Refused, StoreError

        try:
            store.check_in_use(version)
        except Refused as e:
            raise StoreError(f"catalog version {version} cannot rate or bill the live accounts: {e.message}") from None
    return build_view(snapshot, env)


def current_generation(env) -> int:
    db = layer_dbs(env)[C.META_DB]
    with env.begin(db=db) as txn:
        return generation(txn, db)


def plan_json(plan: RoutingPlan) -> str:
    return json.dumps(plan.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"))
