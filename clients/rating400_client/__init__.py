"""Python client for the Rating400 gRPC service (contract: ``rating400.v1``).

    from rating400_client import Client
    with Client("localhost:50051", timeout=2.0) as client:
        decision = client.authorize("4008123456", "13812345678")
        rated = client.rate_cdr({"call_id": "c1", "caller": "13812345678", "number": "4008123456",
                                 "forwarded_to": "02088886666", "start": "2024-03-01T09:00:00+08:00",
                                 "agent_answer": "2024-03-01T09:00:07+08:00",
                                 "end": "2024-03-01T09:03:10+08:00"})
        result = client.rate_table(arrow_table, batch_size=8192)   # streaming RPC

A server with TLS and roles: ``Client("rating.example:50051",
credentials=credentials(ca="ca.crt", cert="billing.crt", key="billing.key"))``
(mutual TLS) or ``credentials(ca="ca.crt", token="...")`` (bearer token).

``AsyncClient`` has the same methods, awaitable. Depends on the contract
package only, never on rating_core.
"""
from ._common import BatchResult, TableResult
from ._credentials import credentials
from ._retry import NO_RETRY, DeadlineExceeded, RetryPolicy
from .aio import AsyncClient
from .sync import Client

__all__ = ["credentials", "Client", "AsyncClient", "RetryPolicy", "NO_RETRY", "DeadlineExceeded", "BatchResult", "TableResult"]
