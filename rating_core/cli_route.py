"""``rating400 route NUMBER CALLER [--at TIME]``: the routing decision for
one call, for an operator checking a plan. Reads the ledger (live calls,
cursors, caller memory, balances); writes nothing."""
from __future__ import annotations

import datetime as dt
import json
import re

import click

from . import cdr, layout

SHANGHAI = layout.LOCAL_TZ


# Epoch ms from 2001-09-09 to 2286 has 13 digits; the engine's range
# (``cdr.MIN_TIME_MS`` .. ``MAX_TIME_MS``, 1970..2200) in fewer digits is
# 1970..2001, never a time an operator means. An 8-digit value is a compact
# date (20261201, ISO 8601's basic form) that was read as 1970 (breaker N11 F3).
EPOCH_MS_DIGITS = 13


def parse_time(text: str | None, option: str = "--at") -> int | None:
    """ISO 8601 extended calendar date and time (local Asia/Shanghai time
    when no offset is given) or epoch milliseconds (13 ASCII digits) ->
    epoch ms, within the edge's time range (``cdr.MIN_TIME_MS`` ..
    ``MAX_TIME_MS``); None: now. Raises click.BadParameter naming
    ``option`` for anything else: other scripts' digits (``str.isdigit``
    takes '²' and '١'); an all-digit value of other than 13 digits (a
    compact date 20261201 is not read as 1970, it is refused with the
    way to write it); an ISO week date (2026-W48-1), which the help's
    forms do not include."""
    if text is None:
        return None
    t = text.strip()
    if re.fullmatch(r"-?[0-9]+", t, re.ASCII):
        digits = t.lstrip("-")
        if len(digits) != EPOCH_MS_DIGITS or t.startswith("-"):
            hint = ""
            if len(t) == 8:
                try:
                    hint = f"write {dt.date(int(t[:4]), int(t[4:6]), int(t[6:]))}; "
                except ValueError:
                    pass
            raise click.BadParameter(
                f"{text}: not a time: {hint or 'a date is written YYYY-MM-DD (2026-12-01), a time 2026-12-01T10:00; '}"
                f"epoch ms has {EPOCH_MS_DIGITS} digits", param_hint=option)
        ms = int(t)
    else:
        try:
            if re.search(r"[Ww]", t):  # an ISO week date: fromisoformat reads 2026-W48-1
                raise ValueError
            when = dt.datetime.fromisoformat(t)
        except ValueError:
            raise click.BadParameter(f"{text!r}: use ISO 8601 (2026-03-04T10:00, local time) or epoch ms",
                                     param_hint=option) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=SHANGHAI)
        ms = (when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)
    if not cdr.MIN_TIME_MS <= ms < cdr.MAX_TIME_MS:
        raise click.BadParameter(f"{text!r}: {cdr.REASONS[cdr.TIME_OUT_OF_RANGE]}", param_hint=option)
    return ms


# What an operator does about a suspended account, by its suspension reason
# (``Account.suspend_reason``; README "Accounts and numbers", the states).
SUSPENDED_REMEDY = {
    "expired": "its prepaid package period ended: renew it (rating400 accounts renew {account})",
    # Only a prepaid account is suspended for arrears (the sweep: credit at 0;
    # a postpaid one is held by its credit limit, an out_of_credit deny), and
    # only a top-up restores it: a bill payment is never call credit
    # (newcomer N11 F14: the line offered "the customer's payment of a
    # postpaid bill").
    # {pay}: the least top-up that restores it (``restore_payment``; newcomer
    # LOW F5: the line said "at least the platform's minimum" and no figure).
    "arrears": ("its prepaid credit ran out: a top-up of at least {pay} yuan ({why_pay}: rating400 accounts "
                "top-up {account} {pay}) restores it{until}; a bill payment (accounts pay) does not, as it is "
                "never call credit"),
    "arrears_postpaid": ("its bill is unpaid: a payment of {pay} yuan ({why_pay}: rating400 accounts top-up "
                         "{account} {pay}) restores it{until}"),
    "manual": "suspended by an operator: rating400 accounts restore {account}",
}


def _credit_of(store, ledger, account: str) -> int:
    """The committed credit (1/10000 yuan) of ``account`` now (``accounts
    balance``); 0 when it has no package."""
    from .accounts.operations import Accounts
    from .errors import Refused

    try:
        return int(Accounts(store, ledger).balance(account)["credit_minor"])
    except Refused:
        return 0


