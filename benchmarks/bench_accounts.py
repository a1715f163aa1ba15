"""Account operations at scale: one operation's latency at 100k accounts
(target p99 < 5 ms), beside two floors in the same run: a bare 4 KB
write + fsync of a file on the same disk (taken right after each
operation, so both see the same load), and the same durable ledger write
without the logic (LMDB's commit: data pages, then the meta page, each
flushed); the per-process view rebuild, and what a worker pays per
operation kind instead (``Engine.refresh``: the incremental view, a Rater
and the Router on it) beside that rebuild; and a committed 100-CDR batch
at N_ACCOUNTS live accounts reading the balances it reaches, beside the
same commit reading every balance.

Each operation moves money or state, so it is durable before it returns:
one LMDB write transaction, fsynced (data pages, then the meta page). Its
latency is split into the CPU the operation spends (its logic, encoding,
the B-tree) and the rest (waiting on the disk's flush, and on the CPU when
the machine is shared). Beside it, group commit -- the writes of
``GROUP`` operations in one durable transaction, as a server batching
concurrent requests would -- shows what sharing one flush saves per
operation; the latency of each still includes a whole flush.

    python -m pytest benchmarks/bench_accounts.py -q
    RATING400_BENCH_SMALL=1 python -m pytest benchmarks/bench_accounts.py -q
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

SMALL = os.environ.get("RATING400_BENCH_SMALL", "") not in ("", "0")
N_ACCOUNTS = 2_000 if SMALL else 100_000
N_OPS = 200 if SMALL else 2_000
GROUP = 8  # operations per transaction in the group-commit measurement


@pytest.fixture(scope="module")
def layer(tmp_path_factory):
    """The demo catalog plus N_ACCOUNTS live accounts, each verified, on a
    prepaid package, with one active number and one verified destination.
    Written in one transaction (setup, not what is measured)."""
    from rating_core.accounts import Accounts
    from rating_core.demo import write_demo_catalog
    from rating_core.ledger import customers as C
    from rating_core.store import Ledger, Store

    root = tmp_path_factory.mktemp("accounts")
    store = Store(root / "store")
    store.activate(store.compile(write_demo_catalog(root / "catalog")))
    ledger = Ledger(root / "store")
    ops = Accounts(store, ledger)
    now = int(time.time() * 1000)
    pkg = ops.catalog()["package_rules"]["prepaid_480_1y"]

    def fn(tx):
        meta = ops.db[C.META_DB]
        for i in range(N_ACCOUNTS):
            aid = f"acct{i:06d}"
            acc = C.Account(id=aid, row=i, company=f"Company {i}", created_ms=now, realname="verified",
                            package="prepaid_480_1y", package_start_ms=now - 86_400_000,
                            period_end_ms=now + 300 * 86_400_000, opening_credit_minor=pkg["fee"])
            tx.txn.put(aid.encode(), C.encode(acc), db=ops.db[C.ACCOUNTS_DB])
            number = f"400{i:07d}"
            num = C.Number(number, "standard", "active", now, [("active", now)], account=aid, home_city="Shenzhen",
                           destinations=[C.Destination(f"137{i:08d}", now, True, "bench", now)])
            tx.txn.put(C.number_key(number), C.encode(num), db=ops.db[C.NUMBERS_DB])
            tx.txn.put(C.account_number_key(aid, number), b"", db=ops.db[C.ACCOUNT_NUMBERS_DB])
        C.put_counter(tx.txn, meta, C.NEXT_ROW, N_ACCOUNTS)
        return ops._result(tx)

    ops._run("bench_setup", "bench-setup", "bench", now, fn)
    yield ops
    ledger.close()


def _percentiles(samples_ns: np.ndarray) -> tuple[float, float]:
    p50, p99 = np.percentile(samples_ns, [50, 99]) / 1e6
    return float(p50), float(p99)


def test_account_operation_latency(benchmark, layer, report):
    ops = layer
    rng = np.random.default_rng(7)
    who = [f"acct{i:06d}" for i in rng.choice(N_ACCOUNTS, N_OPS, replace=False)]  # each suspended once
    samples = np.empty(N_OPS, np.int64)
    cpu = np.empty(N_OPS, np.int64)
    floor = np.empty(N_OPS, np.int64)
    bare = np.empty(N_OPS, np.int64)  # a bare 4 KB write + fsync, after each operation
    fd = os.open(ops.ledger.path.with_name("bench-fsync"), os.O_WRONLY | os.O_CREAT, 0o600)
    page = bytes(4096)
    group = np.empty(N_OPS // GROUP, np.int64)
    dbs = [ops.env.open_db(b"bench_floor_%d" % i) for i in range(6)]
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns

    def run():
        for i, aid in enumerate(who):
            c0 = cpu_clock()
            t0 = clock()
            if i % 3 == 0:
                ops.top_up(f"bench-top-up-{i}-{t0}", aid, 600_0000, actor="bench")
            elif i % 3 == 1:
                ops.account_transition(f"bench-suspend-{i}-{t0}", aid, "suspend", actor="bench")
            else:
                ops.bind_destination(f"bench-bind-{i}-{t0}", f"400{int(aid[4:]):07d}", f"139{i:08d}", actor="bench")
            samples[i] = clock() - t0
            cpu[i] = cpu_clock() - c0
            t0 = clock()
            os.pwrite(fd, page, 0)
            os.fsync(fd)
            bare[i] = clock() - t0
        # The floor: the same I/O without the logic: one durable ledger write
        # putting a 300-byte value under a fresh random key in six databases
        # (as many as an operation touches; one fsync of as many dirty pages).
        blob = bytes(300)
        for i in range(N_OPS):
            keys = [os.urandom(16) for _ in dbs]
            t0 = clock()
            with ops.ledger.write() as w:
                for k, db in zip(keys, dbs):
                    w.txn.put(b"bench-floor-" + k, blob, db=db)
            floor[i] = clock() - t0
        # Group commit: the floor's writes of GROUP operations in one durable transaction.
        for i in range(N_OPS // GROUP):
            keys = [os.urandom(16) for _ in range(GROUP) for _ in dbs]
            t0 = clock()
            with ops.ledger.write() as w:
                for j, k in enumerate(keys):
                    w.txn.put(b"bench-group-" + k, blob, db=dbs[j % len(dbs)])
            group[i] = clock() - t0

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        os.close(fd)
    p50, p99 = _percentiles(samples)
    b50, b99 = _percentiles(bare)
    c50, c99 = _percentiles(cpu)
    f50, f99 = _percentiles(floor)
    g50, g99 = _percentiles(group)
    load = os.getloadavg()[0]
    benchmark.extra_info.update(accounts=N_ACCOUNTS, operations=N_OPS, p50_ms=round(p50, 3), p99_ms=round(p99, 3),
                                cpu_p50_ms=round(c50, 3), cpu_p99_ms=round(c99, 3),
                                floor_p50_ms=round(f50, 3), floor_p99_ms=round(f99, 3),
                                fsync_p50_ms=round(b50, 3), fsync_p99_ms=round(b99, 3),
                                group=GROUP, group_commit_p50_ms=round(g50, 3), group_commit_p99_ms=round(g99, 3),
                                load_average=round(load, 2))
    report(f"account operation (top-up / suspend / bind, audited, durable) at {N_ACCOUNTS:,} accounts: "
           f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 < 5 ms), of which CPU p50 {c50:.2f} ms, "
           f"p99 {c99:.2f} ms; bare 4 KB fsync p50 {b50:.2f} ms, p99 {b99:.2f} ms (operation / fsync: p50 "
           f"{p50 / b50:.2f}x, p99 {p99 / b99:.2f}x); "
           f"floor (the same durable write, no logic) p50 {f50:.2f} ms, p99 {f99:.2f} ms; "
           f"median {p50 / f50:.1f}x the floor; group commit of {GROUP}: one transaction p50 {g50:.2f} ms, "
           f"p99 {g99:.2f} ms = {g50 / GROUP:.2f} ms per operation at the median (load {load:.1f})")


def test_view_rebuild(benchmark, layer, report):
    """What each worker pays once per generation: every account and number
    decoded and the kernels' arrays and routing tables rebuilt."""
    from rating_core.accounts.view import build_view

    snap = layer.store.open()
    view = benchmark.pedantic(build_view, args=(snap, layer.env), rounds=3, iterations=1)
    assert len(view.meta["accounts"]) == N_ACCOUNTS
    median = benchmark.stats.stats.median
    report(f"live view rebuild at {N_ACCOUNTS:,} accounts / numbers: median {median * 1000:.0f} ms "
           f"(per worker, once per customer-layer generation)")


