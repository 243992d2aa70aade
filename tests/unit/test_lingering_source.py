"""The relay's source lingers T after it first sees fewer events than a batch holds, so
appends arriving meanwhile go out in the same Kafka transaction; a full batch never waits."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from messaging.lingering_source import LingeringSource
from write_model.envelope import EventMetadata, LogPosition, NewEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import ANY


def _event() -> NewEvent:
    return NewEvent(
        uuid.uuid4(), "CustomerRenamed", {"name": "x"}, EventMetadata("c"), datetime.now(UTC)
    )


async def _append(events: InMemoryEventStore, count: int) -> None:
    for _ in range(count):
        await events.append_to_stream(f"Customer-{uuid.uuid4()}", "Customer", ANY, [_event()])


async def test_a_short_read_waits_and_takes_what_was_appended_meanwhile() -> None:
    events = InMemoryEventStore()
    source = LingeringSource(
        LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()), linger_seconds=0.2
    )
    await _append(events, 1)

    async def later() -> None:
        await asyncio.sleep(0.05)
        await _append(events, 3)

    appending = asyncio.create_task(later())
    batch = await source.read(LogPosition.start(), 100)
    await appending
    assert len(batch) == 4


async def test_a_full_batch_or_an_empty_log_does_not_wait() -> None:
    events = InMemoryEventStore()
    source = LingeringSource(
        LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()), linger_seconds=5
    )
    started = time.monotonic()
    assert await source.read(LogPosition.start(), 10) == []
    await _append(events, 10)
    assert len(await source.read(LogPosition.start(), 10)) == 10
    assert time.monotonic() - started < 5  # neither read lingered
