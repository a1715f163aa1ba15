"""Hostile input to the account operations (breaker findings): amounts and
balances bounded well inside int64, effective times inside the edge's range,
a request id reused with other content refused (identical content still
replays), and the CLI answering all of it with exit 2 and one line."""
import json
from decimal import ROUND_HALF_UP, Decimal

import pytest

from rating_core.accounts.operations import AHEAD_MS, MAX_AMOUNT_MINOR, MAX_BALANCE_MINOR, now_ms
from rating_core.cli import main
from rating_core.errors import InvalidInput, Refused

from inprocess import cli
import test_accounts
from test_accounts import T0, opened, rid

env = test_accounts.env  # the fixture: an Accounts on a compiled store

HUGE = (2**63 - 1, 2**63, 10**20, MAX_AMOUNT_MINOR + 1)


@pytest.mark.parametrize("amount", HUGE)
def test_amount_too_large_is_invalid_naming_amount_minor(env, amount):
    ops = env
    opened(ops)
    before = ops.balance("acme")
    for call in (lambda: ops.top_up(rid(), "acme", amount, at_ms=T0),
                 lambda: ops.refund(rid(), "acme", amount, "overpaid", at_ms=T0),
                 lambda: ops.adjust(rid(), "acme", amount, "x", at_ms=T0),
                 lambda: ops.adjust(rid(), "acme", -amount, "x", at_ms=T0)):
        with pytest.raises(InvalidInput) as e:
            call()
        assert e.value.field == "amount_minor" and "too large" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        ops.adjust(rid(), "acme", -(2**63), "x", at_ms=T0)
    assert e.value.field == "amount_minor"
    with pytest.raises(InvalidInput) as e:
        ops.set_notifications(rid(), "acme", credit_below_minor=amount, at_ms=T0)
    assert e.value.field == "credit_below_minor"
    with pytest.raises(InvalidInput) as e:
        ops.set_caps(rid(), "4001234567", spend_minor=amount, at_ms=T0)
    assert e.value.field == "spend_minor"
    assert ops.balance("acme") == before


def test_balance_never_passes_its_bound(env):
    ops = env
    opened(ops)
    ops.top_up(rid(), "acme", MAX_AMOUNT_MINOR - ops.balance("acme")["credit_minor"], at_ms=T0)
    assert ops.balance("acme")["credit_minor"] == MAX_BALANCE_MINOR
    with pytest.raises(Refused) as e:
        ops.top_up(rid(), "acme", 600_0000, at_ms=T0)
    assert e.value.reason == "balance_limit"
    assert ops.balance("acme")["credit_minor"] == MAX_BALANCE_MINOR  # refused: nothing stored


def test_payments_never_pass_the_balance_bound(env, capsys):
    """Breaker N11 F2: nothing bounded the sum of an account's bill
    payments (`pay` leaves the credit as it is): 9,400 payments of 10^15
    minor units were each accepted, the statements then carried 9.4 x 10^18
    paid ahead, and GetStatement / `bill --out x.parquet` failed (int64).
    The payments of an account now total at most MAX_BALANCE_MINOR, else
    ``balance_limit`` as a top-up is, and nothing is stored."""
    ops = env
    opened(ops)
    ops.pay(rid(), "acme", MAX_AMOUNT_MINOR - 10_000, at_ms=T0)
    ops.pay(rid(), "acme", 10_000, at_ms=T0)  # exactly the bound: taken
    events = len(ops.events("acme", 0, 2**63 - 1))
    for amount in (100, MAX_AMOUNT_MINOR):  # whole fen: a payment is never finer
        with pytest.raises(Refused) as e:
            ops.pay(rid(), "acme", amount, at_ms=T0)
        assert e.value.reason == "balance_limit" and "payments of account 'acme'" in str(e.value)
    assert len(ops.events("acme", 0, 2**63 - 1)) == events  # refused: nothing stored
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "pay", "acme", "1", "--at", "2026-11-02T10:00:00+08:00", "--store", store)
    assert code == 1 and "refused: balance_limit" in err