def test_view_update_after_an_operation(benchmark, layer, report):
    """What a worker pays to see one operation: ``Engine.refresh`` (the
    server's tick) after a suspend / restore, a bind, a destination's
    verification, a routing plan and an unbind: the incremental view
    (``update_view``: changed records patched in, changed routes compiled
    alone and appended) plus a Rater and the Router on it (deriving only the
    appended routing rows), beside the full rebuild and a fresh Router in
    the same run (the peer: what a routing change cost before)."""
    from rating_core.accounts.view import build_view
    from rating_core.engine import Engine
    from rating_core.router import Router

    snap = layer.store.open()
    engine = Engine.open(layer.store.root)
    rounds = 5
    rng = np.random.default_rng(5)
    picked = [int(i) for i in rng.choice(N_ACCOUNTS, rounds, replace=False)]
    kinds = ("suspend", "restore", "bind", "verify", "routing plan", "unbind")
    took: dict[str, list[float]] = {k: [] for k in kinds}

    def step(kind: str, i: int, k: int) -> None:
        aid, number, dest, old = f"acct{i:06d}", f"400{i:07d}", f"139{i:08d}", f"137{i:08d}"
        rid = f"bench-view-{kind}-{i}-{k}-{time.perf_counter_ns()}"
        if kind in ("suspend", "restore"):
            layer.account_transition(rid, aid, kind, actor="bench")
        elif kind == "bind":
            layer.bind_destination(rid, number, dest, actor="bench")
        elif kind == "verify":
            layer.verify_destination(rid, number, dest, "bench-bill", actor="bench")
        elif kind == "routing plan":
            layer.set_routing(rid, number, plan={"groups": {"desk": {"strategy": "round_robin", "destinations": [
                {"number": old}, {"number": dest}]}}, "rules": [{"group": "desk"}]}, actor="bench")
        else:
            layer.unbind_destination(rid, number, dest, actor="bench")
        t0 = time.perf_counter()
        assert engine.refresh()
        took[kind].append(time.perf_counter() - t0)

    def run():
        for k, i in enumerate(picked):
            for kind in kinds:
                step(kind, i, k)

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
        routed = engine.authorize(f"400{picked[-1]:07d}", "13812345678")
        assert [d.number for d in routed.destinations] == [f"137{picked[-1]:08d}"]  # the unbind reached it
        t0 = time.perf_counter()
        Router(build_view(snap, layer.env), layer.ledger)
        full = time.perf_counter() - t0
    finally:
        engine.close()
    medians = {k: float(np.median(v)) * 1000 for k, v in took.items()}
    load = os.getloadavg()[0]
    benchmark.extra_info.update(accounts=N_ACCOUNTS, full_ms=round(full * 1000, 1), load_average=round(load, 2),
                                **{f"{k}_ms": round(v, 1) for k, v in medians.items()})
    report(f"Engine.refresh after one operation at {N_ACCOUNTS:,} accounts / numbers, median of {rounds}: "
           + ", ".join(f"{k} {v:.0f} ms" for k, v in medians.items())
           + f"; full rebuild + fresh Router {full * 1000:.0f} ms "
           f"({full * 1000 / max(medians.values()):.0f}x the slowest; load {load:.1f})")


