"""Authentication and roles: TLS / mutual TLS from certificate files, roles
from client certificates or bearer tokens.

Who may call what is one table, ``ROLES``: a role is a set of gRPC method
prefixes (``/package.Service/`` for a whole service, or a full method
name). A method that no role lists and that is not in ``OPEN`` is refused
to everyone (deny by default), so a new service must be added here to be
callable at all. To give a new service to a role, add its prefix.

Identity, when the server has any (``--tls-client-ca`` or ``--tokens``):
- a client certificate signed by the client CA (mutual TLS; with a client CA
  every client must present one): its roles are the certificate subject's
  OU (organizationalUnitName) attributes (``cert_roles``);
- a bearer token (over TLS), ``authorization: Bearer TOKEN`` metadata: its
  roles are those the tokens file gives it (lines ``ROLE[,ROLE...] TOKEN``).
Both may be present; the roles are then the union.

Answers: no identity, or an unknown token -> UNAUTHENTICATED; an identity
without a role for the method -> PERMISSION_DENIED naming the role needed.
Health and reflection are open to all (load balancers and tools probe them).

A server with neither a client CA nor tokens checks no identity: that is
only allowed on loopback or with ``--allow-insecure`` (see ``check_bind``).
It then serves the call path (routing, rating, billing reads: what a switch
on the same host needs) to every local process, but refuses the methods only
``admin`` may call (tariffs, accounts, top-ups, adjustments, rerating) with
UNAUTHENTICATED (``Auth.guard``): on a shared host any local user can reach a
loopback port, and a charge on the call path is bounded by the published
tariff, while an admin call sets money and tariffs directly. ``--local-admin``
lifts that on a single-user host.
"""
from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

_CRM_METHODS = ("/rating400.v1.BillingService/ListCallers", "/rating400.v1.BillingService/UpdateCaller",
                "/rating400.v1.BillingService/ExportCallers")
# role -> method prefixes it may call. One table: extend it here.
ROLES: dict[str, tuple[str, ...]] = {
    "softswitch": ("/rating400.v1.RoutingService/",),
    "billing": ("/rating400.v1.RatingService/", "/rating400.v1.BillingService/", "/rating400.v1.ExplainService/"),
    "admin": ("/rating400.v1.CatalogAdminService/", "/rating400.v1.AccountService/",
              "/rating400.v1.RerateService/"),
    # The enterprise's people in the caller CRM: an agent sees caller numbers
    # masked (138****5678) and only reads; a supervisor sees them in full and
    # may also update (tags, notes, callbacks are addressed by the whole
    # number, so an update would tell a masked role who called).
    "agent": tuple(m for m in _CRM_METHODS if not m.endswith("/UpdateCaller")),
    "supervisor": _CRM_METHODS,
}
# Callable by anyone, credentials or not.
OPEN: tuple[str, ...] = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                         "/grpc.reflection.v1.ServerReflection/")


class AuthConfigError(ValueError):
    """A bad certificate, key or tokens file (the CLI exits 2 with it)."""


