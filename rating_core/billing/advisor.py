"""Package advisor: an account's calls priced under every package.

The calls of one account over a period are first rated as the rater
rates them (the snapshot's own terms: the account's package periods, its
package start, its numbers' states); the calls it rejects (e.g.
``package_not_started`` before the package start, ``number_not_active`` on
a suspended number) are never billed, so they are left out and counted by
reason (``Advice.left_out``). The billed calls are rated again by the
rating kernel (no second implementation) under each package of the
catalog: the account's row of the snapshot tables is pointed at that
package, with no start, no expiry, no package periods of a live view
(``accounts.view``: the kernel would price each call under the period in
force instead) and unlimited credit, so every call is priced the way the
kernel prices it (rates, tiers, increments, rounding, bundle months,
overage). Then the package's fixed terms are added. Rules (README,
"Package advisor"):

- every calendar month of the period costs max(call charges, monthly
  minimum) + rental (the advice is for a running package, so no
  first-month waiver);
- a prepaid package costs at least its fee spread over its period:
  fee x months / period_months, rounded up to the minor unit; charges
  beyond that mean renewing early, paid at the package's rates;
- add-on features cost the same under every package and are left out;
- a package that cannot price some of the calls (no rate for a
  destination class) is listed, not ranked.

Ranking is by total cost over the period (the same as by monthly cost).
``saving`` is against the account's current package. The break-even
volume is the calls per month at which a package costs the same as the
current one, with the account's own mix of calls scaled up or down (the
crossing nearest the observed volume).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .. import cdr, layout
from ..ledger.core import usage_table
from ..rater import rate_settling_late
from .statements import month_index

UNLIMITED_CREDIT = 1 << 60


@dataclass
class PackageCost:
    """One package's cost for the account's calls. Money: int64 minor units."""

    package: str
    name: str
    kind: str
    applicable: bool  # every call could be priced
    unpriced_calls: int
    usage: int  # call charges over the period
    fixed: int  # rentals + minimum top-ups + prepaid fee floor beyond usage
    total: int
    monthly: int  # total / months, rounded half up (for display)
    saving_monthly: int  # current package's monthly - this one's (> 0: cheaper)
    break_even_calls_per_month: int | None
    rank: int | None = None
    current: bool = False

    def as_dict(self) -> dict:
        return {
            "package": self.package, "name": self.name, "kind": self.kind, "applicable": self.applicable,
            "unpriced_calls": self.unpriced_calls, "usage_minor": self.usage, "fixed_minor": self.fixed,
            "total_minor": self.total, "monthly_minor": self.monthly, "saving_monthly_minor": self.saving_monthly,
            "break_even_calls_per_month": self.break_even_calls_per_month, "rank": self.rank,
            "current": self.current,
        }


@dataclass
class Advice:
    """``packages`` ranked cheapest first (inapplicable ones last).
    ``calls``: the billed calls priced; ``left_out``: the account's calls
    the rater rejects, by ``layout.RATE_STATUS`` reason (not priced)."""

    account: str
    current: str
    months: list[str]
    calls: int
    calls_per_month: float
    packages: list[PackageCost]
    left_out: dict[str, int]

    @property
    def best(self) -> PackageCost:
        return self.packages[0]

    def as_dict(self) -> dict:
        return {"account": self.account, "current": self.current, "months": self.months, "calls": self.calls,
                "calls_per_month": round(self.calls_per_month, 2),
                "left_out": self.left_out, "packages": [p.as_dict() for p in self.packages],
                "unit": "minor units: 1/10000 yuan"}


def _round_half_up(num: int, den: int) -> int:
    return (2 * num + den) // (2 * den)


class Advisor:
    """Prices an account's calls under every package of ``snapshot``."""

    def __init__(self, snapshot, threads: int = 1):
        self.snapshot = snapshot
        self.tables = snapshot.tables
        self.meta = snapshot.meta
        self.threads = threads
        self.days = cdr.calendar_range(self.tables)

    def prepare(self, table: pa.Table) -> cdr.Prepared:
        """CDR columns (raw or rated) through the edge, duplicates dropped."""
        return cdr.dedupe(cdr.prepare(table, self.days))

    def advise(self, account: str, table: pa.Table, months: list[int] | None = None) -> Advice:
        """``table``: the account's CDRs (raw or the rater's output; rows
        whose 400 number belongs to another account are ignored; those the
        rater rejects are counted in ``Advice.left_out``, not priced).
        ``months``: month indexes of the period (default: those the billed
        calls cover). Raises ValueError for an unknown account or no billed
        calls in the period."""
        ids = {a: i for i, a in enumerate(self.meta["accounts"])}
        if account not in ids:
            raise ValueError(f"account: unknown account {account!r}")
        acc = ids[account]
        prepared = self.prepare(table)
        good = np.flatnonzero(prepared.good)
        arrays = {k: np.ascontiguousarray(v[good]) for k, v in prepared.cdr.items()}
        # Keep the calls of this account's numbers.
        t = self.tables
        keys = t["number_key"]
        pos = np.searchsorted(keys, arrays["number_key"])
        pos[pos >= len(keys)] = 0
        mine = (keys[pos] == arrays["number_key"]) & (t["number_account"][pos] == acc)
        arrays = {k: np.ascontiguousarray(v[mine]) for k, v in arrays.items()}
        if len(arrays["start_ms"]) == 0:
            raise ValueError(f"account: no calls of {account!r} to advise on")
        if months is not None:
            keep = np.isin(month_index(arrays["start_ms"]), months)
            arrays = {k: np.ascontiguousarray(v[keep]) for k, v in arrays.items()}
        # The calls the rater bills: those it rates under the account's own terms.
        status = self._rate_under(acc, None, arrays)["status"]
        billed = status == 0
        reasons, counts = np.unique(status[~billed], return_counts=True)
        left_out = {layout.RATE_STATUS[int(r)]: int(c) for r, c in zip(reasons, counts)}
        arrays = {k: np.ascontiguousarray(v[billed]) for k, v in arrays.items()}
        n = len(arrays["start_ms"])
        if n == 0:
            if not left_out:  # newcomer N10: "the rater rejects them: none in the period" for no calls at all
                raise ValueError(f"account: no calls of {account!r} in the period to advise on")
            why = ", ".join(f"{c:,} {r}" for r, c in left_out.items())
            raise ValueError(f"account: no billed calls of {account!r} to advise on (the rater rejects them: {why})")
        call_months = month_index(arrays["start_ms"])
        if months is None:
            months = list(range(int(call_months.min()), int(call_months.max()) + 1))
        n_months = len(months)
        month_pos = np.searchsorted(np.array(sorted(months)), call_months)

        b = self.meta["billing"]
        names = self.meta.get("package_names") or self.meta["packages"]
        current = int(t["account_package"][acc])
        fee = b.get("package_fee")  # older snapshots: prepaid fee from the opening credit
        period = b.get("package_period_months")
        results = []
        curves = []
        for p, pid in enumerate(self.meta["packages"]):
            kind = layout.PACKAGE_KIND[t["package_kind"][p]]
            out = self._rate_under(acc, p, arrays)
            ok = out["status"] == 0
            charge = out["charge"].astype(np.int64)
            per_month = np.bincount(month_pos[ok], charge[ok], minlength=n_months).astype(np.int64)
            minimum = int(b["package_monthly_minimum"][p])
            rental = int(b["package_rental"][p])
            usage = int(per_month.sum())
            variable = int(np.maximum(per_month, minimum).sum())
            if kind == "prepaid" and fee is not None:
                floor = -(-int(fee[p]) * n_months // int(period[p]))  # rounded up
                variable = max(variable, floor)
            total = variable + rental * n_months
            results.append(PackageCost(
                package=pid, name=names[p], kind=kind, applicable=bool(ok.all()), unpriced_calls=int((~ok).sum()),
                usage=usage, fixed=total - usage, total=total, monthly=_round_half_up(total, n_months),
                saving_monthly=0, break_even_calls_per_month=None, current=p == current))
            curves.append(self._curve(kind, p, out, ok, n, n_months, minimum, rental,
                                      None if fee is None else (int(fee[p]), int(period[p]))))
        cur = results[current]
        volume = n / n_months
        grid = np.arange(0, max(10 * volume, 10_000) + 1, dtype=np.float64)
        cur_cost = curves[current](grid)
        for p, r in enumerate(results):
            r.saving_monthly = cur.monthly - r.monthly
            if p != current and r.applicable:
                r.break_even_calls_per_month = _crossing(grid, curves[p](grid) - cur_cost, volume)
        ranked = sorted(results, key=lambda r: (not r.applicable, r.total, r.package))
        for i, r in enumerate(ranked):
            r.rank = i + 1 if r.applicable else None
        return Advice(account, self.meta["packages"][current], [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in sorted(months)],
                      n, volume, ranked, left_out)

    def _rate_under(self, acc: int, p: int | None, arrays: dict) -> dict:
        """The kernel's output for the calls with account ``acc`` on package
        ``p``: started long ago, never expiring, no other package period,
        unlimited credit. ``p`` None: under the snapshot's own terms (its
        package periods, start and expiry), with unlimited credit."""
        tables = dict(self.tables)
        changes: tuple = () if p is None else (
            ("account_package", p), ("account_start_ms", np.iinfo(np.int64).min),
            ("account_expiry_ms", layout.NEVER),
            # A live view's periods: none, so the kernel reads the account row above.
            *((("account_period_count", 0),) if "account_period_count" in tables else ()))
        for name, value in changes:
            col = np.array(self.tables[name], copy=True)
            col[acc] = value
            tables[name] = col
        n_acc = len(self.meta["accounts"])
        state: dict[str, np.ndarray] = {"credit_left": np.full(n_acc, UNLIMITED_CREDIT, np.int64),
                 "bundle_period": np.full(n_acc, -1, np.int32), "bundle_used": np.zeros(n_acc, np.int64),
                 **usage_table()}
        # A late bundle call (answered before midnight, settled after one
        # answered past it) draws from its month's allowance, as rated.
        return rate_settling_late(tables, arrays, state, None, self.threads)

    def _curve(self, kind, p, out, ok, n, n_months, minimum, rental, prepaid):
        """Monthly cost as a function of calls per month (float, minor units),
        the observed mix scaled: for a bundle, billed seconds beyond the
        included ones at the overage price; otherwise the mean charge per call."""
        if kind == "bundle":
            seconds_per_call = out["billed_seconds"][ok].sum() / max(n, 1)
            included = float(self.tables["package_included_seconds"][p])
            # The overage rate's first tier, per 60 s (an estimate for the
            # curve: the exact overage of observed calls is the kernel's).
            r = int(self.tables["package_overage_rate"][p])
            price = 0.0
            if r >= 0:
                j = int(self.tables["rate_first_tier"][r])
                price = float(self.tables["tier_price"][j]) * 60 / float(self.tables["tier_unit"][j])

            def usage(x):
                return np.maximum(x * seconds_per_call - included, 0) * price / 60
        else:
            per_call = out["charge"][ok].sum() / max(n, 1)

            def usage(x):
                return x * per_call

        def cost(x):
            c = np.maximum(usage(x), minimum)
            if prepaid is not None and kind == "prepaid":
                c = np.maximum(c, prepaid[0] / prepaid[1])
            return c + rental
        return cost


def _crossing(grid: np.ndarray, diff: np.ndarray, volume: float) -> int | None:
    """The grid point (calls per month) where ``diff`` changes sign, nearest
    ``volume``; None when it never does."""
    where = np.flatnonzero(diff != 0)  # equal stretches are no crossing by themselves
    sign = np.sign(diff[where])
    change = np.flatnonzero(sign[1:] != sign[:-1])
    if len(change) == 0:
        return None
    points = grid[where[change + 1]]  # first point on the other side
    return int(points[np.argmin(np.abs(points - volume))])

