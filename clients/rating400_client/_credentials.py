"""Channel credentials: TLS, mutual TLS and bearer tokens, from files."""
from __future__ import annotations

from pathlib import Path

import grpc


def _read(path: str | Path | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def credentials(ca: str | Path | None = None, cert: str | Path | None = None, key: str | Path | None = None,
                token: str | None = None) -> grpc.ChannelCredentials:
    """Channel credentials for a TLS server.

    ca: PEM file of the CA that signed the server's certificate (None: the
    system's roots). cert/key: this client's certificate and key (PEM) for
    mutual TLS; the server takes the client's roles from the certificate's
    OU. token: a bearer token (sent as ``authorization: Bearer TOKEN`` on
    every call; only over TLS). Raises OSError for an unreadable file.
    """
    if bool(cert) != bool(key):
        raise ValueError("cert and key go together")
    creds = grpc.ssl_channel_credentials(root_certificates=_read(ca), private_key=_read(key),
                                         certificate_chain=_read(cert))
    if token:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return creds
