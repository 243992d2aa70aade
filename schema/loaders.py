"""Per-request DataLoaders: every `customer`, `product` and `order` a query touches in one
tick of the event loop is fetched with one `$in` read (`DocumentStore.get_many`), and each
order's history with one read of the event store (`EventStore.read_streams`). The documents
come through the request's `ScopedReadModel`, so a batch never holds what its caller may not
read (someone else's order is None, as a missing one); histories are only loaded for orders
the caller already read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from read_model.document_store.port import Document
from read_model.projections.customers import CUSTOMERS
from read_model.projections.orders import ORDERS
from read_model.projections.products import PRODUCTS
from read_model.scoped import ScopedReadModel
from write_model.domain import order
from write_model.envelope import RecordedEvent
from write_model.event_store.port import EventStore
from write_model.stream_ids import stream_id


def _documents_by_id(
    read_model: ScopedReadModel, logical: str
) -> Callable[[list[str]], Awaitable[Sequence[Document | None]]]:
    async def load(ids: list[str]) -> list[Document | None]:
        found = await read_model.get_many(logical, ids)
        return [found.get(document_id) for document_id in ids]

    return load


def _order_histories(
    events: EventStore,
) -> Callable[[list[str]], Awaitable[Sequence[list[RecordedEvent]]]]:
    async def load(order_ids: list[str]) -> list[list[RecordedEvent]]:
        stream_ids = [stream_id(order.STREAM_TYPE, order_id) for order_id in order_ids]
        found = await events.read_streams(stream_ids)
        return [found[stream_id] for stream_id in stream_ids]

    return load


@dataclass(frozen=True)
class Loaders:
    customers: DataLoader[str, Document | None]
    products: DataLoader[str, Document | None]
    orders: DataLoader[str, Document | None]
    order_histories: DataLoader[str, list[RecordedEvent]]

    @staticmethod
    def build(read_model: ScopedReadModel, events: EventStore) -> Loaders:
        return Loaders(
            customers=DataLoader(_documents_by_id(read_model, CUSTOMERS)),
            products=DataLoader(_documents_by_id(read_model, PRODUCTS)),
            orders=DataLoader(_documents_by_id(read_model, ORDERS)),
            order_histories=DataLoader(_order_histories(events)),
        )

    def clear_all(self) -> None:
        """Forget every cached document (after a consistency wait: they may be older)."""
        self.customers.clear_all()
        self.products.clear_all()
        self.orders.clear_all()
