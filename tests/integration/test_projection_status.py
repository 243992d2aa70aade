"""Projection status on real PostgreSQL: lag counts the events a projection has not applied,
even where positions alone would hide them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.port import Checkpoint
from read_model.status import projection_statuses
from tests.integration.read_side import own_postgres_database, postgres_store
from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store.port import NO_STREAM


def thing_happened() -> NewEvent:
    return NewEvent(
        uuid.uuid4(), "ThingHappened", {"n": 1}, EventMetadata("status"), datetime.now(UTC)
    )


async def test_lag_counts_an_event_with_a_lower_position_behind_the_checkpoint(
    unique: str,
) -> None:
    async with (
        own_postgres_database(f"status_{unique}") as dsn,
        postgres_store(dsn=dsn) as events,
    ):
        # Transaction A takes its transaction id first; B appends and commits; then A
        # appends. In log order A comes first, yet its position is the higher one.
        async with events.pool.acquire() as connection, connection.transaction():
            await connection.fetchval("SELECT pg_current_xact_id()")
            later = await events.append_to_stream("B-1", "B", NO_STREAM, [thing_happened()])
            first = await events.append_on(connection, "A-1", "A", NO_STREAM, [thing_happened()])
        assert first.log_position < later.log_position  # read in this order
        assert first.log_position.position > later.log_position.position

        documents = InMemoryDocumentStore()
        await documents.save_checkpoint(Checkpoint("orders", first.log_position))
        [status] = [s for s in await projection_statuses(events, documents) if s.name == "orders"]

        assert status.lag == 1
