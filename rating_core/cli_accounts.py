"""``rating400 accounts ...``: customer operations from the shell, the same
``rating_core.accounts.Accounts`` API the gRPC AccountService uses.

Every changing command takes ``--request-id`` (default: a fresh one; give
your own to make a retry safe), ``--actor`` (default ``$USER``) and ``--at``
(the effective time, ISO 8601 local time or epoch ms; default now), and
prints the operation's result as JSON. Amounts are written in yuan (at most
4 decimals). In the JSON every exact ``*_minor`` amount (1/10000 yuan) has a
``*_yuan`` reading beside it: yuan with 2 decimals, half up, as a string (for
people; programs keep the exact field), and a time that never comes (an
account without a package period) is ``null``. Exit status: 0 done (or replayed), 1 refused (``refused:
REASON: why`` on stderr), 2 bad input or unknown record.
"""
from __future__ import annotations

import functools
import json
import os
import re
import uuid
from pathlib import Path

import click

from .cli_route import parse_time
from .cli_types import IntRange

STORE = click.option("--store", "store_dir", envvar="RATING400_STORE", required=True,
                     type=click.Path(file_okay=False), help="Catalog store directory (env RATING400_STORE).")


def _yuan(text: str, param: str, signed: bool = False, setting: bool = False, cash: str = "") -> int:
    """Yuan (at most 4 decimals) -> minor units (``money.parse_yuan``, the
    one parser); BadParameter (exit 2) naming ``param`` when not a plain
    amount, finer than 1/10000 yuan, above the bound, or (not ``signed``)
    not more than 0. ``setting``: a threshold or cap, 0 (off) or more,
    whole fen too when ``cash`` names it (a credit threshold),
    never below (breaker N11 F18: `--spend -5` was refused naming
    spend_minor in minor units). ``cash`` (a payment, a refund): whole fen
    too, named as typed (newcomer N14 F11: `refund acme 0.001` named
    amount_minor, a field the CLI user never typed)."""
    from .money import MAX_AMOUNT_MINOR, AmountTooLarge, parse_yuan

    try:
        minor = parse_yuan(text, signed=signed or setting, most_minor=MAX_AMOUNT_MINOR)
    except AmountTooLarge as e:
        raise click.BadParameter(str(e) if setting else f"{e} (per operation)", param_hint=param) from None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=param) from None
    if setting and minor < 0:
        raise click.BadParameter(f"{text.strip()}: must be 0 (off) or more yuan", param_hint=param)
    if not signed and not setting and minor <= 0:
        raise click.BadParameter(f"{text.strip()}: must be more than 0", param_hint=param)
    if cash and minor % 100:
        raise click.BadParameter(f"{text.strip()}: {cash} is whole fen (0.01 yuan)"
                                 + ("" if setting else ": cash is never finer"), param_hint=param)
    return minor


def operation(fn):
    """Common options of a changing command; runs it with an open
    ``Accounts`` and prints its result."""
    @STORE
    @click.option("--request-id", default=None, help="Idempotency key (default: a new one).")
    @click.option("--actor", default=lambda: os.environ.get("USER", "operator"), help="Who asks (audited).")
    @click.option("--at", default=None, help="Effective time (ISO 8601, local time; or epoch ms). Default now.")
    @functools.wraps(fn)
    def wrapper(store_dir, request_id, actor, at, **kwargs):
        # Only an id not given is made up: an empty one (an unset shell
        # variable) is refused, or a retry would top up twice.
        common = {"request_id": f"cli-{uuid.uuid4()}" if request_id is None else request_id, "actor": actor,
                  "at_ms": parse_time(at)}
        run(store_dir, lambda ops: fn(ops, common, **kwargs))
    return wrapper


def run(store_dir, body) -> None:
    from .accounts import Accounts
    from .cli import UserError, user_errors
    from .errors import NotFound, Refused

    with user_errors():
        ops = Accounts.open(store_dir)
        try:
            result = body(ops)
        except NotFound as e:
            from .accounts.view import layer_in_use

            hint = ""
            if e.message.startswith("no account") and not layer_in_use(ops.ledger.env):
                hint = ("; this store's accounts are still the catalog's: make them live with "
                        "`rating400 accounts import CATALOG --store DIR`")
            raise UserError(str(e) + hint) from None
        except Refused as e:
            click.echo(f"refused: {e.reason}: {e.message}", err=True)
            raise SystemExit(1) from None
        finally:
            ops.ledger.close()
    click.echo(json.dumps(with_yuan(result), ensure_ascii=False, indent=2))
    # An operation that succeeded with something to fix (a routing plan's
    # destinations not bound yet) also says so where a person looks.
    for warning in ((result.get("detail") or {}).get("warnings") or []) if isinstance(result, dict) else []:
        click.echo(f"warning: {warning}", err=True)


