"""The one backoff for retries: exponential, with full jitter.

Full jitter (each wait uniform between 0 and the exponential bound) because the usual
reason to retry here is a collision with other writers or processes doing the same thing:
spread out, they stop colliding. `delay` is the rule; `pause` sleeps it (for a hot loop,
such as decide-and-append's, where tenacity's bookkeeping on every try would cost more
than the append it guards); `retrying` is a tenacity loop waiting by the same rule.

In the bottom layer (the write model) so that every layer above can use it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
)

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


def delay(failures: int, first_seconds: float, max_seconds: float) -> float:
    """The wait after `failures` failed tries in a row (from 1): uniform in
    [0, min(first_seconds * 2**failures, max_seconds)]."""
    bound = max_seconds if failures >= 64 else min(first_seconds * 2**failures, max_seconds)
    return random.uniform(0, bound)


async def pause(failures: int, first_seconds: float, max_seconds: float) -> None:
    await asyncio.sleep(delay(failures, first_seconds, max_seconds))


def retrying(
    on: ExceptionTypes,
    *,
    attempts: int | None,
    first_seconds: float,
    max_seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """Try again after an `on` error, waiting `delay`, at most `attempts` tries in all
    (None: until it succeeds); the last error is raised as it is. Use as
    `async for attempt in retrying(...): with attempt: ...`."""

    def wait(state: RetryCallState) -> float:
        return delay(state.attempt_number, first_seconds, max_seconds)

    return AsyncRetrying(
        stop=stop_after_attempt(attempts) if attempts is not None else stop_never,
        wait=wait,
        retry=retry_if_exception_type(on),
        reraise=True,
        sleep=sleep,
    )
