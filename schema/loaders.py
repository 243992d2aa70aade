"""Per-request DataLoaders: every `customer`, `product` and `order` a query touches in one
tick of the event loop is fetched with one `$in` read (`DocumentStore.get_many`), and each
order's history with one read of the event store (`EventStore.read_streams`). The documents
come through the request's `ScopedReadModel`, so a batch never holds what its caller may not
read (someone else's order is None, as a missing one); histories are only loaded for orders
the caller already read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from read_model.document_store.port import Document
from read_model.projections.customers import CUSTOMERS
from read_model.projections.orders import ORDERS
from read_model.projections.products import PRODUCTS
from read_model.scoped import ScopedReadModel
from write_model.domain import order
from write_model.envelope import RecordedEvent
from write_model.event_store.port import EventStore
from write_model.stream_ids import stream_id

T = TypeVar("T")


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

    async def read_ahead(self, customer_ids: Iterable[str], product_ids: Iterable[str]) -> None:
        """Load these customers and products now, in one batch each, for the relations
        resolved next (`related`). A failed read stays in its loader, and the relation that
        needs it raises it (as it would have without reading ahead)."""
        loads = [*map(self.customers.load, customer_ids), *map(self.products.load, product_ids)]
        if loads:
            await asyncio.gather(*loads, return_exceptions=True)


def related(
    loader: DataLoader[str, Document | None], key: str, build: Callable[[Document], T]
) -> T | Awaitable[T | None] | None:
    """A relation's value: built at once from a document this request already read, else an
    awaitable of the loader's next batch. A resolver returning a value costs graphql-core
    no coroutine, no task and no await: per order line, most of what resolving it costs."""
    found = loader.cache_map.get(key) if loader.cache else None
    if found is not None and found.done() and not found.cancelled() and not found.exception():
        document = found.result()
        return None if document is None else build(document)
    return _build_when_loaded(loader, key, build)


async def _build_when_loaded(
    loader: DataLoader[str, Document | None], key: str, build: Callable[[Document], T]
) -> T | None:
    document = await loader.load(key)
    return None if document is None else build(document)


def selects(info: Info, path: Sequence[str]) -> bool:
    """Whether the field being resolved selects `path` (field names, through fragments and
    directives alike: a field skipped by @skip counts as selected, and is only read ahead)."""
    raw = info._raw_info
    fragments = raw.fragments

    def within(selection_set: SelectionSetNode | None, rest: Sequence[str]) -> bool:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if selection.name.value == rest[0] and (
                    len(rest) == 1 or within(selection.selection_set, rest[1:])
                ):
                    return True
            elif isinstance(selection, InlineFragmentNode):
                if within(selection.selection_set, rest):
                    return True
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None and within(fragment.selection_set, rest):
                    return True
        return False

    return any(within(node.selection_set, path) for node in raw.field_nodes)
