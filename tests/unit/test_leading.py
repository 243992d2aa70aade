"""Leading a name until stopped (every follower of the log: projections, the saga)."""

from __future__ import annotations

import asyncio

from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.leader_lock.leading import lead_until_stopped


async def test_a_standby_stops_at_once_and_a_leader_finishes_its_step() -> None:
    lock = InProcessLeaderLock()
    stop = asyncio.Event()
    steps: list[str] = []

    async def lead() -> None:
        steps.append("leading")
        await stop.wait()
        await asyncio.sleep(0.05)  # the step in flight when stop came
        steps.append("finished its step")

    leader = asyncio.create_task(lead_until_stopped(lock, "projection x", stop, lead))
    await asyncio.sleep(0.05)
    standby = asyncio.create_task(lead_until_stopped(lock, "projection x", stop, lead))
    await asyncio.sleep(0.05)
    stop.set()

    await asyncio.wait_for(asyncio.gather(leader, standby), 2)
    assert steps == ["leading", "finished its step"], "only one led, and it was not cut off"


async def test_a_failure_to_lead_is_retried_until_it_leads() -> None:
    lock = InProcessLeaderLock()
    stop = asyncio.Event()
    tries: list[int] = []

    async def lead() -> None:
        tries.append(len(tries) + 1)
        if len(tries) < 3:
            raise ConnectionError("the lock's connection dropped")
        stop.set()

    await asyncio.wait_for(lead_until_stopped(lock, "saga", stop, lead), 10)
    assert tries == [1, 2, 3]
