"""Channel and stub handling shared by the blocking and asyncio clients."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from rating400.v1 import accounts_pb2_grpc, billing_pb2_grpc, catalog_pb2_grpc, rating_pb2_grpc, routing_pb2_grpc

from ._common import DEFAULT_OPTIONS
from ._retry import RetryPolicy


def _stubs(channel) -> dict[str, Any]:
    return {"routing": routing_pb2_grpc.RoutingServiceStub(channel),
            "rating": rating_pb2_grpc.RatingServiceStub(channel),
            "catalog": catalog_pb2_grpc.CatalogAdminServiceStub(channel),
            "billing": billing_pb2_grpc.BillingServiceStub(channel),
            "accounts": accounts_pb2_grpc.AccountServiceStub(channel),
            "_health": health_pb2_grpc.HealthStub(channel)}


class ChannelOwner:
    """The channels of one client: the caller's, or ones it opens itself
    (one per retry policy in use, because gRPC takes a retry policy per
    channel, in its service config). ``_grpc`` is ``grpc`` or ``grpc.aio``:
    which kind of channel to open."""

    _grpc: ModuleType = grpc

    def __init__(self, target: str, *, timeout: float | None = 5.0, retry: RetryPolicy | None = None,
                 channel=None, options=None, credentials=None):
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._target, self._credentials, self._options = target, credentials, list(options or [])
        self._own_channel = channel is None
        if channel is None:
            channel = self._open(self.retry)
        self.channel = channel
        self._channels = {self.retry: channel}
        self._stubs: dict[RetryPolicy, dict[str, Any]] = {}
        stubs = _stubs(channel)
        self.routing, self.rating, self.catalog, self._health = (
            stubs["routing"], stubs["rating"], stubs["catalog"], stubs["_health"])
        self.billing, self.accounts = stubs["billing"], stubs["accounts"]

    def _open(self, policy: RetryPolicy):
        # The caller's options win: a key it gives is not set twice (gRPC
        # would take the first of two, not the caller's).
        given = {k for k, _ in self._options}
        opts = [o for o in list(DEFAULT_OPTIONS) + policy.channel_options() if o[0] not in given] + self._options
        if self._credentials:
            return self._grpc.secure_channel(self._target, self._credentials, options=opts)
        return self._grpc.insecure_channel(self._target, options=opts)

    def _stub(self, stub: str, policy: RetryPolicy):
        """The stub ``stub`` (routing, rating, catalog, billing, accounts, _health) on the
        channel of ``policy``: a call with another policy than the client's
        goes through a channel of its own, opened once."""
        if policy == self.retry or not self._own_channel:
            return getattr(self, stub)
        stubs = self._stubs.get(policy)
        if stubs is None:
            channel = self._channels[policy] = self._open(policy)
            stubs = self._stubs[policy] = _stubs(channel)
        return stubs[stub]

    def _all_channels(self) -> list:
        """Every distinct channel, to close."""
        return list({id(ch): ch for ch in [self.channel, *self._channels.values()]}.values())
