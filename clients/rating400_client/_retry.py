"""Deadlines and retries with exponential backoff on UNAVAILABLE.

Unary calls are retried by gRPC itself, from the channel's service config
(``RetryPolicy.service_config``); the batch stream resends its unanswered
batches on a new stream by the same policy (``should_retry``, ``backoff``)."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

import grpc


@dataclass(frozen=True)
class RetryPolicy:
    """Retry an RPC that failed with one of ``retry_codes``.

    Backoff before attempt k (k = 1, 2, ...) is
    ``min(max_backoff, initial_backoff * multiplier ** (k - 1))`` scaled by a
    random factor in ``[1 - jitter, 1]``. Retries never outlive the call's
    overall deadline: each attempt gets the time that is left.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.2
    retry_codes: frozenset = field(default_factory=lambda: frozenset({grpc.StatusCode.UNAVAILABLE}))

    def service_config(self) -> str:
        """This policy as the channel's gRPC service config (JSON), so gRPC
        itself retries every unary call: attempts are capped at 5 by gRPC,
        its jitter is its own (each pause uniform in [0, backoff]), and every
        attempt stays within the call's deadline. A policy of one attempt
        retries nothing."""
        config: dict = {"name": [{}]}  # every method of every service
        if self.max_attempts > 1:
            config["retryPolicy"] = {
                "maxAttempts": min(5, self.max_attempts),
                "initialBackoff": f"{self.initial_backoff:.3f}s",
                "maxBackoff": f"{self.max_backoff:.3f}s",
                "backoffMultiplier": self.multiplier,
                "retryableStatusCodes": sorted(c.name for c in self.retry_codes),
            }
        return json.dumps({"methodConfig": [config]})

    def channel_options(self) -> list[tuple[str, object]]:
        """Channel options that make gRPC retry by this policy. Reconnects
        start at ``initial_backoff`` too, so a restarting server is found
        again within the retries, not after gRPC's default 1 s."""
        ms = max(1, int(self.initial_backoff * 1000))
        return [("grpc.enable_retries", 1), ("grpc.service_config", self.service_config()),
                ("grpc.initial_reconnect_backoff_ms", ms), ("grpc.min_reconnect_backoff_ms", ms),
                ("grpc.max_reconnect_backoff_ms", max(ms, int(self.max_backoff * 1000)))]

    def backoff(self, retry: int) -> float:
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return base * (1.0 - self.jitter * random.random())

    def should_retry(self, err: grpc.RpcError, attempt: int) -> bool:
        code = err.code() if hasattr(err, "code") else None
        return code in self.retry_codes and attempt < self.max_attempts


NO_RETRY = RetryPolicy(max_attempts=1)


class DeadlineExceeded(grpc.RpcError):
    """Raised locally when a call's deadline has passed before an attempt
    could start (gRPC may otherwise round a tiny remaining time up)."""

    def code(self):
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self):
        return "deadline exceeded before the attempt started"

    def __str__(self):
        return f"<DeadlineExceeded: {self.details()}>"


class Deadline:
    """An absolute deadline shared by every attempt of one call."""

    __slots__ = ("at",)

    def __init__(self, timeout: float | None):
        self.at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def attempt_timeout(self) -> float | None:
        """Time left for the next attempt; raises when none is left."""
        if self.at is None:
            return None
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        return left

    def allows(self, pause: float) -> bool:
        rem = self.remaining()
        return rem is None or rem > pause
