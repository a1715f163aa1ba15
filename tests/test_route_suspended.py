"""`rating400 route` of a suspended account says why and since when, and
what to do (newcomer N10-2 finding 9: `DENY account_suspended` had no
`why:` line, while `out_of_credit` had one)."""
import json

import pytest

from rating_core.cli import main
from test_billing import CATALOG, live_store


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err


def test_a_suspended_account_s_deny_says_why_and_since_when(tmp_path, capsys):
    store = str(live_store(tmp_path, CATALOG))
    # `expiring`'s prepaid period ended on 2026-11-15: the sweep suspends it (expired).
    code, printed, err = run(capsys, "accounts", "sweep", "--at", "2026-11-15T00:00:00+08:00", "--store", store)
    assert code == 0, err
    assert any(r["account"]["id"] == "expiring" for r in json.loads(printed))
    code, printed, _ = run(capsys, "route", "4001000001", "13812345678", "--at", "2026-11-20T10:00:00",
                           "--store", store)
    assert code == 1
    lines = printed.splitlines()
    assert "DENY account_suspended" in lines
    assert ("why: account expiring is suspended (expired) since 2026-11-15 00:00: its prepaid package period "
            "ended: renew it (rating400 accounts renew expiring)") in lines
    # Asked of a time before the suspension: the answer is the live state, and says so (newcomer N11 F13).
    code, printed, _ = run(capsys, "route", "4001000001", "13812345678", "--at", "2026-11-10T10:00:00",
                           "--store", store)
    why = next(line for line in printed.splitlines() if line.startswith("why:"))
    assert "since 2026-11-15 00:00 (its state now: route answers from the live state, not as of --at)" in why
    code, printed, _ = run(capsys, "route", "4001000001", "13812345678", "--at", "2026-11-20T10:00:00",
                           "--store", store, "--json")
    assert code == 1 and json.loads(printed)["detail"].startswith("account expiring is suspended (expired) since")
    # Suspended by an operator: restore it.
    code, printed, err = run(capsys, "accounts", "suspend", "tea", "--store", store)
    assert code == 0, err
    code, printed, _ = run(capsys, "route", "4001000003", "13812345678", "--store", store)
    why = next(line for line in printed.splitlines() if line.startswith("why:"))
    assert why.startswith("why: account tea is suspended (manual) since ") and why.endswith(
        "suspended by an operator: rating400 accounts restore tea")


def test_a_time_outside_the_calendar_is_named_as_typed_with_the_range(tmp_path, capsys):
    """Newcomer N11 F15: `route --at 2062-11-02T10:00:00+08:00` answered
    'at: 2929658400000 ms is outside the calendar', the epoch ms and no range."""
    store = str(live_store(tmp_path, CATALOG))
    code, _, err = run(capsys, "route", "4001000003", "13812345678", "--at", "2062-11-02T10:00:00+08:00",
                       "--store", store)
    assert code == 2
    assert ("at: 2062-11-02T10:00:00+08:00 (2929658400000 ms) is outside the calendar the catalog was compiled "
            "with: 2000-01-01 to 2060-12-31, Asia/Shanghai") in err, err


def test_an_arrears_suspension_says_a_top_up_restores_it_not_a_bill_payment(tmp_path, capsys):
    """Newcomer N11 F14: the arrears why: offered 'the customer's payment of
    a postpaid bill' for a prepaid account; only a top-up restores it."""
    store = str(live_store(tmp_path, CATALOG))
    credit = json.loads(run(capsys, "accounts", "balance", "tea", "--store", store)[1])["credit_yuan"]
    code, _, err = run(capsys, "accounts", "adjust", "tea", f"-{credit}", "--reason", "drained", "--store", store)
    assert code == 0, err
    code, printed, err = run(capsys, "accounts", "sweep", "--store", store)
    assert code == 0 and "arrears" in printed, (printed, err)
    code, printed, _ = run(capsys, "route", "4001000003", "13812345678", "--store", store)
    why = next(line for line in printed.splitlines() if line.startswith("why:"))
    assert why.startswith("why: account tea is suspended (arrears) since ") and why.endswith(
        "(then the sweep freezes it); a bill payment (accounts pay) does not, as it is never call credit"), why
    assert ("its prepaid credit ran out: a top-up of at least 600.00 yuan (the top-up minimum: the larger of "
            "600.00 yuan and 3 months of the package's monthly minimum: rating400 accounts top-up tea 600.00) "
            "restores it before ") in why, why


def test_an_arrears_suspension_names_the_top_up_that_restores_it(tmp_path, capsys):
    """Newcomer LOW F5: the arrears why: named no amount. tea's package
    pre_480 with a monthly minimum of 250.00: the least top-up is max(600.00,
    3 x 250.00) = 750.00 yuan, and the window closes restore_months (3)
    after the suspension. 749.99 is refused below_minimum, 750.00 restores
    it (the figure is the one `accounts top-up` holds to)."""
    import re

    store = str(live_store(tmp_path, CATALOG.replace("monthly_minimum: 40", "monthly_minimum: 250")))
    credit = json.loads(run(capsys, "accounts", "balance", "tea", "--store", store)[1])["credit_yuan"]
    assert run(capsys, "accounts", "adjust", "tea", f"-{credit}", "--reason", "drained", "--store", store)[0] == 0
    assert run(capsys, "accounts", "sweep", "--at", "2026-12-02T10:00:00+08:00", "--store", store)[0] == 0
    code, printed, _ = run(capsys, "route", "4001000003", "13812345678", "--store", store)
    why = next(line for line in printed.splitlines() if line.startswith("why:"))
    assert ("a top-up of at least 750.00 yuan (the top-up minimum: the larger of 600.00 yuan and 3 months of the "
            "package's monthly minimum: rating400 accounts top-up tea 750.00) restores it before 2027-03-02 10:00 "
            "(then the sweep freezes it)") in why, why
    code, printed, err = run(capsys, "accounts", "top-up", "tea", "749.99", "--store", store)
    assert code != 0 and "below_minimum" in printed + err and re.search(r"750\.00 yuan", printed + err), (printed, err)
    code, printed, err = run(capsys, "accounts", "top-up", "tea", "750.00", "--store", store)
    out = json.loads(printed)
    assert code == 0 and out["detail"]["restored"] is True and out["account"]["status"] == "active", (printed, err)
    code, printed, _ = run(capsys, "route", "4001000003", "13812345678", "--store", store)
    assert "account_suspended" not in printed, printed  # (no destination is bound here: no_route, not suspended)


def test_restore_payment_figures():
    """The amount an arrears why: names (1/10000 yuan, whole fen).
    Postpaid at credit -0.985 yuan: the bill, rounded up to the fen, 0.99.
    Prepaid at default rules: 600.00 (3 x 40.00 = 120.00 is less); with no
    minimum and credit -0.1234: 0.13 brings it above 0 (0.0066 left); at
    credit 0 with no minimum: 0.01."""
    from rating_core.cli_route import restore_payment

    meta = {"package_rules": {"pay": {"kind": "payg"}, "pre": {"kind": "prepaid", "monthly_minimum": 400_000}}}
    assert restore_payment(meta, "pay", -9850)[0] == 9900
    assert restore_payment(meta, "pre", 0)[0] == 6_000_000
    free = {**meta, "customer_rules": {"top_up_min": 0, "top_up_min_months": 0}}
    assert restore_payment(free, "pre", -1234) == (1300, "what brings the credit above 0")
    assert restore_payment(free, "pre", 0)[0] == 100
