"""Subscription: live order documents, fanned out by `schema.live.LiveOrders`.

Each operation has a context of its own (app/websockets.py), and its loaders are fresh for
every event pushed, so nested fields (customer, items' products) are read as they are then.
Only the orders the connection's principal may read are sent (`RequestContext.reader`):
someone else's order is watched like a missing one, which sends nothing. The connection
counts its running subscriptions; one more than `Services.max_subscriptions_per_connection`
is refused with a TOO_MANY_SUBSCRIPTIONS error.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterator
from typing import Annotated

import strawberry

from read_model.document_store.port import Document
from read_model.projections.orders import ORDERS
from schema.context import Info, RequestContext
from schema.errors import BadRequest, LiveUpdatesUnavailable, SubscriptionLimit
from schema.order_updates import LiveOrders, matches_filter
from schema.queries import OrderFilter
from schema.types import Order
from schema.unset import UNSET, given


class SharedOrders:
    """`Order.of` once per order document, not once per subscriber: LiveOrders offers every
    watcher of an order the same document object, and subscribers that start on an order
    read equal documents, so the first subscriber to take one decodes it and the others get
    that Order (nothing writes to an Order once made; what differs per subscriber, the
    access check and the nested fields' loaders, stays per subscriber). A waiting
    subscription holds its last Order (graphql-core keeps the last event), so sharing it
    saves its memory too. The last document of the `size` most recent orders is remembered,
    and reused only for the same document object or an equal one."""

    def __init__(self, size: int = 4_096) -> None:
        self._size = size
        self._recent: OrderedDict[str, tuple[Document, Order]] = OrderedDict()

    def of(self, doc: Document) -> Order:
        order_id = doc["_id"]
        found = self._recent.get(order_id)
        if found is not None and (found[0] is doc or found[0] == doc):
            self._recent.move_to_end(order_id)
            return found[1]
        order = Order.of(doc)
        self._recent[order_id] = (doc, order)
        self._recent.move_to_end(order_id)
        if len(self._recent) > self._size:
            self._recent.popitem(last=False)
        return order


_shared_orders = SharedOrders()


@contextlib.contextmanager
def _counted(context: RequestContext) -> Iterator[LiveOrders]:
    live = context.services.live
    if live is None:
        raise LiveUpdatesUnavailable("live updates are not available on this server")
    limit = context.services.max_subscriptions_per_connection
    connection = context.connection
    if connection.subscriptions >= limit:
        raise SubscriptionLimit(
            f"this connection already runs {connection.subscriptions} subscriptions, the most "
            f"allowed ({limit}); complete one, or open another connection"
        )
    connection.subscriptions += 1
    try:
        yield live
    finally:
        connection.subscriptions -= 1


@strawberry.type(
    description="Live updates over websockets (graphql-transport-ws or the legacy graphql-ws), "
    "at most MAX_SUBSCRIPTIONS_PER_CONNECTION at once per connection."
)
class Subscription:
    @strawberry.subscription(
        description="The order's read document once per version the projector writes: each "
        "new version of the order and each fulfillment step (which changes `fulfillment`, not "
        "`version`), never one already sent. With `afterVersion`, the current document is "
        "sent first when it is newer. Nothing is sent for an unknown order, or one that is "
        "not yours."
    )
    async def order_updated(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The order's id.")],
        after_version: Annotated[
            int | None,
            strawberry.argument(
                description="The last version you have (0: none); the current document is "
                "sent first when it is newer, so a reconnecting client misses nothing."
            ),
        ] = UNSET,
    ) -> AsyncGenerator[Order, None]:
        after = given(after_version)
        if after is not None and after < 0:
            raise BadRequest(f"`afterVersion` cannot be negative, got {after}")
        with _counted(info.context) as live:
            async for doc in live.order_updates(str(id), after):
                if info.context.reader.may_read(ORDERS, doc):
                    info.context.fresh_loaders()
                    yield _shared_orders.of(doc)
                del doc  # not held while the next one is awaited (see order_updates)

    @strawberry.subscription(
        description="Every new version of every order that matches the filter (that you may "
        "read), from now on."
    )
    async def orders_updated(
        self,
        info: Info,
        filter: Annotated[
            OrderFilter | None,
            strawberry.argument(description="Only the orders that match; left out: all."),
        ] = UNSET,
    ) -> AsyncGenerator[Order, None]:
        query = filter.as_query() if (filter := given(filter)) is not None else {}
        with _counted(info.context) as live:
            async for doc in live.orders_updates(matches_filter(query)):
                if not info.context.reader.may_read(ORDERS, doc):
                    continue
                info.context.fresh_loaders()
                yield _shared_orders.of(doc)