def roles_for(method: str) -> tuple[str, ...]:
    """The roles that may call ``method`` (``/pkg.Service/Method``)."""
    return tuple(sorted(r for r, prefixes in ROLES.items() if any(method.startswith(p) for p in prefixes)))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def read_tokens(path: str | Path) -> dict[bytes, frozenset[str]]:
    """A tokens file -> {sha256(token): roles}. Lines ``ROLE[,ROLE] TOKEN``;
    blank lines and ``#`` comments are skipped. Only digests are kept."""
    out: dict[bytes, frozenset[str]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AuthConfigError(f"{path}: cannot read tokens file: {e}") from None
    for no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise AuthConfigError(f"{path}:{no}: expected 'ROLE[,ROLE] TOKEN'")
        roles = frozenset(parts[0].split(","))
        unknown = roles - set(ROLES)
        if unknown:
            raise AuthConfigError(f"{path}:{no}: unknown role {sorted(unknown)[0]!r} (roles: {', '.join(ROLES)})")
        if len(parts[1]) < 16:
            raise AuthConfigError(f"{path}:{no}: token shorter than 16 characters")
        out[_digest(parts[1])] = roles
    return out


@functools.lru_cache(maxsize=1024)
def cert_roles(pem: bytes) -> frozenset[str]:
    """Roles of a client certificate (PEM bytes, as gRPC's auth context
    ``x509_pem_cert`` gives it): the values of its subject's OU
    (organizationalUnitName) attributes that name a role; empty for a
    certificate that cannot be parsed.

    The subject is read as the certificate encodes it (``cryptography``'s
    parsed ``x509.Name``), never from its RFC 2253 text: in that text a
    value may hold an escaped ``\\,OU=admin`` (a CN or O the CA signed as
    one value), which a pattern over the string took for a role. Cached by
    the certificate's bytes: a client sends the same one on every call.
    """
    try:
        subject = x509.load_pem_x509_certificate(pem).subject
    except ValueError:
        return frozenset()
    values = {a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)}
    return frozenset(v for v in values if isinstance(v, str)) & set(ROLES)


@dataclass
class Auth:
    """The server's credentials and the identity check.

    tls_cert/tls_key: PEM files of the server's certificate chain and key.
    client_ca: PEM file of the CA whose client certificates are accepted
    (mutual TLS: every client must present one; a client without it fails
    the TLS handshake, which gRPC reports as UNAVAILABLE).
    tokens: the tokens file (see ``read_tokens``).
    """

    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    tokens_file: str | None = None
    tokens: dict = field(default_factory=dict, repr=False)
    local_admin: bool = False  # without identities, admin methods are open to local callers too

    def __post_init__(self):
        if bool(self.tls_cert) != bool(self.tls_key):
            raise AuthConfigError("--tls-cert and --tls-key go together")
        if self.client_ca and not self.tls_cert:
            raise AuthConfigError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)")
        if self.tokens_file and not self.tls_cert:
            raise AuthConfigError("--tokens needs --tls-cert and --tls-key (a bearer token sent in clear "
                                  "text can be replayed by anyone who sees it)")
        for name in ("tls_cert", "tls_key", "client_ca"):
            p = getattr(self, name)
            if p and not Path(p).is_file():
                raise AuthConfigError(f"{p}: no such file (--{name.replace('_', '-')})")
        if self.tokens_file and not self.tokens:
            self.tokens = read_tokens(self.tokens_file)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def checks_identity(self) -> bool:
        return bool(self.client_ca or self.tokens_file)

    def server_credentials(self) -> grpc.ServerCredentials | None:
        if not self.tls:
            return None
        chain = Path(self.tls_cert).read_bytes()  # type: ignore[arg-type]
        key = Path(self.tls_key).read_bytes()  # type: ignore[arg-type]
        ca = Path(self.client_ca).read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials(
            # gRPC either demands a client certificate or never asks for one:
            # with a client CA every client presents one (tokens may add roles).
            [(key, chain)], root_certificates=ca, require_client_auth=bool(ca))

    def guard(self, method: str, handler):
        """``handler`` (a ``grpc.RpcMethodHandler``) for ``method``
        (``/pkg.Service/Method``) with this server's check run before it, or
        ``handler`` itself when the method needs none (``OPEN``; without
        identities, every method but the admin-only ones).

        The check is put in front of each handler once, when it is
        registered (``services.register``), not by a ``grpc.aio`` server
        interceptor: an interceptor is a coroutine awaited on every call of
        every method, the call path's included, which cost the unary
        ``Authorize`` measurable throughput (benchmarks/bench_service.py).
        Deny by default holds: a method no role lists gets a check that
        refuses everyone.
        """
        if method.startswith(OPEN):
            return handler
        need = roles_for(method)
        if self.checks_identity:
            return _guarded(handler, self._role_check(method, need))
        if self.local_admin or need not in (("admin",), ()):
            return handler
        return _guarded(handler, _admin_refusal(method))

    def _role_check(self, method: str, need: tuple[str, ...]):
        wanted = frozenset(need)

        async def check(context) -> None:
            roles, problem = self.identify(context, context.invocation_metadata())
            if problem:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)
            if not roles & wanted:
                have = ", ".join(sorted(roles)) or "no role"
                needed = " or ".join(need) or "a role no one has (not in the server's role table)"
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method}: needs {needed}; caller has {have}")
            _CALLER_ROLES.set(roles)

        return check

    def identify(self, context, metadata) -> tuple[frozenset[str], str | None]:
        """(roles, problem): the caller's roles, or why it is unauthenticated."""
        roles: frozenset[str] = frozenset()
        known = False
        if self.client_ca:
            ac = context.auth_context()
            pem = b"".join(ac.get("x509_pem_cert", ()))
            if pem:
                roles |= cert_roles(pem)
                known = True
        token = None
        for k, v in metadata or ():
            if k == "authorization":
                token = v if isinstance(v, str) else v.decode("latin-1")
        if token is not None:
            if not token.startswith("Bearer ") or not self.tokens:
                return frozenset(), "authorization metadata must be 'Bearer TOKEN'"
            given = _digest(token[len("Bearer "):].strip())
            match = next((r for d, r in self.tokens.items() if hmac.compare_digest(d, given)), None)
            if match is None:
                return frozenset(), "unknown bearer token"
            roles |= match
            known = True
        if not known:
            return frozenset(), "no credentials: give a client certificate or 'authorization: Bearer TOKEN'"
        return roles, None


