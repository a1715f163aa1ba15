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
from test_prepaid_payments import ledger  # noqa: F401 - the fixture: a billed prepaid ledger

DAY = 86_400_000


def _events(ops, account):
    return ops.events(account, 0, limit=100_000)


# -- F3: money received is whole fen -------------------------------------------------------------
def test_a_top_up_finer_than_a_fen_is_refused_on_every_package_kind(env):  # noqa: F811
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


def test_the_cli_names_yuan_for_a_top_up_finer_than_a_fen(env, tmp_path, capsys):  # noqa: F811
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


# -- F5: a renewal never drops a scheduled package change ------------------------------------------
def test_a_renewal_while_a_package_change_is_scheduled_is_refused_naming_it(env, clock):  # noqa: F811
    """`change-package jinghua_appliances payg_015 --effective 2027-01-01`
    then `renew`: rc 0, a new period and credit, and the January change
    gone without a word in the result or the audit event."""
    ops = env
    clock(T0 + DAY)  # the story's now: November (a renewal dated into an ended month is refused)
    opened(ops)  # acme on pre_480
    jan = T0 + 60 * DAY  # 2027-01-01 10:00 local
    ops.change_package(rid(), "acme", "payg", effective_ms=jan, at_ms=T0)
    n = len(_events(ops, "acme"))
    with pytest.raises(Refused) as e:
        ops.renew(rid(), "acme", at_ms=T0 + DAY)
    msg = e.value.message
    assert e.value.reason == "change_scheduled", e.value
    assert "'payg'" in msg and "2027-01-01T10:00" in msg, msg
    assert "rating400 accounts change-package acme pre_480" in msg and "renew" in msg, msg
    acc = ops.get_account("acme")["account"]
    assert (acc["pending_package"], acc["pending_effective_ms"]) == ("payg", jan)
    assert len(_events(ops, "acme")) == n  # nothing written
    # Changing to the current package cancels the scheduled change, and says so; then renew is taken.
    r = ops.change_package(rid(), "acme", "pre_480", at_ms=T0 + DAY)
    assert r["detail"] == {"package": "pre_480", "cancelled_package": "payg", "cancelled_effective_ms": jan}, r
    assert ops.get_account("acme")["account"]["pending_package"] == ""
    assert _events(ops, "acme")[-1]["detail"] == r["detail"]
    assert ops.renew(rid(), "acme", at_ms=T0 + DAY)["account"]["package"] == "pre_480"
    # With nothing scheduled, the same package is still refused.
    with pytest.raises(Refused) as e:
        ops.change_package(rid(), "acme", "pre_480", at_ms=T0 + DAY)
    assert e.value.reason == "same_package"


def test_a_change_replacing_a_scheduled_one_names_it_in_its_audit_event(env, clock):  # noqa: F811
    ops = env
    clock(T0 + DAY)  # the story's now: November (a change dated into an ended month is refused)
    opened(ops)
    jan, feb = T0 + 60 * DAY, T0 + 91 * DAY
    ops.change_package(rid(), "acme", "payg", effective_ms=jan, at_ms=T0)
    r = ops.change_package(rid(), "acme", "pre_3y", effective_ms=feb, at_ms=T0)  # replaces it
    assert r["detail"]["replaced_package"] == "payg" and r["detail"]["replaced_effective_ms"] == jan, r
    r = ops.change_package(rid(), "acme", "payg", at_ms=T0 + DAY)  # now: the February change dropped
    assert r["detail"]["replaced_package"] == "pre_3y" and r["detail"]["replaced_effective_ms"] == feb, r
    assert _events(ops, "acme")[-1]["detail"]["replaced_package"] == "pre_3y"


