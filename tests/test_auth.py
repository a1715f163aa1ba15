"""TLS, mutual TLS and roles against a running server: every role boundary.

Certificates are made here with ``cryptography``: a CA, the server's
certificate (localhost, 127.0.0.1), one client certificate per role (the
role in the subject's OU) and one from a CA the server does not trust.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys

import grpc
import pytest

pytest.importorskip("cryptography")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from rating400.v1 import catalog_pb2, rating_pb2, rerate_pb2, rerate_pb2_grpc  # noqa: E402
from rating400_client import Client, credentials  # noqa: E402
from rating400_server import auth  # noqa: E402
from demo_server import ACTIVE, CALLER, Server, make_store  # noqa: E402

SC = grpc.StatusCode
TOKENS = {"admin": "admin-token-0123456789", "softswitch": "switch-token-0123456789",
          "billing": "billing-token-0123456789"}
SWITCH_TOKEN = "kamailio-token-0123456789"  # softswitch and billing: what a switch needs


def _name(cn, ou=None):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    return x509.Name(attrs)


def _issue(subject, key, issuer, issuer_key, ca=False, san=None):
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, cert, key):
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(path.with_suffix(".crt")), str(path.with_suffix(".key"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    out = {}
    for ca_name in ("ca", "rogue"):
        k = ec.generate_private_key(ec.SECP256R1())
        c = _issue(_name(f"Rating400 test {ca_name}"), k, _name(f"Rating400 test {ca_name}"), k, ca=True)
        out[ca_name] = (c, k, _write(d / ca_name, c, k))
    ca, ca_key, _ = out["ca"]
    k = ec.generate_private_key(ec.SECP256R1())
    out["server"] = _write(d / "server", _issue(
        _name("localhost"), k, ca.subject, ca_key,
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), k)
    for role in ("softswitch", "billing", "admin", "nobody"):
        k = ec.generate_private_key(ec.SECP256R1())
        out[role] = _write(d / role, _issue(_name(f"{role}-1", role), k, ca.subject, ca_key), k)
    # Signed by the real CA, with an escaped ",OU=admin" inside another value:
    # their subject text reads "CN=kamailio-2\\,OU=admin,OU=softswitch" (N10-breaker R1).
    for name, attrs in (("inject-cn", [(NameOID.COMMON_NAME, "kamailio-2,OU=admin"),
                                       (NameOID.ORGANIZATIONAL_UNIT_NAME, "softswitch")]),
                        ("inject-o", [(NameOID.COMMON_NAME, "sw-2"), (NameOID.ORGANIZATION_NAME, "Acme,OU=admin"),
                                      (NameOID.ORGANIZATIONAL_UNIT_NAME, "softswitch")])):
        k = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(oid, v) for oid, v in attrs])
        out[name] = _write(d / name, _issue(subject, k, ca.subject, ca_key), k)
    rogue, rogue_key, _ = out["rogue"]
    k = ec.generate_private_key(ec.SECP256R1())
    out["rogue-admin"] = _write(d / "rogue-admin", _issue(_name("evil", "admin"), k, rogue.subject, rogue_key), k)
    tokens = d / "tokens"
    tokens.write_text("# role token\n" + "".join(f"{r} {t}\n" for r, t in TOKENS.items())
                      + f"softswitch,billing {SWITCH_TOKEN}\n")
    out["tokens"] = str(tokens)
    out["ca_file"] = out["ca"][2][0]
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("auth"))[0]


def _server(store, pki, tmp, *extra):
    cert, key = pki["server"]
    s = Server(store, tmp, workers=1)
    s.extra = ["--tls-cert", cert, "--tls-key", key, *extra]
    return s.start()


@pytest.fixture(scope="module")
def server(store, pki, tmp_path_factory):
    """Mutual TLS: roles from client certificates."""
    s = _server(store, pki, tmp_path_factory.mktemp("mtls"), "--tls-client-ca", pki["ca_file"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def token_server(store, pki, tmp_path_factory):
    """TLS with bearer tokens."""
    s = _server(store, pki, tmp_path_factory.mktemp("tokens"), "--tokens", pki["tokens"])
    yield s
    s.stop()


def _client(server, pki, role=None, token=None):
    cert, key = pki[role] if role else (None, None)
    creds = credentials(ca=pki["ca_file"], cert=cert, key=key, token=token)
    return Client(f"localhost:{server.info['port']}", timeout=5, credentials=creds)


def _code(fn):
    try:
        fn()
        return SC.OK
    except grpc.RpcError as e:
        return e.code()


def _calls(c):
    """One call per service: routing, rating, catalog (read), catalog (change)."""
    return {
        "routing": lambda: c.authorize(ACTIVE, CALLER, ivr_keys="1"),
        "rating": lambda: c.rating.RateCdr(rating_pb2.RateCdrRequest(
            cdr=rating_pb2.Cdr(call_id="auth-x", number="12")), timeout=5),  # INVALID_ARGUMENT once allowed
        "catalog": lambda: c.list_versions(),
        "activate": lambda: c.catalog.Activate(catalog_pb2.ActivateRequest(version=1), timeout=5),
        "rerate": lambda: rerate_pb2_grpc.RerateServiceStub(c.channel).Rerate(  # INVALID_ARGUMENT once allowed
            rerate_pb2.RerateRequest(catalog_version=1, from_day="x", to_day="x"), timeout=5),
    }


ALLOWED = {"softswitch": {"routing"}, "billing": {"rating"}, "admin": {"catalog", "activate", "rerate"},
           "nobody": set()}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_client_certificate_roles(server, pki, role):
    with _client(server, pki, role) as c:
        assert c.health() == "SERVING"
        for what, call in _calls(c).items():
            code = _code(call)
            if what in ALLOWED[role]:
                assert code in (SC.OK, SC.INVALID_ARGUMENT), (role, what, code)
            else:
                assert code == SC.PERMISSION_DENIED, (role, what, code)


@pytest.mark.parametrize("role", sorted(TOKENS))
def test_bearer_token_roles(token_server, pki, role):
    with _client(token_server, pki, token=TOKENS[role]) as c:
        for what, call in _calls(c).items():
            code = _code(call)
            allowed = what in ALLOWED[role]
            assert (code in (SC.OK, SC.INVALID_ARGUMENT)) if allowed else code == SC.PERMISSION_DENIED, (role, what)


def test_softswitch_certificate_cannot_activate(server, pki):
    with _client(server, pki, "softswitch") as c:
        with pytest.raises(grpc.RpcError) as e:
            c.activate(1)
    assert e.value.code() == SC.PERMISSION_DENIED
    assert "needs admin" in e.value.details() and "caller has softswitch" in e.value.details()


def test_without_credentials_unauthenticated(token_server, server, pki):
    with _client(token_server, pki) as c:  # TLS, but no token
        assert c.health() == "SERVING"  # open to load balancers
        for what, call in _calls(c).items():
            assert _code(call) == SC.UNAUTHENTICATED, what
    with _client(token_server, pki, token="not-a-known-token-at-all") as c:
        with pytest.raises(grpc.RpcError) as e:
            c.list_versions()
        assert e.value.code() == SC.UNAUTHENTICATED and e.value.details() == "unknown bearer token"
    with _client(server, pki) as c:  # mutual TLS without a certificate: no handshake at all
        assert _code(lambda: c.list_versions()) == SC.UNAVAILABLE


@pytest.mark.parametrize("cert", ["inject-cn", "inject-o"])
def test_escaped_ou_inside_another_value_is_no_role(server, pki, cert):
    """A CA-signed certificate whose CN or O holds ",OU=admin" (escaped in the
    subject's text) has the roles of its real OU attributes only: softswitch,
    never admin (before, a pattern over the text gave it admin: N10-breaker R1)."""
    with _client(server, pki, cert) as c:
        codes = {what: _code(call) for what, call in _calls(c).items()}
    assert codes["routing"] in (SC.OK, SC.INVALID_ARGUMENT)
    assert {codes[w] for w in ("rating", "catalog", "activate", "rerate")} == {SC.PERMISSION_DENIED}, codes


def test_cert_roles_reads_the_parsed_subject(pki):
    from pathlib import Path

    assert auth.cert_roles(Path(pki["billing"][0]).read_bytes()) == {"billing"}
    assert auth.cert_roles(Path(pki["inject-cn"][0]).read_bytes()) == {"softswitch"}
    assert auth.cert_roles(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n") == frozenset()


def test_untrusted_certificate_and_plaintext_get_nothing(server, pki):
    with _client(server, pki, "rogue-admin") as c:
        assert _code(lambda: c.list_versions()) == SC.UNAVAILABLE  # the TLS handshake fails
    with Client(f"127.0.0.1:{server.info['port']}", timeout=3) as c:  # plaintext to a TLS port
        assert _code(lambda: c.list_versions()) == SC.UNAVAILABLE


def test_every_method_has_a_role():
    import importlib
    import pkgutil

    import rating400.v1 as contract

    mods = [importlib.import_module(f"rating400.v1.{m.name}") for m in pkgutil.iter_modules(contract.__path__)
            if m.name.endswith("_pb2")]
    for mod in mods:
        for svc in mod.DESCRIPTOR.services_by_name.values():
            for m in svc.methods:
                assert len(auth.roles_for(f"/{svc.full_name}/{m.name}")) >= 1, m.full_name
    assert auth.roles_for("/rating400.v1.SomethingNew/Do") == ()  # deny by default
    assert auth.roles_for("/rating400.v1.AccountService/Create") == ("admin",)
    assert auth.roles_for("/rating400.v1.AccountService/ReversePayment") == ("admin",)  # it moves money
    # The caller CRM is also the enterprise's agents' and supervisors', and only the CRM.
    assert auth.roles_for("/rating400.v1.BillingService/ListCallers") == ("agent", "billing", "supervisor")
    assert auth.roles_for("/rating400.v1.BillingService/GetStatement") == ("billing",)


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "not a loopback address"),
    (["--tokens", "/nonexistent/tokens"], "--tokens needs --tls-cert"),
    (["--tls-cert", "/nonexistent/x.crt", "--tls-key", "/nonexistent/x.key"], "no such file"),
    (["--tls-cert", "x.crt"], "--tls-cert and --tls-key go together"),
])
def test_unsafe_or_broken_setups_refused(server, args, message):
    proc = subprocess.run([sys.executable, "-m", "rating400_server", "--store", str(server.store),
                           "--port", "0", "--workers", "1", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_readme_security_commands(pki, store, tmp_path):
    """README's serve commands for a non-loopback address start as written (with
    this test's files), and the same without TLS and roles are refused."""
    import re

    from test_readme import ROOT, commands, run, section, serve, stop

    lines = commands(section(ROOT / "README.md", "Security: TLS, roles, where the service listens"))
    assert len(lines) == 2
    files = {"server.crt": pki["server"][0], "server.key": pki["server"][1], "ca.crt": pki["ca_file"],
             "tokens.txt": pki["tokens"], "demo-out/store": str(store)}
    for line in lines:
        for name, real in files.items():
            line = line.replace(name, real)
        proc, info = serve(line, tmp_path, [])
        stop(proc)
        assert info["port"] > 0
        bare = re.sub(r" --(tls-cert|tls-key|tls-client-ca|tokens) \S+", "", line)
        refused = run(bare, tmp_path, timeout=60)
        assert refused.returncode == 2 and "not a loopback address" in refused.stderr, refused.stderr


def test_readme_certificate_recipe(store, tmp_path):
    """README's openssl recipe makes certificates the server starts with
    (its first serve line, as written), and each client certificate's OU
    values are its roles: admin may change the catalog, the switch may route
    but not change it."""
    import re

    from test_readme import ROOT, commands, section, serve, stop

    text = section(ROOT / "README.md", "Security: TLS, roles, where the service listens")
    recipe = [ln for b in re.findall(r"```sh\n(.*?)```", text, re.S) for ln in b.splitlines()
              if ln.startswith(("openssl ", "printf "))]
    assert len(recipe) == 8
    for line in recipe:
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (line, done.stderr)
    proc, info = serve(commands(text)[0].replace("demo-out/store", str(store)), tmp_path, [])
    try:
        def client(who):
            creds = credentials(ca=str(tmp_path / "ca.crt"), cert=str(tmp_path / f"{who}.crt"),
                                key=str(tmp_path / f"{who}.key"))
            return Client(f"localhost:{info['port']}", timeout=5, credentials=creds)

        admin, switch = _calls(client("admin")), _calls(client("switch"))
        assert _code(admin["catalog"]) == SC.OK
        assert _code(switch["routing"]) == SC.OK
        assert _code(switch["catalog"]) == SC.PERMISSION_DENIED
    finally:
        stop(proc)


def test_client_readme_credentials_example(token_server, pki, tmp_path, monkeypatch):
    from test_readme import ROOT, blocks

    code = next(b for b in blocks(ROOT / "clients" / "README.md", "python") if "credentials(" in b)
    (tmp_path / "billing.token").write_text(TOKENS["billing"] + "\n")
    cert, key = pki["billing"]
    code = (code.replace('"ca.crt"', repr(pki["ca_file"])).replace('"billing.crt"', repr(cert))
            .replace('"billing.key"', repr(key)).replace("rating.example.cn:50051", f"localhost:{token_server.info['port']}")
            .replace("    ...", "    result = c.health()"))  # the README leaves the calls to the reader
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "clients/README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert scope["result"] == "SERVING"


def test_switch_reaches_a_locked_down_engine_with_tls_and_a_token(token_server, pki, tmp_path):
    """The switch's settings carry TLS and a token: Authorize and RateCdr go
    through; without them the call fails closed (503), never routed."""
    import time

    from rating400_switch.answers import ENGINE_DOWN
    from rating400_switch.link import EngineLink
    from rating400_switch.settings import Settings, SettingsError

    token = tmp_path / "switch.token"
    token.write_text(SWITCH_TOKEN + "\n")
    base = {"engine": f"localhost:{token_server.info['port']}", "gateways": [{"prefix": "", "uri": "sip:{number}@gw"}]}
    link = EngineLink(Settings.from_dict({**base, "tls_ca": pki["ca_file"], "token_file": str(token),
                                          "authorize_timeout_ms": 5000, "spool_dir": str(tmp_path / "spool")}))
    now = int(time.time() * 1000)
    decision, answer = link.authorize(ACTIVE, CALLER, "1", "switch-tls-1", now)
    assert answer is None and decision.destinations
    r = link.client.rate_cdr({"call_id": "switch-tls-1", "caller": CALLER, "number": ACTIVE,
                              "forwarded_to": decision.destinations[0].number, "start": now - 70_000,
                              "agent_answer": now - 60_000, "end": now})
    assert r.rated_cdr.call_id == "switch-tls-1"

    plain = EngineLink(Settings.from_dict({**base, "authorize_timeout_ms": 2000, "spool_dir": str(tmp_path / "s2")}))
    assert plain.authorize(ACTIVE, CALLER, "1", "switch-tls-2", now)[1] is ENGINE_DOWN

    with pytest.raises(SettingsError, match="tls_cert: tls_cert and tls_key go together"):
        Settings.from_dict({**base, "tls_cert": pki["billing"][0]})
    with pytest.raises(SettingsError, match="token_file: cannot read"):
        Settings.from_dict({**base, "token_file": str(tmp_path / "missing")})


def test_plaintext_server_keeps_admin_methods_closed_by_default(store, tmp_path):
    """Secure by default: with no identities a loopback server serves the
    call path to local callers, but changing tariffs or accounts answers
    UNAUTHENTICATED naming how to allow it; --local-admin opens it."""
    s = Server(store, tmp_path, workers=1)
    s.extra = []
    s.start()
    try:
        with Client(f"127.0.0.1:{s.info['port']}", timeout=10) as c:
            assert c.authorize(ACTIVE, CALLER, ivr_keys="1").allow
            for call in (c.list_versions,
                         lambda: c.catalog.Activate(catalog_pb2.ActivateRequest(version=1), timeout=10)):
                with pytest.raises(grpc.RpcError) as e:
                    call()
                assert e.value.code() == SC.UNAUTHENTICATED and "--local-admin" in e.value.details()
                # A read is not called a change (newcomer N14 F10: GetBalance was "changing tariffs or accounts").
                assert "reading or changing accounts, balances or tariffs needs an identity" in e.value.details()
    finally:
        s.stop()
    s.extra = ["--local-admin"]
    s.start()
    try:
        with Client(f"127.0.0.1:{s.info['port']}", timeout=10) as c:
            assert [v.version for v in c.list_versions()] == [1]
    finally:
        s.stop()