def with_yuan(value):
    """``value`` (JSON-shaped) with ``K_yuan`` (``rater.yuan``: 2 decimals,
    half up) placed after every integer ``K_minor``, every ``K_ms`` that
    holds the ledger's "never" (int64 max) as None, and ``K_local`` after
    every ``K_ms``: the instant in Asia/Shanghai local time, ISO 8601 with
    milliseconds and offset (``2026-11-15T00:00:00.000+08:00``; None for
    never and for 0, which the ledger writes for "none"); the ms fields stay
    as they are, so scripts keep reading them."""
    from .ledger.customers import NEVER_MS
    from .rater import yuan

    if isinstance(value, list):
        return [with_yuan(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        out[k] = None if isinstance(k, str) and k.endswith("_ms") and v == NEVER_MS else with_yuan(v)
        if isinstance(k, str) and k.endswith("_minor") and isinstance(v, int) and not isinstance(v, bool):
            out[k[:-len("_minor")] + "_yuan"] = yuan(v)
        if isinstance(k, str) and k.endswith("_ms") and isinstance(v, int) and not isinstance(v, bool):
            out[k[:-len("_ms")] + "_local"] = local_iso(v)
    return out


def local_iso(ms: int) -> str | None:
    """Epoch ms -> Asia/Shanghai ISO 8601 (``YYYY-MM-DDTHH:MM:SS.mmm+08:00``);
    None for 0 and for the ledger's "never" (int64 max), and for an instant
    outside years 1..9999."""
    import datetime as dt

    from . import layout
    from .ledger.customers import NEVER_MS

    if ms in (0, NEVER_MS):
        return None
    try:
        t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)
    except OverflowError:
        return None
    return t.astimezone(layout.LOCAL_TZ).isoformat(timespec="milliseconds")


@click.group("accounts")
def accounts_command():
    """Customer operations: accounts, numbers, destinations, credit, lifecycle."""


@accounts_command.command("import")
@click.argument("catalog", type=click.Path(exists=True, dir_okay=False))
@STORE
@click.option("--billing-from", "billing_from", default=None, metavar="YYYY-MM-01",
              help="The cut-over: the first month this ledger bills the imported accounts (Asia/Shanghai; "
                   "YYYY-MM-DD, the 1st of a month). Default: the month of the import. Months before it were "
                   "billed by the old platform: none of their fees or unpaid balances are owed here.")
def import_(catalog, store_dir, billing_from):
    """Move CATALOG's YAML/CSV accounts into the customer layer (idempotent)."""
    from .accounts.importer import import_catalog

    cut = None if billing_from is None else cut_over_ms(billing_from)
    run(store_dir, lambda ops: import_catalog(ops, catalog, billing_from_ms=cut))


def cut_over_ms(text: str, hint: str = "--billing-from") -> int:
    """A cut-over YYYY-MM-DD (ASCII digits; the 1st of a month, Asia/Shanghai; ``hint``:
    the option or argument it came from) -> its local midnight in epoch ms;
    BadParameter (exit 2) when it is not a date, not a month's first day,
    outside the edge's time range (``cdr.MIN_TIME_MS`` .. ``MAX_TIME_MS``),
    or later than the month after the current one
    (``accounts.importer.cut_over_too_late``, the accounts' clock)."""
    import datetime as dt

    from . import cdr, layout

    try:
        # Only YYYY-MM-DD in ASCII digits, as ``parse_time`` and rerate's days:
        # ``date.fromisoformat`` also reads 20261101 and 2026-W49-2 (breaker N11 F3).
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
            raise ValueError
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=hint) from None
    if day.day != 1:
        raise click.BadParameter(f"{day} is not the 1st of a month: a statement month is billed whole, so the "
                                 f"cut-over is a month's first day (e.g. {day.replace(day=1)})",
                                 param_hint=hint)
    ms = int(dt.datetime(day.year, day.month, 1, tzinfo=layout.LOCAL_TZ).timestamp() * 1000)
    if not cdr.MIN_TIME_MS <= ms < cdr.MAX_TIME_MS:
        raise click.BadParameter(f"{day} is outside 1970-01-01 .. 2200-01-01", param_hint=hint)
    from .accounts.importer import cut_over_too_late

    if late := cut_over_too_late(ms):
        raise click.BadParameter(late, param_hint=hint)
    return ms


