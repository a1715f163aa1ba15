"""Newcomer (2026-12-02) findings on the accounts operations: a top-up is
whole fen (F3); a renewal while a package change is scheduled is refused
(F5); `accounts events --limit`'s paging hint neither repeats nor skips an
event (F8); `bill --out` names the file's unit (F4); `top-up -- -5` says the
amount must be more than 0 (F15); `accounts notify` says what it set (F14).
Each on a small store, in a second or so."""
from __future__ import annotations

import json

import pytest

from inprocess import cli
from rating_core.errors import InvalidInput, Refused
from test_accounts import T0, env, opened, rid  # noqa: F401 - env: the fixture

DAY = 86_400_000


def _events(ops, account):
    return ops.events(account, 0, limit=100_000)


# -- F3: money received is whole fen -------------------------------------------------------------
def test_a_top_up_finer_than_a_fen_is_refused_on_every_package_kind(env):
    """`top-up jinghua_appliances 600.005` booked 6000050 while the receipt
    read 600.01; a postpaid account's payment (its top-up) likewise."""
    ops = env
    opened(ops)  # acme: prepaid pre_480
    opened(ops, "shop", "payg", "4001234568")
    for account, amount in (("acme", 600_0050), ("shop", 10_0050), ("shop", 1)):
        n = len(_events(ops, account))
        credit = ops.balance(account)["credit_minor"]
        with pytest.raises(InvalidInput) as e:
            ops.top_up(rid(), account, amount, at_ms=T0)
        assert e.value.field == "amount_minor" and "a top-up is whole fen" in e.value.message, e.value
        assert len(_events(ops, account)) == n and ops.balance(account)["credit_minor"] == credit
    assert ops.top_up(rid(), "shop", 10_0100, at_ms=T0)["detail"]["amount_minor"] == 10_0100


def test_the_cli_names_yuan_for_a_top_up_finer_than_a_fen(env, tmp_path, capsys):
    opened(env)
    env.ledger.close()
    code, _, err = cli(capsys, "accounts", "top-up", "acme", "600.005", "--store", tmp_path / "store")
    assert code == 2 and "Invalid value for YUAN: 600.005: a top-up is whole fen (0.01 yuan)" in err, err


def test_an_events_file_top_up_is_whole_fen(tmp_path):
    from rating_core.billing.events import read_events

    f = tmp_path / "events.csv"
    f.write_text("account,at,kind,amount\nacme,2026-11-05,top_up,600.005\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as e:
        read_events(f)
    assert "row 1: amount: 600.005: a top-up is whole fen" in str(e.value), str(e.value)
    # An adjustment (a bill line) may correct a rated charge finer than a fen.
    f.write_text("account,at,kind,amount\nacme,2026-11-05,top_up,600.01\nacme,2026-11-05,adjustment,-0.0012\n",
                 encoding="utf-8")
    assert [e.amount_minor for e in read_events(f)] == [600_0100, -12]
