"""Monthly fees in force: which catalog version prices a month's fees and
sets its bundle allowance.

A call keeps the charge it was rated with (stored with the call). A month's
rental, monthly minimum and feature fees are not stored per month: they
are read from a catalog when the statements are built. Read from the active
catalog, a price rise published today re-billed October and November at the
new price (breaker N12 F16: bundle_1000's rental 99 -> 199 added 200.00 to
two ended, issued months, and moved every refund and reversal bound built
on them). So a month's fees are those of the catalog version in force at
the month's first instant (Asia/Shanghai), ``Store.in_force``: a version
activated on 15 December prices January on, the way a tariff change takes
effect from the next billing cycle (次月生效), and a month once ended keeps
its price whatever is activated later. A bundle's included minutes are a
term of the package like its rental: the month's allowance is the same
version's too (newcomer N14 F2: a version raising bundle_1000 to 2000
minutes, activated today, showed October, ended, as "2000 included, 1000
minutes left" beside 3841.40 of overage rated under 1000).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import StoreError
from .statements import month_bounds


@dataclass(frozen=True)
class Fees:
    """One catalog version's monthly terms, by name: ``rental`` and
    ``minimum`` (package id -> 1/10000 yuan a month), ``features`` (feature id
    -> its catalog spec: ``fee`` in 1/10000 yuan, ``per``, ``name``),
    ``included`` (package id -> bundle seconds included a month; 0 for a
    package that is no bundle)."""
    rental: dict[str, int]
    minimum: dict[str, int]
    features: dict[str, dict]
    included: dict[str, int]


def fees_of(snapshot) -> Fees:
    """The monthly terms of ``snapshot`` (a catalog version or the live view on one)."""
    b = snapshot.meta["billing"]
    packages = snapshot.meta["packages"]
    return Fees(dict(zip(packages, (int(x) for x in b["package_rental"]))),
                dict(zip(packages, (int(x) for x in b["package_monthly_minimum"]))), dict(b["features"]),
                dict(zip(packages, (int(x) for x in snapshot.tables["package_included_seconds"].tolist()))))


class MonthlyFees:
    """The fees each month is billed at and its bundle allowance, for
    ``build_statements(fees=...)``.

    ``store``: the ``Store`` whose dated activations say which version was
    in force; ``snapshot``: the one billing (its fees price what an older
    version lacks: a package or feature added since). ``of(m)`` (a month
    index) answers None when the month is priced by ``snapshot`` itself. A
    month before the store's first activation (a migrated account's months
    before the store existed) is priced by the first version activated. An
    older version that can no longer be opened (compiled by another layout)
    prices nothing: the snapshot's fees apply."""

    def __init__(self, store, snapshot):
        self._store = store
        self._current = snapshot.version
        self._fees = fees_of(snapshot)
        self._cache: dict[int, Fees | None] = {}
        dated = store.activations()
        self._first = dated[0][1] if dated else None

    def of(self, m: int) -> Fees | None:
        version = self._store.in_force(month_bounds(m)[2])
        if version is None:
            version = self._first
        if version is None or version == self._current:
            return None
        if version not in self._cache:
            try:
                old = fees_of(self._store.open(version))
            except StoreError:
                self._cache[version] = None
            else:
                self._cache[version] = Fees({**self._fees.rental, **old.rental}, {**self._fees.minimum, **old.minimum},
                                            {**self._fees.features, **old.features},
                                            {**self._fees.included, **old.included})
        return self._cache[version]
