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
