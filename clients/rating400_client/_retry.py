"""Deadlines and retries with exponential backoff on UNAVAILABLE."""
from __future__ import annotations

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
