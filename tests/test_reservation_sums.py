"""The per-account and per-number hold sums (``holds``, ``number_holds``)
always equal the sums over the open reservations, whatever mix of opens,
replacements, drops and expiry sweeps (a sweep closes a burst of stale holds
and writes each sum once) the live ledger sees, in every stored layout of a
reservation (no number, a number, an ended hold's held seconds after it: the
sweep reads only the amounts, the account and the number of a stale hold).
Real LMDB, no router: the storage layer alone (``rating_core.ledger.reservations``)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rating_core.ledger import Ledger, formats, reservations
from rating_core.ledger.reservations import Reservation

T0 = 1_772_589_600_000
ACCOUNTS = ("tiny", "owes", "账户")  # a non-ASCII name too: keys are UTF-8
NUMBER_KEYS = (0, 123_456_789, 987_654_321)

ops = st.lists(st.one_of(
    st.tuples(st.just("open"), st.integers(0, 7), st.sampled_from(ACCOUNTS), st.sampled_from(NUMBER_KEYS),
              st.integers(0, 50_000), st.integers(0, 600), st.integers(0, 3_600_000),
              st.lists(st.integers(0, 3), max_size=3), st.sampled_from([None, 0, 45])),
    st.tuples(st.just("drop"), st.integers(0, 7)),
    st.tuples(st.just("expire"), st.integers(0, 3_600_000)),
), max_size=40)


def _sums(ledger, live):
    """(account sums, number sums) as stored, and as summed over the open reservations."""
    stored_accounts = {bytes(k).decode(): formats.HOLD.unpack(v)
                       for k, v in live.cursor(db=ledger.live_db[formats.HOLDS])}
    stored_numbers = {formats.LINE.unpack(k)[0]: formats.HOLD.unpack(v)
                      for k, v in live.cursor(db=ledger.live_db[formats.NUMBER_HOLDS])}
    accounts: dict = {}
    numbers: dict = {}
    for _key, r in reservations.open_reservations(ledger, live):
        for table, name in ((accounts, r.account), (numbers, r.number_key)):
            if table is numbers and not name:
                continue
            m, s, n = table.get(name, (0, 0, 0))
            table[name] = (m + r.reserved_minor, s + r.reserved_seconds, n + 1)
    return (stored_accounts, stored_numbers), (accounts, numbers)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops)
def test_hold_sums_equal_the_open_reservations(tmp_path_factory, script):
    ledger = Ledger(tmp_path_factory.mktemp("sums"))
    try:
        with ledger.live.begin(write=True) as live:
            for op in script:
                if op[0] == "open":
                    _, call, account, number, minor, seconds, deadline, classes, held = op
                    key = f"call-{call}".encode()
                    reservations.drop(ledger, live, key)  # Authorize replaces a call's hold
                    reservations.put(ledger, live, key, Reservation(
                        account=account, reserved_minor=minor, reserved_seconds=seconds, granted_seconds=60,
                        authorized_ms=T0, deadline_ms=T0 + deadline, answered_ms=0, catalog_version=1,
                        billing_start=0, money=seconds == 0, package=0, caller_class=0,
                        classes=tuple(classes), number_key=number, ended=held is not None, held_seconds=held))
                elif op[0] == "drop":
                    reservations.drop(ledger, live, f"call-{op[1]}".encode())
                else:
                    before = len(reservations.open_reservations(ledger, live))
                    n = reservations.expire(ledger, live, T0 + op[1])
                    left = reservations.open_reservations(ledger, live)
                    assert n == before - len(left)
                    assert all(r.deadline_ms >= T0 + op[1] for _k, r in left)
                stored, expected = _sums(ledger, live)
                assert stored == expected
    finally:
        ledger.close()
