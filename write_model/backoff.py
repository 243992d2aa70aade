"""The one backoff for retries: exponential, with full jitter, through tenacity.

Full jitter (each wait uniform between 0 and the exponential bound) because the usual
reason to retry here is a collision with other writers or processes doing the same thing:
spread out, they stop colliding. `retrying` is the loop itself; `jittered` the wait alone,
for a tenacity policy that needs other stop or retry conditions.

In the bottom layer (the write model) so that every layer above can use it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_random_exponential,
)
from tenacity.wait import wait_base

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


def jittered(first_seconds: float, max_seconds: float) -> wait_base:
    """The wait after the n-th failed try (n from 1): uniform in
    [0, min(first_seconds * 2**n, max_seconds)]."""
    return wait_random_exponential(multiplier=2 * first_seconds, max=max_seconds)


def retrying(
    on: ExceptionTypes,
    *,
    attempts: int | None,
    first_seconds: float,
    max_seconds: float,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> AsyncRetrying:
    """Try again after an `on` error, waiting `jittered(first_seconds, max_seconds)`, at
    most `attempts` tries in all (None: until it succeeds); the last error is raised as
    it is. Use as `async for attempt in retrying(...): with attempt: ...`."""
    return AsyncRetrying(
        stop=stop_after_attempt(attempts) if attempts is not None else stop_never,
        wait=jittered(first_seconds, max_seconds),
        retry=retry_if_exception_type(on),
        reraise=True,
        **({"sleep": sleep} if sleep is not None else {}),
    )
