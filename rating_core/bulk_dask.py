"""The bulk rating job on a Dask cluster, partitioned by account.

The settlement pass (prepaid credit, bundle seconds) is sequential per
account and independent between accounts, so rows are partitioned by the
account their 400 number belongs to: each partition is settled by one task
in (start, input row) order from the opening balances, exactly as the
single-machine job does, and the closing balances of its accounts come
back to the client. Results are identical to ``Rater.rate`` on the whole
input (tests/test_bulk_dask.py); only the row order of the output differs.

Steps (``rate_on_dask``):

1. The client lists the work: Parquet files (dataset directories in path
   order) split into units of whole row groups, each with its first input
   row number, so rows are numbered as on one machine. It finds the call
   ids that may occur more than once (``bulk.scan``: hashes of the call-id
   column).
2. **The snapshot ships as a read-only file**: the client reads the
   catalog version's LMDB file once and a worker plugin writes it into
   each worker's local directory (mode 0444), where every task maps it,
   also on workers that join later. Once accounts are live (``rating400
   accounts import``), the live view's account and number arrays
   (``LiveTables``) go to every worker with the job and are laid over the
   snapshot's, read-only, so the workers rate with the tables the
   single-machine job uses.
3. ``edge`` tasks, one per unit: ``Rater.prepare`` on the unit's rows; the
   rejects and each account partition's good rows go to Parquet files in
   the job's scratch directory; the (call id, row) pairs of good rows whose
   call id repeats come back to the client, which decides duplicates
   exactly (the first valid copy by input row is rated). When the ledger
   holds committed calls, the tasks are given their keys' range (and the
   keys, when fewer than the job's rows: ``engine.Replays.prefilter``) and
   send back the (call id, row) of good rows that may be committed; the
   client looks those up in the ledger (``Replays.lookup``).
4. ``settle`` tasks, one per account partition: its rows minus the
   duplicates and the committed calls (spilled for the client), sorted by
   (start, row), rated from the opening balances; rated rows to
   ``OUT/part-NNNNN.parquet``.
5. The client answers each partition's committed calls with their stored
   results (``Replays.answer``, as the single-machine dry job does) in
   ``OUT/part-NNNNN-replayed.parquet``, writes the rejects (edge,
   duplicates, kernel statuses, committed calls sent with other content)
   in input row order and returns the summary and the closing balances.

Paths (inputs, ``OUT``, the scratch directory) must be the same for the
client and every worker: a shared filesystem on a real cluster.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import WorkerPlugin  # the `dask` extra

from . import bulk, cdr
from .errors import InvalidInput
from .ledger.core import usage_table
# ACCOUNT_STATE: the per-account arrays of a rating state, merged from the
# partition that settled each account; the usage table for late bundle
# calls (``ledger.usage_table``) is given to every partition and its
# closing counts are not merged back.
from .rater import ACCOUNT_STATE, RatingSummary, count_reasons, replayed_charge

_SNAPSHOT_DIR = "rating400-snapshots"


@dataclass(frozen=True)
class Unit:
    """Whole row groups of one Parquet file: the edge task's input."""

    root: str  # the input as given (a file or a dataset directory)
    path: str  # the Parquet file
    row_groups: tuple[int, ...]
    first_row: int  # input row number of its first row (all inputs, in order)
    rows: int


def plan_units(inputs, unit_rows: int = 1 << 20) -> list[Unit]:
    """Units of at most about ``unit_rows`` rows (whole row groups), in input
    order. Only Parquet: rows are counted from the metadata."""
    units, row = [], 0
    for raw in inputs:
        root = Path(raw)
        for f in cdr.dataset_files(root):
            if not cdr._is_parquet(f):
                raise InvalidInput(str(f), "--dask rates Parquet files and datasets (convert CSV first)")
            meta = pq.ParquetFile(f).metadata
            groups, rows = [], 0
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                if groups and rows + n > unit_rows:
                    units.append(Unit(str(root), str(f), tuple(groups), row, rows))
                    row, groups, rows = row + rows, [], 0
                groups.append(g)
                rows += n
            if groups:
                units.append(Unit(str(root), str(f), tuple(groups), row, rows))
                row += rows
    return units