# -- F8: paging the audit log by event, never by millisecond -----------------------------------------
def test_following_the_events_paging_hint_lists_every_event_once(env, tmp_path, capsys):  # noqa: F811
    """An account's suspend writes two events in one millisecond (the
    number's and the account's); the hint `--from MS` of the page cut
    between them listed the last event of page 1 again. Every page cut,
    followed by the hint: each event once, in order."""
    import re

    ops = env
    opened(ops)
    ops.account_transition(rid(), "acme", "suspend", "customer request", at_ms=T0 + 5_000)
    ops.account_transition(rid(), "acme", "restore", "", at_ms=T0 + 6_000)
    # A back-dated event: the log is in effective-time order, not seq order.
    ops.adjust(rid(), "acme", 1_0000, "goodwill", at_ms=T0 - 1_000)
    everything = [e["seq"] for e in _events(ops, "acme")]
    same_ms = [e["seq"] for e in _events(ops, "acme") if e["at_ms"] == T0 + 5_000]
    assert len(same_ms) == 2 and everything != sorted(everything)
    ops.ledger.close()
    store = tmp_path / "store"
    for limit in range(1, len(everything) + 1):
        seen, args = [], []
        for _ in range(len(everything) + 1):
            code, out, err = cli(capsys, "accounts", "events", "acme", "--limit", limit, *args, "--store", store)
            assert code == 0, err
            seen += [e["seq"] for e in json.loads(out)]
            hint = re.search(r"--after-seq (\d+)", err)
            if not hint:
                break
            assert int(hint.group(1)) == seen[-1], (err, seen)
            args = ["--after-seq", hint.group(1)]
        assert seen == everything, (limit, seen, everything)
    # A seq of another account's event, or of none, is bad input naming --after-seq.
    code, _, err = cli(capsys, "accounts", "events", "acme", "--after-seq", 10**9, "--store", store)
    assert code == 2 and "Invalid value for --after-seq: 1000000000: no event of account 'acme'" in err, err


def test_list_events_pages_after_a_seq(env):  # noqa: F811
    ops = env
    opened(ops)
    ops.account_transition(rid(), "acme", "suspend", "", at_ms=T0 + 5_000)
    first = [e["seq"] for e in _events(ops, "acme") if e["at_ms"] == T0 + 5_000]
    page = ops.events("acme", after_seq=first[0], limit=1)
    assert [e["seq"] for e in page] == [first[1]]
    assert ops.events("acme", after_seq=first[1]) == []
    opened(ops, "beta", "payg", "4001234568")
    other = _events(ops, "beta")[0]["seq"]
    assert ops.events("acme", after_seq=-1) == _events(ops, "acme")  # 0 or less: none, as WatchEvents
    for bad in (other, 10**9, True):
        with pytest.raises(InvalidInput) as e:
            ops.events("acme", after_seq=bad)
        assert e.value.field == "after_seq", bad


# -- F4: the console says the file's unit -------------------------------------------------------------
def test_bill_names_the_unit_of_the_file_it_wrote(ledger, tmp_path, capsys):  # noqa: F811
    """`bill ... --out bills.json` printed "(amounts in yuan)" of a file in
    1/10000 yuan (its "unit": "minor units: 1/10000 yuan"; Parquet's
    *_minor columns)."""
    import pyarrow.parquet as pq

    for name, unit in (("b.json", "(the file in 1/10000 yuan, *_minor fields; the table in yuan)"),
                       ("b.parquet", "(the file in 1/10000 yuan, *_minor columns; the table in yuan)"),
                       ("b.csv", "(amounts in yuan)")):
        out = tmp_path / name
        code, text, err = cli(capsys, "bill", "--ledger", "--store", ledger / "store", "--account", "tea",
                              "--out", out)
        assert code == 0, err
        said = " ".join(text.split())  # the title may wrap on a narrow terminal
        assert f"statement(s) -> {out} {unit}" in said, said
        assert name == "b.csv" or "(amounts in yuan)" not in said, said
    assert json.loads((tmp_path / "b.json").read_text("utf-8"))["unit"] == "minor units: 1/10000 yuan"
    assert "amount_due_minor" in pq.read_schema(tmp_path / "b.parquet").names