@accounts_command.command("billing-from")
@click.argument("account")
@click.argument("month", metavar="YYYY-MM-01")
@operation
def billing_from(ops, common, account, month):
    """Set an imported account's cut-over: the first month (YYYY-MM-01, Asia/Shanghai) this ledger bills it
    (README "Accounts and numbers": the migration's cut-over). A stored one moves later only over months not
    ended yet (refused would_write_off, exit 1), never before the package's first month
    (before_package_start); moved earlier, a warning names the ended months now billed here."""
    return ops.set_billing_from(account=account, billing_from_ms=cut_over_ms(month, "YYYY-MM-01"), **common)


@accounts_command.command("open")
@click.argument("account")
@click.option("--company", required=True, help="The enterprise's registered name.")
@operation
def open_(ops, common, account, company):
    """Open an enterprise account."""
    return ops.open_account(account=account, company=company, **common)


@accounts_command.command("documents")
@click.argument("account")
@click.option("--doc", "docs", multiple=True, required=True, metavar="KIND=REFERENCE",
              help="business_licence, legal_representative_id, authorisation_letter or other = archive id.")
@operation
def documents(ops, common, account, docs):
    """Record real-name documents; the review becomes pending."""
    pairs = []
    for d in docs:
        kind, sep, ref = d.partition("=")
        if not sep:
            raise click.BadParameter(f"{d!r}: KIND=REFERENCE", param_hint="--doc")
        pairs.append((kind.strip(), ref.strip()))
    return ops.submit_documents(account=account, documents=pairs, **common)


@accounts_command.command("review")
@click.argument("account")
@click.option("--approve/--reject", required=True)
@click.option("--note", default="", help="Why (required to reject).")
@operation
def review(ops, common, account, approve, note):
    """The real-name review's verdict."""
    return ops.review_realname(account=account, approve=approve, note=note, **common)


@accounts_command.command("subscribe")
@click.argument("account")
@click.argument("package")
@click.option("--start", default=None, help="Package start (ISO 8601, local time; or epoch ms). "
              "Default: the effective time.")
@operation
def subscribe(ops, common, account, package, start):
    """Subscribe an account to its first package."""
    return ops.subscribe(account=account, package=package, start_ms=parse_time(start, "--start"), **common)


@accounts_command.command("renew")
@click.argument("account")
@operation
def renew(ops, common, account):
    """Renew a prepaid package from the effective time (--at: after the current period's start, else
    refused before_package_start / at_package_start)."""
    return ops.renew(account=account, **common)


@accounts_command.command("change-package")
@click.argument("account")
@click.argument("package")
@click.option("--effective", default=None, help="When the new package takes effect (ISO 8601, local time; or epoch ms). "
              "Default: the operation's --at time, which is now unless given.")
@operation
def change_package(ops, common, account, package, effective):
    """Change package (see README for credit, bundle and minimum rules). --effective is after the current
    period's start (before it: before_package_start; at it: at_package_start, the period would run no time)."""
    return ops.change_package(account=account, package=package, effective_ms=parse_time(effective, "--effective"),
                              **common)