def test_commit_small_batch_at_many_accounts(benchmark, layer, report):
    """Committed rating of a small batch (``Engine.rate_and_commit``: one
    durable transaction) with N_ACCOUNTS live accounts: the batch reads the
    balances of the accounts it reaches (``Rater.accounts_of``), beside the
    same commit reading every account's balance (the peer: what each commit
    cost before), alternately in the same run."""
    import pyarrow as pa

    from rating_core.engine import Engine

    engine = Engine.open(layer.store.root)
    rater = engine.rater
    # Account i holds number i (row i of the sorted numbers); the other
    # benchmarks suspend some: calls go to the active ones.
    t = rater.tables
    open_accounts = np.flatnonzero((t["account_status"] == 0) & (t["number_status"] == 0))
    rng = np.random.default_rng(11)
    rows_per_batch, rounds = 100, 5 if SMALL else 15
    now = int(time.time() * 1000) - 3_600_000
    serial = iter(range(10**9))

    def table():
        calls = []
        for i in rng.choice(open_accounts, rows_per_batch).tolist():
            start = now + int(rng.integers(0, 3_000_000))
            calls.append({"call_id": f"bench-commit-{next(serial)}", "caller": "13812345678",
                          "number": f"400{i:07d}", "forwarded_to": f"137{i:08d}", "start": start,
                          "agent_answer": start + 2_000, "end": start + 62_000, "hangup_cause": "normal_clearing"})
        return pa.Table.from_pylist(calls)

    def commit(read_all: bool) -> float:
        t = table()
        if read_all:
            rater.accounts_of = lambda prepared: None  # opening_state(accounts=None): every balance
        try:
            t0 = time.perf_counter()
            result = engine.rate_and_commit(t)
            took = time.perf_counter() - t0
        finally:
            rater.__dict__.pop("accounts_of", None)
        assert result.summary.rated == rows_per_batch
        return took

    touched, every = [], []

    def run():
        for _ in range(rounds):
            touched.append(commit(False))
            every.append(commit(True))

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        engine.close()
    t50, e50 = float(np.median(touched)) * 1000, float(np.median(every)) * 1000
    load = os.getloadavg()[0]
    benchmark.extra_info.update(accounts=N_ACCOUNTS, rows=rows_per_batch, rounds=rounds, touched_median_ms=round(t50, 2),
                                every_median_ms=round(e50, 2), load_average=round(load, 2))
    report(f"committed rating of {rows_per_batch} CDRs at {N_ACCOUNTS:,} live accounts, median of {rounds}: reading "
           f"the accounts the batch reaches {t50:.1f} ms vs every account's balance {e50:.1f} ms "
           f"({e50 / t50:.1f}x; load {load:.1f})")
