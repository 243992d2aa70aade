"""Query: the read model, except `orderHistory` and `orderAt` (the event store)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from schema import descriptions as d
from schema.connections import Connection
from schema.context import Info
from schema.errors import BadRequest, forbidden_as_request_error
from schema.loaders import selects
from schema.operations import DEAD_LETTER_ORDERING, DeadLetter, ProcessStatus, ProjectionStatus
from schema.pagination import page_size
from schema.temporal import order_as_of, order_customer
from schema.types import (
    Customer,
    DomainEvent,
    Order,
    OrderSort,
    OrderStatus,
    Product,
    customer_connection,
    order_connection,
    product_connection,
)
from schema.unset import UNSET, Input, given
from write_model import stream_ids
from write_model.domain import customer as customer_domain
from write_model.domain import order as order_domain
from write_model.domain import product as product_domain
from write_model.domain.errors import ValidationFailed
from write_model.domain.validation import require_id


def _order_id(id: strawberry.ID) -> str:
    """An order id read from the event store: one that no command could have written (a
    NUL byte, which PostgreSQL cannot even compare) is a BAD_USER_INPUT error."""
    try:
        return require_id(str(id), "id")
    except ValidationFailed as error:
        raise BadRequest(error.message) from None


@strawberry.input(description="Which orders to list or watch: every given field must match.")
class OrderFilter(Input):
    customer_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="Only this customer's orders."
    )
    status: OrderStatus | None = strawberry.field(
        default=UNSET, description="Only orders in this status."
    )

    def as_query(self) -> dict[str, str]:
        query: dict[str, str] = {}
        if self.customer_id is not None:
            query["customerId"] = str(self.customer_id)
        if self.status is not None:
            query["status"] = self.status.value
        return query


@strawberry.type(
    description="Reads: the read model (orders, customers, products), the event store "
    "(orderHistory, orderAt) and the operators' views (projections, deadLetters)."
)
class Query:
    @strawberry.field(
        description="One order, or null when there is none with this id (or it is not yours)."
    )
    async def order(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The order's id.")],
        consistency_token: d.ConsistencyToken = UNSET,
    ) -> Order | None:
        if (consistency_token := given(consistency_token)) is not None:
            await info.context.caught_up(
                consistency_token, stream_ids.stream_id(order_domain.STREAM_TYPE, str(id))
            )
        loaders = info.context.loaders
        doc = await loaders.orders.load(str(id))
        if doc is None:
            return None
        # The customer and products it selects, read now: resolved from them at once, its
        # relations cost no await each.
        await loaders.read_ahead(
            [doc["customerId"]] if selects(info, ("customer",)) else [],
            [item["productId"] for item in doc["items"]]
            if selects(info, ("items", "product"))
            else [],
        )
        return Order.of(doc)

    @strawberry.field(description="Orders, a page at a time (a customer sees only its own).")
    async def orders(
        self,
        info: Info,
        filter: Annotated[
            OrderFilter | None, strawberry.argument(description="Only the orders that match.")
        ] = UNSET,
        sort: Annotated[
            OrderSort | None, strawberry.argument(description="The list's order.")
        ] = OrderSort.CREATED_AT_DESC,
        first: d.First = 20,
        after: d.After = UNSET,
    ) -> Connection[Order]:
        return await order_connection(
            info.context.reader,
            filter.as_query() if (filter := given(filter)) is not None else {},
            sort or OrderSort.CREATED_AT_DESC,
            first,
            given(after),
        )

    @strawberry.field(
        description="One customer, or null when there is none with this id (or it is not you)."
    )
    async def customer(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The customer's id.")],
        consistency_token: d.ConsistencyToken = UNSET,
    ) -> Customer | None:
        if (consistency_token := given(consistency_token)) is not None:
            await info.context.caught_up(
                consistency_token, stream_ids.stream_id(customer_domain.STREAM_TYPE, str(id))
            )
        doc = await info.context.loaders.customers.load(str(id))
        return Customer.of(doc) if doc is not None else None

    @strawberry.field(
        description="Customers, newest first, a page at a time (a customer sees only itself)."
    )
    async def customers(
        self, info: Info, first: d.First = 20, after: d.After = UNSET
    ) -> Connection[Customer]:
        return await customer_connection(info.context.reader, first, given(after))

    @strawberry.field(description="One catalog entry, or null when there is none with this id.")
    async def product(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The product's id (SKU).")],
        consistency_token: d.ConsistencyToken = UNSET,
    ) -> Product | None:
        if (consistency_token := given(consistency_token)) is not None:
            await info.context.caught_up(
                consistency_token, stream_ids.stream_id(product_domain.STREAM_TYPE, str(id))
            )
        doc = await info.context.loaders.products.load(str(id))
        return Product.of(doc) if doc is not None else None

    @strawberry.field(description="The catalog, by id, a page at a time.")
    async def products(
        self, info: Info, first: d.First = 20, after: d.After = UNSET
    ) -> Connection[Product]:
        return await product_connection(info.context.reader, first, given(after))

    @strawberry.field(
        description="The order as it was after `version`, or at instant `at`, folded from "
        "the event store (not the read model). Exactly one of the two is required."
    )
    async def order_at(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The order's id.")],
        version: Annotated[
            int | None,
            strawberry.argument(
                description="The order after this many of its events (from 1); past its last "
                "version, an error names the last one."
            ),
        ] = UNSET,
        at: Annotated[
            datetime | None,
            strawberry.argument(description="The order as it was at this instant."),
        ] = UNSET,
    ) -> Order | None:
        version, at = given(version), given(at)
        if (version is None) == (at is None):
            raise BadRequest("orderAt needs exactly one of `version` or `at`")
        if version is not None and version < 1:
            raise BadRequest(f"`version` counts from 1, got {version}")
        services = info.context.services
        doc = await order_as_of(
            services.events,
            services.registry,
            info.context.reader,
            _order_id(id),
            version=version,
            at=at,
        )
        return Order.of(doc, history_until=doc["version"]) if doc is not None else None

    @strawberry.field(
        description="The order's events, oldest first, read from the event store (empty for "
        "an unknown order, or one that is not yours)."
    )
    async def order_history(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The order's id.")],
    ) -> list[DomainEvent]:
        stream_id = stream_ids.stream_id(order_domain.STREAM_TYPE, _order_id(id))
        events = await info.context.services.events.read_stream(stream_id)
        if events and not info.context.reader.may_read_order_of(order_customer(events)):
            return []  # someone else's order: as for a missing one
        return [DomainEvent.of(event) for event in events]

    @strawberry.field(
        description="Every projection with its position, the head of the log and its lag "
        "(staff only)."
    )
    async def projections(self, info: Info) -> list[ProjectionStatus]:
        with forbidden_as_request_error():
            statuses = await info.context.reader.statuses()
        return [ProjectionStatus.of(status) for status in statuses]

    @strawberry.field(
        description="Every follower of the event log (projections, the saga or its "
        "participants, the relay): who leads it, how far behind it is, its dead letters. "
        "Staff only."
    )
    async def processes(self, info: Info) -> list[ProcessStatus]:
        with forbidden_as_request_error():
            statuses = await info.context.reader.processes()
        return [ProcessStatus.of(status) for status in statuses]

    @strawberry.field(
        description="Parked events, oldest first. `after`: a dead letter's `cursor` (or id)."
    )
    async def dead_letters(
        self,
        info: Info,
        first: d.First = 20,
        after: Annotated[
            str | None,
            strawberry.argument(description="A dead letter's cursor (or id): the page after it."),
        ] = UNSET,
    ) -> list[DeadLetter]:
        with forbidden_as_request_error():
            dead_letters = info.context.reader.dead_letters
        size = page_size(first)
        seek = None
        if (after := given(after)) is not None:
            try:
                seek = DEAD_LETTER_ORDERING.after(after)
            except BadRequest:
                letter = await dead_letters.get(after)
                if letter is None:
                    raise BadRequest(
                        f"`after` {after!r} is neither a dead letter's cursor nor the id of a "
                        "dead letter (it may have been retried since)"
                    ) from None
                seek = DEAD_LETTER_ORDERING.row(letter)
        if size == 0:
            return []
        return [DeadLetter.of(doc) for doc in await dead_letters.page(size, seek)]
