"""Money as people write it: yuan in plain decimal -> minor units.

The one parser of a yuan amount written by a person (catalog prices and
fees, `rating400 accounts` amounts, `bill --events` amounts). Minor units
are 1/10000 yuan (``MINOR_UNITS_PER_YUAN``); an amount is exact or refused,
never rounded.

No leading zero before more digits (``012``, ``00.5``): an amount typed so
is most likely ``0.12`` without its point (bc6d3cf: 100 times the price), or
a code pasted into the wrong field; a finance clerk keying a top-up or a
tariff never writes one for ``12``, and a bank form or an invoice never
shows one. Refused in every place a person writes money (the catalog, quoted
or not, ``rating400 accounts``, ``bill --events``) rather than read as 12:
retyping costs a second, a wrong top-up or price a correction on the bill.

Why text, not ``Decimal`` arithmetic: ``Decimal(text) * 10000`` runs in the
default 28-digit context and rounds, so ``599.99999999999999999999999999999``
became exactly 6,000,000 minor units and passed both the "finer than
1/10000 yuan" check and a 600-yuan minimum (breaker). Plain decimal writing
only: ``Decimal`` also takes ``1_000``, exponents, ``NaN``, ``Infinity`` and
other scripts' digits (``１２``), which a person typing an amount never means.
"""
from __future__ import annotations

import re

from . import MINOR_UNITS_PER_YUAN

_PLAIN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_DECIMALS = len(str(MINOR_UNITS_PER_YUAN)) - 1  # 4

# The largest amount one operation (a top-up, an adjustment, a refund, an
# events-file amount) may move: 10^15 minor units, 10^11 yuan, beyond any
# 400 account's real money; balances are bounded alike (accounts.operations
# MAX_BALANCE_MINOR), so every sum the ledger and the kernels form keeps 3
# decimal orders of headroom in an int64 (9.2 * 10^18).
MAX_AMOUNT_MINOR = 10**15
# The largest amount any parse accepts when the caller names no bound.
MAX_YUAN_MINOR = 10**18


class AmountTooLarge(ValueError):
    """An amount above the bound the caller named (``parse_yuan``'s
    ``most_minor``); a caller that says more about its bound (the CLI's
    "per operation") catches this type, not the message text."""


def not_plain_decimal(text: str) -> str | None:
    """None when ``text`` (str, already stripped) is a number written as
    people write an amount, a duration or a count: digits, optionally a
    point and more digits, optionally a leading ``-``; else why not, for a
    message. Refused: a leading zero before more digits (``012``, ``00.5``:
    see the module's docstring), ``+`` (``+0.15``), a point without digits
    on both sides (``.5``, ``1.``), a negative zero (``-0``, ``-0.00``),
    exponents, ``_``, other scripts' digits. The one spelling of a number a
    person types: ``parse_yuan`` and the catalog's YAML numbers
    (``catalog.yamldoc``) both ask here."""
    m = _PLAIN.fullmatch(text)
    if m is None:
        if text.startswith("+"):
            return "no + sign: write 0.15, not +0.15"
        if text.lstrip("-").startswith(".") or text.endswith("."):
            return "a digit on both sides of the point: write 0.5 or 1, not .5 or 1."
        if any(c.isdigit() and not c.isascii() for c in text):  # ５ (full width), ٣: named, not "digits"
            return "digits in ASCII (0-9), not full-width or other scripts' digits, e.g. 12 or 0.12"
        return "digits and at most one point, e.g. 12 or 0.12"
    if len(m[2]) > 1 and m[2][0] == "0":
        return "a leading zero before more digits: write 12 or 0.12, whichever is meant"
    if m[1] == "-" and not (m[2] + (m[3] or "")).strip("0"):
        return "a negative zero: write 0"
    return None


def parse_yuan(value: object, *, signed: bool = False, most_minor: int | None = None) -> int:
    """Yuan written in plain decimal (``12``, ``0.12``, ``-3.5`` when
    ``signed``; at most 4 decimals, trailing zeros aside) -> minor units
    (int, 1/10000 yuan), exactly. A YAML number comes as its ``str``
    (``0.12``). ``most_minor``: the largest magnitude allowed, in minor
    units (default ``MAX_YUAN_MINOR``, 10^14 yuan). Raises ValueError with a message for a
    person: not an amount, finer than 1/10000 yuan, negative when not
    ``signed``; AmountTooLarge (a ValueError) when above ``most_minor``."""
    if isinstance(value, bool):
        raise ValueError("money must be a number of yuan, not a boolean")
    text = str(value).strip()
    m, why = _PLAIN.fullmatch(text), not_plain_decimal(text)
    if m is None or why is not None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"not an amount of yuan: {shown!r} ({why})")
    sign, whole, frac = m[1], m[2].lstrip("0"), (m[3] or "").rstrip("0")
    if len(frac) > _DECIMALS:
        raise ValueError(f"{text} yuan is finer than 1/{MINOR_UNITS_PER_YUAN} yuan")
    most = MAX_YUAN_MINOR if most_minor is None else most_minor
    if len(whole) > len(str(most)):  # before int(): a thousand-digit amount is refused, not converted
        raise AmountTooLarge(f"{text[:40]} yuan is too large (at most {most // MINOR_UNITS_PER_YUAN} yuan)")
    minor = int(whole or "0") * MINOR_UNITS_PER_YUAN + int(frac.ljust(_DECIMALS, "0"))
    if minor > most:
        raise AmountTooLarge(f"{text} yuan is too large (at most {most // MINOR_UNITS_PER_YUAN} yuan)")
    if sign == "-":
        if not signed and minor:
            raise ValueError("money cannot be negative")
        minor = -minor
    return minor


def exact_yuan(minor: int) -> str:
    """``minor`` (int, 1/10000 yuan) as yuan with 2 decimals (``50.00``), or
    with all 4 when 2 would round it (``50.0001``): a figure people read
    that never hides a fraction of a fen."""
    whole, frac = divmod(abs(int(minor)), MINOR_UNITS_PER_YUAN)
    digits = f"{frac:0{_DECIMALS}d}"
    return f"{'-' if minor < 0 else ''}{whole}.{digits[:2] if digits.endswith('00') else digits}"


def in_yuan(minor: int) -> str:
    """An amount of money as a message says it: ``exact_yuan`` and the unit
    (``50.00 yuan``, ``50.0001 yuan``), so a message never shows two
    different amounts as one figure ("cannot refund 50.00 yuan; refundable
    is 50.00 yuan")."""
    return f"{exact_yuan(minor)} yuan"