# The roles of the identity the current call was checked with (set by
# ``Auth.guard``'s check in the call's own task, before its handler runs; empty
# when the server checks no identity). Handlers read it with
# ``caller_roles()`` to decide what the caller may see, e.g. unmasked caller
# numbers; only an authenticated role counts, never one a client claims.
_CALLER_ROLES: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("rating400_caller_roles",
                                                                               default=frozenset())


def caller_roles() -> frozenset[str]:
    """The authenticated roles of the gRPC call being handled (empty: none)."""
    return _CALLER_ROLES.get()


def _admin_refusal(method: str):
    """On a server that checks no identity: the check that refuses a method
    only ``admin`` may call (UNAUTHENTICATED, naming the way to allow it)."""

    async def check(context) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, (
            f"{method}: reading or changing accounts, balances or tariffs needs an identity with the admin role: "
            "serve with "
            "--tls-cert/--tls-key and --tokens or --tls-client-ca (or --local-admin on a single-user host)"))

    return check


def _guarded(handler, check):
    """``handler`` with ``check(context)`` run first, for any of the four kinds."""
    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def uu(request, context):
            await check(context)
            return await inner_uu(request, context)

        return handler._replace(unary_unary=uu)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def su(requests, context):
            await check(context)
            return await inner_su(requests, context)

        return handler._replace(stream_unary=su)
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def us(request, context):
            await check(context)
            async for r in inner_us(request, context):
                yield r

        return handler._replace(unary_stream=us)
    inner_ss = handler.stream_stream

    async def ss(requests, context):
        await check(context)
        async for r in inner_ss(requests, context):
            yield r

    return handler._replace(stream_stream=ss)


def is_loopback(host: str) -> bool:
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: Auth, allow_insecure: bool) -> str | None:
    """Why binding ``host`` with ``auth`` is refused (None: allowed): a
    non-loopback address without TLS, or without any identity check, needs
    ``--allow-insecure``."""
    if is_loopback(host) or allow_insecure:
        return None
    if not auth.tls:
        return (f"{host} is not a loopback address: serving it without TLS needs --tls-cert/--tls-key "
                "(or --allow-insecure, to accept that anyone who reaches the port can change tariffs)")
    if not auth.checks_identity:
        return (f"{host} is not a loopback address: without --tls-client-ca or --tokens anyone who reaches "
                "the port could compile and activate catalogs (or --allow-insecure)")
    return None