def restore_payment(meta: dict, package: str, credit_minor: int) -> tuple[int, str]:
    """What restores an account suspended for arrears (``Accounts.top_up``
    and ``_maybe_restore``, README "Accounts and numbers"): (the least
    top-up, 1/10000 yuan in whole fen; what that figure is). Prepaid: the
    catalog's top-up minimum, max(``top_up_min``, ``top_up_min_months`` x
    the package's ``monthly_minimum``) (600.00 yuan by default), or more
    when the credit is below 0 (it must end above 0). Postpaid (an
    operator's ``suspend --reason arrears``): the bill, what brings the
    credit (``credit_minor``) back to 0, at least 0.01 yuan."""
    from .accounts.operations import top_up_minimum
    from .catalog.schema import CustomerRules
    from .money import MINOR_UNITS_PER_YUAN, exact_yuan

    fen = MINOR_UNITS_PER_YUAN // 100
    pkg = meta.get("package_rules", {}).get(package, {})
    if pkg.get("kind") in layout.POSTPAID_KINDS:
        return max(fen, -(credit_minor // fen) * fen), "the bill owed, bringing the credit back to 0"
    rules = CustomerRules.model_construct(**meta.get("customer_rules", {}))
    minimum = top_up_minimum(rules, pkg.get("monthly_minimum", 0))
    minimum = -(-minimum // fen) * fen  # a top-up is whole fen
    above_zero = -((credit_minor - 1) // fen) * fen  # the least whole-fen top-up leaving credit >= 1 minor unit
    if above_zero > minimum:
        return above_zero, "what brings the credit above 0"
    return minimum, (f"the top-up minimum: the larger of {exact_yuan(int(rules.top_up_min))} yuan and "
                     f"{rules.top_up_min_months} months of the package's monthly minimum")


def suspension_detail(env, number: str, at_ms: int | None = None, meta: dict | None = None,
                      credit_of=None) -> str | None:
    """The ``why:`` of an ``account_suspended`` deny: the account of
    ``number`` (its customer-layer record in ``env``), its state, the
    reason and since when (Asia/Shanghai), and what to do (newcomer N10-2
    finding 9: the line said nothing while ``out_of_credit`` had a why);
    None when the customer layer holds no such number or account. The
    state is the live one: for an ``at_ms`` (epoch ms) before the
    suspension the sentence says so (newcomer N11 F13: asked of 11-15, it
    answered "suspended since 12-01"). With the catalog's ``meta`` (and
    ``credit_of``, an account id -> its committed credit, 1/10000 yuan), an
    arrears suspension names the amount that restores it and until when
    (``restore_payment``, ``restore_months``)."""
    from .accounts.view import layer_dbs
    from .ledger import customers as C

    dbs = layer_dbs(env)
    with env.begin() as txn:
        raw = txn.get(number.encode(), db=dbs[C.NUMBERS_DB])
        owner = C.decode(C.Number, raw).account if raw is not None else ""
        raw = txn.get(owner.encode(), db=dbs[C.ACCOUNTS_DB]) if owner else None
    if raw is None:
        return None
    acc = C.decode(C.Account, raw)
    since = (f" since {dt.datetime.fromtimestamp(acc.suspended_ms / 1000, SHANGHAI):%Y-%m-%d %H:%M}"
             if acc.suspended_ms else "")
    why = f" ({acc.suspend_reason})" if acc.suspend_reason else ""
    reason = acc.suspend_reason if acc.suspend_reason in SUSPENDED_REMEDY else "manual"
    fill = {"account": acc.id, "pay": "YUAN", "why_pay": "at least the platform's minimum", "until": ""}
    if reason == "arrears" and meta is not None:
        from .accounts.operations import add_months_ms
        from .catalog.schema import CustomerRules
        from .money import exact_yuan

        pay, fill["why_pay"] = restore_payment(meta, acc.package, credit_of(acc.id) if credit_of else 0)
        fill["pay"] = exact_yuan(pay)
        if meta.get("package_rules", {}).get(acc.package, {}).get("kind") in layout.POSTPAID_KINDS:
            reason = "arrears_postpaid"
        months = int(CustomerRules.model_construct(**meta.get("customer_rules", {})).restore_months)
        if acc.suspended_ms:
            closes = dt.datetime.fromtimestamp(add_months_ms(acc.suspended_ms, months) / 1000, SHANGHAI)
            fill["until"] = f" before {closes:%Y-%m-%d %H:%M} (then the sweep freezes it)"
    remedy = (f"rating400 accounts restore {acc.id}" if acc.status == "frozen"
              else SUSPENDED_REMEDY[reason].format(**fill))
    now = (" (its state now: route answers from the live state, not as of --at)"
           if at_ms is not None and acc.suspended_ms and at_ms < acc.suspended_ms else "")
    return f"account {acc.id} is {acc.status}{why}{since}{now}: {remedy}"


def render(number: str, caller: str, at_ms: int, d, why: str | None = None) -> list[str]:
    when = dt.datetime.fromtimestamp(at_ms / 1000, SHANGHAI).isoformat(timespec="seconds")
    lines = [f"{number} <- {caller or 'withheld'} at {when} (catalog v{d.catalog_version})"]
    where = ", ".join(x for x in (d.caller_city, d.caller_province, d.caller_carrier) if x) or "unknown region"
    lines.append(f"caller: {where} ({d.caller_class})")
    if d.plan is not None:
        # Counted from 1, as `rating400 explain` counts rate rules (Decision.rule is the 0-based index).
        rule = f"rule {d.rule + 1}" if d.rule is not None else "ivr key"
        lines.append(f"plan: {d.plan}" + (f", {rule} -> group {d.group}" if d.group else ""))
    if not d.allow:
        from .router import deny_detail

        lines.append(f"DENY {d.reason}" + (f"  (announcement: {d.announcement})" if d.announcement else ""))
        why = why or deny_detail(d)
        if why:
            lines.append(f"why: {why}")
        return lines
    from .router import CALL_SECONDS_LIMIT, QUOTA_SECONDS, grant_detail

    if d.ivr_menu is not None and not d.destinations:
        limit = "the duration limit is set once a key is pressed (route with --keys)"
    else:
        # What this query shows is what the account (or the number's spend
        # cap) allows; a switch's Authorize (with a call id) reserves at most
        # one quota of it at a time. No call is granted more than a day.
        # What a switch's Authorize grants is this limit when below a quota
        # (newcomer8 F16: "credit allows 240 s; a switch's Authorize grants
        # 3600 s at a time" while gRPC granted 240 s), else one quota.
        allows = grant_detail(d) or f"any length (a call is at most {CALL_SECONDS_LIMIT} s)"
        granted = d.max_duration_seconds
        if d.limit == "quota":  # grant_detail said it
            limit = allows
        elif 0 < granted < QUOTA_SECONDS:
            limit = (f"{allows}; a switch's Authorize grants {granted} s (at most {QUOTA_SECONDS} s at a time, "
                     "extended by interim events)")
        else:
            limit = f"{allows}; a switch's Authorize grants at most {QUOTA_SECONDS} s at a time, extended by interim events"
    lines.append(f"ALLOW  billing starts at {d.billing_start}; {limit}")
    if d.ivr_menu is not None:
        lines.append(f"ivr menu: {d.ivr_menu.get('prompt', '')}")
        for o in d.ivr_menu["options"]:
            lines.append(f"  [{o['key']}] {o['label']}" + (" -> submenu" if "menu" in o else f" -> group {o['group']}"))
    for i, dest in enumerate(d.destinations, 1):
        lines.append(f"  {i}. {dest.number}  ring {dest.ring_timeout_seconds} s")
    return lines


@click.command("route")
@click.argument("number")
@click.argument("caller")
@click.option("--at", "at", help="Call time: ISO 8601 (local time unless an offset is given) or epoch ms; default now.")
@click.option("--keys", "ivr_keys", default="", help="IVR keys pressed so far, e.g. 21.")
@click.option("--store", "store_dir", envvar="RATING400_STORE", required=True,
              type=click.Path(file_okay=False), help="Catalog store directory (env RATING400_STORE).")
@click.option("--version", "version", type=int, help="Catalog version (default: the active one).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def route_command(number, caller, at, ivr_keys, store_dir, version, as_json):
    """Print the routing decision for a call to NUMBER from CALLER."""
    from .accounts.view import open_view
    from .cli import user_errors  # the CLI's one way of reporting operator errors
    from .router import Router
    from .store import Ledger, Store

    from .cdr import check_route

    at_ms = parse_time(at)
    with user_errors():
        check_route(number, caller, ivr_keys)  # an operator's typo is exit 2, not a DENY
        store = Store(store_dir, create=False)
        ledger = Ledger(store_dir)
        view = open_view(store, ledger.env, version)  # with the customer layer's live numbers
        snapshot = getattr(view, "base", view)
        try:
            asked = at_ms
            if at_ms is None:
                at_ms = int(dt.datetime.now(SHANGHAI).timestamp() * 1000)
            decision = Router(view, ledger).authorize(number, caller, at_ms, ivr_keys=ivr_keys)
            why = (suspension_detail(ledger.env, number, asked, snapshot.meta,
                                     lambda account: _credit_of(store, ledger, account))
                   if decision.reason == "account_suspended" else None)
        finally:
            ledger.close()
            snapshot.close()  # the Router and its views are gone: the decision holds plain values
    if as_json:
        from .router import decision_detail

        click.echo(json.dumps({**decision.as_dict(), "detail": why or decision_detail(decision)}, ensure_ascii=False,
                              indent=2))
    else:
        click.echo("\n".join(render(number, caller, int(at_ms), decision, why)))
    if not decision.allow:
        raise SystemExit(1)
