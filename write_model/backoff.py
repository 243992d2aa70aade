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
    stop_after_delay,
    stop_any,
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
    within_seconds: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """Try again after an `on` error, waiting `delay`, at most `attempts` tries in all
    (None: no bound on tries) and, with `within_seconds`, no try after that many seconds
    since the first (the last wait is cut short so that one try falls at that moment);
    neither: until it succeeds. The last error is raised as it is. `before_sleep` sees
    each failed try before its wait (to log it). Use as
    `async for attempt in retrying(...): with attempt: ...`."""

    def wait(state: RetryCallState) -> float:
        seconds = delay(state.attempt_number, first_seconds, max_seconds)
        if within_seconds is None:
            return seconds
        return max(0.0, min(seconds, within_seconds - (state.seconds_since_start or 0.0)))

    stops = [
        *([stop_after_attempt(attempts)] if attempts is not None else []),
        *([stop_after_delay(within_seconds)] if within_seconds is not None else []),
    ]
    return AsyncRetrying(
        stop=stop_any(*stops) if stops else stop_never,
        wait=wait,
        retry=retry_if_exception_type(on),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep,
    )
