"""Play domain events through a projection the way the projector runner does, in memory.

h = ProjectionHarness(OrdersProjection())
h.given(("Customer-c1", CustomerRegistered("c1", "Ada", "ada@example.com")))
h.when(("Order-o1", OrderCreated("o1", "c1", Decimal("0.10"))))
assert h.doc("orders", "o1")["customerName"] == "Ada"

Each event is serialized with the event registry and read back (as the runner does), given
the next version of its stream, the next log position and a clock one minute later. Per
event: load `reads`, compute `keys(event, view)`, evolve each key in order (checking that
the input document is left unchanged), then apply the `effects` to the documents in memory.
Per batch (one event unless `batch_size` says more): the evolved documents are put, then
the effects are applied in order, as the document store's `bulk_write` does.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from read_model.document_store.port import POSITION_FIELD, Document, UpdateMany, position_key
from read_model.document_store.rules import apply_set, matches
from read_model.projections.base import DocKey, ProjectedEvent, Projection
from write_model.envelope import EventMetadata, LogPosition, RecordedEvent
from write_model.event_types import build_registry

T0 = datetime(2025, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=1)

Played = tuple[str, Any]  # (stream id, domain event)

_REGISTRY = build_registry()


def at(position: int) -> datetime:
    """When the event at log position `position` (1-based) occurred."""
    return T0 + STEP * position


class ProjectionHarness:
    def __init__(self, projection: Projection, *, batch_size: int = 1) -> None:
        self.projection = projection
        self.batch_size = batch_size
        self.store: dict[DocKey, Document] = {}
        self.recorded: list[RecordedEvent] = []
        self._versions: dict[str, int] = {}

    # ------------------------------------------------------------- given / when

    def given(self, *events: Played) -> ProjectionHarness:
        return self.play(events)

    def when(self, *events: Played) -> ProjectionHarness:
        return self.play(events)

    def play(self, events: Iterable[Played]) -> ProjectionHarness:
        pending = [self.record(stream_id, event) for stream_id, event in events]
        for start in range(0, len(pending), self.batch_size):
            self._apply_batch(pending[start : start + self.batch_size])
        return self

    # ------------------------------------------------------------------- then

    def doc(self, collection: str, document_id: str) -> Document | None:
        """The stored document without the runner's `_pos`."""
        found = self.store.get(DocKey(collection, document_id))
        return None if found is None else _without_position(found)

    def docs(self, collection: str) -> dict[str, Document]:
        return {
            key.id: _without_position(doc)
            for key, doc in sorted(self.store.items())
            if key.collection == collection
        }

    @property
    def last(self) -> RecordedEvent:
        return self.recorded[-1]

    # ---------------------------------------------------------------- recording

    def record(self, stream_id: str, event: Any) -> RecordedEvent:
        type_name, data, schema_version = _REGISTRY.serialize(event)
        version = self._versions.get(stream_id, 0) + 1
        self._versions[stream_id] = version
        position = len(self.recorded) + 1
        recorded = RecordedEvent(
            event_id=uuid.UUID(int=position),
            stream_id=stream_id,
            type=type_name,
            version=version,
            position=position,
            transaction_id=position,
            occurred_at=at(position),
            data=data,
            metadata=EventMetadata(correlation_id=f"c{position}", schema_version=schema_version),
        )
        self.recorded.append(recorded)
        return recorded

    # ---------------------------------------------------------------- the runner

    def _apply_batch(self, batch: list[RecordedEvent]) -> None:
        working: dict[DocKey, Document | None] = dict(self.store)
        changed: set[DocKey] = set()
        updates: list[UpdateMany] = []
        for recorded in batch:
            if not self.projection.handles(recorded.type):
                continue
            event = projected(recorded)
            view: dict[DocKey, Document | None] = {
                key: working.get(key) for key in self.projection.reads(event)
            }
            keys = self.projection.keys(event, MappingProxyType(view))
            for key in keys:
                view[key] = working.get(key)
            for key in keys:
                doc = view[key]
                before = copy.deepcopy(doc)
                evolved = self.projection.evolve(key, doc, event, MappingProxyType(view))
                assert doc == before, f"evolve changed its input document {key}"
                if evolved is not None:
                    evolved = {**evolved, "_id": key.id, POSITION_FIELD: event.position_key}
                view[key] = working[key] = evolved
                changed.add(key)
            for update in self.projection.effects(event):
                updates.append(update)
                _apply_update(working, update)
        for key in changed:
            doc = working[key]
            if doc is None:
                self.store.pop(key, None)
            else:
                self.store[key] = doc
        for update in updates:
            _apply_update(self.store, update)


def projected(recorded: RecordedEvent) -> ProjectedEvent:
    """The event as the runner hands it to a projection: upcast and deserialized."""
    event = _REGISTRY.deserialize(recorded.type, recorded.data, recorded.metadata.schema_version)
    return ProjectedEvent(
        recorded, event, position_key(LogPosition(recorded.transaction_id, recorded.position))
    )


def _apply_update(docs: dict[DocKey, Any], update: UpdateMany) -> None:
    """The update as the document stores apply it (read_model/document_store/rules.py)."""
    for key, doc in list(docs.items()):
        if key.collection == update.collection and doc is not None and matches(doc, update.filter):
            docs[key] = apply_set(update.collection, doc, update.set)


def _without_position(doc: Document) -> Document:
    return {field: value for field, value in doc.items() if field != POSITION_FIELD}