@pytest.mark.parametrize("at", [-(2**63), -1, 2**63 - 1, 7_258_118_400_000])
def test_effective_time_outside_the_edge_range_is_invalid(env, at):
    ops = env
    opened(ops)
    with pytest.raises(InvalidInput) as e:
        ops.adjust(rid(), "acme", 1, "x", at_ms=at)
    assert e.value.field == "at"
    with pytest.raises(InvalidInput) as e:
        ops.subscribe(rid(), "acme", "pre_480", start_ms=at, at_ms=T0)
    assert e.value.field == "start"


TYPO_2062 = 2_929_658_400_000  # 2062-11-02 10:00 +08:00: 2026 mistyped
DAY = 86_400_000


def test_an_operation_dated_in_the_future_is_refused_naming_at(env):
    """Finance: a top-up or adjustment dated 2062 was credited where no
    statement reaches for decades. An operation is dated at most
    ``AHEAD_MS`` (10 minutes, a client clock ahead) after now, else
    InvalidInput naming ``at`` and the date; nothing is stored. What is
    meant for later has a field of its own that may lie ahead: a package
    change's ``effective``, a first package's ``start``."""
    ops = env
    opened(ops)
    credit, events = ops.balance("acme")["credit_minor"], len(ops.events("acme"))
    for at in (TYPO_2062, now_ms() + AHEAD_MS + 60_000):
        for call in (lambda: ops.top_up(rid(), "acme", 600 * 10_000, at_ms=at),
                     lambda: ops.adjust(rid(), "acme", 10_000, "goodwill", at_ms=at),
                     lambda: ops.refund(rid(), "acme", 10_000, "overpaid", at_ms=at),
                     lambda: ops.change_package(rid(), "acme", "payg", at_ms=at),
                     lambda: ops.account_transition(rid(), "acme", "suspend", "manual", at_ms=at)):
            with pytest.raises(InvalidInput) as e:
                call()
            assert e.value.field == "at" and "is in the future" in e.value.message, e.value.message
            assert at != TYPO_2062 or e.value.message.startswith("2062-11-02T10:00:00+08:00 is in the future")
    assert ops.balance("acme")["credit_minor"] == credit and len(ops.events("acme")) == events
    ops.adjust(rid(), "acme", 10_000, "goodwill", at_ms=now_ms() + 60_000)  # a clock a minute ahead: taken
    ahead = now_ms() + 30 * DAY
    changed = ops.change_package(rid(), "acme", "payg", effective_ms=ahead)
    assert changed["account"]["pending_package"] == "payg" and changed["account"]["pending_effective_ms"] == ahead
    ops.open_account(rid(), "zeta", "Zeta Co.")
    assert ops.subscribe(rid(), "zeta", "payg", start_ms=ahead)["account"]["package_start_ms"] == ahead


def test_a_sweep_dated_in_the_future_is_refused_naming_at(env, capsys):
    """N10-breaker R2: sweeps dated 2030 suspended, froze and closed live
    prepaid accounts and reclaimed their numbers, now (one dated 2199
    suspended every prepaid account). A sweep applies what is due by its
    time and takes effect at once, so it is dated at most ``AHEAD_MS``
    after now, as any operation: else InvalidInput naming ``at``, and
    nothing changes. A sweep dated in the past (catching up) is as before."""
    ops = env
    opened(ops)
    before = ops.balance("acme"), len(ops.events())
    for at in (TYPO_2062, now_ms() + AHEAD_MS + 60_000):
        with pytest.raises(InvalidInput) as e:
            ops.sweep(at)
        assert e.value.field == "at" and "is in the future" in e.value.message, e.value.message
    assert (ops.balance("acme"), len(ops.events())) == before
    ops.sweep(now_ms() + 60_000)  # a clock a minute ahead: taken
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "sweep", "--store", store, "--at", "2199-12-31T23:59:59+08:00")
    assert code == 2 and "at: 2199-12-31T23:59:59+08:00 is in the future" in err, err


