"""The client's statement and balance reads (clients/README.md
"Statements and balances"), run as a finance engineer would copy them,
against `serve --local-admin` on the demo store (newcomer 2026-12-02 #8: no
client method and no README example for GetStatement or GetBalance; raw
``BillingServiceStub`` code was needed, and GetBalance's need of the admin
role was said nowhere)."""
from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from test_readme import ROOT, blocks, demo_dir, serve, stop  # noqa: F401  (demo_dir: the fixture)


def example() -> str:
    return next(b for b in blocks(ROOT / "clients" / "README.md", "python") if "c.statement(" in b)


def test_the_readme_statement_and_balance_example_runs(demo_dir):  # noqa: F811
    from rating_core.billing.statements import Statement  # noqa: F401  (the engine is there: the demo ran)

    import re
    import shlex

    from test_readme import run

    text = " ".join((ROOT / "clients" / "README.md").read_text("utf-8").split())
    (line,) = re.findall(r"`(rating400 accounts import [^`]*)`", text)
    assert run(shlex.join(shlex.split(line)), demo_dir).returncode == 0, line  # the accounts live, as it says
    proc, info = serve("rating400 serve --store demo-out/store --local-admin", demo_dir, [])
    try:
        code = example().replace("localhost:50051", f"127.0.0.1:{info['port']}")
        scope: dict = {}
        exec(compile(code, "clients/README.md", "exec"), scope)  # noqa: S102 - the README's own example
        st, full, page, bal = scope["st"], scope["full"], scope["page"], scope["bal"]
        assert (st.account, st.month, full["account"], full["month"]) == ("hangzhou_tea", "2026-10") * 2
        # The response's fields are the statement's JSON figures, exact minor units.
        assert st.outstanding_minor == full["outstanding_minor"]
        assert st.amount_payable_minor == full["amount_payable_minor"] and st.amount_payable_minor % 100 == 0
        assert "<html" in page and "Total due: owed from earlier months" in page  # the printable page, in English
        assert bal.account == "hangzhou_tea" and bal.kind in ("prepaid", "payg", "bundle")
        assert bal.HasField("statements") and bal.statements.month

        async def both():  # the asyncio client has the same methods
            from rating400_client import AsyncClient

            async with AsyncClient(f"127.0.0.1:{info['port']}", timeout=60.0) as c:
                return await c.statement("hangzhou_tea", "2026-10"), await c.balance("hangzhou_tea")

        ast, abal = asyncio.run(both())
        assert (ast.outstanding_minor, abal.credit_minor) == (st.outstanding_minor, bal.credit_minor)
        assert json.loads(ast.json)["outstanding_minor"] == full["outstanding_minor"]
    finally:
        stop(proc)


def test_balance_without_local_admin_is_unauthenticated_naming_the_fix(demo_dir):  # noqa: F811
    from rating400_client import Client

    proc, info = serve("rating400 serve --store demo-out/store", demo_dir, [])
    try:
        with Client(f"127.0.0.1:{info['port']}", timeout=60.0) as c:
            assert c.statement("hangzhou_tea", "2026-10").account == "hangzhou_tea"  # a billing read: served
            with pytest.raises(grpc.RpcError) as e:
                c.balance("hangzhou_tea")
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "--local-admin" in e.value.details(), e.value.details()
    finally:
        stop(proc)
