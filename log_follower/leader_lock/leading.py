"""Running as the leader of a name, for every follower of the log (each projection, the
saga): wait for the lock (standing by hot while another process holds it), run the work
while holding it, and lead again when leadership is lost. An outage at takeover, or of the
lock's connection, is retried with backoff for as long as it lasts: the process never dies
of one. Also the two waits every follower's loop needs, both cut short by `stop`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from log_follower.append_signal.port import AppendListener
from log_follower.leader_lock.port import LeaderLock
from write_model import backoff

log = logging.getLogger(__name__)

# The follower layer's retries (taking the lead, a failing batch): write_model/backoff's
# rule, from 0.1 s, at most 5 s.
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0


async def lead_until_stopped(
    lock: LeaderLock, name: str, stop: asyncio.Event, lead: Callable[[], Awaitable[None]]
) -> None:
    """Run `lead()` whenever this process leads `name`, until `stop` is set. `lead` returns
    when it notices lost leadership (`lock.lost(name)`) or `stop`; a stop while standing by
    ends the wait at once, a stop while leading lets `lead` finish its step."""
    failures = 0
    while not stop.is_set():
        leading = asyncio.Event()
        turn = asyncio.create_task(_lead_once(lock, name, lead, leading), name=f"lead {name}")
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({turn, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not turn.done() and not leading.is_set():
            turn.cancel()  # standing by: nothing to finish
        try:
            await turn
            failures = 0
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        except Exception as error:  # the lock's connection: down, or lost at takeover
            failures += 1
            delay = backoff.delay(failures, FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS)
            log.warning(
                "%s: cannot lead (%s: %s); retrying in %.1fs",
                name,
                type(error).__name__,
                error,
                delay,
            )
            await sleep_or_stop(stop, delay)


async def _lead_once(
    lock: LeaderLock, name: str, lead: Callable[[], Awaitable[None]], leading: asyncio.Event
) -> None:
    async with lock.hold(name):
        leading.set()
        await lead()


async def wait_for_append_or_stop(
    appended: AppendListener, stop: asyncio.Event, poll_seconds: float
) -> None:
    """Until something is appended, `poll_seconds` pass, or `stop` is set."""
    waiter = asyncio.create_task(appended.wait(poll_seconds))
    stopper = asyncio.create_task(stop.wait())
    _, pending = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return