class PositiveAmount(click.Command):
    """A command whose YUAN must be more than 0 (top-up, pay, refund). Click
    reads a negative amount (``-600``) as an unknown option ("No such option
    '-6'"); it is refused naming the amount and the commands that take money
    off instead (newcomer N10); a refund, itself money taken off, is told
    how to write its amount and where a debit goes (newcomer N13 F1: its
    hint pointed at `accounts refund`). A value of an option (``--at
    -1000``) is not an amount. A ``--`` just before an amount is dropped,
    as ``SignedAmount`` takes it (newcomer 12-02 F15: `top-up ACCOUNT -- -5
    --store DIR` said "Missing option '--store'", the ``--`` having made
    the options after it positional): this command's options after a
    ``--`` are read as options (``_options_first``), so ``-- -5`` is told
    what ``-5`` is, and ``-- +5``, ``-- 5e2``, ``-- ５`` what they are (they
    said "Missing option '--store'"). The commands are offered only for a
    negative amount whose magnitude is one (`-0` offered `refund ACCOUNT
    0`, itself refused; `-５` said "No such option"): else its error is the
    amount's own."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {o for p in self.params if isinstance(p, click.Option) and not p.is_flag for o in p.opts}
        args = _options_first(self, ctx, args)
        positional = False
        for i, arg in enumerate(args):
            if arg == "--" and not positional:
                positional = True
            elif _negative_word(arg) and (positional or not (i and args[i - 1] in takes_value)):
                _refuse_negative(ctx, arg)
        return super().parse_args(ctx, args)


def _options_first(cmd: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with ``cmd``'s options written after the first ``--`` (and
    the value each takes) moved before it: ``--`` is typed to make a
    negative amount a word, and the options after it (``--store DIR``)
    are still meant as options; every other word stays after the ``--``."""
    if "--" not in args:
        return args
    at = args.index("--")
    takes = {o: not p.is_flag for p in cmd.get_params(ctx) if isinstance(p, click.Option)
             for o in (*p.opts, *p.secondary_opts)}
    options: list[str] = []
    words: list[str] = []
    rest = iter(args[at + 1:])
    for arg in rest:
        name = arg.split("=", 1)[0]
        if name not in takes:
            words.append(arg)
            continue
        options.append(arg)
        if takes[name] and "=" not in arg:
            value = next(rest, None)
            if value is not None:
                options.append(value)
    return [*args[:at], *options, "--", *words]


def _negative_word(arg: str) -> bool:
    """``arg`` starts like a negative amount (``-5``, ``-0``, ``-.5``,
    ``-５``, ``-5e2``, ``-`` alone): a ``-`` then neither another ``-`` nor a
    letter, so never an option (``-x``, ``--store``)."""
    return arg[:1] == "-" and arg[1:2] != "-" and not arg[1:2].isalpha()


def _refuse_negative(ctx: click.Context, arg: str):
    """BadParameter for a negative YUAN ``arg`` of a command whose amount is
    more than 0 (``PositiveAmount``): the commands that take money off, with
    ``arg``'s magnitude, when that is an amount more than 0; ``-0`` and
    ``-0.00`` only that the amount must be more than 0; a word that is no
    amount (``-５``, ``-5e2``), why not, as ``money.parse_yuan`` says it."""
    from .money import AmountTooLarge, parse_yuan

    try:
        positive = parse_yuan(arg[1:]) > 0
    except AmountTooLarge:  # no command takes it either
        positive = False
    except ValueError:
        try:
            parse_yuan(arg, signed=True)
        except ValueError as e:
            raise click.BadParameter(str(e), ctx=ctx, param_hint="YUAN") from None
        positive = False
    if not positive:
        raise click.BadParameter(f"{arg}: the amount must be more than 0", ctx=ctx, param_hint="YUAN")
    yuan = arg[1:]
    debit = f"`rating400 accounts adjust ACCOUNT {arg} --reason TEXT` (a debit of the credit)"
    reverse = f"`rating400 accounts pay ACCOUNT {yuan} --reverse --reason TEXT` (a bill payment taken back)"
    if ctx.info_name == "refund":
        why = (f"a refund is the credit paid back to the customer, written as a positive amount: "
               f"`rating400 accounts refund ACCOUNT {yuan} --reason TEXT`; a debit that pays nobody "
               f"is {debit}, and {reverse}")
    else:
        why = (f"to take money off an account use `rating400 accounts refund ACCOUNT {yuan} --reason "
               f"TEXT` (credit paid back), {debit} or {reverse}")
    raise click.BadParameter(f"{arg}: the amount must be more than 0; {why}", ctx=ctx, param_hint="YUAN")


@accounts_command.command("top-up", cls=PositiveAmount)
@click.argument("account")
@click.argument("yuan")
@operation
def top_up(ops, common, account, yuan):
    """Add prepaid credit, or record a payment of a pay-as-you-go or bundle
    account's bill (YUAN, e.g. 600 or 1234.50, whole fen; README "Money rules")."""
    return ops.top_up(account=account, amount_minor=_yuan(yuan, "YUAN", cash="a top-up"), **common)


