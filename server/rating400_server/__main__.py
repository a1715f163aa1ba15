"""python -m rating400_server --store DIR --port N [--workers K] [--metrics-port M]"""
from __future__ import annotations

import argparse
import sys

from rating_core.cdr import Limits

from .auth import Auth, AuthConfigError
from .main import serve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rating400_server", description="Rating400 gRPC service")
    ap.add_argument("--store", required=True, help="catalog store directory (snapshots + ledger)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    ap.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    ap.add_argument("--metrics-port", type=int, default=None,
                    help="Prometheus endpoint port (merged over workers); 0 picks a free port")
    ap.add_argument("--grace", type=float, default=10.0, help="seconds to drain in-flight RPCs on SIGTERM")
    ap.add_argument("--refresh-interval", type=float, default=0.1,
                    help="seconds between checks for a newly activated catalog version")
    ap.add_argument("--ready-file", default=None, help="write JSON {port, metrics_port, ...} when serving")
    ap.add_argument("--log-level", default="INFO")
    ap.add_argument("--tls-cert", help="server certificate chain (PEM): serve TLS")
    ap.add_argument("--tls-key", help="server private key (PEM)")
    ap.add_argument("--tls-client-ca", help="CA of client certificates (PEM): mutual TLS, roles from OU")
    ap.add_argument("--tokens", help="bearer tokens file: lines 'ROLE[,ROLE] TOKEN'")
    ap.add_argument("--allow-insecure", action="store_true",
                    help="serve a non-loopback address without TLS and roles")
    ap.add_argument("--local-admin", action="store_true",
                    help="without TLS identities, let local callers use admin methods (single-user host)")
    ap.add_argument("--catalog-root", help="Compile may read catalogs by path under this directory only")
    ap.add_argument("--max-message-mb", type=int, default=64, help="largest request message (MiB)")
    ap.add_argument("--max-batch-rows", type=int, default=262_144, help="most CDRs in one batch")
    ap.add_argument("--max-dry-stream-calls", type=int, default=2_000_000,
                    help="most distinct call ids one dry RateCdrBatches stream rates")
    a = ap.parse_args(argv)
    try:
        auth = Auth(a.tls_cert, a.tls_key, a.tls_client_ca, a.tokens, local_admin=a.local_admin)
    except AuthConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limits = Limits(max_message_bytes=a.max_message_mb << 20, max_batch_rows=a.max_batch_rows,
                    max_dry_stream_calls=a.max_dry_stream_calls)
    return serve(a.store, a.host, a.port, a.workers, metrics_port=a.metrics_port, grace=a.grace,
                 refresh_interval=a.refresh_interval,
                 log_level=a.log_level, ready_file=a.ready_file, limits=limits, auth=auth,
                 allow_insecure=a.allow_insecure, catalog_root=a.catalog_root)


if __name__ == "__main__":
    sys.exit(main())
