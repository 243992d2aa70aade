"""The relay's source: a full batch (N) is handed at once; a short one at once after a quiet
spell, else T after the previous batch with everything appended meanwhile; after a full
batch the next one, as the shared reader reads it ahead, is handed to `prepare` (encoded)
before the relay asks for it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from log_follower.source.shared import SharedReader
from messaging.relay_source import RelaySource
from write_model.envelope import EventMetadata, LogPosition, NewEvent, RecordedEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import ANY

LINGER = 0.02


class Clock:
    """Time that passes only when the source sleeps; what it slept, and reads meanwhile."""

    def __init__(self, events: InMemoryEventStore) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.appended_while_asleep = 0
        self._events = events

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await _append(self._events, self.appended_while_asleep)


class CountingSource(LogSource):
    def __init__(self, events: InMemoryEventStore) -> None:
        super().__init__(events, InProcessLeaderLock(), InProcessAppendSignal())
        self.reads: list[LogPosition] = []

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        self.reads.append(after)
        return await super().read(after, limit)


async def _append(events: InMemoryEventStore, count: int) -> None:
    for _ in range(count):
        await events.append_to_stream(
            f"Customer-{uuid.uuid4()}",
            "Customer",
            ANY,
            [NewEvent(uuid.uuid4(), "CustomerRenamed", {}, EventMetadata("c"), datetime.now(UTC))],
        )


class Prepared(list[list[int]]):
    """The positions of each batch handed to `prepare`, and an event set at each."""

    def __init__(self) -> None:
        super().__init__()
        self.handed = asyncio.Event()

    async def next(self) -> list[int]:
        async with asyncio.timeout(5):
            await self.handed.wait()
        self.handed.clear()
        return self[-1]


def _source(
    prepared: Prepared | None = None,
) -> tuple[InMemoryEventStore, CountingSource, Clock, RelaySource]:
    events = InMemoryEventStore()
    inner = CountingSource(events)
    clock = Clock(events)

    def prepare(batch: Sequence[RecordedEvent]) -> None:
        if prepared is not None:
            prepared.append([event.position for event in batch])
            prepared.handed.set()

    # As in the relay process: in front of the process's shared reader.
    shared = SharedReader(inner)
    source = RelaySource(shared, LINGER, clock=clock, sleep=clock.sleep, prepare=prepare)
    return events, inner, clock, source


async def test_after_a_quiet_spell_a_short_batch_is_handed_at_once() -> None:
    events, _, clock, source = _source()
    assert await source.read(LogPosition.start(), 100) == []
    await _append(events, 1)
    first = await source.read(LogPosition.start(), 100)
    assert len(first) == 1 and clock.slept == []
    clock.now += LINGER  # quiet for T: the next one goes at once too
    await _append(events, 2)
    assert len(await source.read(first[-1].log_position, 100)) == 2
    assert clock.slept == []


async def test_a_short_batch_within_t_of_the_last_waits_and_takes_what_came_meanwhile() -> None:
    events, _, clock, source = _source()
    await _append(events, 1)
    first = await source.read(LogPosition.start(), 100)
    clock.now += LINGER / 4  # the first batch's transaction took T/4
    await _append(events, 2)
    clock.appended_while_asleep = 5
    batch = await source.read(first[-1].log_position, 100)
    assert clock.slept == [pytest.approx(LINGER * 3 / 4)]  # until T after the previous batch
    assert len(batch) == 7


async def test_a_full_batch_is_handed_at_once_and_the_next_one_encoded_ahead() -> None:
    prepared = Prepared()
    events, inner, clock, source = _source(prepared)
    await _append(events, 25)
    first = await source.read(LogPosition.start(), 10)
    assert len(first) == 10 and clock.slept == []
    # While the relay publishes a full batch, the next is read and encoded.
    assert await prepared.next() == list(range(11, 21))
    second = await source.read(first[-1].log_position, 10)
    assert await prepared.next() == list(range(21, 26))
    third = await source.read(second[-1].log_position, 10)
    assert [e.position for e in [*first, *second, *third]] == list(range(1, 26))
    assert prepared == [list(range(11, 21)), list(range(21, 26))]
    assert clock.slept == [pytest.approx(LINGER)]  # the short third batch came right after
    # Encoding ahead read nothing twice: the shared reader's read-ahead served both.
    assert inner.reads.count(first[-1].log_position) == 1
    await source.close()
