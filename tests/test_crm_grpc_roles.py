"""Caller numbers over gRPC are masked by the caller's authenticated role: a
real server on loopback with TLS and bearer tokens, the demo catalog, calls
committed to the ledger first. ``billing`` and ``agent`` see 138****5678,
``supervisor`` the whole number; ListCallers and ExportCallers agree, a
masked role cannot filter by caller number at all (a prefix search or 10,000
whole-number probes would recover the hidden digits), and only a role that
sees numbers may UpdateCaller (an update is addressed by the whole number)."""
from __future__ import annotations

import csv
import io

import grpc
import pytest

pytest.importorskip("cryptography")
from rating400.v1 import billing_pb2, billing_pb2_grpc  # noqa: E402
from rating400_client import credentials  # noqa: E402
from rating_core.billing.crm import mask  # noqa: E402
from rating_core.demo import demo_cdrs  # noqa: E402
from rating_core.engine import Engine  # noqa: E402
from test_auth import _server, pki  # noqa: E402,F401  (pki: the test CA, server and client certificates)
from demo_server import make_store  # noqa: E402

ACCOUNT = "hangzhou_tea"
TOKENS = {"billing": "crm-billing-token-0123456789", "agent": "crm-agent-token-0123456789",
          "supervisor": "crm-supervisor-token-0123456789"}


@pytest.fixture(scope="module")
def crm_server(pki, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    root = tmp_path_factory.mktemp("crm-roles")
    store = make_store(root)[0]
    engine = Engine.open(store, threads=1)
    try:
        engine.rate_and_commit(demo_cdrs(3000, 5))
        callers = engine.crm.callers(ACCOUNT)
    finally:
        engine.close()
    tokens = root / "tokens"
    tokens.write_text("".join(f"{r} {t}\n" for r, t in TOKENS.items()))
    s = _server(store, pki, root, "--tokens", str(tokens))
    yield s, callers, pki
    s.stop()


def _stub(server, certs, role):
    channel = grpc.secure_channel(f"localhost:{server.info['port']}",
                                  credentials(ca=certs["ca_file"], token=TOKENS[role]))
    return channel, billing_pb2_grpc.BillingServiceStub(channel)


def _masked(number: str) -> bool:
    return "****" in number


def test_masking_follows_the_authenticated_role(crm_server):
    server, callers, certs = crm_server
    assert callers, "the demo CDRs give the account callers"
    whole = sorted(c.caller for c in callers)
    for role, sees in (("billing", False), ("agent", False), ("supervisor", True)):
        channel, stub = _stub(server, certs, role)
        with channel:
            got = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30)
            numbers = sorted(c.caller for c in got.callers)
            if sees:
                assert numbers == whole, role
            else:
                assert len(numbers) == len(whole) and all(_masked(n) for n in numbers), role
                assert not set(numbers) & set(whole)
            exported = stub.ExportCallers(billing_pb2.ListCallersRequest(account=ACCOUNT), timeout=30)
            assert exported.csv.startswith("\ufeff".encode())  # UTF-8 with BOM: Excel on Chinese Windows
            rows = list(csv.DictReader(io.StringIO(exported.csv.decode("utf-8-sig"))))
            assert exported.callers == len(rows) == len(whole)
            assert sorted(r["caller"] for r in rows) == numbers, role
            one = callers[0]
            request = billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=one.caller, add_tags=[f"seen-by-{role}"])
            if sees:
                assert stub.UpdateCaller(request, timeout=30).caller == one.caller
                hidden = billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=one.caller[:3] + "\u200b" + one.caller[3:],
                                                         add_tags=["x"])  # refused as routing refuses it, not stripped
                with pytest.raises(grpc.RpcError) as e:
                    stub.UpdateCaller(hidden, timeout=30)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("caller:")
            else:
                with pytest.raises(grpc.RpcError) as e:
                    stub.UpdateCaller(request, timeout=30)
                assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, role


