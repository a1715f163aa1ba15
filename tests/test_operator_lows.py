"""Open LOW findings of the 12-02 breaker and newcomer passes on account
operations, each on a small store in a second or so:

- a credit threshold finer than a fen (`accounts notify --credit-below
  0.004`) was stored as 40 minor units and shown as 0.00 yuan, so the
  operator read "no threshold": it is whole fen, as a top-up, on the CLI
  and the API (gRPC ``SetNotifications`` calls the same operation)."""
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