@accounts_command.command("pay", cls=PositiveAmount)
@click.argument("account")
@click.argument("yuan")
@click.option("--reverse", is_flag=True, help="Take back YUAN of the bill payments no statement applied "
              "(a mistyped payment: 4000 keyed for 40.00); needs --reason. Shown as a negative payment.")
@click.option("--reason", default="", help="Why a payment is reversed (required with --reverse; audited).")
@click.option("--reopen", is_flag=True, help="With --reverse: a payment that bounced after bills applied it; "
              "take back what the bills applied too, and those bills are unpaid again. Dated in the current "
              "month (--at of an ended month is refused).")
@operation
def pay(ops, common, account, yuan, reverse, reason, reopen):
    """Record a prepaid account's payment of its bills (YUAN, any amount; never
    call credit; README "Money rules"). A postpaid account's payment is top-up.
    With --reverse --reason TEXT: take back YUAN of bill payments that no
    statement applied to a bill, from the --at month to now; with --reopen
    too, of the bill payments made up to --at, re-opening the bills they paid."""
    if reopen and not reverse:
        raise click.BadParameter("only with --reverse (a bounced payment taken back)", param_hint="--reopen")
    if reverse:
        if not reason.strip():  # named as typed (newcomer N12 F4: "reason: required")
            raise click.BadParameter("required with --reverse: why the payment is taken back (audited)",
                                     param_hint="--reason")
        return ops.reverse_payment(account=account, amount_minor=_yuan(yuan, "YUAN", cash="a payment"), reason=reason,
                                   reopen=reopen,
                                   **common)
    if reason:
        raise click.BadParameter("only with --reverse (a payment needs no reason)", param_hint="--reason")
    return ops.pay(account=account, amount_minor=_yuan(yuan, "YUAN", cash="a payment"), **common)