# -- F15: `top-up ACCOUNT -- -5` ----------------------------------------------------------------------
def test_a_negative_amount_after_a_double_dash_is_told_it_must_be_more_than_0(env, tmp_path, capsys):  # noqa: F811
    """`top-up jinghua_appliances -- -5 --store S` said "Missing option
    '--store'" (the `--` made --store positional); `adjust` takes the same
    form (SignedAmount moves the amount behind the `--`)."""
    opened(env)
    env.ledger.close()
    store = tmp_path / "store"
    for cmd in ("top-up", "pay", "refund"):
        for args in (["--", "-5"], ["-5"]):
            extra = ["--reason", "x"] if cmd == "refund" else []
            code, _, err = cli(capsys, "accounts", cmd, "acme", *args, *extra, "--store", store)
            assert code == 2 and "Invalid value for YUAN: -5: the amount must be more than 0;" in err, (cmd, err)
            assert "Missing option" not in err and "accounts adjust ACCOUNT -5 --reason" in err, err
    code, out, err = cli(capsys, "accounts", "top-up", "acme", "--", "600", "--store", store)
    assert code == 0 and json.loads(out)["detail"]["amount_minor"] == 600_0000, err


# -- F14: `accounts notify` says what it set ------------------------------------------------------------
def test_notify_says_what_it_set_in_its_result_and_its_audit_event(env, tmp_path, capsys):  # noqa: F811
    ops = env
    opened(ops)
    r = ops.set_notifications(rid(), "acme", credit_below_minor=100_0000, expiry_within_days=30,
                              webhook_url="https://crm.example.com/hook", credit_below_days=7, at_ms=T0)
    want = {"credit_below_minor": 100_0000, "expiry_within_days": 30, "credit_below_days": 7,
            "webhook_url": "https://crm.example.com/hook"}
    assert r["detail"] == want, r["detail"]
    assert _events(ops, "acme")[-1]["operation"] == "set_notifications"
    assert _events(ops, "acme")[-1]["detail"] == want
    ops.ledger.close()
    code, out, err = cli(capsys, "accounts", "notify", "acme", "--credit-below", "0", "--store", tmp_path / "store")
    assert code == 0, err
    assert json.loads(out)["detail"] == {"credit_below_minor": 0, "credit_below_yuan": "0.00", "expiry_within_days": 0,
                                         "credit_below_days": 0, "webhook_url": ""}


# -- breaker 12-02 F2, F5: an operation dated back into an ended month; a cancel with a date -------
def test_the_cli_refuses_a_package_change_or_renewal_dated_back_into_an_ended_month(env, tmp_path, capsys):  # noqa: F811
    """`change-package kunlun_water bundle_1000 --at 2026-11-20` (no
    --effective) went round `month_ended` (the check read the operation's own
    month) and re-billed an issued November (0.00 due -> 99.00); `renew --at
    2026-11-15` rewrote November's closing credit 1188.42 -> 2388.42. On the
    CLI and gRPC any month before now's is closed to them."""
    opened(env)  # acme on pre_480 from 2026-11-01; now is after November
    env.ledger.close()
    store = tmp_path / "store"
    for args in (["change-package", "acme", "payg", "--at", "2026-11-20T10:00:00+08:00"],
                 ["change-package", "acme", "payg", "--at", "2026-11-20T10:00:00+08:00",
                  "--effective", "2026-11-25T00:00:00+08:00"],
                 ["renew", "acme", "--at", "2026-11-15T10:00:00+08:00"]):
        code, out, err = cli(capsys, "accounts", *args, "--store", store)
        assert code == 1 and "refused: month_ended: 2026-11-" in err and "accounts adjust" in err, (args, out, err)
    code, out, err = cli(capsys, "accounts", "show", "acme", "--store", store)
    assert code == 0 and '"package": "pre_480"' in out, out


