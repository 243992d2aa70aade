"""AnnouncingEventStore: every append that adds events is announced once, with its result
(in `orders dev` that wakes the in-process projector and saga, whoever appended)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from write_model.envelope import AppendResult, EventMetadata, NewEvent
from write_model.event_store.announcing import AnnouncingEventStore
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import (
    NO_STREAM,
    IdempotencyKey,
    StreamAppend,
    WrongExpectedVersion,
)


def happened() -> NewEvent:
    return NewEvent(
        uuid.uuid4(), "ThingHappened", {}, EventMetadata(correlation_id="c"), datetime.now(UTC)
    )


async def test_each_append_that_adds_events_is_announced_with_its_result() -> None:
    announced: list[AppendResult] = []
    store = AnnouncingEventStore(InMemoryEventStore(), [announced.append])

    first = await store.append_to_stream("Thing-1", "Thing", NO_STREAM, [happened()])
    second = await store.append_to_stream("Thing-1", "Thing", 1, [happened(), happened()])

    assert announced == [first, second]
    assert second.version == 3


async def test_a_refused_or_empty_append_is_not_announced() -> None:
    announced: list[AppendResult] = []
    store = AnnouncingEventStore(InMemoryEventStore(), [announced.append])
    await store.append_to_stream("Thing-1", "Thing", NO_STREAM, [happened()])
    announced.clear()

    with pytest.raises(WrongExpectedVersion):
        await store.append_to_stream("Thing-1", "Thing", 5, [happened()])
    key = (IdempotencyKey("k-1", "test"), "fingerprint")
    await store.append_to_stream("Thing-1", "Thing", 1, [], idempotency=key)

    assert announced == []
    assert await store.stream_version("Thing-1") == 1


async def test_an_append_to_several_streams_is_announced_once_covering_all() -> None:
    announced: list[AppendResult] = []
    store = AnnouncingEventStore(InMemoryEventStore(), [announced.append])

    results = await store.append_to_streams(
        [
            StreamAppend("Thing-1", "Thing", NO_STREAM, [happened(), happened()]),
            StreamAppend("Other-1", "Other", NO_STREAM, [happened()]),
        ]
    )
    with pytest.raises(WrongExpectedVersion):
        await store.append_to_streams(
            [
                StreamAppend("Thing-1", "Thing", 2, [happened()]),
                StreamAppend("Other-1", "Other", NO_STREAM, [happened()]),
            ]
        )

    assert announced == [results[1]]  # the later position: the whole append is behind it
    assert results[1].log_position > results[0].log_position
