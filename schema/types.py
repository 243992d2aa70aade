"""The read side of the contract: GraphQL types built from the projections' documents.

Plain fields are filled when a type is built from its document (`of`), which is cheaper
than a resolver per field; relations (`Order.customer`, `OrderItem.product`,
`Order.history`, `Customer.orders`) resolve through the request's DataLoaders or a query.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from read_model.document_store.port import Document, SortKey
from read_model.projections.customers import CUSTOMERS
from read_model.projections.orders import ORDERS
from read_model.projections.products import PRODUCTS
from read_model.scoped import ScopedReadModel
from schema import descriptions as d
from schema.connections import Connection, connection
from schema.context import Info
from schema.loaders import related
from schema.pagination import Ordering
from schema.unset import UNSET, given
from write_model.domain import order as order_domain
from write_model.envelope import RecordedEvent

# ------------------------------------------------------------------- enums


# The domain's own statuses, so a new one reaches the API (and the contract test) at once:
# strawberry makes the domain's enum a GraphQL enum in place, under this name.
OrderStatus = order_domain.OrderStatus
strawberry.enum(OrderStatus, name="OrderStatus")


@strawberry.enum
class FulfillmentState(Enum):
    NOT_STARTED = "NOT_STARTED"
    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@strawberry.enum
class StepStatus(Enum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"
    COMPENSATED = "COMPENSATED"


@strawberry.enum
class OrderSort(Enum):
    CREATED_AT_DESC = "CREATED_AT_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    UPDATED_AT_DESC = "UPDATED_AT_DESC"
    TOTAL_DESC = "TOTAL_DESC"


d.describe_values(
    OrderStatus,
    "Where an order stands.",
    {
        "DRAFT": "Being put together: lines and address can change; submitOrder sends it on.",
        "SUBMITTED": "Submitted: the fulfillment saga is reserving, charging and shipping.",
        "CONFIRMED": "Every fulfillment step succeeded: stock reserved, paid, shipment booked.",
        "REJECTED": "A fulfillment step failed; the others were undone (see fulfillment.reason).",
        "CANCELLED": "Cancelled by cancelOrder; any fulfillment done was undone.",
    },
)
d.describe_values(
    FulfillmentState,
    "Where the fulfillment saga of an order stands as a whole.",
    {
        "NOT_STARTED": "The order has not been submitted.",
        "RUNNING": "Steps are running, in order.",
        "COMPENSATING": "A step failed or the order was cancelled: done steps are being undone.",
        "COMPLETED": "Every step succeeded: the order is confirmed.",
        "FAILED": "Stopped: a step failed (or the order was cancelled) and the rest was undone.",
    },
)
d.describe_values(
    StepStatus,
    "Where one fulfillment step stands.",
    {
        "PENDING": "Not run yet (or running).",
        "DONE": "Succeeded.",
        "FAILED": "Refused or failed (detail says why); nothing of it stays.",
        "COMPENSATED": "Succeeded, then undone: stock released, payment refunded or shipment "
        "cancelled.",
    },
)
d.describe_values(
    OrderSort,
    "The order of an orders list.",
    {
        "CREATED_AT_DESC": "Newest first (the default).",
        "CREATED_AT_ASC": "Oldest first.",
        "UPDATED_AT_DESC": "Most recently changed first.",
        "TOTAL_DESC": "Largest total first.",
    },
)

ORDER_SORT_KEYS: Mapping[OrderSort, tuple[SortKey, ...]] = {
    OrderSort.CREATED_AT_DESC: (SortKey("createdAt", -1),),
    OrderSort.CREATED_AT_ASC: (SortKey("createdAt", 1),),
    OrderSort.UPDATED_AT_DESC: (SortKey("updatedAt", -1),),
    OrderSort.TOTAL_DESC: (SortKey("totalMinor", -1),),
}
ORDER_ORDERINGS: Mapping[OrderSort, Ordering] = {
    sort: Ordering(f"orders:{sort.value}", keys) for sort, keys in ORDER_SORT_KEYS.items()
}
CUSTOMER_ORDERING = Ordering("customers", (SortKey("registeredAt", -1),))
PRODUCT_ORDERING = Ordering("products", ())  # by id (the SKU)

# ----------------------------------------------------------------- values


@strawberry.type(description="An amount of money: a decimal string and its currency.")
class Money:
    amount: Decimal = strawberry.field(
        description='The amount as a decimal string with two decimal places ("54.78").'
    )
    currency: str = strawberry.field(description="ISO 4217 currency code.")

    @staticmethod
    def of(doc: Mapping[str, Any]) -> Money:
        return Money(amount=Decimal(doc["amount"]), currency=doc["currency"])


@strawberry.type(description="A postal address an order ships to.")
class Address:
    line1: str = strawberry.field(description="Street and number.")
    city: str = strawberry.field(description="The city or town.")
    postal_code: str = strawberry.field(description="Postal or ZIP code.")
    country: str = strawberry.field(description=d.COUNTRY)

    @staticmethod
    def of(doc: Mapping[str, Any] | None) -> Address | None:
        if doc is None:
            return None
        return Address(
            line1=doc["line1"],
            city=doc["city"],
            postal_code=doc["postalCode"],
            country=doc["country"],
        )


# --------------------------------------------------------------- products


@strawberry.type(description="A catalog entry: its price and its stock.")
class Product:
    id: strawberry.ID = strawberry.field(description="the SKU")
    name: str = strawberry.field(description="The product's display name, shown on order lines.")
    price: Money = strawberry.field(
        description="Current unit price; an order line keeps the price of when it was added."
    )
    stock_on_hand: int = strawberry.field(
        description="Units in the warehouse, reserved ones included."
    )
    stock_reserved: int = strawberry.field(
        description="Units reserved for submitted orders not yet shipped."
    )
    stock_available: int = strawberry.field(description="onHand - reserved")
    version: int = strawberry.field(description=d.VERSION)

    @staticmethod
    def of(doc: Document) -> Product:
        return Product(
            id=strawberry.ID(doc["_id"]),
            name=doc["name"],
            price=Money.of(doc["price"]),
            stock_on_hand=doc["stockOnHand"],
            stock_reserved=doc["stockReserved"],
            stock_available=doc["stockAvailable"],
            version=doc["version"],
        )


# -------------------------------------------------------------- customers


@strawberry.type(description="Someone who places orders.")
class Customer:
    id: strawberry.ID = strawberry.field(
        description="The customer's id (with authentication on: the subject of its tokens)."
    )
    name: str = strawberry.field(description="The customer's display name.")
    email: str = strawberry.field(
        description="Email address, normalized and unique among customers."
    )
    registered_at: datetime = strawberry.field(description="When the customer registered (UTC).")
    order_count: int = strawberry.field(description="How many orders the customer has created.")
    lifetime_value: Money = strawberry.field(description="sum of totals of CONFIRMED orders")
    version: int = strawberry.field(description=d.VERSION)

    @staticmethod
    def of(doc: Document) -> Customer:
        return Customer(
            id=strawberry.ID(doc["_id"]),
            name=doc["name"],
            email=doc["email"],
            registered_at=doc["registeredAt"],
            order_count=doc["orderCount"],
            lifetime_value=Money.of(doc["lifetimeValue"]),
            version=doc["version"],
        )

    @strawberry.field(description="The customer's orders, newest first, a page at a time.")
    async def orders(
        self, info: Info, first: d.First = 20, after: d.After = UNSET
    ) -> Connection[Order]:
        return await order_connection(
            info.context.reader,
            {"customerId": str(self.id)},
            OrderSort.CREATED_AT_DESC,
            first,
            given(after),
        )


# ----------------------------------------------------------------- orders


@strawberry.type(description="One line of an order: a product, how many and at what price.")
class OrderItem:
    product_id: strawberry.ID = strawberry.field(description="Id of the ordered product.")
    product_name: str = strawberry.field(description="denormalized by the projector")
    quantity: int = strawberry.field(description="Units ordered.")
    unit_price: Money = strawberry.field(
        description="price from the catalog when the item was added"
    )
    line_total: Money = strawberry.field(description="quantity x unitPrice.")

    @strawberry.field(description="live catalog entry, batched through a DataLoader")
    def product(self, info: Info) -> Product | None:
        # The product itself, or an awaitable of it (graphql-core awaits what it is given).
        return related(info.context.loaders.products, str(self.product_id), Product.of)  # type: ignore[return-value]


@strawberry.type(
    description="One step of the fulfillment saga: reserve stock, charge the payment, book the "
    "shipment."
)
class FulfillmentStep:
    name: str = strawberry.field(
        description="Which step: ReserveInventory, ProcessPayment or CreateShipment."
    )
    status: StepStatus = strawberry.field(description="Where the step stands.")
    detail: str | None = strawberry.field(
        description="What the step did or why it failed (a reservation, a charge, a refusal)."
    )
    updated_at: datetime | None = strawberry.field(
        description="When the step last changed (UTC); null while it has not started."
    )

    @staticmethod
    def of(doc: Mapping[str, Any]) -> FulfillmentStep:
        return FulfillmentStep(
            name=doc["name"],
            status=StepStatus(doc["status"]),
            detail=doc.get("detail"),
            updated_at=doc.get("updatedAt"),
        )


@strawberry.type(description="How the fulfillment saga of a submitted order stands, step by step.")
class Fulfillment:
    state: FulfillmentState = strawberry.field(description="Where the saga stands as a whole.")
    steps: list[FulfillmentStep] = strawberry.field(description="Its steps, in the order they run.")
    reason: str | None = strawberry.field(
        description="Why it failed (the first refusal), when it did."
    )

    @staticmethod
    def of(doc: Mapping[str, Any]) -> Fulfillment:
        return Fulfillment(
            state=FulfillmentState(doc["state"]),
            steps=[FulfillmentStep.of(step) for step in doc["steps"]],
            reason=doc.get("reason"),
        )


@strawberry.type(description="One recorded event, as stored in the event store.")
class DomainEvent:
    event_id: strawberry.ID = strawberry.field(description="The event's unique id.")
    stream_id: str = strawberry.field(
        description="The stream it belongs to: <Type>-<id> (Order-walk-1)."
    )
    type: str = strawberry.field(
        description="What happened, in the past tense (OrderCreated, OrderSubmitted...)."
    )
    version: int = strawberry.field(description="position in its stream, from 1")
    position: str = strawberry.field(description="global position in the log (64-bit)")
    occurred_at: datetime = strawberry.field(description="When it was recorded (UTC).")
    data: JSON = strawberry.field(description="The event's payload, as stored (camelCase keys).")
    correlation_id: strawberry.ID = strawberry.field(
        description="The request that started the chain of events (X-Correlation-ID, or a new id)."
    )
    causation_id: strawberry.ID | None = strawberry.field(
        description="The event or command that caused this one, when another event did."
    )
    user_id: str | None = strawberry.field(
        description="Who sent the command: the token's subject (null where authentication is off)."
    )
    schema_version: int = strawberry.field(
        description="Version of the payload's shape; older ones are upcast when read."
    )

    @staticmethod
    def of(event: RecordedEvent) -> DomainEvent:
        metadata = event.metadata
        return DomainEvent(
            event_id=strawberry.ID(str(event.event_id)),
            stream_id=event.stream_id,
            type=event.type,
            version=event.version,
            position=str(event.position),
            occurred_at=event.occurred_at,
            data=JSON(event.data),
            correlation_id=strawberry.ID(metadata.correlation_id),
            causation_id=(strawberry.ID(metadata.causation_id) if metadata.causation_id else None),
            user_id=metadata.user_id,
            schema_version=metadata.schema_version,
        )


@strawberry.type(
    description="An order: a DRAFT until submitted, then CONFIRMED or REJECTED by the fulfillment "
    "saga (or CANCELLED). Read from the read model: it follows the writes within "
    "milliseconds; pass a consistencyToken to wait for your own."
)
class Order:
    id: strawberry.ID = strawberry.field(description="The order's id.")
    customer_id: strawberry.ID = strawberry.field(description="Id of the customer who placed it.")
    customer_name: str = strawberry.field(description="denormalized by the projector")
    status: OrderStatus = strawberry.field(description="Where the order stands.")
    items: list[OrderItem] = strawberry.field(
        description="Its lines, in the order they were added."
    )
    subtotal: Money = strawberry.field(description="Sum of the lines' totals, before tax.")
    tax: Money = strawberry.field(
        description="Tax on the subtotal, at the TAX_RATE of when the order was created, rounded "
        "half up to the cent."
    )
    total: Money = strawberry.field(description="subtotal + tax: what the payment charges.")
    shipping_address: Address | None = strawberry.field(
        description="Where it ships; null until set (submitOrder needs it)."
    )
    fulfillment: Fulfillment = strawberry.field(
        description="The fulfillment saga's progress (NOT_STARTED before submitOrder)."
    )
    created_at: datetime = strawberry.field(description=d.CREATED_AT)
    updated_at: datetime = strawberry.field(description=d.UPDATED_AT)
    version: int = strawberry.field(
        description="version of the order's event stream this document reflects"
    )
    # An order folded up to a version (`orderAt`) shows only the history up to it.
    history_until: strawberry.Private[int | None] = None

    @staticmethod
    def of(doc: Document, history_until: int | None = None) -> Order:
        names = doc.get("productNames", {})
        return Order(
            id=strawberry.ID(doc["_id"]),
            customer_id=strawberry.ID(doc["customerId"]),
            customer_name=doc["customerName"],
            status=OrderStatus(doc["status"]),
            items=[
                OrderItem(
                    product_id=strawberry.ID(item["productId"]),
                    product_name=names.get(item["productId"], ""),
                    quantity=item["quantity"],
                    unit_price=Money.of(item["unitPrice"]),
                    line_total=Money.of(item["lineTotal"]),
                )
                for item in doc["items"]
            ],
            subtotal=Money.of(doc["subtotal"]),
            tax=Money.of(doc["tax"]),
            total=Money.of(doc["total"]),
            shipping_address=Address.of(doc.get("shippingAddress")),
            fulfillment=Fulfillment.of(doc["fulfillment"]),
            created_at=doc["createdAt"],
            updated_at=doc["updatedAt"],
            version=doc["version"],
            history_until=history_until,
        )

    @strawberry.field(description="batched through a DataLoader")
    def customer(self, info: Info) -> Customer | None:
        # The customer itself, or an awaitable of it (graphql-core awaits what it is given).
        return related(info.context.loaders.customers, str(self.customer_id), Customer.of)  # type: ignore[return-value]

    @strawberry.field(description="the order's own events, read from the event store")
    async def history(self, info: Info) -> list[DomainEvent]:
        events = await info.context.loaders.order_histories.load(str(self.id))
        if self.history_until is not None:
            events = [e for e in events if e.version <= self.history_until]
        return [DomainEvent.of(event) for event in events]


# ------------------------------------------------------------ connections


async def order_connection(
    read_model: ScopedReadModel,
    filter: Mapping[str, Any],
    sort: OrderSort,
    first: int | None,
    after: str | None,
) -> Connection[Order]:
    ordering = ORDER_ORDERINGS[sort]
    return await connection(read_model, ORDERS, ordering, filter, first, after, Order.of)


async def customer_connection(
    read_model: ScopedReadModel, first: int | None, after: str | None
) -> Connection[Customer]:
    return await connection(read_model, CUSTOMERS, CUSTOMER_ORDERING, {}, first, after, Customer.of)


async def product_connection(
    read_model: ScopedReadModel, first: int | None, after: str | None
) -> Connection[Product]:
    return await connection(read_model, PRODUCTS, PRODUCT_ORDERING, {}, first, after, Product.of)
