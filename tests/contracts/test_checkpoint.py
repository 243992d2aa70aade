"""Conformance suite of the Checkpoint port (log_follower/checkpoint/), run against every
adapter: memory, SQLite, PostgreSQL (beside the event store) and the projector's, beside its
documents in MongoDB (read_model/projection_checkpoint.py), and the relay's, in its Kafka
transactions (messaging/kafka_checkpoint.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from log_follower.checkpoint.port import Checkpoint, FollowerState, Progress
from read_model.projection_checkpoint import ProjectionCheckpoint
from tests.conftest import service_url
from tests.contracts.conftest import Stores
from tests.contracts.document_store_harness import mongo_document_store
from write_model.envelope import LogPosition


@contextlib.asynccontextmanager
async def kafka_checkpoint() -> AsyncIterator[Checkpoint]:
    """On the test broker, with a transactional.id and a checkpoint topic of its own."""
    from messaging.kafka_checkpoint import KafkaCheckpoint
    from messaging.kafka_config import client_config, producer_config
    from messaging.kafka_producer import TransactionalProducer
    from messaging.kafka_topics import TopicCreator

    servers, own = service_url("ORDERS_TEST_KAFKA"), uuid.uuid4().hex[:12]
    producer = TransactionalProducer(
        producer_config(servers, f"checkpoint-{own}", {}, timeout_seconds=10), timeout_seconds=10
    )
    topics = TopicCreator(client_config(servers, {}), partitions=1, replication_factor=1)
    await producer.start()
    try:
        yield KafkaCheckpoint(producer, topics, client_config(servers, {}), f"checkpoints-{own}")
    finally:
        await producer.close()


@pytest.fixture(
    params=[
        "stores",
        pytest.param("mongo", marks=pytest.mark.mongo),
        pytest.param("kafka", marks=pytest.mark.kafka),
    ]
)
async def checkpoint(
    request: pytest.FixtureRequest, saga_storage: Stores
) -> AsyncIterator[Checkpoint]:
    if request.param == "stores":
        yield saga_storage.followers.checkpoint
        return
    if request.param == "kafka":
        async with kafka_checkpoint() as adapter:
            yield adapter
        return
    async with mongo_document_store(service_url("MONGO_URL")) as harness:
        yield ProjectionCheckpoint(harness.store)


async def test_a_checkpoint_is_none_until_saved_then_the_last_save(
    checkpoint: Checkpoint, unique: str
) -> None:
    assert await checkpoint.load(unique) is None
    await checkpoint.save(unique, Progress(LogPosition(7, 12)))
    await checkpoint.save(unique, Progress(LogPosition(9, 30), FollowerState.CATCHING_UP))
    await checkpoint.save(f"{unique}-other", Progress(LogPosition(1, 1)))

    assert await checkpoint.load(unique) == LogPosition(9, 30)
    assert await checkpoint.load(f"{unique}-other") == LogPosition(1, 1)


async def test_a_failed_state_keeps_the_position(checkpoint: Checkpoint, unique: str) -> None:
    await checkpoint.save(unique, Progress(LogPosition(3, 4)))
    await checkpoint.save(
        unique, Progress(LogPosition(3, 4), FollowerState.FAILED, "ConnectionError: reset")
    )

    assert await checkpoint.load(unique) == LogPosition(3, 4)