class SignedAmount(click.Command):
    """A command whose YUAN may be negative (adjust). Click reads ``-12.5``
    as an unknown option ("No such option '-1'"), and after ``--`` every
    word, options too, as positional ("Missing option '--reason'"): a
    negative amount (not the value of an option) is moved behind a ``--``
    at the end, so ``adjust ACCOUNT -12.5 --reason X`` and ``adjust ACCOUNT
    -- -12.5 --reason X`` both work (breaker N11 F11, newcomer N11 F11);
    its options after a ``--`` are options (``_options_first``), so ``--
    +5 --reason X`` and ``-- -５ --reason X`` are told what the amount is."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {o for p in self.params if isinstance(p, click.Option) and not p.is_flag for o in p.opts}
        args = _options_first(self, ctx, args)
        rest: list[str] = []
        amounts: list[str] = []
        for i, arg in enumerate(args):
            after_value = i and args[i - 1] in takes_value and args[i - 1] != "--"
            if arg == "--" and i + 1 < len(args) and _negative_word(args[i + 1]):
                continue
            if _negative_word(arg) and not after_value:
                amounts.append(arg)
            else:
                rest.append(arg)
        return super().parse_args(ctx, rest + ["--"] + amounts if amounts else rest)


@accounts_command.command("adjust", cls=SignedAmount)
@click.argument("account")
@click.argument("yuan")
@click.option("--reason", required=True)
@operation
def adjust(ops, common, account, yuan, reason):
    """Manual credit (YUAN > 0) or debit (YUAN < 0) with a reason, e.g.
    `rating400 accounts adjust ACCOUNT -12.5 --reason "X" --store DIR`. A
    pay-as-you-go or bundle account's bounced top-up is taken back so: the
    part its bills applied re-opens them (dated in the current month)."""
    return ops.adjust(account=account, amount_minor=_yuan(yuan, "YUAN", signed=True), reason=reason, **common)


@accounts_command.command("refund", cls=PositiveAmount)
@click.argument("account")
@click.argument("yuan")
@click.option("--reason", required=True, help="Why the credit is paid back (required; audited, and the "
              "statement's note).")
@operation
def refund(ops, common, account, yuan, reason):
    """Pay credit above zero back to the enterprise (YUAN > 0, whole fen: cash
    paid out; any package kind; README "Money rules"), e.g.
    `rating400 accounts refund ACCOUNT 100 --reason "overpaid" --store DIR`."""
    return ops.refund(account=account, amount_minor=_yuan(yuan, "YUAN", cash="a refund"), reason=reason, **common)


def _account_move(action):
    @click.argument("account")
    @click.option("--reason", default="", help="Recorded in the audit log.")
    @operation
    def cmd(ops, common, account, reason):
        return ops.account_transition(account=account, action=action, reason=reason, **common)
    cmd.__doc__ = f"{action.capitalize()} an account (README: lifecycle)."
    return accounts_command.command(action)(cmd)


for _action in ("suspend", "restore", "freeze", "reclaim"):
    _account_move(_action)


@accounts_command.command("notify")
@click.argument("account")
@click.option("--credit-below", default="0", help="Alert when available credit falls below (yuan, whole fen; 0 off).")
@click.option("--expiry-days", default=0, help="Alert when the prepaid period ends within N days (0 off).")
@click.option("--webhook", default="", help="http(s) URL the account's notifications are POSTed to.")
@click.option("--credit-below-days", default=0, type=IntRange(0, 3650),
              help="Alert when available credit covers fewer than N days of typical use (0 off).")
@operation
def notify(ops, common, account, credit_below, expiry_days, webhook, credit_below_days):
    """Notification thresholds (raised once per crossing by the sweep) and webhook.

    Sets all of them at once: an option not given is off (a webhook not
    given is removed, and its waiting events with it), so repeat the ones to
    keep. `accounts show ACCOUNT` prints the current ones."""
    return ops.set_notifications(account=account, credit_below_minor=_yuan(credit_below, "--credit-below", setting=True,
                                                                            cash="a credit threshold"),
                                 expiry_within_days=expiry_days, webhook_url=webhook,
                                 credit_below_days=credit_below_days, **common)


@accounts_command.command("bind")
@click.argument("number")
@click.argument("destination")
@operation
def bind(ops, common, number, destination):
    """Bind DESTINATION to NUMBER (routed once verified)."""
    return ops.bind_destination(number=number, destination=destination, **common)


@accounts_command.command("verify-destination")
@click.argument("number")
@click.argument("destination")
@click.option("--proof", required=True, help="The phone bill's archive reference.")
@operation
def verify_destination(ops, common, number, destination, proof):
    """Record a bound phone's real-name proof; it is routed from now on."""
    return ops.verify_destination(number=number, destination=destination, proof=proof, **common)


@accounts_command.command("unbind")
@click.argument("number")
@click.argument("destination")
@operation
def unbind(ops, common, number, destination):
    """Unbind DESTINATION from NUMBER."""
    return ops.unbind_destination(number=number, destination=destination, **common)


@accounts_command.command("sweep")
@STORE
@click.option("--at", default=None, help="Apply what is due at this time (ISO 8601, local time; or epoch ms). "
              "Default now.")
def sweep(store_dir, at):
    """Apply the time-driven transitions due (arrears, freeze, reclaim, cooling, package changes)."""
    run(store_dir, lambda ops: [{k: r[k] for k in ("operation", "request_id", "account", "number")}
                                for r in ops.sweep(parse_time(at))])


@accounts_command.command("show")
@click.argument("account")
@STORE
def show(account, store_dir):
    """The account, its numbers and its balance."""
    run(store_dir, lambda ops: ops.get_account(account))


@accounts_command.command("balance")
@click.argument("account")
@STORE
def balance(account, store_dir):
    """Credit (minor units, 1/10000 yuan) and bundle use (seconds), the
    ledger's; and ``statements``: what the account's statements say this
    month (as `bill --ledger`; ``billing.sources.statement_position``:
    unpaid, closing credit and the bill payments carried to later bills,
    which `pay --reverse` may take back), since the ledger never debits
    rental and feature fees (newcomer N11 F10: a bundle account read 99.00
    of credit while its statements said it owed 198.00)."""
    from .billing.sources import statement_position

    def body(ops):
        result = ops.balance(account)
        result["statements"] = statement_position(ops, account) if result.get("package") else None
        return result

    run(store_dir, body)


