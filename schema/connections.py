"""Relay-style connections over the read model: one generic `Connection[T]` (strawberry
names each use after its node type: `Connection[Order]` is the contract's
`OrderConnection`), filled one keyset page at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from read_model.document_store.port import Document
from read_model.scoped import ScopedReadModel
from schema.pagination import Ordering, page_size

T = TypeVar("T")


@strawberry.type(description="Where a page ends and whether more follow.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows this one.")
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor (pass it as after); null for an empty page."
    )


@strawberry.type(description="One element of a page and its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(
        description="Opaque position of this element; pass it as after to read what follows it."
    )
    node: T = strawberry.field(description="The element.")


@strawberry.type(
    description="One page of a list, Relay-style: ask for the next with after: pageInfo.endCursor."
)
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="This page's elements, in order.")
    page_info: PageInfo = strawberry.field(description="Where this page ends; whether more follow.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(
        description="How many elements the whole list has (all pages; counted only when asked)."
    )
    async def total_count(self) -> int:
        return await self.count()


async def connection(
    read_model: ScopedReadModel,
    logical: str,
    ordering: Ordering,
    filter: Mapping[str, Any],
    first: int | None,
    after: str | None,
    node: Callable[[Document], T],
) -> Connection[T]:
    """One page of `logical`'s documents matching `filter`, in `ordering`, as nodes; the
    total count is read only when the client asks for it."""
    size = page_size(first)
    seek = ordering.after(after)
    page = await read_model.find(logical, filter, ordering.keys, max(size, 1), seek)
    # `first: 0` reads one document, to tell whether any follow.
    documents: Sequence[Document] = page.documents if size else []
    has_next = page.has_next_page if size else bool(page.documents)
    end = ordering.cursor(documents[-1]) if documents else None

    async def count() -> int:
        return await read_model.count(logical, filter)

    return Connection(
        edges=[Edge(cursor=ordering.cursor(d), node=node(d)) for d in documents],
        page_info=PageInfo(has_next_page=has_next, end_cursor=end),
        count=count,
    )