def test_the_api_refuses_by_default_a_package_change_or_renewal_dated_into_an_ended_month(env, clock):  # noqa: F811
    """The Python API is as strict as the CLI and gRPC: on 2026-12-02,
    `Accounts.change_package` and `renew` dated into November (by ``at_ms``,
    or an ``effective_ms`` there) are refused `month_ended` without an
    argument, and nothing is written: no event, the same credit (480.00), the
    same package and period. Only ``allow_ended_months=True`` (a migration's
    story dated back) takes one: the renewal of 11-15 carries 480.00 and adds
    the 480.00 fee, 960.00."""
    ops = env
    opened(ops)  # acme on pre_480 from 2026-11-01 10:00: 480.00 of credit
    clock(T0 + 30 * DAY)  # now: 2026-12-02 10:00, November has ended
    nov15, nov20, nov25 = T0 + 13 * DAY, T0 + 18 * DAY, T0 + 23 * DAY
    events, account, credit = _events(ops, "acme"), ops.get_account("acme")["account"], ops.balance("acme")
    assert credit["credit_minor"] == 480_0000
    for call in (lambda: ops.change_package(rid(), "acme", "payg", at_ms=nov20),
                 lambda: ops.change_package(rid(), "acme", "payg", effective_ms=nov25, at_ms=nov20),
                 lambda: ops.change_package(rid(), "acme", "payg", effective_ms=nov25),
                 lambda: ops.renew(rid(), "acme", at_ms=nov15)):
        with pytest.raises(Refused) as e:
            call()
        assert e.value.reason == "month_ended", e.value
        assert "is in a month that has ended (this month began 2026-12-01T00:00:00+08:00)" in e.value.message
        assert "accounts adjust" in e.value.message, e.value.message
    assert _events(ops, "acme") == events
    assert ops.get_account("acme")["account"] == account and ops.balance("acme") == credit
    r = ops.renew(rid(), "acme", at_ms=nov15, allow_ended_months=True)
    assert (r["detail"]["carried_minor"], r["balance"]["credit_minor"]) == (480_0000, 960_0000), r
    assert len(_events(ops, "acme")) == len(events) + 1


def test_a_cancel_of_a_scheduled_change_takes_no_effective_date(env):  # noqa: F811
    """`change-package X CURRENT --effective 2027-03-01` ("back from March")
    cancelled the scheduled change at once and dropped the date silently."""
    from rating_core.accounts.operations import now_ms

    ops = env
    opened(ops)
    later = now_ms() + 40 * DAY
    ops.change_package(rid(), "acme", "payg", effective_ms=later)
    with pytest.raises(Refused) as e:
        ops.change_package(rid(), "acme", "pre_480", effective_ms=later + 30 * DAY)
    assert e.value.reason == "cancel_takes_no_date" and "'payg' scheduled for" in str(e.value), e.value
    assert ops.get_account("acme")["account"]["pending_package"] == "payg"
    r = ops.change_package(rid(), "acme", "pre_480")
    assert r["detail"]["cancelled_package"] == "payg"


def test_a_number_added_to_the_inventory_is_not_moved_before_its_add(env):  # noqa: F811
    """Breaker 12-02 F10: `number add 4006000001` then `number lock
    4006000001 newco --at` a day before the add was taken: a lock of a
    number that did not exist yet. Refused before_current_state; an
    imported number's one state still counts since ever."""
    from rating_core.accounts.operations import now_ms

    ops = env
    opened(ops)
    added = now_ms()
    ops.add_numbers(rid(), ["4006000001"])
    with pytest.raises(Refused) as e:
        ops.lock_number(rid(), "4006000001", "acme", at_ms=added - DAY)
    assert e.value.reason == "before_current_state", e.value
    assert ops.get_number("4006000001")["state"] == "available"
    ops.lock_number(rid(), "4006000001", "acme")
    assert ops.get_number("4006000001")["state"] == "locked"