# --- on the workers ---------------------------------------------------------------
class SnapshotFile(WorkerPlugin):
    """Worker plugin: the catalog snapshot's bytes, written once into the
    worker's local directory as a read-only file."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data

    def setup(self, worker):
        d = Path(worker.local_directory) / _SNAPSHOT_DIR
        d.mkdir(exist_ok=True)
        target = d / self.name
        if not target.exists():
            tmp = d / f".{self.name}.{uuid.uuid4().hex}"
            tmp.write_bytes(self.data)
            tmp.chmod(0o444)
            os.replace(tmp, target)


_RATERS: dict[tuple, object] = {}


@dataclass
class LiveTables:
    """The live accounts' view (``accounts.view.LiveSnapshot``) as the
    workers need it: the tables it replaces in the catalog snapshot (account
    and number arrays) and its meta (names), for one customer-layer
    generation. Shipped to every worker with the job; the workers make the
    arrays read-only."""

    generation: int
    tables: dict[str, np.ndarray]
    meta: dict


def live_tables(view) -> LiveTables | None:
    """``LiveTables`` of ``view`` (``accounts.view.open_view``), or None
    when the view is the catalog snapshot itself (no live accounts)."""
    from .accounts.view import LiveSnapshot

    if not isinstance(view, LiveSnapshot):
        return None
    base: dict = getattr(view.base, "tables")  # the catalog Snapshot under the view
    changed = {k: np.ascontiguousarray(v) for k, v in view.tables.items() if base.get(k) is not v}
    return LiveTables(view.generation, changed, view.meta)


def _rater(name: str, version: int, live: LiveTables | None = None):
    """The worker's Rater over its local copy of the snapshot (one per
    process: LMDB maps a file once per process), with the live accounts'
    tables over the catalog's when the store has them."""
    from distributed import get_worker

    from .accounts.view import LiveSnapshot
    from .rater import Rater
    from .store.snapshot import open_snapshot

    key = (name, None if live is None else live.generation)
    if key not in _RATERS:
        path = Path(get_worker().local_directory) / _SNAPSHOT_DIR / name
        snapshot = open_snapshot(path, version)
        view: object = snapshot
        if live is not None:
            for arr in live.tables.values():
                arr.setflags(write=False)  # the view is read-only, as the snapshot's mapped arrays are
            view = LiveSnapshot(snapshot, {**snapshot.tables, **live.tables}, live.meta, live.generation)
        _RATERS[key] = Rater(view, threads=1)
    return _RATERS[key]


def _account_of(rater, number_key: np.ndarray) -> np.ndarray:
    """Account id of each 400-number key (-1: not in the catalog)."""
    keys = rater.tables["number_key"]
    pos = np.searchsorted(keys, number_key)
    pos = np.minimum(pos, len(keys) - 1)
    found = keys[pos] == number_key if len(keys) else np.zeros(len(number_key), bool)
    return np.where(found, rater.tables["number_account"][pos], -1)