def test_a_masked_role_cannot_filter_by_caller_number(crm_server):
    server, callers, certs = crm_server
    number = callers[0].caller
    channel, stub = _stub(server, certs, "supervisor")
    with channel:  # the supervisor tags; the masked roles find the caller by the tag
        for role in ("agent", "billing"):
            stub.UpdateCaller(billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=number,
                                                              add_tags=[f"filter-{role}"]), timeout=30)
    for role in ("agent", "billing"):
        channel, stub = _stub(server, certs, role)
        with channel:
            # A whole number answers "is this a caller?": 10,000 probes of
            # the 4 masked digits would recover it (breaker finding 35); the
            # start of a number gives them away one at a time.
            for caller in (number, number[:7], "138-abc"):
                request = billing_pb2.ListCallersRequest(account=ACCOUNT, caller=caller)
                for method in (stub.ListCallers, stub.ExportCallers):
                    with pytest.raises(grpc.RpcError) as e:
                        method(request, timeout=30)
                    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (role, caller)
                    assert e.value.details() == ("caller: filtering by caller number needs a role that sees "
                                                 "numbers (supervisor)")
            # Listing, tags and missed callers stay open to it.
            got = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, tag=f"filter-{role}"), timeout=30)
            assert [c.caller for c in got.callers] == [mask(number)]
            missed = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, awaiting_callback=True),
                                      timeout=30)
            assert len(missed.callers) == sum(c.awaiting_callback for c in callers) and all(
                _masked(c.caller) for c in missed.callers)
    channel, stub = _stub(server, certs, "supervisor")
    with channel:
        started = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, caller=number[:7]), timeout=30)
        assert number in [c.caller for c in started.callers]
        assert all(c.caller.startswith(number[:7]) for c in started.callers)
        exact = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, caller=number), timeout=30)
        assert [c.caller for c in exact.callers] == [number]


def test_crm_roles_reach_nothing_else(crm_server):
    server, _, certs = crm_server
    channel, stub = _stub(server, certs, "supervisor")
    with channel:
        with pytest.raises(grpc.RpcError) as e:
            stub.GetReport(billing_pb2.ReportRequest(by="number", account=ACCOUNT), timeout=30)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_update_caller_tells_a_masked_role_nothing_about_whether_a_number_called(crm_server):
    """Breaker findings: a masked role that tagged a whole number and then
    listed by the tag learned whether it called, and the write's time told
    the same. Only a role that sees numbers may update; a masked role is
    refused alike for a caller and a stranger, before anything is read."""
    server, callers, certs = crm_server
    known = {c.caller for c in callers}
    number = sorted(known)[-1]
    stranger = next(n for n in (f"139000000{i:02d}" for i in range(100)) if n not in known)

    def update(caller, **kw):
        return billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=caller, **kw)

    channel, stub = _stub(server, certs, "supervisor")
    with channel:  # a role that sees numbers gets the record, NOT_FOUND and the bound refusal
        with pytest.raises(grpc.RpcError) as e:
            stub.UpdateCaller(update(stranger, note="x"), timeout=30)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND and stranger in e.value.details()
        rec = stub.UpdateCaller(update(number, add_tags=[f"b{i}" for i in range(32)]), timeout=30)
        assert rec.caller == number and len(rec.tags) >= 32 and rec.calls > 0
        with pytest.raises(grpc.RpcError) as e:
            stub.UpdateCaller(update(number, add_tags=["b-over"]), timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("add_tags:")
    for role in ("agent", "billing"):
        channel, stub = _stub(server, certs, role)
        with channel:
            for kw in ({"note": "probe"}, {"add_tags": ["probe"]}, {"remove_tags": [""]}, {"called_back": True}):
                answers = set()
                for caller in (number, stranger):
                    with pytest.raises(grpc.RpcError) as e:
                        stub.UpdateCaller(update(caller, **kw), timeout=30)
                    answers.add((e.value.code(), e.value.details()))
                assert len(answers) == 1 and next(iter(answers))[0] == grpc.StatusCode.PERMISSION_DENIED, (role, kw)
            got = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, tag="probe"), timeout=30)
            assert list(got.callers) == []  # nothing was stored


def _refused(call, request, code=grpc.StatusCode.INVALID_ARGUMENT) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call(request, timeout=60)
    assert e.value.code() == code, e.value.details()
    return e.value.details()


def _listed(stub, caller):
    return next(c for c in stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, caller=caller),
                                            timeout=30).callers if c.caller == caller)


