"""Per-request DataLoaders: every `customer`, `product` and `order` a query touches in one
tick of the event loop is fetched with one `$in` read (`DocumentStore.get_many`), and each
order's history with one read of the event store (`EventStore.read_streams`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from read_model.document_store.port import Document
from read_model.projections.customers import CUSTOMERS
from read_model.projections.orders import ORDERS
from read_model.projections.products import PRODUCTS
from schema.context import Services
from write_model.domain import order
from write_model.envelope import RecordedEvent
from write_model.stream_ids import stream_id


def _documents_by_id(
    services: Services, logical: str
) -> Callable[[list[str]], Awaitable[Sequence[Document | None]]]:
    async def load(ids: list[str]) -> list[Document | None]:
        found = await services.read_model.get_many(logical, ids)
        return [found.get(document_id) for document_id in ids]

    return load


def _order_histories(
    services: Services,
) -> Callable[[list[str]], Awaitable[Sequence[list[RecordedEvent]]]]:
    async def load(order_ids: list[str]) -> list[list[RecordedEvent]]:
        stream_ids = [stream_id(order.STREAM_TYPE, order_id) for order_id in order_ids]
        found = await services.events.read_streams(stream_ids)
        return [found[stream_id] for stream_id in stream_ids]

    return load


@dataclass(frozen=True)
class Loaders:
    customers: DataLoader[str, Document | None]
    products: DataLoader[str, Document | None]
    orders: DataLoader[str, Document | None]
    order_histories: DataLoader[str, list[RecordedEvent]]

    @staticmethod
    def build(services: Services) -> Loaders:
        return Loaders(
            customers=DataLoader(_documents_by_id(services, CUSTOMERS)),
            products=DataLoader(_documents_by_id(services, PRODUCTS)),
            orders=DataLoader(_documents_by_id(services, ORDERS)),
            order_histories=DataLoader(_order_histories(services)),
        )

    def clear_all(self) -> None:
        """Forget every cached document (after a consistency wait: they may be older)."""
        self.customers.clear_all()
        self.products.clear_all()
        self.orders.clear_all()
