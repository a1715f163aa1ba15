"""Customer operations on the live layer: every lifecycle transition and
every refused one, idempotency by request id, the audit log, the sweep at
its window edges, and the next authorization seeing each operation without
a catalog compile."""
import datetime as dt

import pytest

from rating_core.accounts import Accounts, open_view
from rating_core.accounts.importer import import_catalog
from rating_core.accounts.operations import add_months_ms
from rating_core.errors import InvalidInput, NotFound, Refused
from rating_core.router import Router
from rating_core.store import Ledger
from stores import compiled

CATALOG = """
name: accounts-test
destination_classes: [mobile, landline]
destination_prefixes: {"1": mobile, "0": landline}
time_bands: [{name: all}]
rates:
  std: {tiers: [{price: 0.12}]}
packages:
  pre_480: {kind: prepaid, fee: 480, period_months: 12, monthly_minimum: 40, rates: [{rate: std}]}
  pre_3y: {kind: prepaid, fee: 3000, period_months: 36, rates: [{rate: std}]}
  payg: {kind: payg, rates: [{rate: std}]}
number_grades:
  premium: {opening_fee: 5000, monthly_rental: 100, patterns: ["400?888???", "400??8888?"]}
  standard: {}
customer_rules: {top_up_min: 600, top_up_min_months: 3, restore_months: 3, reclaim_months: 6, cooling_days: 90}
routing_plans:
  office:
    groups:
      desk: {destinations: [{number: "0755-12345678"}, {number: "13700000001"}]}
    rules: [{group: desk}]
accounts:
  legacy:
    name: Legacy Co.
    package: pre_3y
    package_start: 2026-01-01
    opening_credit: 100
    numbers:
      - {number: "4001110001", home_city: Shenzhen, routing: office}
"""

SH = dt.timezone(dt.timedelta(hours=8))
T0 = int(dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH).timestamp() * 1000)
CALLER = "13812345678"
LATER = add_months_ms(T0, 24)  # now, for tests that date operations up to two years after T0


@pytest.fixture
def env(tmp_path):
    store = compiled(tmp_path, CATALOG)
    ledger = Ledger(tmp_path / "store")
    ops = Accounts(store, ledger)
    yield ops
    ledger.close()


def authorize(ops, number, at=T0):
    view = open_view(ops.store, ops.env)
    return Router(view, ops.ledger).authorize(number, CALLER, at)


_ids = iter(range(10**9))


def rid():
    return f"r{next(_ids)}"


def opened(ops, account="acme", package="pre_480", number="4001234567", at=T0):
    """An account through the whole opening: real-name verified, package,
    number active, one verified destination."""
    ops.open_account(rid(), account, "Acme Trading Co., Ltd.", at_ms=at)
    ops.submit_documents(rid(), account, [("business_licence", "BL-1"), ("legal_representative_id", "ID-1")], at_ms=at)
    ops.review_realname(rid(), account, True, at_ms=at)
    ops.subscribe(rid(), account, package, start_ms=at - 86_400_000, at_ms=at)
    ops.add_numbers(rid(), [number], at_ms=at)
    ops.lock_number(rid(), number, account, at_ms=at)
    ops.submit_number(rid(), number, at_ms=at)
    ops.activate_number(rid(), number, "Shenzhen", at_ms=at)
    ops.bind_destination(rid(), number, "13700000001", at_ms=at)
    ops.verify_destination(rid(), number, "13700000001", "BILL-1", at_ms=at)