def test_cli_future_date_exits_2_naming_at(env, capsys):
    ops = env
    opened(ops)
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "top-up", "--store", store, "--at", "2062-11-02T10:00:00+08:00", "acme",
                       "600")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "at: 2062-11-02T10:00:00+08:00 is in the future" in err, err


def test_request_id_reused_with_other_content_is_refused(env):
    ops = env
    opened(ops)
    opened(ops, account="other", number="4001234568")
    first = ops.adjust("adj-1", "acme", -100, "a", at_ms=T0)
    credit = ops.balance("acme")["credit_minor"]
    for call in (lambda: ops.adjust("adj-1", "acme", -200_000, "a", at_ms=T0),  # other amount
                 lambda: ops.adjust("adj-1", "other", -100, "a", at_ms=T0),  # other account
                 lambda: ops.adjust("adj-1", "acme", -100, "b", at_ms=T0)):  # other reason
        with pytest.raises(InvalidInput) as e:
            call()
        assert e.value.field == "request_id" and "different content" in str(e.value)
    # Identical content (another actor; the same effective time, or none given: a retry) replays.
    again = ops.adjust("adj-1", "acme", -100, "a", actor="retry", at_ms=T0)
    assert again["replayed"] and again["seq"] == first["seq"] and "content_digest" not in again
    assert "at_ms" not in again
    assert ops.adjust("adj-1", "acme", -100, "a", actor="retry")["seq"] == first["seq"]
    assert ops.balance("acme")["credit_minor"] == credit
    assert ops.balance("other")["credit_minor"] == 480 * 10_000


def test_request_id_reused_with_another_explicit_date_is_refused(env):
    """Breaker N13 F11: `refund sanqin_tourism 1 --request-id rid-x4 --at 13:51:30`, then the same with
    `--at 13:52:30`, answered replayed: true and kept 13:51:30: the clerk was told the corrected date
    was applied. An explicit other date is other content; no date given (now) still replays."""
    ops = env
    opened(ops)
    for op in (lambda rid_, at: ops.refund(rid_, "acme", 1 * 10_000, "overpaid", at_ms=at),
               lambda rid_, at: ops.top_up(rid_, "acme", 600 * 10_000, at_ms=at),
               lambda rid_, at: ops.adjust(rid_, "acme", -100, "a", at_ms=at)):
        key = rid()
        first = op(key, T0)
        credit = ops.balance("acme")["credit_minor"]
        assert op(key, T0)["replayed"] and op(key, None)["seq"] == first["seq"]
        with pytest.raises(InvalidInput) as e:
            op(key, T0 + 60_000)
        assert e.value.field == "request_id" and "different content" in str(e.value), e.value
        assert "dated 2026-11-02T10:00:00+08:00, this one dated 2026-11-02T10:01:00+08:00" in str(e.value)
        assert ops.balance("acme")["credit_minor"] == credit
    # Dated now (no date given) the first time: a retry with an explicit date is refused too.
    key = rid()
    ops.adjust(key, "acme", 100, "a")
    with pytest.raises(InvalidInput) as e:
        ops.adjust(key, "acme", 100, "a", at_ms=T0)
    assert e.value.field == "request_id"
    events = [e for e in ops.events("acme") if e["operation"] == "refund"]
    assert [e["at_ms"] for e in events] == [T0]


def test_cli_retry_with_another_at_exits_2(env, capsys):
    ops = env
    opened(ops)
    store = str(ops.store.root)
    ops.ledger.close()
    base = ["accounts", "refund", "--store", store, "--reason", "overpaid", "--request-id", "rid-x4", "acme", "1"]
    code, out, _ = cli(capsys, *base, "--at", "2026-11-02T10:00:00")
    assert code == 0 and json.loads(out)["replayed"] is False
    code, out, _ = cli(capsys, *base, "--at", "2026-11-02T10:00:00")
    assert code == 0 and json.loads(out)["replayed"] is True
    code, _, err = cli(capsys, *base, "--at", "2026-11-02T10:01:00")
    assert code == 2 and "request_id" in err and "different content" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("yuan", ["99999999999999999999", "1e400", "922337203685477.5807", "inf", "-inf",
                                  "NaN", "1e999999", "1_000", "\u0661\u0662", "6e2"])
