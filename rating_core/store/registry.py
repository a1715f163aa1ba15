"""Catalog versions: compile, activate, list, open.

The active version is one key in ``index.lmdb``; ``activate`` rewrites it
in one LMDB write transaction, so every reader sees the old version or the
new one, never a mix. Old snapshot files are kept for rerating and
rollback (activate an older version to roll back). Each activation is
also dated in ``activations`` (the same transaction), so the monthly fees of
a past month are read from the version in force then (``in_force``).

A version is activated only when it has every package and feature the live
accounts hold (``in_use``): an account's package is looked up by id in the
active version, so one renamed or dropped made its months bill and its
calls rate under another package (breaker N14 F1).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import lmdb

from .. import layout
from ..errors import Refused, StoreError
from .snapshot import Snapshot, open_snapshot, package_kinds, write_snapshot

CURRENT = b"current"
# ``activations``: key the activation's epoch ms (8 bytes, big-endian, so
# the keys sort by time), value the version as ASCII digits. A store made
# before activations were dated has none; its first dated activation also
# records the version active until then as in force since 0 (the epoch).
_AT = struct.Struct(">q")

# LMDB opens an environment once per process; every Store on the same
# directory shares it (it is small and lives as long as the process).
# Keyed by pid too: an environment must never be used across fork(), so a
# forked worker opens its own.
_indexes: dict[tuple[int, str], lmdb.Environment] = {}
_indexes_lock = threading.Lock()


def _index_env(path: Path) -> lmdb.Environment:
    key = (os.getpid(), str(path.resolve()))
    with _indexes_lock:
        if key not in _indexes:
            _indexes[key] = lmdb.open(key[1], subdir=False, max_dbs=3, map_size=64 << 20)
        return _indexes[key]


class Store:
    """A catalog store directory: ``index.lmdb`` (the versions and which one
    is active) and ``snapshots/vNNNNNN`` (one immutable LMDB file per compiled
    catalog version). ``compile`` adds a version, ``activate`` switches the
    one the rater, router and server read (``current``, one LMDB read).
    Raises StoreError for a directory that is not a store (``create=False``)
    or a version it does not hold; the catalog compiler is imported only
    by ``compile``, never at run time."""

    def __init__(self, root: str | Path, create: bool = True):
        self.root = Path(root)
        if not (self.root / "index.lmdb").exists() and not create:
            raise StoreError(f"{self.root}: not a catalog store (no index.lmdb); run `rating400 catalog compile`")
        (self.root / "snapshots").mkdir(parents=True, exist_ok=True)
        self._index = _index_env(self.root / "index.lmdb")
        self._versions = self._index.open_db(b"versions")
        self._activations = self._index.open_db(b"activations")

    # -- writing ---------------------------------------------------------
    def compile(self, catalog_path: str | Path, activate: bool = False) -> int:
        """Validate, compile and store a catalog; returns its new version."""
        from ..catalog import load_catalog
        from ..compile import compile_catalog, source_digest
        from ..compile.regions import city_aliases

        catalog = load_catalog(catalog_path, regions=city_aliases())
        tables, meta = compile_catalog(catalog)
        with self._index.begin(write=True, db=self._versions) as txn:
            last = txn.cursor()
            version = int(last.key()) + 1 if last.last() else 1
            # Reserve the number before the (slow) write, so two compilers
            # never pick the same one.
            txn.put(b"%08d" % version, b"{}")
        path = self.root / "snapshots" / f"v{version:06d}"
        meta.update(
            version=version,
            source=str(Path(catalog_path).resolve()),
            source_sha256=source_digest(catalog_path),
            compiled_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        write_snapshot(path, tables, meta)
        summary = {k: meta[k] for k in ("version", "catalog", "source", "source_sha256", "compiled_at", "counts", "region_data")}
        with self._index.begin(write=True, db=self._versions) as txn:
            txn.put(b"%08d" % version, json.dumps(summary).encode())
        if activate:
            self.activate(version)
        return version

    def activate(self, version: int) -> None:
        """Make ``version`` the active one from now (StoreError if the store
        lacks it); the activation is dated (``in_force``) in the same
        transaction. Refused (``package_in_use`` / ``feature_in_use``, the
        active version unchanged) when ``version`` lacks a package or feature
        the store's live accounts hold (``check_in_use``)."""
        self._activate(version, time.time_ns() // 1_000_000)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Hold the active version for the block: the index's write lock,
        taken and released with nothing written, so no activation (whose
        in-use check and commit run in that lock, ``_activate``) lands
        inside it. An operation that puts an account on a package checks
        the package against the active version and commits in it: else a
        rollback to a version lacking the package could read the ledger
        before the change committed and activate after it, both passing
        (issue 12 breaker). Lock order: the index, then the ledger."""
        txn = self._index.begin(write=True)
        try:
            yield
        finally:
            txn.abort()

    def _activate(self, version: int, at_ms: int) -> None:
        # ``at_ms`` is now except in tests, which date an activation back.
        # The check runs in the index's write transaction: two activations
        # never pass it against each other's version.
        with self._index.begin(write=True) as txn:
            if txn.get(b"%08d" % version, db=self._versions) in (None, b"{}"):
                raise StoreError(f"no catalog version {version} in {self.root}")
            self.check_in_use(version)
            before = txn.get(CURRENT)
            if before and txn.stat(self._activations)["entries"] == 0:
                txn.put(_AT.pack(0), before, db=self._activations)
            txn.put(_AT.pack(at_ms), str(version).encode(), db=self._activations)
            txn.put(CURRENT, str(version).encode())

    def check_in_use(self, version: int) -> None:
        """Refused unless catalog ``version`` has every package and feature in
        use (``in_use``): ``package_in_use`` naming each package it lacks, how
        many accounts hold it and one of them, and what to do;
        ``feature_in_use`` when only features are missing. The one check
        of every activation (``catalog activate``, ``catalog compile
        --activate``, gRPC Activate)."""
        packages, features, ended = in_use(self.root)
        current = self.current()
        new = self.open(version)
        live = bool(packages or features)
        if not live:
            if current is None or current == version:
                return
            # No live customer layer: each version carries its own accounts,
            # validated with it, so nothing can lack a package; but the
            # packages the active version's accounts hold were rated and
            # billed as their kind, so they keep it (N16 breaker: the
            # early return let bundle_10 become payg, and `bill` then
            # refused the rater's own files).
            packages = catalog_holders(self.open(current))
            lacking = []
        else:
            meta = new.meta
            lacking = [("package", p, packages[p]) for p in sorted(set(packages) - set(meta["packages"]))]
            lacking += [("feature", f, features[f]) for f in sorted(set(features) - set(meta["billing"]["features"]))]
        if not lacking and current is not None and current != version:
            # A package in use keeps its kind too (breaker N15 F1: `payg_6s`
            # made a bundle was activated; `bill` then refused the rater's own
            # files, their credit and overage a pay-as-you-go call's).
            was, now = package_kinds(self.open(current)), package_kinds(new)
            changed = [p for p in sorted(packages) if p in was and p in now and was[p] != now[p]]
            if changed:
                p = changed[0]
                raise Refused("package_in_use", (
                    f"version {version} makes package {p!r} a {now[p]} package, a {was[p]} one in version {current} "
                    f"(held by {len(packages[p])} account(s), e.g. {min(packages[p])}"
                    + (f"; and {len(changed) - 1} more package(s)" if len(changed) > 1 else "") + "): its calls "
                    "were rated and its months billed as that kind; publish the new kind as a new package and move "
                    + ("the accounts with `rating400 accounts change-package ACCOUNT PACKAGE`. " if live else
                       "the catalog's accounts to it. ") +
                    f"Version {current} stays active."))
        if not lacking:
            return

        def held(kind: str, name: str, accounts: set[str]) -> str:
            # An account no longer on the package holds it by an ended
            # period the ledger bills: say so, with the period's dates, not
            # "held by" alone of an account an operator sees on another
            # package (issue 12 breaker).
            first, past = min(accounts), ended.get(name, {}) if kind == "package" else {}
            note = _ended_note(name, *past[first]) if first in past else ""
            if len(accounts) == 1:
                return f"1 account ({first}{note})"
            alone = f"; {len(past)} of them by an ended package period alone" if past else ""
            return f"{len(accounts)} accounts (e.g. {first}{note}{alone})"

        what = "; ".join(f"{kind} {name!r}, held by {held(kind, name, accounts)}"
                         for kind, name, accounts in lacking[:20])
        if len(lacking) > 20:
            what += f"; and {len(lacking) - 20} more"
        why = []
        if any(kind == "package" for kind, _n, _a in lacking):
            why.append(
                "A package is held by an account on it now, waiting for it (a change from a later date) or with a "
                "package period under it that the ledger bills; its months are billed and its calls rated under "
                "the package by id, so without it they would be billed and rated under another. Keep each in the "
                "new version (a price change keeps the id: a month's fees are those of the version in force at its "
                "start), or publish the new package beside it and move the accounts with `rating400 accounts "
                "change-package ACCOUNT PACKAGE`; a package that ran stays in later versions, for its months.")
        if any(kind == "feature" for kind, _n, _a in lacking):
            why.append("A feature an account holds is billed every month it does: keep it in the new version.")
        if current is not None:
            why.append(f"Version {current} stays active.")
        reason = "package_in_use" if lacking[0][0] == "package" else "feature_in_use"
        raise Refused(reason, f"version {version} lacks {what}. " + " ".join(why))

    # -- reading ---------------------------------------------------------
    def current(self) -> int | None:
        """The active version: one LMDB read, cheap enough to call per request."""
        with self._index.begin() as txn:
            v = txn.get(CURRENT)
        return int(v) if v else None

    def activations(self) -> list[tuple[int, int]]:
        """Every dated activation, oldest first: (epoch ms, version). The
        first is at 0 for a version active before activations were dated."""
        with self._index.begin(db=self._activations) as txn:
            return [(_AT.unpack(k)[0], int(v)) for k, v in txn.cursor()]

    def in_force(self, at_ms: int) -> int | None:
        """The catalog version active at ``at_ms`` (epoch ms): the last one
        activated at or before it; the active one when no activation is
        dated (a store made before they were); None before the first."""
        with self._index.begin(db=self._activations) as txn:
            cur = txn.cursor()
            if not cur.first():
                return self.current()
            if cur.set_range(_AT.pack(at_ms + 1)):
                if not cur.prev():
                    return None
            elif not cur.last():
                return None
            return int(cur.value())

    def versions(self) -> list[dict]:
        """Every compiled version's summary (version, catalog, source and its
        sha256, compiled_at, counts, region data, ``active``), oldest first."""
        current = self.current()
        out = []
        with self._index.begin(db=self._versions) as txn:
            for _key, value in txn.cursor():
                info = json.loads(value)
                if info:
                    info["active"] = info["version"] == current
                    out.append(info)
        return out

    def open(self, version: int | None = None) -> Snapshot:
        """The memory-mapped snapshot of ``version`` (default: the active
        one). Raises StoreError when there is none."""
        if version is None:
            version = self.current()
            if version is None:
                raise StoreError(f"{self.root}: no active catalog version; run `rating400 catalog activate`")
        path = self.root / "snapshots" / f"v{version:06d}"
        if not path.exists():
            raise StoreError(f"no catalog version {version} in {self.root}")
        return open_snapshot(path, version)


def catalog_holders(snapshot) -> dict[str, set[str]]:
    """Package id -> the catalog accounts of ``snapshot`` (a catalog
    version) on it: what a store without a live customer layer holds."""
    names = snapshot.meta["packages"]
    held: dict[str, set[str]] = {}
    for account, p in zip(snapshot.meta["accounts"], snapshot.tables["account_package"].tolist()):
        held.setdefault(names[p], set()).add(account)
    return held


def _ended_note(package: str, start_ms: int, end_ms: int | None) -> str:
    """How an account no longer on ``package`` still holds it: its period
    under it from ``start_ms`` to ``end_ms`` (None: a period a back-dated
    change overrode, recorded from ``start_ms``), for ``check_in_use``."""
    def local(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, layout.LOCAL_TZ).strftime("%Y-%m-%d %H:%M")

    if end_ms is None:
        return (f", no longer on it: a package period under {package!r} recorded from {local(start_ms)} "
                "(Asia/Shanghai), overridden by a back-dated change, is in the ledger")
    return (f", no longer on it: its package period under {package!r} from {local(start_ms)} to {local(end_ms)} "
            "(Asia/Shanghai) ended, and the ledger bills that period's months under it")


def in_use(root: str | Path) -> tuple[dict[str, set[str]], dict[str, set[str]],
                                      dict[str, dict[str, tuple[int, int | None]]]]:
    """(package id -> the accounts holding it, feature id -> the accounts
    holding it, package id -> account -> (start ms, end ms) of its ended
    period under the package, for an account holding it by such a period
    alone) in the customer layer of the store at ``root``. A package is
    held by an account on it now, waiting for it (``pending_package``) or
    with a recorded package period under it (``accounts.periods``, the ones
    the statements bill); a feature by an account that has it now. The end
    of an ended period is the next period's start (None for a recorded
    period a back-dated change overrode). All empty for a store without a
    ledger or whose layer holds no account (its accounts are the catalog's,
    validated with each version)."""
    root = Path(root)
    if not (root / "ledger.lmdb").exists():
        return {}, {}, {}
    from ..accounts.view import layer_in_use, read_layer
    from ..ledger import envs

    # The durable environment alone, its layer handles cached per process
    # (``layer_dbs``): a whole ``Ledger`` opens every database, each
    # ``open_db`` taking LMDB's write lock, and in a serving worker beside
    # another's commits that made an Activate miss its 10 s deadline (CI20).
    env = envs.acquire(root / "ledger.lmdb", live=False, map_size=envs.ledger_map_size())
    try:
        if not layer_in_use(env):
            return {}, {}, {}
        _gen, accounts, _numbers, periods = read_layer(env)
    finally:
        envs.release(env)
    from ..accounts.periods import in_force

    packages: dict[str, set[str]] = {}
    features: dict[str, set[str]] = {}
    ended: dict[str, dict[str, tuple[int, int | None]]] = {}
    for a in accounts:
        recorded = periods.get(a.id, [])
        for p in {a.package, a.pending_package} | {x.package for x in recorded}:
            if p:
                packages.setdefault(p, set()).add(a.id)
        past = {x.package for x in recorded} - {a.package, a.pending_package}
        if past:  # held by a period alone: which one, and when it ran
            ran = in_force(recorded, a)
            for p in past:
                spans = [(x.start_ms, ran[k + 1].start_ms) for k, x in enumerate(ran[:-1]) if x.package == p]
                ended.setdefault(p, {})[a.id] = spans[-1] if spans else (
                    max(x.start_ms for x in recorded if x.package == p), None)
        for f in a.features:
            features.setdefault(f, set()).add(a.id)
    return packages, features, ended
