"""A CDR file without the ``agent_answer`` / ``ivr_answer`` column
(newcomer8 F8): every call to a number billing from that answer is rated
unanswered (0.00). Rating is unchanged, but ``rate`` (dry, ``--json``,
``--commit``) warns on stderr, naming the file and counting those calls.

Hand-figured: the demo's 2,000 CDRs lose their answer columns; each call to
a number whose billing start is ``agent_answer`` (counted here from the
catalog's numbers, the same rows the warning counts: those with a known
number) reads as unanswered; the file with both columns warns nothing."""
from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
from click.testing import CliRunner

from rating_core import cdr, layout
from rating_core.accounts.view import open_view
from rating_core.cli import cli
from rating_core.rater import Rater
from rating_core.store import Ledger, Store


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _calls_by_start(demo) -> dict[str, int]:
    """The demo CDRs counted by their number's billing start, from the store's snapshot."""
    store, ledger = Store(demo / "store", create=False), Ledger(demo / "store")
    try:
        rater = Rater(open_view(store, ledger.env, None))
        numbers = pq.read_table(demo / "cdrs.parquet", columns=["number"]).column("number")
        _, _, ok, _, keys, _ = cdr._normalize_numbers(numbers)
        counts = rater.billing_starts_of(keys[ok])
    finally:
        ledger.close()
    return dict(zip(layout.BILLING_START, map(int, counts)))


def test_no_agent_answer_column_is_warned_with_its_calls(demo, tmp_path):
    cdrs = pq.read_table(demo / "cdrs.parquet")
    pq.write_table(cdrs.drop_columns(["agent_answer"]), tmp_path / "noagent.parquet")
    by_start = _calls_by_start(demo)
    assert by_start["agent_answer"] > 0  # the demo has numbers billing from the agent's answer

    r = run("rate", tmp_path / "noagent.parquet", "--store", demo / "store", "--out", tmp_path / "o.parquet",
            "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    n = by_start["agent_answer"]
    assert summary["answer_columns_absent"] == [
        {"file": str(tmp_path / "noagent.parquet"), "columns": ["agent_answer"], "calls": n}]
    assert (f"warning: no agent_answer column in {tmp_path / 'noagent.parquet'}: {n:,} calls to numbers billing "
            "from the agent's answer were rated as unanswered (0.00)") in r.stderr
    # Rating is not changed: those calls are unanswered, as before.
    rated = pq.read_table(tmp_path / "o.parquet")
    assert not pc.any(rated.column("answered")).as_py()


def test_no_answer_columns_in_a_csv_commit_warns_on_the_terminal(demo, tmp_path):
    cdrs = pq.read_table(demo / "cdrs.parquet").drop_columns(["agent_answer", "ivr_answer"]).slice(0, 500)
    cdr.write_table(cdrs, tmp_path / "noans.csv")
    r = run("rate", tmp_path / "noans.csv", "--store", demo / "store", "--out", tmp_path / "c.parquet", "--commit")
    assert r.exit_code == 0, r.output
    assert f"warning: no ivr_answer or agent_answer column in {tmp_path / 'noans.csv'}: " in r.stderr
    assert "calls to numbers billing from an answer were rated as unanswered (0.00)" in r.stderr


def test_a_file_with_its_answer_columns_warns_nothing(demo, tmp_path):
    r = run("rate", demo / "cdrs.parquet", "--store", demo / "store", "--out", tmp_path / "o.parquet", "--json")
    assert r.exit_code == 0, r.output
    assert "answer_columns_absent" not in json.loads(r.stdout)
    assert "answer column" not in r.stderr and "no agent_answer" not in r.stderr
