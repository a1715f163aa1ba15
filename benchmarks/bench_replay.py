"""A dry ``rating400 rate`` of a file its ledger already holds committed.

``test_dry_rate_replayed_vs_fresh``: the demo CDRs (``sizes.rating_cdrs``:
2M, 50k under ``RATING400_BENCH_SMALL=1``) rated without ``--commit``
(``cli.rate_files``: the bounded-memory job) on two copies of the demo
store in the same run, alternated round by round: ``fresh``, a ledger
holding none of the file's calls (rated), and ``replayed``, the same file
committed there before (every call answered with its stored result:
``engine.Replays``, ``records.load_table``), as an operator re-running a
file after a crash pays it. Reported: process CPU seconds per round (all
threads; steadier than wall time on the shared machine) and wall, the
medians, and the ratio replayed / fresh of the CPU medians; beside them a
repeated ``rate --commit`` of the file (every call replayed, nothing
charged), which shares the replay path. pytest-benchmark's own row times
a whole round (both runs); the figures are in the report line and
``extra_info``. Speed is reported, never asserted; the run checks the
answers' counts only.

    python -m pytest benchmarks/bench_replay.py -q
    RATING400_BENCH_SMALL=1 python -m pytest benchmarks/bench_replay.py -q
"""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from rating_core.cli import rate_files
from rating_core.demo import demo_cdrs, demo_store

ROUNDS = 3


@pytest.fixture(scope="module")
def replay_stores(tmp_path_factory, sizes):
    """(file, fresh store dir, replayed store dir, the commit's summary): the
    demo store twice, the file committed into the second."""
    root = tmp_path_factory.mktemp("replay-bench")
    path = root / "cdrs.parquet"
    pq.write_table(demo_cdrs(sizes.rating_cdrs, seed=400), path)
    fresh, _ = demo_store(root / "fresh")
    held = root / "held" / "store"
    shutil.copytree(fresh, held)
    committed, _ = rate_files([path], held, root / "committed.parquet", root / "committed.rejects.csv",
                              threads=2, commit=True, progress=False)
    return path, fresh, held, committed


def _cpu(run) -> tuple[float, float, object]:
    """(process CPU s, wall s, result) of ``run()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = run()
    return time.process_time() - c0, time.perf_counter() - t0, out


def test_dry_rate_replayed_vs_fresh(benchmark, replay_stores, report, tmp_path):
    path, fresh, held, committed = replay_stores
    n = pq.read_metadata(path).num_rows

    def dry(store_dir, name):
        return rate_files([path], store_dir, tmp_path / f"{name}.parquet", tmp_path / f"{name}.rejects.csv",
                          threads=2, progress=False)[0]

    cpu: dict[str, list[float]] = {"fresh": [], "replayed": []}
    wall: dict[str, list[float]] = {"fresh": [], "replayed": []}
    answers = {}
    rounds = iter(range(ROUNDS))

    def one_round():
        r = next(rounds)
        # Alternated, so a burst of load on the shared machine falls on both.
        order = [("fresh", fresh), ("replayed", held)]
        for name, store_dir in (order if r % 2 == 0 else order[::-1]):
            c, w, answers[name] = _cpu(lambda: dry(store_dir, name))
            cpu[name].append(c)
            wall[name].append(w)
        return answers["replayed"]

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    again_cpu, again_wall, again = _cpu(lambda: rate_files(
        [path], held, tmp_path / "again.parquet", tmp_path / "again.rejects.csv", threads=2, commit=True,
        progress=False)[0])
    med = {k: float(np.median(v)) for k, v in cpu.items()}
    med_wall = {k: float(np.median(v)) for k, v in wall.items()}
    ratio = med["replayed"] / med["fresh"]
    load = os.getloadavg()[0]
    benchmark.extra_info.update(cdrs=n, replayed=answers["replayed"].replayed,
                                fresh_cpu_s=[round(c, 3) for c in cpu["fresh"]],
                                replayed_cpu_s=[round(c, 3) for c in cpu["replayed"]],
                                fresh_cpu_median_s=round(med["fresh"], 3),
                                replayed_cpu_median_s=round(med["replayed"], 3), ratio_cpu=round(ratio, 2),
                                repeated_commit_cpu_s=round(again_cpu, 3), load_average=round(load, 2))
    report(f"dry rate of {n:,} CDRs, {ROUNDS} rounds alternated: none committed (fresh) CPU median "
           f"{med['fresh']:.2f} s (wall {med_wall['fresh']:.2f}), the file committed before (all "
           f"{answers['replayed'].replayed:,} rated calls replayed) {med['replayed']:.2f} s (wall "
           f"{med_wall['replayed']:.2f}): replayed / fresh {ratio:.2f}x CPU; a repeated rate --commit "
           f"{again_cpu:.2f} CPU s ({again_wall:.2f} wall, {again.replayed:,} replayed) (load {load:.1f})")
    # The answers, not the speed: every rated call of the commit replayed, nothing charged again.
    assert answers["replayed"].replayed == answers["replayed"].rated == committed.rated
    assert answers["replayed"].charge == 0 and answers["fresh"].replayed == 0
    assert again.replayed == committed.rated and again.charge == 0
