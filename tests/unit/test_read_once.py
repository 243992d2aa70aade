"""Read and decode once per process: the three projections of a process, on one shared
reader and one DecodedEvents, read each full batch of the log once and decode each event
once, and project what they would alone; a short batch (the head as it was) is never handed
to a follower that asks after it was read."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.decoded import DecodedEvents
from log_follower.follower import FollowerSettings
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from log_follower.source.shared import SharedReader
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.projections import ALL_PROJECTIONS
from read_model.projector_process import ProjectorDependencies, projection_follower
from tests.projecting import follower_parts
from tests.unit.appending import REGISTRY, append
from write_model.domain.customer import CustomerRegistered
from write_model.domain.order import OrderCreated
from write_model.envelope import LogPosition
from write_model.event_store.memory import InMemoryEventStore


@dataclass
class CountingRegistry:
    """The registry, counting decodes per event type."""

    decodes: Counter[str] = field(default_factory=Counter)

    def deserialize(self, type_name: str, data: dict[str, Any], schema_version: int) -> Any:
        self.decodes[type_name] += 1
        return REGISTRY.deserialize(type_name, data, schema_version)


async def test_three_projections_read_each_batch_once_and_decode_each_event_once() -> None:
    events = InMemoryEventStore()
    await append(events, "Customer-c1", CustomerRegistered("c1", "Ada", "ada@example.com"))
    for n in range(5):
        await append(events, f"Order-o{n}", OrderCreated(f"o{n}", "c1", Decimal("0.10")))
    reader = SharedReader(LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()))
    registry = CountingRegistry()
    shared = InMemoryDocumentStore()
    deps = ProjectorDependencies(
        events,
        shared,
        REGISTRY,
        None,
        replace(follower_parts(events, settings=FollowerSettings(batch_size=3)), source=reader),
        decoded=DecodedEvents(registry),  # type: ignore[arg-type]
    )
    followers = [projection_follower(deps, projection, 1) for projection in ALL_PROJECTIONS]
    for follower in followers:
        while (await follower.step()).events_read:
            pass

    alone = InMemoryDocumentStore()
    for projection in ALL_PROJECTIONS:
        solo = projection_follower(
            ProjectorDependencies(events, alone, REGISTRY, None, follower_parts(events)),
            projection,
            1,
        )
        while (await solo.step()).events_read:
            pass

    # Two full batches once, the read-ahead after the second (empty), then one empty each.
    assert reader.reads == 3 + len(followers)
    assert registry.decodes == {"CustomerRegistered": 1, "OrderCreated": 5}
    for collection in ("orders_v1", "customers_v1"):
        assert await shared.count(collection, {}) == await alone.count(collection, {}) > 0
        assert (await shared.get(collection, "c1" if "customers" in collection else "o1")) == (
            await alone.get(collection, "c1" if "customers" in collection else "o1")
        )


async def test_a_short_batch_read_before_an_append_is_not_handed_to_a_later_reader() -> None:
    """Given a batch that reached the head, read by one follower; when an append wakes
    another follower at the same position; then it reads the new event too (a stale batch
    would leave it waiting for the next append with that event unread)."""
    events = InMemoryEventStore()
    await append(events, "Order-o1", OrderCreated("o1", "c1", Decimal("0.10")))
    reader = SharedReader(LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()))
    start = LogPosition.start()
    first = await reader.read(start, 500)
    await append(events, "Order-o2", OrderCreated("o2", "c1", Decimal("0.10")))

    second = await reader.read(start, 500)

    assert [e.stream_id for e in first] == ["Order-o1"]
    assert [e.stream_id for e in second] == ["Order-o1", "Order-o2"]


async def test_a_full_batch_is_read_once_for_every_follower_at_its_position() -> None:
    """Given a log longer than a batch; when two followers read the first batch, one after
    the other; then the source was read once and both got the same events."""
    events = InMemoryEventStore()
    for n in range(3):
        await append(events, f"Order-o{n}", OrderCreated(f"o{n}", "c1", Decimal("0.10")))
    reader = SharedReader(LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()))

    first = await reader.read(LogPosition.start(), 2)
    second = await reader.read(LogPosition.start(), 2)

    assert reader.reads == 1
    assert first == second and len(first) == 2


async def test_a_full_batch_starts_reading_the_next_one() -> None:
    """Given a log of two full batches; when a follower reads the first; then the second is
    read ahead, and handed to the follower when it asks for it."""
    events = InMemoryEventStore()
    for n in range(4):
        await append(events, f"Order-o{n}", OrderCreated(f"o{n}", "c1", Decimal("0.10")))
    reader = SharedReader(LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()))

    first = await reader.read(LogPosition.start(), 2)
    await asyncio.sleep(0)  # the read-ahead runs
    reads_before_asking = reader.reads
    second = await reader.read(first[-1].log_position, 2)
    await asyncio.sleep(0)

    assert reads_before_asking == 2
    assert reader.reads == 3, "the batch after the second (read ahead too), nothing else"
    assert [e.stream_id for e in first + list(second)] == [f"Order-o{n}" for n in range(4)]