@accounts_command.command("events")
@click.argument("account")
@STORE
@click.option("--from", "from_", default=None, help="From (inclusive; ISO 8601, local time; or epoch ms).")
@click.option("--to", default=None, help="To (exclusive; ISO 8601, local time; or epoch ms).")
@click.option("--limit", type=IntRange(1, 100_000), default=1000, show_default=True,
              help="The most events listed (the oldest first).")
@click.option("--after-seq", type=IntRange(0, (1 << 63) - 1), default=0,
              help="Start after the event of this seq (the last one a page listed; its note says so).")
def events(account, store_dir, from_, to, limit, after_seq):
    """The account's audit log in a time range, in effective-time order."""
    from .cli import err

    lo, hi = parse_time(from_, "--from"), parse_time(to, "--to")
    if lo is not None and hi is not None and lo >= hi:  # breaker N12 F15: answered [] without a word
        raise click.BadParameter(f"{from_} is not before --to {to} (--from is inclusive, --to exclusive)",
                                 param_hint="--from")

    def listed(ops):
        from .errors import InvalidInput

        try:
            found = ops.events(account, lo or 0, hi if hi is not None else (1 << 63) - 1, after_seq=after_seq,
                               limit=limit + 1)
        except InvalidInput as e:
            if e.field != "after_seq":
                raise
            raise click.BadParameter(e.message, param_hint="--after-seq") from None  # named as typed
        if len(found) > limit:  # more than shown: say so, never a silent cut (acctB's N13 note)
            # By the last event shown, not by time: events share a millisecond (an account's
            # suspend writes two), and `--from MS` listed them again (newcomer 12-02 F8).
            last, at = found[limit - 1]["seq"], int(found[limit]["at_ms"])
            again = " ".join(a for a in (f"--from {from_}" if from_ else "", f"--to {to}" if to else "") if a)
            err.print(f"note: the first {limit} event(s) shown; more follow, from {local_iso(at)}: the next page is "
                      f"--after-seq {last} (the last shown){' with ' + again if again else ''}, or a larger --limit",
                      highlight=False, markup=False)
        return found[:limit]

    run(store_dir, listed)


@accounts_command.command("list")
@STORE
@click.option("--status", "statuses", multiple=True, metavar="STATUS[,STATUS...]",
              help="Only accounts in these statuses (active, suspended, frozen, closed); repeat the option "
                   "or separate with commas. Default: all.")
@click.option("--package", default=None, help="Only accounts subscribed to this catalog package.")
@click.option("--after", default="", metavar="ACCOUNT",
              help="Start after this account id (the last one a page listed; an id no account has lists "
                   "the ones after it in id order).")
@click.option("--limit", type=IntRange(1, 1000), default=100, show_default=True,
              help="The most accounts listed.")
def list_accounts(store_dir, statuses, package, after, limit):
    """The accounts in id order with their status, suspend reason, package
    and credit (``credit_minor`` / ``available_minor``, 1/10000 yuan, with
    their ``*_yuan`` readings; null without a package), e.g.
    `rating400 accounts list --status suspended,frozen --store DIR`. A page
    that stops short of the last account says so on stderr, naming the
    `--after` of the next one."""
    from .cli import err
    from .errors import InvalidInput

    def listed(ops):
        try:
            found = ops.list_accounts(list(statuses) or None, package, after, limit)
        except InvalidInput as e:
            if e.field not in ("status", "package", "after"):
                raise
            raise click.BadParameter(e.message, param_hint=f"--{e.field}") from None  # named as typed
        # A full page: one more row read after it tells whether more follow (never a silent cut).
        if len(found) == limit and ops.list_accounts(list(statuses) or None, package, found[-1]["id"], 1):
            err.print(f"note: the first {limit} account(s) shown; more follow: the next page is "
                      f"--after {found[-1]['id']} (the last shown), or a larger --limit",
                      highlight=False, markup=False)
        elif not found and not after:
            from .accounts.view import layer_in_use

            if not layer_in_use(ops.ledger.env):
                err.print("note: no live accounts: this store's accounts are still the catalog's: make them live "
                          "with `rating400 accounts import CATALOG --store DIR`", highlight=False, markup=False)
        return [_null_yuan(row) for row in found]

    run(store_dir, listed)