def test_cli_amount_too_large_exits_2_with_one_line(env, capsys, yuan):
    ops = env
    opened(ops)
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "top-up", "--store", store, "--", "acme", yuan)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "YUAN" in err, err


def test_cli_reused_request_id_and_absurd_time_exit_2(env, capsys):
    ops = env
    opened(ops)
    store = str(ops.store.root)
    ops.ledger.close()
    base = ["accounts", "adjust", "--store", store, "--reason", "x", "--request-id", "cli-1"]
    code, _, _ = cli(capsys, *base, "acme", "1")
    assert code == 0
    code, _, err = cli(capsys, *base, "acme", "2")
    assert code == 2 and "request_id" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli(capsys, "accounts", "adjust", "--store", store, "--reason", "x", "--at", "-99999999999999999",
                       "acme", "1")
    assert code == 2 and "at" in err and len(err.strip().splitlines()) == 1, err


def test_cli_json_reads_every_minor_amount_in_yuan_beside_it(env, capsys):
    ops = env
    opened(ops)
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, _ = cli(capsys, "accounts", "adjust", "--store", store, "--reason", "goodwill", "acme", "12.3456")
    assert code == 0
    with pytest.raises(SystemExit) as e:
        main(["accounts", "balance", "--store", store, "acme"])
    assert e.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    keys = list(out)
    for k, v in out.items():
        if k.endswith("_minor") and isinstance(v, int):
            # the exact amount stays; its reading follows it, 2 decimals, half up
            assert keys[keys.index(k) + 1] == k[:-6] + "_yuan"
            assert Decimal(out[k[:-6] + "_yuan"]) == (Decimal(v) / 10_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert out["credit_yuan"] == str((Decimal(out["credit_minor"]) / 10_000).quantize(Decimal("0.01")))


def test_cli_json_shows_a_period_that_never_ends_as_null(env, capsys):
    ops = env
    store = str(ops.store.root)
    ops.ledger.close()
    with pytest.raises(SystemExit) as e:
        main(["accounts", "open", "--store", store, "--company", "Zeta Co.", "zeta"])
    assert e.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["account"]["period_end_ms"] is None  # no package yet: not int64 max


@pytest.mark.parametrize("request_id", [" ", "a\nb", "tab\there", "\x00"])
def test_blank_or_control_character_request_ids_are_invalid(env, request_id):
    ops = env
    opened(ops)
    with pytest.raises(InvalidInput) as e:
        ops.top_up(request_id, "acme", 600_0000, at_ms=T0)
    assert e.value.field == "request_id"


def test_a_request_id_with_surrounding_spaces_is_refused_not_trimmed(env, capsys):
    """Breaker8 F2: ' r1' and 'r1 ' were ids other than 'r1', so a padded
    retry of a 600.00 top-up booked a second one. Refused as bad input
    naming request_id, nothing stored (credit stays 480.00 + 600.00 =
    1080.00, one top-up); a full-width 'ｒ1' stays an id of its own (it
    books: 1680.00). CLI: exit 2, one line naming request_id."""
    ops = env
    opened(ops)
    ops.top_up("r1", "acme", 600_0000, at_ms=T0)
    credit = ops.balance("acme")["credit_minor"]
    assert credit == 1080_0000
    for padded in (" r1", "r1 ", "  r1  "):
        with pytest.raises(InvalidInput) as e:
            ops.top_up(padded, "acme", 600_0000, at_ms=T0)
        assert e.value.field == "request_id" and "begins or ends with a space" in str(e.value), e.value
    assert ops.balance("acme")["credit_minor"] == credit
    assert ops.top_up("ｒ1", "acme", 600_0000, at_ms=T0)["replayed"] is False
    assert ops.balance("acme")["credit_minor"] == credit + 600_0000
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "top-up", "--store", store, "--request-id", "r1 ", "acme", "600")
    assert code == 2 and "request_id" in err and "begins or ends with a space" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_cli_empty_request_id_is_refused_not_replaced(env, capsys):
    """Breaker finding: `--request-id ''` (an unset variable) became a fresh
    id each time, so a retried top-up credited twice."""
    ops = env
    opened(ops)
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "top-up", "--store", store, "--request-id", "", "acme", "600")
    assert code == 2 and "request_id" in err and len(err.strip().splitlines()) == 1, err


