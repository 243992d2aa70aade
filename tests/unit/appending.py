"""Events appended to an in-memory event store as the write side would append them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import ANY
from write_model.events import build_registry

REGISTRY = build_registry()


async def append(events: InMemoryEventStore, stream_id: str, *domain_events: object) -> None:
    new = []
    for event in domain_events:
        type_name, data, schema_version = REGISTRY.serialize(event)
        new.append(
            NewEvent(
                uuid.uuid4(),
                type_name,
                data,
                EventMetadata("runner-test", schema_version=schema_version),
                datetime.now(UTC),
            )
        )
    await events.append_to_stream(stream_id, stream_id.split("-")[0], ANY, new)
