"""A gRPC client process for tests/test_accounts_server_races.py: run as
``python race_client.py PLAN.json OUT.json``. PLAN holds ``target``, ``go``
(a file whose appearance starts the calls, so two processes overlap) and
``calls``: ``{"service": "accounts"|"catalog", "rpc": name, "request":
message name, "fields": {...}}``. Each call's outcome is written to OUT as
one dict: ``code`` (a grpc.StatusCode name), ``details``, ``reason`` (the
``rating400-reason`` trailer), and for an OperationResult ``replayed``,
``seq``, ``detail_json``, ``credit_minor`` (its balance's, or None)."""
from __future__ import annotations

import json
import os
import sys
import time

import grpc
from google.protobuf import json_format

from rating400.v1 import accounts_pb2, accounts_pb2_grpc, catalog_pb2, catalog_pb2_grpc


def main(plan_path: str, out_path: str) -> None:
    plan = json.load(open(plan_path, encoding="utf-8"))
    channel = grpc.insecure_channel(plan["target"])
    grpc.channel_ready_future(channel).result(timeout=30)
    stubs = {"accounts": (accounts_pb2_grpc.AccountServiceStub(channel), accounts_pb2),
             "catalog": (catalog_pb2_grpc.CatalogAdminServiceStub(channel), catalog_pb2)}
    deadline = time.monotonic() + 60
    while not os.path.exists(plan["go"]) and time.monotonic() < deadline:
        time.sleep(0.005)
    out = []
    for call in plan["calls"]:
        stub, module = stubs[call["service"]]
        request = json_format.ParseDict(call["fields"], getattr(module, call["request"])())
        row = {"rpc": call["rpc"], "fields": call["fields"], "code": "OK", "details": "", "reason": ""}
        try:
            r = getattr(stub, call["rpc"])(request, timeout=30)
        except grpc.RpcError as e:
            trailers = dict(e.trailing_metadata() or ())
            row.update(code=e.code().name, details=e.details() or "", reason=trailers.get("rating400-reason", ""))
        else:
            if isinstance(r, accounts_pb2.OperationResult):
                row.update(replayed=r.replayed, seq=r.seq, detail_json=r.detail_json,
                           credit_minor=r.balance.credit_minor if r.HasField("balance") else None)
        out.append(row)
    channel.close()
    json.dump(out, open(out_path, "w", encoding="utf-8"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
