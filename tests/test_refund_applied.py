"""A refund never pays back money the statements applied to bills
(newcomer N10-2 finding 6: a bundle account that paid its bill exactly
showed its rental as 99.00 of credit in `accounts balance`, since the
ledger never debits fees, and `refund` paid it back while the rental was
unpaid). README "Money rules", refund."""
import pytest

from rating_core.accounts import Accounts
from rating_core.errors import Refused
from test_billing import CATALOG, YUAN, live_store


def test_a_postpaid_refund_is_bounded_by_what_the_statements_left_unapplied(tmp_path):
    store = live_store(tmp_path, CATALOG)  # cut-over: this month, whose rental (20.00) `bun` owes
    ops = Accounts.open(store)
    try:
        ops.top_up("p-1", "bun", 20 * YUAN)  # pays this month's rental exactly
        assert ops.balance("bun")["credit_minor"] == 20 * YUAN  # the ledger: fees are never debited
        with pytest.raises(Refused, match=r"refundable credit is 0\.00 yuan: the statements applied 20\.00 yuan"):
            ops.refund("r-1", "bun", 20 * YUAN, "overpaid")
        ops.top_up("p-2", "bun", 5 * YUAN)  # an overpayment: refundable
        with pytest.raises(Refused, match=r"refundable credit is 5\.00 yuan"):
            ops.refund("r-2", "bun", 6 * YUAN, "overpaid")
        ops.refund("r-3", "bun", 5 * YUAN, "overpaid")
        assert ops.balance("bun")["credit_minor"] == 20 * YUAN
    finally:
        ops.ledger.close()


def test_accounts_balance_prints_the_statements_position(tmp_path, capsys):
    """Newcomer N11 F10: `accounts balance` of a bundle account read 99.00
    of credit while its statements said it owed 198.00: the ledger never
    debits fees. It prints the statements' position beside the ledger's."""
    import json

    from rating_core.cli import main

    store = live_store(tmp_path, CATALOG)  # `bun` owes this month's rental, 20.00
    with pytest.raises(SystemExit):
        main(["accounts", "top-up", "bun", "5", "--store", str(store)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["accounts", "balance", "bun", "--store", str(store)])
    got = json.loads(capsys.readouterr().out)
    assert e.value.code == 0
    assert got["credit_minor"] == 5 * YUAN  # the ledger: the payment, no fee debited
    position = got["statements"]
    assert (position["unpaid_minor"], position["credit_minor"], position["unpaid_yuan"]) == (15 * YUAN, 0, "15.00")


def test_concurrent_refunds_never_pass_one_bound_twice(tmp_path):
    """Breaker N12 F4 (and F3 for reversals): the statement bound was read
    before the write transaction, so two workers' refunds of 50.00 both
    passed a bound of 50.00. It is read under the ledger's write lock: of
    four refunds of the whole refundable amount at once, one is paid."""
    import threading

    store = live_store(tmp_path, CATALOG)
    ops = Accounts.open(store)
    try:
        ops.top_up("p-1", "bun", 25 * YUAN)  # 20.00 pays this month's rental: 5.00 refundable
        barrier, done, refused = threading.Barrier(4), [], []

        def refund(i):
            barrier.wait()
            try:
                done.append(ops.refund(f"r-{i}", "bun", 5 * YUAN, "overpaid"))
            except Refused as e:
                refused.append(e.reason)

        threads = [threading.Thread(target=refund, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(done) == 1 and refused == ["insufficient_credit"] * 3, (done, refused)
        assert ops.balance("bun")["credit_minor"] == 20 * YUAN
    finally:
        ops.ledger.close()


def test_an_empty_account_is_bad_input_not_an_internal_error(tmp_path):
    """Breaker N12 F2: `accounts refund '' 1` and a reversal for '' ended in an
    LMDB key-size error (gRPC INTERNAL): the statement bound read the account
    before the operation named it. An empty id is "account: required"
    (breaker N13 F8, ``_Tx.account``)."""
    from rating_core.errors import InvalidInput

    store = live_store(tmp_path, CATALOG)
    ops = Accounts.open(store)
    try:
        with pytest.raises(InvalidInput, match="^account: required$"):
            ops.refund("r-1", "", 10_000, "overpaid")
        with pytest.raises(InvalidInput, match="^account: required$"):
            ops.reverse_payment("v-1", "", 10_000, "typo")
    finally:
        ops.ledger.close()


def test_a_closed_account_s_money_can_still_be_paid_back(tmp_path):
    """Breaker N12 F14: once an account was closed (the sweep's reclaim does
    it on its own), its unapplied payments and credit could be neither
    refunded nor reversed: refused account_closed. Money going back to the
    customer is taken on a closed account; money coming in is not."""
    store = live_store(tmp_path, CATALOG)
    ops = Accounts.open(store)
    try:
        ops.top_up("p-1", "shop", 50 * YUAN)  # pay as you go, no rental: 50.00 unapplied
        ops.pay("p-2", "tea", 100 * YUAN)  # prepaid: 45.00 of it pays this month, 55.00 unapplied
        for account in ("shop", "tea"):
            for i, action in enumerate(("suspend", "freeze", "reclaim")):
                ops.account_transition(f"{account}-{i}", account, action, "contract ended")
            assert ops.get_account(account)["account"]["status"] == "closed"
        with pytest.raises(Refused) as e:
            ops.top_up("p-3", "shop", 1 * YUAN)
        assert e.value.reason == "account_closed"
        assert ops.refund("r-1", "shop", 50 * YUAN, "overpaid")["balance"]["credit_minor"] == 0
        assert ops.reverse_payment("v-1", "tea", 10 * YUAN, "returned to the customer")["operation"] == \
            "reverse_payment"
    finally:
        ops.ledger.close()