def test_an_actor_refusal_names_the_character_and_a_blank_actor_is_refused(env, capsys):
    """Breaker N11 F15: `--actor 'ops<U+00A0>wang'` was refused "at most 64
    characters, none a control character (got 8 characters)": neither is
    what is wrong (str.isprintable refuses every space but U+0020). The
    refusal now shows the actor escaped and names the character and where;
    a blank actor (" "), which was stored as the audit event's actor, is
    refused too ("" stays the caller's default)."""
    ops = env
    opened(ops)
    for actor, words in (("ops\u00a0wang", ("'ops\\xa0wang'", "U+00A0 (NO-BREAK SPACE)", "at character 4")),
                         ("ops\u200bwang", ("'ops\\u200bwang'", "U+200B (ZERO WIDTH SPACE)")),
                         ("ops\x1b[2J", ("U+001B", "at character 4")),
                         (" ", ("' ' is blank",)), ("\u3000", ("is blank",))):
        with pytest.raises(InvalidInput) as e:
            ops.pay(rid(), "acme", 10_000, actor=actor, at_ms=T0)
        assert e.value.field == "actor" and all(w in e.value.message for w in words), (actor, e.value.message)
    with pytest.raises(InvalidInput) as e:
        ops.pay(rid(), "acme", 10_000, actor="a" * 65, at_ms=T0)
    assert e.value.message == "at most 64 characters (got 65)"
    ops.pay(rid(), "acme", 10_000, actor="", at_ms=T0)  # empty: the default
    ops.pay(rid(), "acme", 10_000, actor="运维 王", at_ms=T0)
    actors = [e["actor"] for e in ops.events("acme", 0, 2**63 - 1) if e["operation"] == "pay"]
    assert actors == ["operator", "运维 王"]
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "pay", "acme", "1", "--actor", " ", "--at", "2026-11-02T10:00:00+08:00",
                       "--store", store)
    assert code == 2 and "actor: ' ' is blank" in err, err


