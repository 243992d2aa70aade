"""The mutation rate limit (MUTATION_RATE_LIMIT): a token bucket per principal, or per
client address where the API is open, in this process's memory (each API process counts
its own). A mutation over the limit is a RATE_LIMITED error, answered with HTTP 429 and
Retry-After (app/server.py)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from schema.errors import RequestError

MAX_TRACKED_KEYS = 100_000  # the least recently seen are forgotten first (a full bucket)


class RateLimited(RequestError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.extensions = {"code": self.code, "retryAfterSeconds": retry_after_seconds}


class RateLimiter:
    """`per_minute` mutations per key, in bursts of up to as many; None or 0: no limit."""

    def __init__(
        self, per_minute: int | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute or 0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: str) -> None:
        """Count one mutation of `key`; RateLimited when its bucket is empty."""
        if not self.per_minute:
            return
        now = self._clock()
        rate = self.per_minute / 60.0
        tokens, at = self._buckets.pop(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        if tokens < 1.0:
            self._remember(key, tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / rate))
            raise RateLimited(
                f"too many mutations: at most {self.per_minute} a minute; try again in {wait} s",
                wait,
            )
        self._remember(key, tokens - 1.0, now)

    def _remember(self, key: str, tokens: float, at: float) -> None:
        self._buckets[key] = (tokens, at)
        if len(self._buckets) > MAX_TRACKED_KEYS:
            self._buckets.popitem(last=False)
