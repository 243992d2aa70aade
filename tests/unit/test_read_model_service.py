"""The read model as the API sees it, on the in-memory adapters: consistency waits."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from read_model.document_store.memory import InMemoryDocumentStore
from read_model.projections import ALL_PROJECTIONS
from read_model.service import ReadModel, ReadModelBehind
from tests.projecting import projection_runner
from tests.unit.appending import REGISTRY, append
from write_model.domain.customer import CustomerRegistered
from write_model.event_store.memory import InMemoryEventStore


@dataclass
class CountingStore:
    inner: InMemoryDocumentStore
    checkpoint_reads: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list_checkpoints(self) -> list[Any]:
        self.checkpoint_reads += 1
        return await self.inner.list_checkpoints()


def read_model(store: Any, events: InMemoryEventStore, wait_seconds: float = 5.0) -> ReadModel:
    return ReadModel(
        store, events, wait_seconds=wait_seconds, poll_seconds=0.02, version_ttl_seconds=1.0
    )


async def test_many_waiting_requests_share_one_reader_of_the_checkpoints() -> None:
    events, memory = InMemoryEventStore(), InMemoryDocumentStore()
    store = CountingStore(memory)
    service = read_model(store, events)
    await append(events, "Customer-c1", CustomerRegistered("c1", "Ada", "ada@example.com"))
    head = await events.head_position()

    started = time.monotonic()
    waiting = [asyncio.create_task(service.wait_for(head)) for _ in range(50)]
    await asyncio.sleep(0.3)
    assert not any(task.done() for task in waiting)
    for projection in ALL_PROJECTIONS:
        runner = projection_runner(projection, events, memory, REGISTRY)
        while (await runner.step()).events_read:
            pass
    service.checkpoints_moved()  # what the change feed says after a write
    await asyncio.wait_for(asyncio.gather(*waiting), 2)
    waited = time.monotonic() - started

    # About one read per poll interval while anyone waits, not one per waiter.
    assert store.checkpoint_reads <= waited / 0.02 + 5


async def test_a_wait_that_is_not_satisfied_in_time_says_where_the_projections_are() -> None:
    events, memory = InMemoryEventStore(), InMemoryDocumentStore()
    service = read_model(memory, events, wait_seconds=0.1)
    await append(events, "Customer-c1", CustomerRegistered("c1", "Ada", "ada@example.com"))

    with pytest.raises(ReadModelBehind, match=r"within 0.1 s \(customers at position 0"):
        await service.wait_for(await events.head_position())