def test_opening_a_number_end_to_end_routes_only_verified_destinations(env):
    ops = env
    ops.open_account("a1", "acme", "Acme Trading Co., Ltd.", at_ms=T0)
    ops.add_numbers("a2", ["4001234567"], at_ms=T0)
    assert authorize(ops, "4001234567").reason == "unknown_number"  # in stock, held by nobody
    ops.lock_number("a3", "4001234567", "acme", at_ms=T0)
    assert authorize(ops, "4001234567").reason == "pending_verification"
    with pytest.raises(Refused) as e:
        ops.submit_number("a4", "4001234567", at_ms=T0)
    assert e.value.reason == "realname_missing"
    with pytest.raises(Refused) as e:
        ops.submit_documents("a4", "acme", [("business_licence", "BL-1")], at_ms=T0)
    assert e.value.reason == "documents_missing"
    ops.submit_documents("a4", "acme", [("business_licence", "BL-1"), ("legal_representative_id", "ID")], at_ms=T0)
    ops.submit_number("a5", "4001234567", at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.activate_number("a6", "4001234567", "Shenzhen", at_ms=T0)
    assert e.value.reason == "realname_not_verified"
    ops.review_realname("a6", "acme", True, at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.activate_number("a7", "4001234567", "Shenzhen", at_ms=T0)
    assert e.value.reason == "no_package"
    ops.subscribe("a7", "acme", "pre_480", start_ms=T0 - 1000, at_ms=T0)
    ops.activate_number("a8", "4001234567", "Shenzhen", at_ms=T0)
    assert authorize(ops, "4001234567").reason == "no_route"  # nothing bound yet
    ops.bind_destination("a9", "4001234567", "137-0000-0001", at_ms=T0)
    assert authorize(ops, "4001234567").reason == "no_route"  # bound, not yet proven real-name
    ops.verify_destination("a10", "4001234567", "13700000001", "BILL-2026-11", at_ms=T0)
    d = authorize(ops, "4001234567")
    assert d.allow and [x.number for x in d.destinations] == ["13700000001"]
    assert d.max_duration_seconds > 0  # 480 yuan of credit
    ops.bind_destination("a11", "4001234567", "0755-12345678", at_ms=T0)
    d = authorize(ops, "4001234567")
    assert [x.number for x in d.destinations] == ["13700000001"]
    ops.verify_destination("a12", "4001234567", "075512345678", "BILL-7", at_ms=T0)
    assert [x.number for x in authorize(ops, "4001234567").destinations] == ["13700000001", "075512345678"]
    ops.unbind_destination("a13", "4001234567", "13700000001", at_ms=T0)
    assert [x.number for x in authorize(ops, "4001234567").destinations] == ["075512345678"]
    n = ops.get_number("4001234567")
    assert [s for s, _ in n["history"]] == ["available", "locked", "pending_verification", "active"]


def test_request_id_replays_the_first_result_and_changes_nothing(env):
    ops = env
    opened(ops)
    first = ops.top_up("t1", "acme", 600 * 10_000, at_ms=T0)
    again = ops.top_up("t1", "acme", 600 * 10_000, at_ms=T0)
    assert again["replayed"] and not first["replayed"]
    assert again["balance"] == first["balance"] and again["seq"] == first["seq"]
    assert ops.balance("acme")["credit_minor"] == (480 + 600) * 10_000
    # A prepaid account has no bundle seconds: null, not 0 (newcomer N9 C12).
    seconds = ("bundle_left_seconds", "reserved_seconds", "available_seconds")
    assert [ops.balance("acme")[k] for k in seconds] == [None] * 3
    assert [first["balance"][k] for k in seconds] == [None] * 3
    with pytest.raises(InvalidInput) as e:
        ops.refund("t1", "acme", 10_000, "overpaid")
    assert e.value.field == "request_id"


def test_top_up_minimums_adjust_refund(env):
    ops = env
    opened(ops)
    # max(600 yuan, 3 x 40 yuan minimum) = 600 yuan; one fen less is refused (a top-up is whole fen).
    with pytest.raises(Refused) as e:
        ops.top_up(rid(), "acme", 599_9900, at_ms=T0)
    assert e.value.reason == "below_minimum"
    ops.top_up(rid(), "acme", 600_0000, at_ms=T0)
    with pytest.raises(InvalidInput) as e:
        ops.adjust(rid(), "acme", -10, "", at_ms=T0)
    assert e.value.field == "reason"
    with pytest.raises(InvalidInput) as e:  # the audit log keeps it for ever: bounded (breaker: 3 MiB by gRPC)
        ops.adjust(rid(), "acme", -10, "退" * 400, at_ms=T0)
    assert e.value.field == "reason" and "longer than 1024 bytes" in e.value.message
    with pytest.raises(Refused) as e:
        ops.adjust(rid(), "acme", -1081_0000, "correction", at_ms=T0)
    # Every money figure of a refusal in yuan, naming the unit (breaker 2 F8: "available is
    # 0 minor units; cannot debit 1000000").
    assert e.value.reason == "insufficient_credit"
    assert e.value.message == "available is 1080.00 yuan; cannot debit 1081.00 yuan", e.value.message
    ops.adjust(rid(), "acme", -80_0000, "duplicate payment reversed", at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.refund(rid(), "acme", 1000_0100, "overpaid", at_ms=T0)
    # In yuan (it said "cannot refund 10000001 (1000.00 yuan)": breaker 2 F8); a refund is
    # whole fen (breaker N13 F1), so one fen more than the credit is the least refused.
    assert e.value.reason == "insufficient_credit"
    assert e.value.message == "refundable credit is 1000.00 yuan; cannot refund 1000.01 yuan", e.value.message
    ops.refund(rid(), "acme", 1000_0000, "overpaid", at_ms=T0)
    assert ops.balance("acme")["credit_minor"] == 0
    with pytest.raises(InvalidInput) as e:
        ops.top_up(rid(), "acme", 0)
    assert e.value.field == "amount_minor"
    with pytest.raises(NotFound):
        ops.top_up(rid(), "nobody", 600_0000)
    ops.open_account(rid(), "postpaid", "Post Co.", at_ms=T0)
    ops.subscribe(rid(), "postpaid", "payg", at_ms=T0)
    # Pay-as-you-go: a payment of any amount is credited against what was
    # charged (its credit may run down to -credit_limit), no minimum.
    before = ops.balance("postpaid")["credit_minor"]
    ops.top_up(rid(), "postpaid", 12_3400, at_ms=T0)
    assert ops.balance("postpaid")["credit_minor"] == before + 12_3400
    ops.open_account(rid(), "nopkg", "No Package Co.", at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.top_up(rid(), "nopkg", 600_0000, at_ms=T0)
    assert e.value.reason == "no_package"


def test_suspend_restore_freeze_reclaim_and_refusals(env):
    ops = env
    opened(ops)
    assert authorize(ops, "4001234567").allow
    with pytest.raises(Refused) as e:
        ops.account_transition(rid(), "acme", "restore", at_ms=T0)
    assert e.value.reason == "wrong_state"
    with pytest.raises(Refused):
        ops.account_transition(rid(), "acme", "freeze", at_ms=T0)
    ops.account_transition(rid(), "acme", "suspend", "customer request", at_ms=T0)
    # The number is suspended with its account; the reason names the account (the cause).
    assert authorize(ops, "4001234567").reason == "account_suspended"
    assert ops.get_number("4001234567")["state"] == "suspended"
    ops.account_transition(rid(), "acme", "restore", at_ms=T0)
    assert authorize(ops, "4001234567").allow
    ops.account_transition(rid(), "acme", "suspend", at_ms=T0)
    ops.account_transition(rid(), "acme", "freeze", at_ms=T0)
    assert ops.get_number("4001234567")["state"] == "frozen"
    assert authorize(ops, "4001234567").reason == "number_not_active"
    ops.account_transition(rid(), "acme", "reclaim", at_ms=T0)
    n = ops.get_number("4001234567")
    assert n["state"] == "reclaimed" and n["destinations"] == []
    assert authorize(ops, "4001234567").reason == "unknown_number"
    with pytest.raises(Refused) as e:
        ops.number_transition(rid(), "4001234567", "release", at_ms=T0)
    assert e.value.reason == "wrong_state"
    ops.number_transition(rid(), "4001234567", "cool", at_ms=T0)
    ops.number_transition(rid(), "4001234567", "release", at_ms=T0)
    assert ops.get_number("4001234567")["state"] == "available"
    assert ops.search_numbers("4001234567")[0]["state"] == "available"


def test_number_level_moves(env):
    ops = env
    opened(ops)
    ops.number_transition(rid(), "4001234567", "suspend", at_ms=T0)
    assert authorize(ops, "4001234567").reason == "number_suspended"
    ops.number_transition(rid(), "4001234567", "restore", at_ms=T0)
    assert authorize(ops, "4001234567").allow
    with pytest.raises(Refused):
        ops.number_transition(rid(), "4001234567", "reclaim", at_ms=T0)
    with pytest.raises(InvalidInput) as e:
        ops.number_transition(rid(), "4001234567", "explode")
    assert e.value.field == "action"


def test_grades_and_search(env):
    ops = env
    several = ops.add_numbers(rid(), ["4006888888", "4001234500", "4008888812"], at_ms=T0)
    # Several added: no one of them is "the" number (newcomer N9 C12: the top
    # level held the last); the detail lists each. One added: its record.
    assert several["number"] is None and several["detail"]["count"] == 3
    assert [n["number"] for n in several["detail"]["numbers"]] == ["4006888888", "4001234500", "4008888812"]
    assert ops.add_numbers(rid(), ["4009876501"], at_ms=T0)["number"]["number"] == "4009876501"
    found = {x["number"]: x for x in ops.search_numbers("*888*")}
    assert found["4006888888"]["grade"] == "premium"
    assert found["4006888888"]["opening_fee_minor"] == 5000_0000
    assert set(found) == {"4006888888", "4008888812"}
    assert [x["number"] for x in ops.search_numbers("400123*", grade="standard")] == ["4001234500"]
    with pytest.raises(InvalidInput) as e:
        ops.search_numbers("abc")
    assert e.value.field == "pattern"
    with pytest.raises(Refused) as e:
        ops.add_numbers(rid(), ["4006888888"])
    assert e.value.reason == "number_exists"
    with pytest.raises(InvalidInput) as e:
        ops.add_numbers(rid(), ["4001"])
    assert e.value.field == "numbers[0]"


def test_realname_review_paths(env):
    ops = env
    ops.open_account(rid(), "acme", "Acme", at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.review_realname(rid(), "acme", True)
    assert e.value.reason == "not_pending"
    ops.submit_documents(rid(), "acme", [("business_licence", "B"), ("legal_representative_id", "I")])
    with pytest.raises(InvalidInput):
        ops.review_realname(rid(), "acme", False, "")
    assert ops.review_realname(rid(), "acme", False, "licence expired")["account"]["realname"] == "rejected"
    ops.submit_documents(rid(), "acme", [("business_licence", "B2")])
    assert ops.review_realname(rid(), "acme", True)["account"]["realname"] == "verified"
    with pytest.raises(Refused) as e:
        ops.submit_documents(rid(), "acme", [("other", "x")])
    assert e.value.reason == "already_verified"
    with pytest.raises(Refused) as e:
        ops.open_account(rid(), "acme", "Again")
    assert e.value.reason == "account_exists"


def test_sweep_arrears_window_edges(env, clock):
    ops = env
    clock(LATER)  # the story runs into 2027/2028
    opened(ops)
    # Credit 0: in arrears. A debit, not a refund: with the clock a year on, the statements leave
    # the minimums unpaid, and a prepaid refund is netted against them (newcomer N11 F6).
    ops.adjust(rid(), "acme", -480_0000, "drained", at_ms=T0)
    done = ops.sweep(T0)
    assert [d["operation"] for d in done] == ["suspend_account"]
    acc = ops.get_account("acme")["account"]
    assert acc["status"] == "suspended" and acc["suspend_reason"] == "arrears"
    assert ops.sweep(T0 + 1000) == []  # nothing more is due
    edge = add_months_ms(T0, 3)
    assert ops.sweep(edge - 1) == []  # the last moment of the restore window
    # Restored by a top-up one millisecond before the window closes.
    r = ops.top_up(rid(), "acme", 600_0000, at_ms=edge - 1)
    assert r["detail"]["restored"] and r["account"]["status"] == "active"
    assert r["detail"]["amount_minor"] == 600_0000  # newcomer: the receipt says what was booked
    assert authorize(ops, "4001234567").allow


def test_sweep_freezes_at_the_edge_and_top_up_no_longer_restores(env, clock):
    ops = env
    clock(LATER)  # the story runs into 2027/2028
    opened(ops)
    ops.adjust(rid(), "acme", -480_0000, "drained", at_ms=T0)  # a refund is netted against unpaid minimums
    ops.sweep(T0)
    edge = add_months_ms(T0, 3)
    r = ops.top_up(rid(), "acme", 600_0000, at_ms=edge)  # window closed: credit taken, not restored
    assert not r["detail"]["restored"] and r["account"]["status"] == "suspended"
    assert [d["operation"] for d in ops.sweep(edge)] == ["freeze_account"]
    assert ops.get_number("4001234567")["state"] == "frozen"
    reclaim = add_months_ms(T0, 6)
    assert ops.sweep(reclaim - 1) == []
    done = ops.sweep(reclaim)
    assert done[0]["operation"] == "reclaim_account" and done[0]["account"]["status"] == "closed"
    assert ops.get_number("4001234567")["state"] == "reclaimed"
    ops.sweep(reclaim)  # reclaimed -> cooling
    n = ops.get_number("4001234567")
    assert n["state"] == "cooling"
    assert ops.sweep(n["cooling_until_ms"] - 1) == []
    ops.sweep(n["cooling_until_ms"])
    assert ops.get_number("4001234567")["state"] == "available"


def test_sweep_expired_period_and_pending_package_change(env, clock):
    ops = env
    opened(ops)
    end = ops.get_account("acme")["account"]["period_end_ms"]
    later = end + 10 * 86_400_000
    clock(later)  # the story runs to 2027-11-11, in the month of its renewal (an ended month is refused)
    assert ops.sweep(end - 1) == []
    done = ops.sweep(end)
    assert done[0]["account"]["suspend_reason"] == "expired"
    with pytest.raises(Refused) as e:
        ops.top_up(rid(), "acme", 600_0000, at_ms=end)
    assert e.value.reason == "period_ended"
    r = ops.renew(rid(), "acme", at_ms=end + 1)
    assert r["account"]["status"] == "active" and r["detail"]["carried_minor"] == 0
    assert r["balance"]["credit_minor"] == 480_0000
    # A change with a later effective date waits for the sweep.
    r = ops.change_package(rid(), "acme", "pre_3y", effective_ms=later, at_ms=end + 2)
    assert r["account"]["package"] == "pre_480" and r["account"]["pending_package"] == "pre_3y"
    assert ops.sweep(later - 1) == []
    r = ops.sweep(later)[0]
    assert r["account"]["package"] == "pre_3y" and r["account"]["package_start_ms"] == later
    assert r["balance"]["credit_minor"] == 480_0000 + 3000_0000  # credit left carries over


def test_change_package_refusals(env):
    ops = env
    opened(ops)
    with pytest.raises(Refused) as e:
        ops.change_package(rid(), "acme", "pre_480", at_ms=T0)
    assert e.value.reason == "same_package"
    with pytest.raises(InvalidInput) as e:
        ops.change_package(rid(), "acme", "gold", at_ms=T0)
    assert e.value.field == "package"
    with pytest.raises(Refused) as e:
        ops.subscribe(rid(), "acme", "payg", at_ms=T0)
    assert e.value.reason == "already_subscribed"


def test_audit_log_by_account_and_time(env):
    ops = env
    opened(ops)
    ops.top_up("audit-1", "acme", 600_0000, actor="alice", at_ms=T0 + 5000)
    events = ops.events("acme", T0 + 1, T0 + 10_000)
    assert [e["operation"] for e in events] == ["top_up"]
    e = events[0]
    assert e["actor"] == "alice" and e["request_id"] == "audit-1"
    assert e["before"]["id"] == "acme" and e["detail"]["amount_minor"] == 600_0000
    everything = ops.events("acme")
    assert [x["operation"] for x in everything][:3] == ["open_account", "submit_documents", "review_realname"]
    with pytest.raises(NotFound):
        ops.events("nobody")


def test_routing_plan_template_keeps_only_verified_destinations(env):
    ops = env
    opened(ops)
    ops.set_routing(rid(), "4001234567", template="office", at_ms=T0)
    # office names 0755-12345678 and 13700000001; only the latter is bound and verified.
    assert [x.number for x in authorize(ops, "4001234567").destinations] == ["13700000001"]
    with pytest.raises(InvalidInput) as e:
        ops.set_routing(rid(), "4001234567", plan={"groups": {}}, at_ms=T0)
    assert e.value.field.startswith("plan")
    # A plan whose destinations are none of the verified ones routes nowhere:
    # no_route, not "all lines busy" for ever (newcomer and breaker finding).
    ops.set_routing(rid(), "4001234567", plan={"groups": {"g": {"destinations": [{"number": "13999999999"}]}},
                                               "rules": [{"group": "g"}]}, at_ms=T0)
    d = authorize(ops, "4001234567")
    assert (d.allow, d.reason, d.destinations) == (False, "no_route", [])


def test_routing_plan_names_are_held_to_the_text_rule(env):
    """Breaker: a plan whose group was named ``ma\u202ein`` (a bidi
    override) was stored, and `route` printed it raw, reversing the
    terminal's text. A plan's names and values are refused as other
    operator text is, the value shown escaped."""
    ops = env
    opened(ops)
    for plan in ({"groups": {"ma\u202ein": {"destinations": [{"number": "13700000001"}]}},
                  "rules": [{"group": "ma\u202ein"}]},
                 {"groups": {"g": {"destinations": [{"number": "13700000001"}]}},
                  "rules": [{"group": "g"}], "announcement": "closed\x1b[2J"}):
        with pytest.raises(InvalidInput) as e:
            ops.set_routing(rid(), "4001234567", plan=plan, at_ms=T0)
        assert e.value.field.startswith("plan") and "control character" in e.value.message, e.value
        assert "\u202e" not in str(e.value) and "\x1b" not in str(e.value)


def test_routing_plan_region_names_are_checked_and_spelled_as_region_data(env, monkeypatch, caplog):
    """A plan naming a region the region data lacks is refused naming the
    field; another spelling of a city (Lu'an, 天津) is stored as region
    data's name and routes its callers. A plan stored before names were
    checked (simulated by skipping the check) matches no caller there and
    leaves every other number's routing alone (it stopped the whole view)."""
    ops = env
    opened(ops)
    ops.add_numbers(rid(), ["4001234568"], at_ms=T0)
    ops.lock_number(rid(), "4001234568", "acme", at_ms=T0)
    ops.submit_number(rid(), "4001234568", at_ms=T0)
    ops.activate_number(rid(), "4001234568", "Lu'an", at_ms=T0)  # another spelling of LuAn
    assert next(n for n in ops.get_account("acme")["numbers"] if n["number"] == "4001234568")["home_city"] == "LuAn"
    ops.bind_destination(rid(), "4001234568", "13700000001", at_ms=T0)
    ops.verify_destination(rid(), "4001234568", "13700000001", "BILL-2", at_ms=T0)

    def plan(region):
        return {"groups": {"g": {"destinations": [{"number": "13700000001"}]}},
                "rules": [{"group": "g", "caller_regions": [region]}]}

    with pytest.raises(InvalidInput) as e:
        ops.set_routing(rid(), "4001234567", plan=plan("city:Atlantis"), at_ms=T0)
    assert e.value.field == "plan.rules[0].caller_regions" and "Atlantis" in e.value.message
    with pytest.raises(InvalidInput) as e:
        ops.set_routing(rid(), "4001234567", plan=plan("Luan"), at_ms=T0)
    assert "did you mean 'LuAn'?" in e.value.message
    ops.set_routing(rid(), "4001234567", plan=plan("city:Lu'an"), at_ms=T0)
    assert '"city:LuAn"' in ops.get_account("acme")["numbers"][0]["plan"]
    view = open_view(ops.store, ops.env)
    router = Router(view, ops.ledger)
    assert router.authorize("4001234567", "056412345678", T0).allow  # a Lu'an landline (area code 0564)
    assert router.authorize("4001234567", CALLER, T0).reason == "no_route"

    monkeypatch.setattr(type(ops), "_regions_checked", lambda self, p: p)
    ops.set_routing(rid(), "4001234567", plan=plan("city:Atlantis"), at_ms=T0)
    with caplog.at_level("WARNING"):
        view = open_view(ops.store, ops.env)
    assert "Atlantis" in caplog.text
    router = Router(view, ops.ledger)
    assert router.authorize("4001234567", "056412345678", T0).reason == "no_route"
    assert router.authorize("4001234568", CALLER, T0).allow  # the other number still routes


def test_import_catalog_accounts(env, tmp_path):
    ops = env
    before = authorize(ops, "4001110001")  # the catalog's own account, before the import
    assert before.allow
    out = import_catalog(ops, tmp_path / "catalog.yaml")
    cut = out.pop("billing_from_ms")  # the cut-over: the import's month (tests/test_cut_over.py)
    assert out == {"imported": ["legacy"], "skipped": []}
    assert import_catalog(ops, tmp_path / "catalog.yaml") == {"imported": [], "skipped": ["legacy"],
                                                              "billing_from_ms": cut}
    assert ops.get_account("legacy")["account"]["billing_from_ms"] == cut
    after = authorize(ops, "4001110001")
    assert after.allow and [x.number for x in after.destinations] == [x.number for x in before.destinations]
    assert ops.balance("legacy")["credit_minor"] == 100_0000
    acc = ops.get_account("legacy")
    assert acc["account"]["realname"] == "verified" and acc["numbers"][0]["plan_name"] == "office"


def test_bulk_hunts_route_as_the_compiled_plan_would(env):
    """Numbers without a plan are compiled in bulk (view._routing); each must
    route exactly as the same sequential plan compiled by the catalog's
    compiler, beside numbers that do have plans."""
    ops = env
    opened(ops)
    ops.set_routing(rid(), "4001234567", template="office", at_ms=T0)
    dests = {"4001234568": ["13700000002", "075512345678", "13700000003"], "4001234569": ["13700000002"],
             "4001234570": ["01087654321", "13900000000"]}
    ops.add_numbers(rid(), list(dests), at_ms=T0)
    for n, ds in dests.items():
        ops.lock_number(rid(), n, "acme", at_ms=T0)
        ops.submit_number(rid(), n, at_ms=T0)
        ops.activate_number(rid(), n, "Beijing", at_ms=T0)
        for d in ds:
            ops.bind_destination(rid(), n, d, at_ms=T0)
            ops.verify_destination(rid(), n, d, "BILL", at_ms=T0)
    bulk = {n: authorize(ops, n) for n in [*dests, "4001234567"]}
    for n, ds in dests.items():
        assert bulk[n].allow and [x.number for x in bulk[n].destinations] == ds
        assert all(x.ring_timeout_seconds == 15 for x in bulk[n].destinations)
    assert [x.number for x in bulk["4001234567"].destinations] == ["13700000001"]
    # The same hunts as plan documents, through the compiler.
    for n, ds in dests.items():
        ops.set_routing(rid(), n, plan={"groups": {"bound": {"destinations": [{"number": d} for d in ds]}},
                                        "rules": [{"group": "bound"}]}, at_ms=T0)
    for n in dests:
        compiled = authorize(ops, n)
        assert [(x.number, x.ring_timeout_seconds) for x in compiled.destinations] == \
            [(x.number, x.ring_timeout_seconds) for x in bulk[n].destinations]
        assert compiled.max_duration_seconds == bulk[n].max_duration_seconds
        assert compiled.caller_class == bulk[n].caller_class


def test_thresholds_alert_once_per_crossing_and_webhooks_retry(env):
    import http.server
    import json as _json
    import threading

    from rating_core.accounts.notify import deliver_webhooks

    got, fail = [], {"left": 1}

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if fail["left"]:
                fail["left"] -= 1
                self.send_response(500)
            else:
                got.append((self.headers["X-Rating400-Event"], _json.loads(body)))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ops = env
        opened(ops)  # 480 yuan of credit
        with pytest.raises(InvalidInput) as e:
            ops.set_notifications(rid(), "acme", webhook_url="ftp://x")
        assert e.value.field == "webhook_url"
        ops.set_notifications(rid(), "acme", credit_below_minor=100_0000,
                              webhook_url=f"http://127.0.0.1:{srv.server_port}/hook", at_ms=T0)
        assert ops.sweep(T0) == []  # 480 >= 100: nothing crossed
        ops.refund(rid(), "acme", 400_0000, "overpaid", at_ms=T0)  # 80 yuan left
        first = ops.sweep(T0 + 1)
        assert [(r["operation"], r["detail"]["alert"], r["detail"]["raised"]) for r in first] == \
            [("alert", "credit_low", True)]
        assert ops.sweep(T0 + 2) == []  # still low: not raised again
        ops.top_up(rid(), "acme", 600_0000, at_ms=T0 + 3)
        assert [r["detail"]["raised"] for r in ops.sweep(T0 + 4)] == [False]  # cleared
        assert deliver_webhooks(ops, backoff_s=0.01) == 3  # alert, top-up, cleared; the first POST failed once
        assert [b["operation"] for _, b in got] == ["alert", "top_up", "alert"]
        assert got[0][1]["detail"]["alert"] == "credit_low" and int(got[0][0]) == got[0][1]["seq"]
        assert deliver_webhooks(ops) == 0  # the cursor moved: nothing twice
    finally:
        srv.shutdown()


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1/hook", "http:///hook", "http://h:99999/", "http://h:0/",
                                 "http://h:x/", "http://u:pw@crm.example.com/", "ftp://x", "http://crm example/",
                                 "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://[fe80::1]/",
                                 "http://[::ffff:169.254.169.254]/", "http://0.0.0.0:80/", "http://crm.例子.cn/",
                                 "http://169.254.169.254./x", "http://169.254.169.254../x"])
def test_webhook_url_refused_when_set(env, url):
    opened(env)
    with pytest.raises(InvalidInput) as e:
        env.set_notifications(rid(), "acme", webhook_url=url)
    assert e.value.field == "webhook_url"
    assert env.get_account("acme")["account"]["webhook_url"] == ""


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://crm.example.com/hooks/400?t=ab%20c",
                                 "HTTP://[::1]:9/x", "http://10.1.2.3/h"])
def test_webhook_url_accepted(env, url):
    opened(env)
    env.set_notifications(rid(), "acme", webhook_url=url)
    assert env.get_account("acme")["account"]["webhook_url"] == url


def test_one_accounts_broken_webhook_never_holds_back_anothers(env):
    """acme's receiver works; beta's is a malformed URL stored before it was
    checked, then HTTP 500, then a receiver that does not answer. acme's
    events arrive every pass; beta's wait queued, in order, and arrive once
    its receiver answers."""
    import http.server
    import threading

    from rating_core.accounts.notify import Webhooks
    from rating_core.accounts.view import layer_dbs
    from rating_core.ledger import customers as C

    got: dict[str, list[int]] = {"acme": [], "beta": []}
    mode = {"beta": "500"}
    release = threading.Event()

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            who = self.path.strip("/")
            if who == "beta" and mode["beta"] == "hang":
                release.wait(30)
            if who == "beta" and mode["beta"] == "500":
                self.send_response(500)
            else:
                got[who].append(int(self.headers["X-Rating400-Event"]))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    ops = env
    hooks = Webhooks(ops, backoff_s=0.01)
    try:
        opened(ops, "acme")
        opened(ops, "beta", number="4001234568")
        ops.set_notifications(rid(), "acme", webhook_url=f"{base}/acme", at_ms=T0)
        dbs = layer_dbs(ops.env)
        with ops.ledger.durable() as txn:  # a URL stored before set_notifications checked it
            acc = C.decode(C.Account, txn.get(b"beta", db=dbs[C.ACCOUNTS_DB]))
            acc.webhook_url = "http://[::1"
            txn.put(b"beta", C.encode(acc), db=dbs[C.ACCOUNTS_DB])

        def top_up(account):
            return ops.top_up(rid(), account, 600_0000, at_ms=T0 + 1)["seq"]

        b1, a1 = top_up("beta"), top_up("acme")
        assert hooks.deliver() == 1 and got["acme"] == [a1] and got["beta"] == []
        assert "Invalid" in hooks.failing["beta"]

        ops.set_notifications(rid(), "beta", webhook_url=f"{base}/beta", at_ms=T0 + 2)  # answers 500
        b2, a2 = top_up("beta"), top_up("acme")
        assert hooks.deliver() == 1 and got["acme"] == [a1, a2] and got["beta"] == []
        assert "500" in hooks.failing["beta"]

        mode["beta"] = "hang"  # beta's job waits on its receiver; passes go on without it
        b3, a3 = top_up("beta"), top_up("acme")
        for _ in range(100):
            hooks.deliver(wait=False)
            if got["acme"] == [a1, a2, a3]:
                break
            release.wait(0.05)
        assert got["acme"] == [a1, a2, a3] and got["beta"] == [] and "beta" in hooks._running

        release.set()  # beta answers: its backlog arrives in order, once
        for _ in range(100):
            hooks.deliver(wait=False)
            if not hooks._running and not hooks.failing:
                break
            release.wait(0.05)
        hooks.deliver()
        assert got["beta"] == [b1, b2, b3] and got["acme"] == [a1, a2, a3]
        assert hooks.deliver() == 0
    finally:
        hooks.close()
        release.set()
        srv.shutdown()


NUMBER_PATH = ["available", "locked", "pending_verification", "active", "suspended", "frozen", "reclaimed", "cooling"]
NUMBER_ALLOWED = {"suspend": {"active"}, "restore": {"suspended", "frozen"}, "freeze": {"suspended"},
                  "reclaim": {"frozen"}, "cool": {"reclaimed"}, "release": {"cooling"}}


def _number_in(ops, state: str, number: str) -> None:
    ops.add_numbers(rid(), [number], at_ms=T0)
    steps = [lambda: ops.lock_number(rid(), number, "acme", at_ms=T0),
             lambda: ops.submit_number(rid(), number, at_ms=T0),
             lambda: ops.activate_number(rid(), number, "Shenzhen", at_ms=T0),
             lambda: ops.number_transition(rid(), number, "suspend", at_ms=T0),
             lambda: ops.number_transition(rid(), number, "freeze", at_ms=T0),
             lambda: ops.number_transition(rid(), number, "reclaim", at_ms=T0),
             lambda: ops.number_transition(rid(), number, "cool", at_ms=T0)]
    for step in steps[:NUMBER_PATH.index(state)]:
        step()
    assert ops.get_number(number)["state"] == state


def test_every_number_move_from_every_state(env):
    """Each number action from each inventory state: done exactly where the
    README's lifecycle table allows it, else refused ``wrong_state`` with
    nothing changed."""
    ops = env
    opened(ops)
    i = 0
    for state in NUMBER_PATH:
        for action, allowed in NUMBER_ALLOWED.items():
            number = f"40050{i:05d}"
            i += 1
            _number_in(ops, state, number)
            before = ops.get_number(number)
            if state in allowed:
                after = ops.number_transition(rid(), number, action, at_ms=T0)["number"]
                assert after["state"] != state and after["history"][-1][0] == after["state"]
            else:
                with pytest.raises(Refused) as e:
                    ops.number_transition(rid(), number, action, at_ms=T0)
                assert e.value.reason == "wrong_state", (state, action)
                assert ops.get_number(number) == before


ACCOUNT_ALLOWED = {"suspend": {"active"}, "restore": {"suspended", "frozen"}, "freeze": {"suspended"},
                   "reclaim": {"frozen"}}


def test_every_account_move_from_every_state(env):
    ops = env
    path = ["active", "suspended", "frozen", "closed"]
    moves = ["suspend", "freeze", "reclaim"]
    i = 0
    for state in path:
        for action, allowed in ACCOUNT_ALLOWED.items():
            account = f"acct{i}"
            opened(ops, account=account, number=f"40060{i:05d}")
            i += 1
            for move in moves[:path.index(state)]:
                ops.account_transition(rid(), account, move, at_ms=T0)
            assert ops.get_account(account)["account"]["status"] == state
            if state in allowed:
                ops.account_transition(rid(), account, action, at_ms=T0)
            else:
                with pytest.raises(Refused) as e:
                    ops.account_transition(rid(), account, action, at_ms=T0)
                assert e.value.reason == "wrong_state", (state, action)


def test_restore_refusals(env, clock):
    ops = env
    clock(LATER)  # the story runs into 2027/2028
    opened(ops)
    ops.account_transition(rid(), "acme", "suspend", at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.number_transition(rid(), "4001234567", "restore", at_ms=T0)
    assert e.value.reason == "account_not_active"
    ops.adjust(rid(), "acme", -480_0000, "drained", at_ms=T0)  # a refund is netted against unpaid minimums
    with pytest.raises(Refused) as e:
        ops.account_transition(rid(), "acme", "restore", at_ms=T0)
    assert e.value.reason == "out_of_credit"
    end = ops.get_account("acme")["account"]["period_end_ms"]
    ops.adjust(rid(), "acme", 10_0000, "goodwill", at_ms=T0)
    with pytest.raises(Refused) as e:
        ops.account_transition(rid(), "acme", "restore", at_ms=end)
    assert e.value.reason == "period_ended"
    assert ops.account_transition(rid(), "acme", "restore", at_ms=T0)["account"]["status"] == "active"


def test_home_city_jilin_is_the_city_jilin(env):
    """吉林 names both the province Jilin and its city Jilin (吉林市).
    ``--home-city`` asks for a city, so it is the city (a routing plan's
    bare 吉林 is the province); 吉林省 says it is a province."""
    ops = env
    opened(ops)
    # Any case, spaces around (newcomer: 'jilin' and '长春 ' were refused).
    for number, name in (("4001234568", "吉林"), ("4001234569", "吉林市"), ("4001234571", "jilin"),
                         ("4001234572", " JILIN ")):
        ops.add_numbers(rid(), [number], at_ms=T0)
        ops.lock_number(rid(), number, "acme", at_ms=T0)
        ops.submit_number(rid(), number, at_ms=T0)
        ops.activate_number(rid(), number, name, at_ms=T0)
        assert next(n for n in ops.get_account("acme")["numbers"] if n["number"] == number)["home_city"] == "Jilin"
    ops.add_numbers(rid(), ["4001234570"], at_ms=T0)
    ops.lock_number(rid(), "4001234570", "acme", at_ms=T0)
    ops.submit_number(rid(), "4001234570", at_ms=T0)
    with pytest.raises(InvalidInput) as e:
        ops.activate_number(rid(), "4001234570", "吉林省", at_ms=T0)
    assert e.value.field == "home_city" and "is a province (Jilin); give the city" in e.value.message, e.value


def test_a_home_city_typo_of_a_province_suggests_the_province(env):
    """'Guangdon' (广东 Guangdong, a letter short) was offered the city
    'GuangAn' (newcomer): provinces are candidates too, and the hint says a
    province needs one of its cities; pinyin with tone marks reads without
    them; a city typo still gets the city."""
    ops = env
    opened(ops)
    ops.add_numbers(rid(), ["4001234570"], at_ms=T0)
    ops.lock_number(rid(), "4001234570", "acme", at_ms=T0)
    ops.submit_number(rid(), "4001234570", at_ms=T0)
    for typo, hint in (("Guangdon", "did you mean the province 'Guangdong'? give the city"),
                       ("Guǎngdōng", "did you mean the province 'Guangdong'? give the city"),
                       ("广东省省", "did you mean the province 'Guangdong'? give the city"),
                       ("Guangzou", "did you mean 'Guangzhou'?"), ("Shenzen", "did you mean 'Shenzhen'?")):
        with pytest.raises(InvalidInput) as e:
            ops.activate_number(rid(), "4001234570", typo, at_ms=T0)
        assert e.value.field == "home_city" and hint in e.value.message, (typo, e.value.message)
        assert "GuangAn" not in e.value.message


def test_home_city_names_of_hainan_and_others_a_person_types(env):
    """Region data's city 'Hainan' is a prefecture of Qinghai (海南藏族自治州),
    while 海南 is the province, whose cities it calls Haikou and Haikou/Sanya:
    'Hainan' registered a Haikou company in Qinghai (every local caller out of
    town), and 'Sanya' / 三亚 were unknown (csvin reviewer). 'Hainan' now asks
    which is meant; the names a person types name their city."""
    ops = env
    opened(ops)
    numbers = iter(f"40012346{i:02d}" for i in range(10))

    def activate(name):
        number = next(numbers)
        ops.add_numbers(rid(), [number], at_ms=T0)
        ops.lock_number(rid(), number, "acme", at_ms=T0)
        ops.submit_number(rid(), number, at_ms=T0)
        ops.activate_number(rid(), number, name, at_ms=T0)
        return next(n for n in ops.get_account("acme")["numbers"] if n["number"] == number)["home_city"]

    with pytest.raises(InvalidInput) as e:
        activate("Hainan")
    assert e.value.field == "home_city" and e.value.message.endswith(
        "names the province Hainan and a city of Qinghai: give a city of the province (Haikou, Haikou/Sanya) "
        "or this one as 'Hainan, Qinghai'"), e.value.message
    for name, city in (("Hainan, Qinghai", "Hainan"), ("海南藏族自治州", "Hainan"), ("Sanya", "Haikou/Sanya"),
                       ("三亚", "Haikou/Sanya"), ("海口", "Haikou"), ("Luliang", "Lüliang"), ("Jilin", "Jilin")):
        assert activate(name) == city, name


def test_money_and_package_changes_dated_before_the_package_start_are_refused_naming_the_start(env, clock):
    """Breaker: a top-up dated before the package start was credited and on
    no statement; a change effective 1970 charged calls from before the
    contract. Both are refused, the start said; nothing is stored."""
    ops = env
    clock(T0)  # the story's now: November (a change dated into an ended month is refused)
    opened(ops)  # pre_480 from T0 - 1 day
    start = ops.get_account("acme")["account"]["package_start_ms"]
    credit = ops.balance("acme")["credit_minor"]
    for call in (lambda: ops.top_up(rid(), "acme", 600 * 10_000, at_ms=start - 1),
                 lambda: ops.adjust(rid(), "acme", 10_000, "goodwill", at_ms=start - 1),
                 lambda: ops.refund(rid(), "acme", 10_000, "overpaid", at_ms=start - 1),
                 lambda: ops.change_package(rid(), "acme", "payg", effective_ms=1, at_ms=T0),
                 lambda: ops.change_package(rid(), "acme", "payg", effective_ms=start - 1, at_ms=T0)):
        with pytest.raises(Refused) as e:
            call()
        assert e.value.reason == "before_package_start"
        assert "2026-11-01T10:00:00+08:00" in str(e.value)  # the start, local time
    assert ops.balance("acme")["credit_minor"] == credit
    assert ops.get_account("acme")["account"]["package"] == "pre_480"
    ops.top_up(rid(), "acme", 600 * 10_000, at_ms=start)  # at the start: in the period
    # A change at the start itself would run the period no time (breaker2 B6): refused, both dates said.
    with pytest.raises(Refused) as e:
        ops.change_package(rid(), "acme", "payg", effective_ms=start, at_ms=T0)
    assert e.value.reason == "at_package_start" and str(e.value).count("2026-11-01T10:00:00+08:00") == 2
    ops.change_package(rid(), "acme", "payg", effective_ms=start + 1, at_ms=T0)



def test_a_refund_pays_back_only_credit_that_existed_at_its_date(env):
    """Breaker 2 F7: a refund dated before the top-ups it paid back was
    checked against today's credit, so the ledger's history showed the
    account below zero until they came. A refund dated D pays back at most
    today's refundable credit less the top-ups and credit adjustments dated
    after D (README "Refunds")."""
    ops = env
    opened(ops)  # pre_480 from T0 - 1 day: 480 yuan of opening credit
    day = 86_400_000
    ops.top_up(rid(), "acme", 600_0000, at_ms=T0 + day)
    ops.adjust(rid(), "acme", -5_0000, "fee reversed", at_ms=T0 + 2 * day)  # a debit later changes nothing here
    with pytest.raises(Refused) as e:
        ops.refund(rid(), "acme", 480_0100, "overpaid", at_ms=T0)
    assert e.value.reason == "insufficient_credit"
    assert e.value.message == ("refundable credit on 2026-11-02T10:00:00+08:00 (credit now less 600.00 yuan of "
                               "top-ups and credit adjustments dated after it) is 475.00 yuan; cannot refund "
                               "480.01 yuan"), e.value.message
    with pytest.raises(Refused):
        ops.refund(rid(), "acme", 475_0100, "overpaid", at_ms=T0)
    ops.refund(rid(), "acme", 475_0000, "overpaid", at_ms=T0)
    # Dated after the top-up, its credit may go back too.
    ops.refund(rid(), "acme", 600_0000, "overpaid", at_ms=T0 + 3 * day)
    assert ops.balance("acme")["credit_minor"] == 0


def test_a_package_change_reaching_into_an_ended_month_is_refused(env):
    """Breaker N15: `change-package --effective 2026-10-01` on a day of
    December re-billed October (504.32 -> 603.32), a month whose statement
    was issued. An effective date in an ended month is refused
    `month_ended`; the month of the operation is open."""
    ops = env
    opened(ops)  # pre_480 from T0 - 1 day (1 November)
    start = ops.get_account("acme")["account"]["package_start_ms"]
    december = int(dt.datetime(2026, 12, 2, 10, 0, tzinfo=SH).timestamp() * 1000)
    with pytest.raises(Refused) as e:
        ops.change_package(rid(), "acme", "payg", effective_ms=start, at_ms=december)
    assert e.value.reason == "month_ended"
    assert "2026-12-01T00:00:00+08:00" in str(e.value) and "accounts adjust" in str(e.value)
    assert ops.get_account("acme")["account"]["package"] == "pre_480"
    first_of_december = int(dt.datetime(2026, 12, 1, tzinfo=SH).timestamp() * 1000)
    ops.change_package(rid(), "acme", "payg", effective_ms=first_of_december, at_ms=december)
    assert ops.get_account("acme")["account"]["package"] == "payg"
