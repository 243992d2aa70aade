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
from schema.connections import Connection, connection
from schema.context import Info
from schema.pagination import Ordering
from schema.unset import UNSET, given
from write_model.domain import order as order_domain
from write_model.envelope import RecordedEvent

# ------------------------------------------------------------------- enums


# The domain's own statuses, so a new one reaches the API (and the contract test) at once.
OrderStatus = strawberry.enum(order_domain.OrderStatus, name="OrderStatus")


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


@strawberry.type
class Money:
    amount: Decimal
    currency: str

    @staticmethod
    def of(doc: Mapping[str, Any]) -> Money:
        return Money(amount=Decimal(doc["amount"]), currency=doc["currency"])


@strawberry.type
class Address:
    line1: str
    city: str
    postal_code: str
    country: str

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


@strawberry.type
class Product:
    id: strawberry.ID = strawberry.field(description="the SKU")
    name: str
    price: Money
    stock_on_hand: int
    stock_reserved: int
    stock_available: int = strawberry.field(description="onHand - reserved")
    version: int

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


@strawberry.type
class Customer:
    id: strawberry.ID
    name: str
    email: str
    registered_at: datetime
    order_count: int
    lifetime_value: Money = strawberry.field(description="sum of totals of CONFIRMED orders")
    version: int

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

    @strawberry.field
    async def orders(
        self, info: Info, first: int | None = 20, after: str | None = UNSET
    ) -> Connection[Order]:
        return await order_connection(
            info.context.reader,
            {"customerId": str(self.id)},
            OrderSort.CREATED_AT_DESC,
            first,
            given(after),
        )


# ----------------------------------------------------------------- orders


@strawberry.type
class OrderItem:
    product_id: strawberry.ID
    product_name: str = strawberry.field(description="denormalized by the projector")
    quantity: int
    unit_price: Money = strawberry.field(
        description="price from the catalog when the item was added"
    )
    line_total: Money

    @strawberry.field(description="live catalog entry, batched through a DataLoader")
    async def product(self, info: Info) -> Product | None:
        doc = await info.context.loaders.products.load(str(self.product_id))
        return Product.of(doc) if doc is not None else None


@strawberry.type
class FulfillmentStep:
    name: str
    status: StepStatus
    detail: str | None
    updated_at: datetime | None

    @staticmethod
    def of(doc: Mapping[str, Any]) -> FulfillmentStep:
        return FulfillmentStep(
            name=doc["name"],
            status=StepStatus(doc["status"]),
            detail=doc.get("detail"),
            updated_at=doc.get("updatedAt"),
        )


@strawberry.type
class Fulfillment:
    state: FulfillmentState
    steps: list[FulfillmentStep]
    reason: str | None

    @staticmethod
    def of(doc: Mapping[str, Any]) -> Fulfillment:
        return Fulfillment(
            state=FulfillmentState(doc["state"]),
            steps=[FulfillmentStep.of(step) for step in doc["steps"]],
            reason=doc.get("reason"),
        )


@strawberry.type(description="One recorded event, as stored in the event store.")
class DomainEvent:
    event_id: strawberry.ID
    stream_id: str
    type: str
    version: int = strawberry.field(description="position in its stream, from 1")
    position: str = strawberry.field(description="global position in the log (64-bit)")
    occurred_at: datetime
    data: JSON
    correlation_id: strawberry.ID
    causation_id: strawberry.ID | None
    user_id: str | None
    schema_version: int

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
            data=event.data,
            correlation_id=strawberry.ID(metadata.correlation_id),
            causation_id=(strawberry.ID(metadata.causation_id) if metadata.causation_id else None),
            user_id=metadata.user_id,
            schema_version=metadata.schema_version,
        )


@strawberry.type
class Order:
    id: strawberry.ID
    customer_id: strawberry.ID
    customer_name: str = strawberry.field(description="denormalized by the projector")
    status: OrderStatus
    items: list[OrderItem]
    subtotal: Money
    tax: Money
    total: Money
    shipping_address: Address | None
    fulfillment: Fulfillment
    created_at: datetime
    updated_at: datetime
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
    async def customer(self, info: Info) -> Customer | None:
        doc = await info.context.loaders.customers.load(str(self.customer_id))
        return Customer.of(doc) if doc is not None else None

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
