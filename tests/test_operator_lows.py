"""Open LOW findings of the 12-02 breaker and newcomer passes on account
operations, each on a small store in a second or so:

- a credit threshold finer than a fen (`accounts notify --credit-below
  0.004`) was stored as 40 minor units and shown as 0.00 yuan, so the
  operator read "no threshold": it is whole fen, as a top-up, on the CLI
  and the API (gRPC ``SetNotifications`` calls the same operation);
- `accounts top-up ACCOUNT -- -0` offered `refund ACCOUNT 0` and `adjust
  ACCOUNT -0`, commands that are refused themselves, and `-- +5`, `-- 5e2`,
  `-- ５` said "Missing option '--store'": each odd amount now has one error
  naming it, with no command offered unless it would be taken."""
from __future__ import annotations

import json

import pytest

from inprocess import cli
from rating_core.errors import InvalidInput
from test_accounts import T0, env, opened, rid  # noqa: F401 - env: the fixture


# -- a credit threshold is whole fen ----------------------------------------------------------------
def test_a_credit_threshold_finer_than_a_fen_is_refused_naming_it(env, tmp_path, capsys):  # noqa: F811
    ops = env
    opened(ops)
    n = len(ops.events("acme", 0, limit=100_000))
    for minor in (40, 100_0001, 1):  # 0.004, 100.0001, 0.0001 yuan
        with pytest.raises(InvalidInput) as e:
            ops.set_notifications(rid(), "acme", credit_below_minor=minor, at_ms=T0)
        assert e.value.field == "credit_below_minor", e.value
        assert f"{minor}: a credit threshold is whole fen" in e.value.message, e.value
    assert len(ops.events("acme", 0, limit=100_000)) == n  # nothing stored
    assert ops.set_notifications(rid(), "acme", credit_below_minor=100, at_ms=T0)["detail"]["credit_below_minor"] == 100
    ops.ledger.close()
    store = tmp_path / "store"
    code, out, err = cli(capsys, "accounts", "notify", "acme", "--credit-below", "0.004", "--store", store)
    assert code == 2 and out == "", out
    assert "Invalid value for --credit-below: 0.004: a credit threshold is whole fen (0.01 yuan)" in err, err
    assert "cash" not in err, err
    code, out, err = cli(capsys, "accounts", "notify", "acme", "--credit-below", "99.90", "--store", store)
    assert code == 0, err
    assert json.loads(out)["detail"]["credit_below_minor"] == 99_9000
    assert json.loads(out)["detail"]["credit_below_yuan"] == "99.90"


# -- an odd top-up amount: one error naming it ----------------------------------------------------
ODD = (  # (YUAN, what the error says after "Invalid value for YUAN: ")
    ("-0", "-0: the amount must be more than 0"),
    ("-0.00", "-0.00: the amount must be more than 0"),
    ("0", "0: must be more than 0"),
    ("+5", "not an amount of yuan: '+5' (no + sign"),
    ("5e2", "not an amount of yuan: '5e2' (digits and at most one point"),
    ("0x10", "not an amount of yuan: '0x10' (digits and at most one point"),
    ("５", "not an amount of yuan: '５' (digits in ASCII (0-9), not full-width"),
    ("-５", "not an amount of yuan: '-５' (digits in ASCII (0-9), not full-width"),
    ("-.5", "not an amount of yuan: '-.5' (a digit on both sides of the point"),
    ("-", "not an amount of yuan: '-' ("),
)


@pytest.mark.parametrize("dash", [False, True], ids=["plain", "after --"])
def test_an_odd_top_up_amount_gets_one_error_naming_it_and_no_invalid_command(env, tmp_path, capsys, dash):  # noqa: F811
    opened(env)
    env.ledger.close()
    store = tmp_path / "store"
    for yuan, says in ODD:
        code, out, err = cli(capsys, "accounts", "top-up", "acme", *(["--"] if dash else []), yuan, "--store", store)
        assert code == 2 and out == "", (yuan, out)
        assert err.startswith(f"error: Invalid value for YUAN: {says}"), (yuan, err)
        assert err.count("error:") == 1 and "Missing option" not in err and "No such option" not in err, (yuan, err)
        assert "rating400 accounts refund" not in err and "rating400 accounts adjust" not in err, (yuan, err)
    # A negative amount whose magnitude is one is still told the commands that take money off, with it.
    code, _, err = cli(capsys, "accounts", "top-up", "acme", *(["--"] if dash else []), "-0.50", "--store", store)
    assert code == 2 and "-0.50: the amount must be more than 0; " in err, err
    assert "`rating400 accounts refund ACCOUNT 0.50 --reason TEXT`" in err, err
    # Spaces a shell passed along are not part of the amount: " 600" is 600 yuan.
    code, out, err = cli(capsys, "accounts", "top-up", "acme", *(["--"] if dash else []), " 600", "--store", store)
    assert code == 0 and json.loads(out)["detail"]["amount_minor"] == 600_0000, err


def test_an_adjustment_after_a_dash_dash_is_told_what_it_is(env, tmp_path, capsys):  # noqa: F811
    opened(env)
    env.ledger.close()
    store = tmp_path / "store"
    for yuan, says in (("+5", "'+5' (no + sign"), ("-５", "'-５' (digits in ASCII (0-9)")):
        code, _, err = cli(capsys, "accounts", "adjust", "acme", "--", yuan, "--reason", "x", "--store", store)
        assert code == 2 and f"Invalid value for YUAN: not an amount of yuan: {says}" in err, (yuan, err)
    code, out, err = cli(capsys, "accounts", "adjust", "acme", "--", "-5", "--reason", "x", "--store", store)
    assert code == 0 and json.loads(out)["detail"]["amount_minor"] == -5_0000, err
