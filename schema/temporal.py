"""`orderAt`: an order as it was after a version or at an instant, folded from the event
store with the same projection code the projector runs (`OrdersProjection`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from read_model.document_store.port import Document, position_key
from read_model.projections.base import DocKey, ProjectedEvent
from read_model.projections.orders import ORDERS, OrdersProjection
from read_model.scoped import ScopedReadModel
from read_model.service import ReadModel
from schema.errors import BadRequest
from write_model import stream_ids
from write_model.domain import order
from write_model.envelope import RecordedEvent
from write_model.event_store.port import EventStore
from write_model.registry import EventTypeRegistry

_PROJECTION = OrdersProjection()


async def order_as_of(
    events: EventStore,
    registry: EventTypeRegistry,
    reader: ScopedReadModel,
    order_id: str,
    *,
    version: int | None = None,
    at: datetime | None = None,
) -> Document | None:
    """The order's document after `version`, or at instant `at` (None when the order did
    not exist yet). Exactly one is given; a `version` past the end is a BadRequest naming
    the last one. Someone else's order (`reader`'s principal may not read it) is None, as a
    missing one, before anything is said about its versions."""
    stream_id = stream_ids.stream_id(order.STREAM_TYPE, order_id)
    if version is not None:
        recorded = await events.read_stream(stream_id, to_version=version)
        if not recorded or not reader.may_read_order_of(order_customer(recorded)):
            return None  # no such order (or not the caller's): null, like `order`
        if len(recorded) < version:
            # Said only once the order was found and the caller may read it, so it never
            # tells whether someone else's order exists.
            raise BadRequest(
                f"order {order_id} has no version {version}: its last version is "
                f"{recorded[-1].version}"
            )
    else:
        assert at is not None
        everything = await events.read_stream(stream_id)
        if everything and not reader.may_read_order_of(order_customer(everything)):
            return None
        recorded = [e for e in everything if e.occurred_at <= at]
    # The projection's lookups (the customer's name) read as the projector does.
    return await fold(recorded, registry, reader.unscoped)


def order_customer(recorded: Sequence[RecordedEvent]) -> str | None:
    """The customer an order's stream belongs to: its first event (OrderCreated) says."""
    customer_id = recorded[0].data.get("customerId") if recorded else None
    return customer_id if isinstance(customer_id, str) else None


async def fold(
    recorded: Sequence[RecordedEvent], registry: EventTypeRegistry, read_model: ReadModel
) -> Document | None:
    """Apply the events to an empty order document. The lookup documents the projection
    reads (the customer's name) are today's, from the read model."""
    projected = [
        ProjectedEvent(
            event,
            registry.deserialize(event.type, event.data, event.metadata.schema_version),
            position_key(event.log_position),
        )
        for event in recorded
        if _PROJECTION.handles(event.type)
    ]
    view: dict[DocKey, Document | None] = {}
    wanted: dict[str, list[str]] = {}
    for event in projected:
        for key in _PROJECTION.reads(event):
            wanted.setdefault(key.collection, []).append(key.id)
    for logical, ids in wanted.items():
        found = await read_model.get_many(logical, ids)
        view.update({DocKey(logical, i): found.get(i) for i in ids})
    doc: Document | None = None
    for event in projected:
        for key in _PROJECTION.keys(event, view):
            if key.collection == ORDERS:
                doc = _PROJECTION.evolve(key, doc, event, view)
    return doc
