"""The accounts' clock, for tests whose story runs ahead of the real date.

An operation may be dated at most ``operations.AHEAD_MS`` after now (README
"Money rules"): a test that tops up in 2027 first sets now there (the
``clock`` fixture of conftest.py, or ``clock_at`` around a module's setup).
"""
from unittest import mock

from rating_core.accounts import operations


def clock_at(ms: int):
    """A patcher (context manager, or ``start``/``stop``): the accounts'
    now (``operations.now_ms``, epoch ms) is ``ms`` while it is on."""
    return mock.patch.object(operations, "now_ms", lambda: ms)


# The operations refused in an ended month (``month_ended``) unless the
# caller opts in with ``allow_ended_months=True``.
_DATED = frozenset({"renew", "change_package"})


def when_dated(ops):
    """``ops`` (an ``Accounts``) whose ``renew`` and ``change_package`` are
    made when they are dated: the accounts' now is the call's ``at_ms`` (epoch
    ms) while it runs. A story told in a month that has ended (a change on
    2026-11-15, the real date in December) so keeps its figures: the API
    refuses a renewal or a package change dated into an ended month
    (``month_ended``), as the CLI and gRPC do. A call without ``at_ms``, and
    every other operation, runs as it is."""
    return _WhenDated(ops)


class _WhenDated:
    def __init__(self, ops):
        self._ops = ops

    def __getattr__(self, name):
        method = getattr(self._ops, name)
        if name not in _DATED:
            return method

        def made_when_dated(*args, **kwargs):
            at = kwargs.get("at_ms")
            if not isinstance(at, int):
                return method(*args, **kwargs)
            with clock_at(at):
                return method(*args, **kwargs)
        return made_when_dated