def edge_task(unit: Unit, snapshot: tuple[str, int], repeated: np.ndarray, scratch: str, partitions: int,
              pass_through: bool, live: LiveTables | None = None, committed=None) -> dict:
    """Edge on one unit; spills good rows by account partition (step 3).
    ``committed``: the ledger's committed call keys (``engine.CommittedKeys``;
    None: it holds none): the (call id, row, partition) of good rows that
    may be committed come back for the client to look up."""
    rater = _rater(*snapshot, live)
    root, path = Path(unit.root), Path(unit.path)
    keys = {} if root == path else dict(
        part.split("=", 1) for part in path.relative_to(root).parts[:-1] if "=" in part)
    table = pq.ParquetFile(path).read_row_groups(list(unit.row_groups))
    for k, v in keys.items():
        if k not in table.column_names:
            table = table.append_column(k, pa.array([v] * table.num_rows, pa.string()))
    p = rater.prepare(table, unit.first_row)
    out = Path(scratch)
    tag = f"unit-{unit.first_row:015d}.parquet"
    if p.rejects.num_rows:
        pq.write_table(p.rejects, out / "rejects" / tag)
    rows = bulk._good_rows(p, pass_through, committed)
    account = _account_of(rater, rows.column("number_key").to_numpy())
    part = np.where(account >= 0, account % partitions, 0)
    maybe = None
    if committed is not None:
        at = pa.array(committed.candidates(rows.column("call_id")), pa.int64())
        maybe = pa.table({"call_id": rows.column("call_id").take(at), "row": rows.column("row").take(at),
                          "part": pa.array(part).take(at)})
    for b in np.unique(part):
        d = out / f"part={b}"
        d.mkdir(exist_ok=True)
        pq.write_table(rows.filter(pa.array(part == b)), d / tag, compression="lz4")
    cand = bulk.may_repeat(rows.column("call_id"), repeated)
    pairs = rows.select(["call_id", "row"]).filter(pa.array(cand)) if cand.any() else None
    return {"rows_in": p.rows_in, "pairs": pairs, "order": bulk._order(p, pass_through, committed),
            "rejects": p.rejects.num_rows, "committed": maybe}


def settle_task(b: int, replayed_rows: np.ndarray, snapshot: tuple[str, int], state: dict,
                duplicate_rows: np.ndarray, scratch: str, out: str, pass_through: bool, order: list[str],
                live: LiveTables | None = None, inputs: cdr.InputRows | None = None) -> dict:
    """Settle one account partition from the opening balances (step 4).
    ``replayed_rows``: input rows of its calls committed before (sorted):
    not rated, but spilled to ``replayed/`` for the client to answer.
    ``inputs``: where each input file begins (a ``--pass-through`` row
    names its file and counts within it)."""
    rater = _rater(*snapshot, live)
    d = Path(scratch) / f"part={b}"
    files = sorted(d.glob("*.parquet"))  # unit order = input row order
    state = {k: v.copy() for k, v in state.items()}
    result_rows, charge, status_rejects, schema = 0, 0, 0, None
    if files:
        rows = pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
        if len(duplicate_rows):
            rows = rows.filter(pc.invert(pc.is_in(rows.column("row"), value_set=pa.array(duplicate_rows))))
        if len(replayed_rows):
            old = pc.is_in(rows.column("row"), value_set=pa.array(replayed_rows))
            pq.write_table(rows.filter(old).sort_by("row"), Path(scratch) / "replayed" / f"part-{b:05d}.parquet")
            rows = rows.filter(pc.invert(old))
        starts = rows.column("start_ms").to_numpy()
        rows = rows.take(pa.array(np.argsort(starts, kind="stable")))
        result = rater.rate_prepared(bulk._prepared_of(rows, order), state)
        schema = result.rated.schema
        rated = bulk.billing_view(result.rated, pass_through, inputs)
        rated = rated.append_column("replayed", pa.array(np.zeros(rated.num_rows, bool)))
        writer = bulk.RatedWriter(Path(out) / f"part-{b:05d}.parquet")
        try:
            writer.write(rated)
        finally:
            writer.close(rated.schema)
        if result.rejects.num_rows:
            pq.write_table(result.rejects, Path(scratch) / "rejects" / f"part-{b:05d}.parquet")
        result_rows, charge, status_rejects = result.summary.rated, result.summary.charge, result.rejects.num_rows
    return {"part": b, "rated": result_rows, "charge": charge, "rejects": status_rejects, "state": state,
            "schema": schema}


