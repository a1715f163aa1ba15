"""``rating400 rate``'s jobs: bounded memory on this machine
(``rating_core.bulk``), on a Dask cluster (``rating_core.bulk_dask``), or
exactly once against the ledger (``cli.rate_files`` with ``commit``)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

from .errors import InvalidInput


def rate_with_options(inputs, store_dir, out_path, rejects_path=None, fmt=None, version=None, commit=False,
                      threads=2, progress=True, *, pass_through=False, by_day=False, chunk_rows=1 << 19,
                      memory_limit="1GB", dask_address=None):
    """Dispatch ``rating400 rate``; returns (summary, seconds)."""
    from .cli import rate_files

    if commit:
        for o, name in ((by_day, "--by-day"), (dask_address, "--dask")):
            if o:
                raise InvalidInput(name, "cannot be combined with --commit (commits are rated in one ledger transaction)")
        dirs = [p for p in inputs if Path(p).is_dir()]
        if dirs:
            raise InvalidInput(str(dirs[0]), "--commit takes files, not dataset directories")
        return rate_files(inputs, store_dir, out_path, rejects_path, fmt, version, True, threads, progress,
                          pass_through=pass_through)
    if dask_address:
        from .bulk_dask import rate_on_dask

        from .bulk import answer_columns_absent

        result = rate_on_dask(dask_address, inputs, store_dir, out_path, rejects_path or _default_rejects(out_path),
                              version=version, pass_through=pass_through, threads=threads)
        # No snapshot here to count by: the absent answer columns are named, their calls not counted.
        result.summary.answer_columns_absent = answer_columns_absent(inputs)
        return result.summary, result.seconds
    return rate_bounded(inputs, store_dir, out_path, rejects_path, fmt, version, threads, pass_through=pass_through,
                        by_day=by_day, chunk_rows=chunk_rows, memory_limit=memory_limit)


def _default_rejects(out_path) -> str:
    from .cli import default_rejects

    return default_rejects(out_path)


def rate_bounded(inputs, store_dir, out_path, rejects_path=None, fmt=None, version=None, threads=2, *,
                 store=None, pass_through=False, by_day=False, chunk_rows=1 << 19, memory_limit="1GB"):
    """The bounded-memory job from the ledger's balances (nothing is
    written to the ledger); returns (summary, seconds)."""
    from . import bulk
    from .accounts.view import open_view
    from .engine import Replays
    from .rater import Rater
    from .store import Ledger, Store

    store = store or Store(store_dir, create=False)
    ledger = Ledger(store_dir)
    try:
        # The catalog version with the customer layer's live accounts.
        rater = Rater(open_view(store, ledger.env, version), threads=threads)
        # With the usage table: a late bundle call draws from its month's
        # allowance, read from the ledger (read-only) and kept in memory
        # through the job, as ``rate --commit`` settles it.
        state = ledger.opening_state(rater.snapshot, usage=True)
        # A call the ledger holds is answered with its stored result, as
        # ``rate --commit`` replays it; a ledger holding none: no lookup at all.
        replays = Replays.of(ledger)
        result = bulk.rate_dataset(inputs, rater, state, out_path, rejects_path or _default_rejects(out_path), fmt,
                                   pass_through=pass_through, by_day=by_day, chunk_rows=chunk_rows, threads=threads,
                                   memory_limit=memory_limit,
                                   bundle_usage=partial(ledger.bundle_usage, rater.snapshot), replays=replays)
        result.summary.answer_columns_absent = bulk.answer_columns_absent(inputs, rater)
    finally:
        ledger.close()
    result.summary.ledger_calls = replays.calls if replays is not None else 0
    return result.summary, result.seconds