def test_update_caller_tags_notes_callback_bounds_and_hostile_text(crm_server):
    """A supervisor's updates: tags, a note, a callback; bounded (a caller
    record is rewritten by every committed call of that caller, so 100,000
    tags made each RateCdr take 1.5 s); no control characters; nothing
    half-applied by a refusal."""
    server, callers, certs = crm_server
    caller = sorted(c.caller for c in callers)[1]

    def update(**kw):
        return billing_pb2.UpdateCallerRequest(account=ACCOUNT, caller=caller, **kw)

    channel, stub = _stub(server, certs, "supervisor")
    with channel:
        rec = stub.UpdateCaller(update(add_tags=["vip"], note="wants a quote", called_back=True), timeout=30)
        assert rec.caller == caller and "vip" in rec.tags and rec.notes == 1 and not rec.awaiting_callback
        tagged = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, tag="vip"), timeout=30)
        assert [c.caller for c in tagged.callers] == [caller]
        assert _refused(stub.UpdateCaller, billing_pb2.UpdateCallerRequest(
            account=ACCOUNT, caller="not a number", note="x")).startswith("caller")
        assert _refused(stub.UpdateCaller, update(add_tags=[f"t{i}" for i in range(100_000)])).startswith("add_tags:")
        assert _refused(stub.UpdateCaller, update(add_tags=["x" * 65])).startswith("add_tags[0]:")
        assert _refused(stub.UpdateCaller, update(note="x" * 4001)).startswith("note:")
        stub.UpdateCaller(update(remove_tags=["vip"], add_tags=[f"t{i}" for i in range(32)]), timeout=30)
        assert _refused(stub.UpdateCaller, update(add_tags=["one-more"])).startswith("add_tags:")
        assert len(_listed(stub, caller).tags) == 32
        stub.UpdateCaller(update(remove_tags=[f"t{i}" for i in range(32)]), timeout=30)
        assert list(_listed(stub, caller).tags) == []
        for tag in ("a\x00b", "x\ny", "\x1b[2J", "tab\there", "del\x7f", "c1\x9b2J", "vip\u202eqqq", "v\u200bip"):
            assert _refused(stub.UpdateCaller, update(add_tags=[tag])).startswith("add_tags[0]: control characters")
        for note in ("n\x00", "\x1b[2Jcleared", "bell\x07", "rub\x7fout", "\u202eyadot llac", "\u2066isolated\u2069"):
            assert _refused(stub.UpdateCaller, update(note=note)).startswith("note: control characters")
        stub.UpdateCaller(update(note="line one\n\tline two"), timeout=30)
        assert _listed(stub, caller).notes == 2
        assert list(_listed(stub, caller).tags) == []


def test_callers_come_in_pages(crm_server):
    """ListCallers and ExportCallers page (AIP-158): page after page with a
    small page_size gives every caller once, in the order of one unpaged
    reply; a reply holds at most CALLERS_PAGE_MOST records (200k callers
    were one 15 MB reply, over a client's default 4 MB: breaker); the token
    never holds a number (masked roles page too) and a token given with
    other filters, or made up, is INVALID_ARGUMENT naming page_token."""
    import base64

    from rating400_server.billing_service import CALLERS_PAGE_MOST

    server, callers, certs = crm_server
    assert len(callers) > 5 and CALLERS_PAGE_MOST == 10_000
    for role in ("agent", "supervisor"):
        channel, stub = _stub(server, certs, role)
        with channel:
            whole = [c.caller for c in stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT),
                                                        timeout=30).callers]
            paged, exported, token, pages = [], [], "", 0
            while True:
                request = billing_pb2.ListCallersRequest(account=ACCOUNT, page_size=2, page_token=token)
                got = stub.ListCallers(request, timeout=30)
                out = stub.ExportCallers(request, timeout=30)
                assert got.next_page_token == out.next_page_token
                assert ACCOUNT not in base64.urlsafe_b64decode(got.next_page_token or "").decode()
                assert not any(c.caller in base64.urlsafe_b64decode(got.next_page_token or "").decode()
                               for c in got.callers)
                paged += [c.caller for c in got.callers]
                exported += [r["caller"] for r in csv.DictReader(io.StringIO(out.csv.decode("utf-8-sig")))]
                pages += 1
                token = got.next_page_token
                if not token:
                    break
            assert paged == whole == exported and pages == (len(whole) + 1) // 2, role
            first = stub.ListCallers(billing_pb2.ListCallersRequest(account=ACCOUNT, page_size=2), timeout=30)
            for bad in (billing_pb2.ListCallersRequest(account=ACCOUNT, tag="x", page_token=first.next_page_token),
                        billing_pb2.ListCallersRequest(account=ACCOUNT, page_token="bm90LWEtdG9rZW4="),
                        billing_pb2.ListCallersRequest(account=ACCOUNT, page_token="\u202e!"),
                        billing_pb2.ListCallersRequest(account=ACCOUNT, page_size=-1)):
                with pytest.raises(grpc.RpcError) as e:
                    stub.ListCallers(bad, timeout=30)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert e.value.details().startswith("page_token:" if bad.page_token else "page_size:")