# --- on the client -------------------------------------------------------------------
def _committed(replays, edges: list[dict], duplicate_rows: np.ndarray) -> dict[int, pa.Table]:
    """The good rows the edge tasks found maybe committed (``edge_task``'s
    ``committed``), but the duplicates, looked up in the ledger
    (``Replays.lookup``): those committed, by partition, as tables of
    ``row`` and their entries (``entry``), in row order."""
    maybe = [e["committed"] for e in edges if e["committed"] is not None and e["committed"].num_rows]
    if replays is None or not maybe:
        return {}
    t = pa.concat_tables(maybe)
    if len(duplicate_rows):
        t = t.filter(pc.invert(pc.is_in(t.column("row"), value_set=pa.array(duplicate_rows))))
    entries = replays.lookup(t.column("call_id"))
    held = pc.is_valid(entries)
    t = t.select(["row", "part"]).append_column("entry", entries).filter(held).sort_by("row")
    parts = t.column("part").to_numpy()
    return {int(b): t.filter(pa.array(parts == b)).select(["row", "entry"]) for b in np.unique(parts)}


def _answer_replayed(replays, old: pa.Table, settled: dict, scratch: Path, out: Path, order: list[str],
                     pass_through: bool, inputs: cdr.InputRows) -> tuple[int, int, pa.Table]:
    """One partition's committed calls answered with their stored results
    (``Replays.answer``, as the single-machine job's), written to
    ``OUT/part-NNNNN-replayed.parquet`` in its rated files' columns, ``replayed``
    True. ``old``: their rows and entries (``_committed``); the rows
    themselves were spilled by ``settle_task``, which gave the rated
    table's schema. Returns (rows, their stored charges in minor units, the
    rejects of repeats whose billable content differs)."""
    b = settled["part"]
    rows = pq.read_table(scratch / "replayed" / f"part-{b:05d}.parquet")
    sent = bulk._prepared_of(rows, order).table
    rated, flags, differing = replays.answer(settled["schema"].empty_table(), sent, old.column("entry"))
    view = bulk.encode_names(bulk.billing_view(rated, pass_through, inputs)).append_column("replayed", pa.array(flags))
    if view.num_rows:  # none when every repeat differs from its commit (all rejects)
        writer = bulk.RatedWriter(out / f"part-{b:05d}-replayed.parquet")
        try:
            writer.write(view)
        finally:
            writer.close(view.schema)
    return int(flags.sum()), replayed_charge(rated, flags), differing


@dataclass
class DaskResult:
    """``rate_on_dask``'s outcome: the RatingSummary over all partitions,
    wall seconds, the closing balances (``state``, in snapshot account
    order, as the single-machine job leaves them), the partition count and
    the rated files written."""

    summary: RatingSummary
    seconds: float
    state: dict  # closing balances, in snapshot account order
    partitions: int
    files: list[Path] = field(default_factory=list)


def rate_on_dask(client, inputs, store_dir, out, rejects, *, version: int | None = None, state: dict | None = None,
                 pass_through: bool = False, partitions: int | None = None, unit_rows: int = 1 << 20,
                 threads: int = 2, scratch: str | Path | None = None) -> DaskResult:
    """Rate Parquet files/datasets on a Dask cluster (see the module doc).

    ``client``: a ``distributed.Client`` or a scheduler address. ``out``: a
    directory (one Parquet file per account partition). ``rejects``: CSV
    (or .parquet), in input row order. ``state``: opening balances (default:
    the ledger's); the closing ones are returned, the ledger is not written.
    ``partitions``: account partitions (default 4 per worker thread).
    A call the ledger holds committed is not rated again: it is answered
    with its stored result, flagged ``replayed`` (``engine.Replays``), in
    ``OUT/part-NNNNN-replayed.parquet`` beside its partition's new calls,
    as the single-machine dry job answers it (a repeat whose billable
    content differs is its ``committed_differently`` reject); every rated
    file has ``replayed`` (bool, last).
    Relative paths (inputs, ``out``, ``scratch``) are taken from the
    client's working directory: the workers are given absolute paths, which
    must name the same files on every machine (a shared mount). Raises what
    ``bulk.check_inputs`` raises, before anything is written.
    """
    from .store import Ledger

    began = time.perf_counter()
    ledger = Ledger(store_dir)
    try:
        return _rate_on_dask(began, ledger, client, inputs, store_dir, out, rejects, version, state, pass_through,
                             partitions, unit_rows, scratch)
    finally:
        ledger.close()