def test_a_reversed_payment_frees_the_payments_bound(env):
    """Breaker N12 F11: the payments' bound counted reversed payments, so
    after a huge typo was reversed the account could never be paid again."""
    ops = env
    opened(ops)
    ops.pay(rid(), "acme", MAX_AMOUNT_MINOR, at_ms=T0)  # the typo: 10^11 yuan
    with pytest.raises(Refused) as e:
        ops.pay(rid(), "acme", 10_000, at_ms=T0)
    assert e.value.reason == "balance_limit"
    ops.reverse_payment(rid(), "acme", MAX_AMOUNT_MINOR // 2, "keyed the amount wrong", at_ms=T0)  # bills kept some
    assert ops.pay(rid(), "acme", 10_000, at_ms=T0)["detail"]["amount_minor"] == 10_000


def test_an_empty_account_id_is_required_never_every_account(env, capsys):
    """Breaker N13 F8: `accounts events ""` printed every account's audit log
    (114 events of 28 accounts), exit 0: the empty id was read as "no
    account given", the listing of every event. An empty id is bad input
    naming ``account`` wherever an account is named (the one edge,
    ``_Tx.account``), as gRPC ListEvents answered already."""
    ops = env
    opened(ops)
    ops.open_account(rid(), "other", "Other Co.", at_ms=T0)
    for call in (lambda: ops.events(""), lambda: ops.events("", T0, T0 + 1),
                 lambda: ops.get_account(""), lambda: ops.balance(""),
                 lambda: ops.top_up(rid(), "", 600_0000, at_ms=T0),
                 lambda: ops.account_transition(rid(), "", "suspend", at_ms=T0)):
        with pytest.raises(InvalidInput) as e:
            call()
        assert e.value.field == "account" and str(e.value) == "account: required"
    assert {e["account"] for e in ops.events(None)} >= {"acme", "other"}  # no account given: every event
    store = str(ops.store.root)
    ops.ledger.close()
    code, out, err = cli(capsys, "accounts", "events", "", "--store", store)
    assert (code, out, err.strip()) == (2, "", "error: account: required"), (code, out, err)


def test_a_refused_reversal_says_the_payments_were_reversed_not_that_there_were_none(env):
    """Breaker N13 F2: after 45.50 + 5.00 paid and both reversed (20.00, then
    30.50), a further reversal was refused "(it has no bill payment)": the
    account has three bill payments; what is true is that they were
    reversed. Nothing paid yet still says "it has no bill payment"."""
    ops = env
    opened(ops, package="pre_3y")  # no minimum, no rental: no bill applies a payment
    with pytest.raises(Refused, match=r"are 0\.00 yuan \(it has no bill payment\); cannot reverse 1\.00 yuan"):
        ops.reverse_payment(rid(), "acme", 1_0000, "nothing paid", at_ms=T0)
    ops.pay(rid(), "acme", 45_5000, at_ms=T0)
    ops.pay(rid(), "acme", 5_0000, at_ms=T0)
    ops.reverse_payment(rid(), "acme", 20_0000, "typo", at_ms=T0)
    ops.reverse_payment(rid(), "acme", 30_5000, "typo", at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.reverse_payment(rid(), "acme", 30_5000, "typo", at_ms=T0)
    assert e.value.reason == "insufficient_payments"
    assert "are 0.00 yuan (its bill payments of 50.50 yuan were all reversed); cannot reverse 30.50 yuan" \
        in e.value.message, e.value.message


def test_a_refund_is_whole_fen_with_a_reason(env, capsys):
    """Breaker N13 F1: `accounts refund acme 0.001` paid out 0.0010 yuan while `pay 0.001` is refused:
    a refund is cash paid to the customer, whole fen like a payment. Newcomer N13 F1: a refund took
    no reason; money leaving says why (as `adjust` and `pay --reverse`), in the audit event."""
    ops = env
    opened(ops)
    credit = ops.balance("acme")["credit_minor"]
    for amount in (10, 10_001, 1):
        with pytest.raises(InvalidInput) as e:
            ops.refund(rid(), "acme", amount, "overpaid", at_ms=T0)
        assert e.value.field == "amount_minor" and f"{amount}: a refund is whole fen" in str(e.value), e.value
    for reason in ("", "  "):
        with pytest.raises(InvalidInput) as e:
            ops.refund(rid(), "acme", 10_000, reason, at_ms=T0)
        assert e.value.field == "reason"
    assert ops.balance("acme")["credit_minor"] == credit
    ops.refund(rid(), "acme", 100, " customer closed the line ", at_ms=T0)
    last = ops.events("acme")[-1]
    assert last["operation"] == "refund" and last["detail"]["reason"] == "customer closed the line"
    store = str(ops.store.root)
    ops.ledger.close()
    code, _, err = cli(capsys, "accounts", "refund", "--store", store, "acme", "0.001", "--reason", "x")
    assert code == 2 and "Invalid value for YUAN: 0.001: a refund is whole fen (0.01 yuan)" in err
    code, _, err = cli(capsys, "accounts", "pay", "--store", store, "acme", "0.001")
    assert code == 2 and "Invalid value for YUAN: 0.001: a payment is whole fen (0.01 yuan)" in err
    code, _, err = cli(capsys, "accounts", "refund", "--store", store, "acme", "1")
    assert code == 2 and "--reason" in err, err
    code, _, err = cli(capsys, "accounts", "refund", "--store", store, "acme", "1", "--reason", " ")
    assert code == 2 and "reason: required" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = cli(capsys, "accounts", "refund", "--store", store, "acme", "1.01", "--reason", "overpaid")
    assert code == 0 and json.loads(out)["detail"]["amount_minor"] == 1_0100, err


def test_accounts_events_says_when_more_follow_than_listed(env, capsys):
    """`accounts events` stopped at 1000 events without a word (found with
    breaker N13 F8): --limit sets the most listed, and a note on stderr says
    more follow and from when."""
    ops = env
    opened(ops)
    ops.top_up(rid(), "acme", 600_0000, at_ms=T0 + 1_000)
    ops.top_up(rid(), "acme", 600_0000, at_ms=T0 + 2_000)
    every = ops.events("acme")
    store = str(ops.store.root)
    ops.ledger.close()
    code, out, err = cli(capsys, "accounts", "events", "acme", "--limit", "2", "--store", store)
    assert code == 0 and [e["seq"] for e in json.loads(out)] == [e["seq"] for e in every[:2]]
    # The next page by the last event shown, not by time (newcomer 12-02 F8: --from MS repeated its ms).
    assert err.startswith("note: the first 2 event(s) shown; more follow, from ") and \
        f": the next page is --after-seq {every[1]['seq']} (the last shown), or a larger --limit" in err, err
    code, out, err = cli(capsys, "accounts", "events", "acme", "--limit", "2", "--after-seq", every[1]["seq"],
                         "--store", store)
    assert code == 0 and [e["seq"] for e in json.loads(out)] == [e["seq"] for e in every[2:4]], err
    code, out, err = cli(capsys, "accounts", "events", "acme", "--store", store)
    assert code == 0 and len(json.loads(out)) == len(every) and err == ""


def test_a_first_package_never_starts_in_an_ended_month(env):
    """Breaker8 F8 (HIGH): ``subscribe --start 1970-01-01`` on an account
    opened today billed every month since (67,716.00 yuan of rentals), and a
    prepaid fee paid today expired decades ago. A start in a month that has
    ended is refused ``month_ended`` (naming the month's start and the
    import a platform moving its history uses); this month's first instant
    and later are taken."""
    from rating_core.accounts.importer import month_start
    from rating_core.accounts.operations import now_ms
    from rating_core.errors import Refused

    ops = env
    ops.open_account(rid(), "old", "Old Co.")
    for start in (1, month_start(now_ms()) - 1):
        with pytest.raises(Refused) as e:
            ops.subscribe(rid(), "old", "payg", start_ms=start)
        assert e.value.reason == "month_ended" and "accounts import --billing-from" in str(e.value)
    ops.subscribe(rid(), "old", "payg", start_ms=month_start(now_ms()))
    assert ops.get_account("old")["account"]["package"] == "payg"


def test_an_unknown_long_id_is_echoed_cut(env):
    """Breaker8 L3: an unknown 100,000-character account id came back in
    the NOT_FOUND message to 4,000 characters (gRPC's cap). Shown as
    ``excerpt`` shows a value: its first 40 characters and its size; a
    short id as before (``no account 'nosuch'``)."""
    from rating_core.errors import NotFound

    ops = env
    for read in (ops.balance, ops.get_account, ops.events):
        with pytest.raises(NotFound) as e:
            read("x" * 100_000)
        assert str(e.value) == f"account: no account {'x' * 40!r}... (100000 characters)", str(e.value)[:200]
    with pytest.raises(NotFound) as e:
        ops.balance("nosuch")
    assert str(e.value) == "account: no account 'nosuch'"
