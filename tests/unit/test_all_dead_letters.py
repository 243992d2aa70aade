"""`deadLetters` as one list (read_model/service.py AllDeadLetters) on the in-memory
adapters: the projections' and the saga's letters merged in log order, paged under one
cursor, found and retried by id in either store; consistency tokens look at the projections'
letters only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from read_model.dead_letters import DeadLetters, Failure
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.service import ReadModel
from write_model.envelope import EventMetadata, LogPosition, RecordedEvent
from write_model.event_store.memory import InMemoryEventStore
from sagas.dead_letters.memory import InMemorySagaDeadLetters
from sagas.dead_letters.port import SagaLetter

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def recorded(stream_id: str, at: LogPosition) -> RecordedEvent:
    return RecordedEvent(
        uuid.uuid4(), stream_id, "OrderSubmitted", 1, at.position, at.transaction_id, NOW, {},
        EventMetadata("letters"),
    )  # fmt: skip


def saga_letter(stream_id: str, at: LogPosition) -> SagaLetter:
    return SagaLetter(
        "saga:fulfillment", stream_id.removeprefix("Order-"), str(uuid.uuid4()), stream_id, 1,
        at, "OrderSubmitted", "CompensationRefused: no", 4, NOW,
    )  # fmt: skip


async def given_letters(
    projection_at: list[int], saga_at: list[int]
) -> tuple[ReadModel, InMemorySagaDeadLetters]:
    documents, saga = InMemoryDocumentStore(), InMemorySagaDeadLetters()
    projection_failures = [
        Failure(recorded(f"Order-p{n}", LogPosition(n, n)), "KeyError: 'x'", 4)
        for n in projection_at
    ]
    await DeadLetters(documents).park("orders", 1, projection_failures)
    await saga.park([saga_letter(f"Order-s{n}", LogPosition(n, n)) for n in saga_at])
    reader = ReadModel(
        documents,
        InMemoryEventStore(),
        wait_seconds=1.0,
        poll_seconds=0.01,
        version_ttl_seconds=1.0,
        saga_letters=saga,
    )
    return reader, saga


def streams(page: list[dict[str, Any]]) -> list[str]:
    return [letter["streamId"] for letter in page]


async def test_both_lists_are_merged_in_log_order_and_paged_under_one_cursor() -> None:
    reader, _ = await given_letters(projection_at=[1, 4, 5], saga_at=[2, 3, 6])
    letters = reader.dead_letters

    first = await letters.page(2)
    second = await letters.page(2, [first[-1]["_pos"], first[-1]["_id"]])
    third = await letters.page(2, [second[-1]["_pos"], second[-1]["_id"]])
    rest = await letters.page(2, [third[-1]["_pos"], third[-1]["_id"]])

    assert [streams(first), streams(second), streams(third), rest] == [
        ["Order-p1", "Order-s2"],
        ["Order-s3", "Order-p4"],
        ["Order-p5", "Order-s6"],
        [],
    ]
    assert {letter["subscriber"] for letter in first} == {"orders", "saga:fulfillment"}


async def test_a_saga_letter_is_found_and_retried_by_its_id() -> None:
    reader, saga = await given_letters(projection_at=[1], saga_at=[2])
    [projection_letter, saga_letter_shown] = await reader.dead_letters.page(10)

    found = await reader.dead_letters.get(saga_letter_shown["_id"])
    assert found == saga_letter_shown
    assert found["error"] == "CompensationRefused: no" and found["attempts"] == 4
    assert found["position"] == "2" and found["failedAt"] == NOW
    assert await reader.dead_letters.request_retry(saga_letter_shown["_id"])
    assert await saga.retry_requested("saga:fulfillment") == ["s2"]
    assert await reader.dead_letters.request_retry(projection_letter["_id"])
    assert await reader.dead_letters.request_retry("saga:fulfillment:nope") is False


async def test_a_saga_letter_never_makes_a_consistency_token_read_stale() -> None:
    reader, _ = await given_letters(projection_at=[1], saga_at=[2])

    assert await reader.parked_letter("Order-s2", LogPosition(9, 9)) is None
    assert await reader.parked_letter("Order-p1", LogPosition(9, 9)) is not None