def _rate_on_dask(began: float, ledger, client, inputs, store_dir, out, rejects, version, state, pass_through,
                  partitions, unit_rows, scratch) -> DaskResult:
    from distributed import Client

    from .accounts.view import open_view
    from .engine import Replays
    from .store import Store

    bulk.check_inputs(inputs, pass_through)
    store = Store(store_dir, create=False)
    # What a single-machine job rates with: the catalog snapshot, with the
    # live accounts' tables over it once accounts are live (``rating400
    # accounts import``); those tables ship to the workers with the job.
    view = open_view(store, ledger.env, version)
    if state is None:
        # With the ledger's bundle usage of every account (read here, as
        # the workers have no ledger): a partition's late bundle calls
        # draw from their month's allowance as a single-machine job's do.
        state = ledger.opening_state(view, usage=True)
        state.pop("ended")
        state.update(usage_table(ledger.bundle_usage(view, np.arange(len(state["credit_left"])))))
    # The calls the ledger holds committed, answered with their stored
    # results as the single-machine job answers them (None: it holds none).
    replays = Replays.of(ledger)
    snap = getattr(view, "base", view)
    live = live_tables(view)
    # A worker's working directory is its own (where ``dask worker`` was
    # started): hand it nothing relative.
    inputs = [Path(p).absolute() for p in inputs]
    out = Path(out).absolute()
    if out.exists() and any(out.iterdir()):
        raise InvalidInput("--out", f"{out}: output directory exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(scratch or out.parent / f".{out.name}.rating400-{uuid.uuid4().hex[:8]}").absolute()
    (scratch / "rejects").mkdir(parents=True)
    # A client of our own is made last, inside the try whose finally closes
    # it: a refusal above leaves nothing open.
    own = not isinstance(client, Client)
    try:
        if own:
            client = Client(client)
        units = plan_units(inputs, unit_rows)
        if not units:
            raise InvalidInput("input", "no CDR rows", ", ".join(str(p) for p in inputs))
        data = Path(snap.path).read_bytes()
        name = f"v{snap.version:06d}-{hashlib.sha256(data).hexdigest()[:16]}.lmdb"
        client.register_plugin(SnapshotFile(name, data), name=f"rating400-snapshot-{name}")
        del data
        snapshot = (name, snap.version)
        found = bulk.scan(inputs)
        if partitions is None:
            partitions = 4 * max(1, sum(client.nthreads().values()))
        repeated = client.scatter(found.repeated, broadcast=True)
        live_future = client.scatter(live, broadcast=True) if live is not None else None
        keys = replays.prefilter(found.rows) if replays is not None else None
        keys_future = client.scatter(keys, broadcast=True) if keys is not None else None
        edges = client.gather(client.map(edge_task, units, snapshot=snapshot, repeated=repeated, scratch=str(scratch),
                                         partitions=partitions, pass_through=pass_through, live=live_future,
                                         committed=keys_future, pure=False))
        order = edges[0]["order"]
        # Duplicates, exactly: among good rows, every copy of a call id but
        # the one with the lowest input row.
        pairs = [e["pairs"] for e in edges if e["pairs"] is not None and e["pairs"].num_rows]
        dup_rejects = cdr.REJECT_SCHEMA.empty_table()
        duplicate_rows = np.zeros(0, np.int64)
        if pairs:
            t = pa.concat_tables(pairs).sort_by([("call_id", "ascending"), ("row", "ascending")])
            ids = t.column("call_id").combine_chunks()
            later = np.zeros(t.num_rows, bool)
            if t.num_rows > 1:
                later[1:] = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
            dups = t.filter(pa.array(later))
            duplicate_rows = np.sort(dups.column("row").to_numpy())
            dup_rejects = pa.table({
                "row": dups.column("row"), "call_id": dups.column("call_id"),
                "field": pa.array(["call_id"] * dups.num_rows),
                "reason": pa.array([cdr.REASONS[cdr.DUPLICATE]] * dups.num_rows),
                "value": dups.column("call_id"),
            }, schema=cdr.REJECT_SCHEMA)
        inputs_rows = cdr.InputRows()  # where each Parquet file begins: a reject names its file
        for u in units:
            if not inputs_rows.names or inputs_rows.names[-1] != u.path:
                inputs_rows.begin(u.path, u.first_row)
        present = sorted(int(p.name.split("=", 1)[1]) for p in scratch.glob("part=*"))
        # Calls committed before, by partition (rows and entries in row order):
        # among the good rows but the duplicates, as the single-machine job.
        old = _committed(replays, edges, duplicate_rows)
        (scratch / "replayed").mkdir()
        no_rows = np.zeros(0, np.int64)
        replayed_rows = [old[b].column("row").to_numpy() if b in old else no_rows for b in present]
        dup_future = client.scatter(duplicate_rows, broadcast=True)
        state_future = client.scatter(state, broadcast=True)
        settled = client.gather(client.map(settle_task, present, replayed_rows, snapshot=snapshot, state=state_future,
                                           duplicate_rows=dup_future, scratch=str(scratch), out=str(out),
                                           pass_through=pass_through, order=order, live=live_future,
                                           inputs=inputs_rows, pure=False))
        replayed, replayed_minor, differing = 0, 0, []
        for s in settled:
            if s["part"] in old:  # the stored results, beside the partition's new calls
                n, minor, rejected = _answer_replayed(replays, old[s["part"]], s, scratch, out, order,
                                                      pass_through, inputs_rows)
                replayed, replayed_minor = replayed + n, replayed_minor + minor
                differing.append(rejected)
        # Closing balances: each account from the partition that settled it.
        n_accounts = len(state["credit_left"])
        owner = np.arange(n_accounts) % partitions
        closing = {k: v.copy() for k, v in state.items()}
        for s in settled:
            mine = owner == s["part"]
            for k in ACCOUNT_STATE:
                closing[k][mine] = s["state"][k][mine]
        state.update(closing)
        # Rejects, in input row order.
        parts = [pq.read_table(f) for f in sorted((scratch / "rejects").glob("*.parquet"))]
        all_rejects = cdr.rejects_file_table(
            pa.concat_tables([*parts, dup_rejects, *differing]).cast(cdr.REJECT_SCHEMA).sort_by("row"), inputs_rows)
        cdr.write_table(all_rejects if cdr.output_format(Path(rejects)) == "parquet"
                        else bulk.rejects_for_csv(all_rejects), rejects)
        by_reason = count_reasons(all_rejects)
        summary = RatingSummary(
            rows_in=sum(e["rows_in"] for e in edges), rated=sum(s["rated"] for s in settled) + replayed,
            rejected=all_rejects.num_rows, duplicates=len(duplicate_rows),
            charge=sum(s["charge"] for s in settled),
            rejects_by_reason=dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
            replayed=replayed, replayed_charge=replayed_minor,
            ledger_calls=replays.calls if replays is not None else 0,
        )
        files = sorted(out.glob("part-*.parquet"))
        return DaskResult(summary, time.perf_counter() - began, state, partitions, files)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if own and isinstance(client, Client):  # made here (not when Client() itself failed)
            client.close()
