"""The mutation rate limit's token bucket, on a clock the test moves."""

from __future__ import annotations

import pytest

from schema.rate_limit import RateLimited, RateLimiter


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_passes_then_the_next_waits_for_a_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # one a second
    for _ in range(60):
        limiter.take("user:a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("user:a")
    assert refused.value.extensions == {"code": "RATE_LIMITED", "retryAfterSeconds": 1}
    limiter.take("user:b")  # every key has its own bucket
    clock.now += 1.0
    limiter.take("user:a")
    with pytest.raises(RateLimited):
        limiter.take("user:a")


def test_retry_after_says_how_long_the_next_token_takes() -> None:
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)  # one every 10 s
    for _ in range(6):
        limiter.take("k")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k")
    assert refused.value.extensions["retryAfterSeconds"] == 10
    clock.now += 4
    with pytest.raises(RateLimited) as later:
        limiter.take("k")
    assert later.value.extensions["retryAfterSeconds"] == 6


@pytest.mark.parametrize("off", [None, 0])
def test_no_limit_set_means_no_limit(off: int | None) -> None:
    limiter = RateLimiter(off, clock=Clock())
    for _ in range(10_000):
        limiter.take("k")