def _null_yuan(row: dict) -> dict:
    """``row`` with a null ``K_yuan`` after each null ``K_minor`` (``with_yuan``
    adds a reading beside integers only), so every listed row has the same
    keys: an account without a package has null credit, and null yuan."""
    out = {}
    for k, v in row.items():
        out[k] = v
        if k.endswith("_minor") and v is None:
            out[k[:-len("_minor")] + "_yuan"] = None
    return out


@accounts_command.group("number")
def number_group():
    """The 400-number inventory."""


@number_group.command("add")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--grade", default=None, help="Grade (default: by the catalog's grade patterns).")
@operation
def number_add(ops, common, numbers, grade):
    """Take NUMBERS into the inventory as available."""
    return ops.add_numbers(numbers=list(numbers), grade=grade, **common)


@number_group.command("search")
@click.argument("pattern", default="*")
@STORE
@click.option("--grade", default=None)
@click.option("--state", default="available", show_default=True)
@click.option("--limit", default=50, show_default=True)
def number_search(pattern, store_dir, grade, state, limit):
    """Numbers matching PATTERN (400?888*; digits alone match anywhere)."""
    run(store_dir, lambda ops: ops.search_numbers(pattern, grade, state, limit))


@number_group.command("show")
@click.argument("number")
@STORE
def number_show(number, store_dir):
    """A number's record and history."""
    run(store_dir, lambda ops: ops.get_number(number))


@number_group.command("lock")
@click.argument("number")
@click.argument("account")
@operation
def number_lock(ops, common, number, account):
    """Hold NUMBER for ACCOUNT (chosen and paid)."""
    return ops.lock_number(number=number, account=account, **common)


@number_group.command("submit")
@click.argument("number")
@operation
def number_submit(ops, common, number):
    """Real-name material submitted: locked -> pending verification."""
    return ops.submit_number(number=number, **common)


@number_group.command("activate")
@click.argument("number")
@click.option("--home-city", required=True, help="Registered city (region data name or alias, e.g. Shenzhen, 深圳, city:Shenzhen).")
@click.option("--billing-start", default="agent_answer", show_default=True,
              type=click.Choice(["ring", "ivr_answer", "agent_answer"]))
@operation
def number_activate(ops, common, number, home_city, billing_start):
    """Open the service: pending verification -> active."""
    return ops.activate_number(number=number, home_city=home_city, billing_start=billing_start, **common)


@number_group.command("routing")
@click.argument("number")
@click.option("--template", default=None, help="A catalog routing-plan template.")
@click.option("--plan", "plan_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="A plan document (YAML or JSON, the catalog's routing-plan form).")
@operation
def number_routing(ops, common, number, template, plan_file):
    """Set NUMBER's routing plan (neither option: hunt over the bound destinations)."""
    plan = None
    if plan_file:
        plan = _plan_document(Path(plan_file))
    return ops.set_routing(number=number, template=template, plan=plan, **common)


def _plan_document(path: Path):
    """A routing-plan file (YAML or JSON) read as the catalog reads its
    document (``catalog.yamldoc.read_file``: UTF-8, at most
    ``yamldoc.MAX_BYTES``, strict, a key written twice refused).
    ``InvalidInput`` (field ``plan``, naming the file) for a file that
    cannot be read, bytes that are not UTF-8 or YAML that does not read."""
    from .catalog import yamldoc
    from .errors import InvalidInput

    doc, _root, problems = yamldoc.read_file(path, "plan")
    if problems:
        raise InvalidInput("plan", "; ".join(problems))
    return doc


@number_group.command("caps")
@click.argument("number")
@click.option("--spend", default="0", help="Monthly spend cap in yuan (0: none).")
@click.option("--calls", default=0, help="Monthly call cap (0: none).")
@operation
def number_caps(ops, common, number, spend, calls):
    """Per-number monthly caps, enforced at authorization."""
    return ops.set_caps(number=number, spend_minor=_yuan(spend, "--spend", setting=True), calls=calls, **common)


def _number_move(action):
    @click.argument("number")
    @click.option("--reason", default="")
    @operation
    def cmd(ops, common, number, reason):
        return ops.number_transition(number=number, action=action, reason=reason, **common)
    cmd.__doc__ = f"{action.capitalize()} one number (README: lifecycle)."
    return number_group.command(action)(cmd)


for _action in ("suspend", "restore", "freeze", "reclaim", "cool", "release"):
    _number_move(_action)
