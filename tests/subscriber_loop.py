"""Running a follower (log_follower/follower.py) as a task in a test, and waiting for what
it does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from log_follower.follower import Follower


@contextlib.asynccontextmanager
async def subscriber_running(follower: Follower) -> AsyncIterator[None]:
    stop = asyncio.Event()
    loop = asyncio.create_task(follower.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 15.0) -> Any:
    """`check()`'s first truthy answer; fails when none comes within `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := await check()):
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)
    return found
