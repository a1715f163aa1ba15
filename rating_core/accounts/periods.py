"""An account's package periods and a number's states over time, from the
records the customer layer already keeps (each fact written once):

* package periods come from the audit log (``cust_events``): every account
  event after which the account has a package whose start or opening
  credit differs from the one before opened a period (``package_periods``).
  Monthly statements read the same periods (``billing.events.from_package_starts``).
* a number's states come from ``Number.history`` ((state, at ms), oldest
  first).

The live view (``accounts.view``) lays both out as plain arrays for the
rating kernel, which rates each CDR under the period and number state in
force at its start (README "Late CDRs"). ``period_at`` and ``state_at``
are the readable forms of the kernel's search, for tests.

Times are epoch ms; credit in minor units (1/10000 yuan).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..ledger import customers as C


@dataclass(frozen=True, slots=True)
class Period:
    """A package period: ``package`` from ``start_ms`` (the next period's
    start ends it); ``until_ms`` its prepaid credit expiry (``C.NEVER_MS``
    none); ``opening_credit_minor`` the credit it opened with, of which
    ``carried_minor`` was carried from the period before, of which
    ``carried_after_minor`` is money dated at or after ``start_ms`` recorded
    before the period (a change applied late: the statement shows it as the
    new period's own); ``from_package`` the package before ("" for the first)."""

    account: str
    start_ms: int
    package: str
    from_package: str
    opening_credit_minor: int
    carried_minor: int
    until_ms: int
    carried_after_minor: int = 0


def package_periods(events: Iterable[Mapping]) -> list[Period]:
    """The periods the audit ``events`` (dicts of ``C.Event`` fields, in the
    order they were recorded) opened: every account event (not a number's)
    after which the account has a package whose start differs from the one
    before (import, subscribe, renew, change_package, a pending change the
    sweep applied), or whose opening credit differs (a second renewal at the
    same instant: the fee again, carried on top of the first's)."""
    out = []
    for e in events:
        after, before = e.get("after") or {}, e.get("before") or {}
        if e.get("number") or not after.get("package"):
            continue
        start = int(after.get("package_start_ms", 0))
        # Only ``Accounts._start_period`` moves the start or the opening
        # credit: an event that moved neither opened no period.
        if (before.get("package") == after["package"] and int(before.get("package_start_ms", -1)) == start
                and int(before.get("opening_credit_minor", -1)) == int(after.get("opening_credit_minor", 0))):
            continue
        out.append(Period(e["account"], start, after["package"], before.get("package") or "",
                          int(after.get("opening_credit_minor", 0)),
                          int((e.get("detail") or {}).get("carried_minor", 0)),
                          int(after.get("period_end_ms", C.NEVER_MS)),
                          int((e.get("detail") or {}).get("carried_after_change_minor", 0))))
    return out


def in_force(periods: Iterable[Period], current: C.Account | None = None) -> list[Period]:
    """The periods that ever applied, ascending by start: taken in the order
    they were recorded, a period replaces every earlier-recorded one that
    starts at or after it (a back-dated change overrides what it covers).
    ``current`` (the account record) is authoritative for the last period:
    if the log disagrees, the record's period replaces the log's from its
    start."""
    kept: list[Period] = []
    for p in periods:
        kept = [q for q in kept if q.start_ms < p.start_ms]  # stays ascending
        kept.append(p)
    if current is not None and current.package:
        last = kept[-1] if kept else None
        if last is None or last.start_ms != current.package_start_ms or last.package != current.package:
            kept = [q for q in kept if q.start_ms < current.package_start_ms]
            kept.append(Period(current.id, current.package_start_ms, current.package,
                               kept[-1].package if kept else "", current.opening_credit_minor, 0,
                               current.period_end_ms))
    return kept


def period_at(periods: list[Period], at_ms: int) -> Period | None:
    """The period in force at ``at_ms`` (``in_force`` periods): the last
    one starting at or before it; None before the first."""
    i = bisect.bisect_right([p.start_ms for p in periods], at_ms)
    return periods[i - 1] if i else None


SINCE_EVER = -(1 << 63)  # the time of a number's first state (int64 min)


def held_history(history: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """A number's states over time for its current holding, ascending by
    time, the first one holding since ever (``SINCE_EVER``):

    * only the entries from the last one in which no account held it
      (available, reclaimed, cooling) count, so a former holder's states
      never count for the current one;
    * a **first holder's** number (no account held it before: imported, or
      taken from the inventory for the first time): the entries before its
      first ``active`` one are dropped and that one holds since ever. The
      steps before service opens (inventory, lock, real-name review) are
      dated when the operator recorded them, which for a migrated platform
      is after the calls it bills, so a call before the first activation is
      judged by the package period alone (as before history was kept). An
      imported number's one entry is its state since ever; a number never
      active keeps its states (refused);
    * a **recycled** number (another account held it before): nothing is
      since ever but the free state it was taken from; the current holder's
      states count from their dates (lock, review, activation), so a late
      call made before it took the number -- the former holder's call -- or
      before its activation is refused, never charged to the new holder;
    * taken in the order recorded, an entry replaces every earlier-recorded
      one at or after its time (a back-dated transition overrides what it
      covers).
    """
    last_free = 0
    for i, (state, _at) in enumerate(history):
        if state not in C.HELD_STATES:
            last_free = i
    held = history[last_free:]
    recycled = any(state in C.HELD_STATES for state, _at in history[:last_free])
    first_active = 0 if recycled else next((i for i, (state, _at) in enumerate(held) if state == "active"), 0)
    kept: list[tuple[str, int]] = []
    for i, (state, at) in enumerate(held[first_active:]):
        at = SINCE_EVER if i == 0 else at
        kept = [e for e in kept if e[1] < at]  # stays ascending
        kept.append((state, at))
    return kept


def state_at(history: list[tuple[str, int]], at_ms: int) -> str:
    """The number's state at ``at_ms`` (``held_history`` entries, which
    start ``SINCE_EVER``): the last entry at or before it."""
    i = bisect.bisect_right([at for _s, at in history], at_ms)
    return history[i - 1][0]
