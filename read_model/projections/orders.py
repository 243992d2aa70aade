"""The `orders` projection: one document per order, shaped for the GraphQL `Order` type.

orders/<orderId>:
    {_id, customerId, customerName, status, items: [{productId, quantity, unitPrice,
     lineTotal}], productNames: {productId: name}, productIds: [productId, ...], subtotal,
     tax, total, totalMinor, taxRate, currency, shippingAddress, fulfillment: {state, steps,
     reason}, cancelReason, createdAt, updatedAt, version}

order_customers/<customerId>:  {_id, name}  (a lookup: the name a new order is given)

Product names live in `productNames`, not in the items, so that a rename is one `$set` of
`productNames.<productId>` on every order whose `productIds` array holds the product,
however many lines name it (no array filters to keep in step with the items). Likewise a
customer rename sets `customerName` on that customer's orders. Lines follow the domain's
rules exactly (`write_model.domain.order` evolve and `order_totals`), so the read totals
equal the ones the write side computes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from read_model.document_store.port import Document, UpdateMany
from read_model.projections.base import DocKey, ProjectedEvent, View
from read_model.projections.money import (
    DEFAULT_CURRENCY,
    minor_units,
    money_doc,
    money_of,
)
from write_model.domain import customer, order, product
from write_model.domain.order import (
    Address,
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderItemAdded,
    OrderItemRemoved,
    OrderLine,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
    ShippingAddressSet,
)

ORDERS = "orders"
ORDER_CUSTOMERS = "order_customers"

NOT_STARTED = "NOT_STARTED"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"


def _entity_id(event: ProjectedEvent, stream_type: str) -> str:
    """The entity id of a `<Type>-<id>` stream."""
    prefix, _, entity_id = event.recorded.stream_id.partition("-")
    if prefix != stream_type or not entity_id:
        raise ValueError(f"{event.recorded.stream_id!r} is not a {stream_type} stream")
    return entity_id


class OrdersProjection:
    name = "orders"
    collections: tuple[str, ...] = (ORDERS, ORDER_CUSTOMERS)

    def handles(self, event_type: str) -> bool:
        return event_type in _HANDLED

    def reads(self, event: ProjectedEvent) -> Sequence[DocKey]:
        match event.event:
            case OrderCreated(customer_id=customer_id):
                return (DocKey(ORDER_CUSTOMERS, customer_id),)
            case _:
                return ()

    def keys(self, event: ProjectedEvent, view: View) -> Sequence[DocKey]:
        match event.event:
            case customer.CustomerRegistered() | customer.CustomerRenamed():
                return (DocKey(ORDER_CUSTOMERS, _entity_id(event, customer.STREAM_TYPE)),)
            case product.ProductRenamed():
                return ()  # an effect only
            case _ if type(event.event) in _ORDER_EVENT_TYPES:
                return (DocKey(ORDERS, _entity_id(event, order.STREAM_TYPE)),)
            case _:
                return ()

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        if key.collection == ORDER_CUSTOMERS:
            match event.event:
                case customer.CustomerRegistered(name=name) | customer.CustomerRenamed(name=name):
                    return {**(doc or {}), "_id": key.id, "name": name}
            return doc
        if key.collection != ORDERS:
            return doc
        if isinstance(event.event, OrderCreated):
            changed = _created(key, event, view)
        else:
            evolver = _ORDER_EVOLVERS.get(type(event.event))
            if evolver is None:
                return doc
            if doc is None:
                raise ValueError(
                    f"{event.recorded.type} applied to order {key.id}, which was never created"
                )
            changed = evolver(doc, event)
        changed["updatedAt"] = event.recorded.occurred_at
        changed["version"] = event.recorded.version
        return changed

    def effects(self, event: ProjectedEvent) -> Sequence[UpdateMany]:
        match event.event:
            case customer.CustomerRenamed(name=name):
                customer_id = _entity_id(event, customer.STREAM_TYPE)
                return (UpdateMany(ORDERS, {"customerId": customer_id}, {"customerName": name}),)
            case product.ProductRenamed(name=name):
                product_id = _entity_id(event, product.STREAM_TYPE)
                return (
                    UpdateMany(
                        ORDERS, {"productIds": product_id}, {f"productNames.{product_id}": name}
                    ),
                )
            case _:
                return ()

    def indexes(self) -> Mapping[str, Sequence[Sequence[tuple[str, int]]]]:
        return {
            # Each sort with its `_id` tie-breaker, so a page is read in index order.
            ORDERS: (
                (("customerId", 1), ("createdAt", -1), ("_id", 1)),
                (("status", 1), ("createdAt", -1), ("_id", 1)),
                (("createdAt", -1), ("_id", 1)),
                (("createdAt", 1), ("_id", 1)),
                (("updatedAt", -1), ("_id", 1)),
                (("totalMinor", -1), ("_id", 1)),
                (("productIds", 1),),
                # What changed after a position (re-sent to subscribers after a gap).
                (("_pos", 1),),
            )
        }


# ------------------------------------------------------------ order events
#
# Each evolver returns a NEW document (the input is never mutated: nested lists and dicts
# that change are rebuilt); `evolve` then stamps updatedAt and version.


def _created(key: DocKey, event: ProjectedEvent, view: View) -> Document:
    created: OrderCreated = event.event
    known = view.get(DocKey(ORDER_CUSTOMERS, created.customer_id))
    state = Order(key.id, created.customer_id, created.tax_rate)
    return {
        "_id": key.id,
        "customerId": created.customer_id,
        "customerName": known["name"] if known else "",
        "status": state.status.value,
        **_lines_fields(state),
        "taxRate": str(created.tax_rate),
        "shippingAddress": None,
        "fulfillment": _fulfillment(NOT_STARTED),
        "cancelReason": None,
        "createdAt": event.recorded.occurred_at,
    }


def _lines_changed(doc: Document, event: ProjectedEvent) -> Document:
    """OrderItemAdded / OrderItemRemoved, through the domain's own evolve (merge rules)."""
    state = order.evolve(_state_of(doc), event.event)
    assert state is not None
    return {**doc, **_lines_fields(state)}


def _address_set(doc: Document, event: ProjectedEvent) -> Document:
    address: Address = event.event.address
    return {
        **doc,
        "shippingAddress": {
            "line1": address.line1,
            "city": address.city,
            "postalCode": address.postal_code,
            "country": address.country,
        },
    }


def _submitted(doc: Document, event: ProjectedEvent) -> Document:
    submitted: OrderSubmitted = event.event
    # The totals the customer is charged, as recorded (equal to the recomputed ones).
    return {
        **doc,
        "status": OrderStatus.SUBMITTED.value,
        "subtotal": money_doc(submitted.subtotal),
        "tax": money_doc(submitted.tax),
        "total": money_doc(submitted.total),
        "totalMinor": minor_units(submitted.total),
        "fulfillment": _fulfillment(RUNNING, _steps(doc)),
    }


def _confirmed(doc: Document, event: ProjectedEvent) -> Document:
    return {
        **doc,
        "status": OrderStatus.CONFIRMED.value,
        "fulfillment": _fulfillment(COMPLETED, _steps(doc)),
    }


def _rejected(doc: Document, event: ProjectedEvent) -> Document:
    rejected: OrderRejected = event.event
    return {
        **doc,
        "status": OrderStatus.REJECTED.value,
        "fulfillment": _fulfillment(FAILED, _steps(doc), rejected.reason),
    }


def _cancelled(doc: Document, event: ProjectedEvent) -> Document:
    cancelled: OrderCancelled = event.event
    # The fulfillment is left as it is: for a SUBMITTED order, the saga's own events
    # (compensation) will say what became of it.
    return {**doc, "status": OrderStatus.CANCELLED.value, "cancelReason": cancelled.reason}


# How each event of an existing order changes its document (OrderCreated is `_created`).
_ORDER_EVOLVERS: dict[type, Callable[[Document, ProjectedEvent], Document]] = {
    OrderItemAdded: _lines_changed,
    OrderItemRemoved: _lines_changed,
    ShippingAddressSet: _address_set,
    OrderSubmitted: _submitted,
    OrderConfirmed: _confirmed,
    OrderRejected: _rejected,
    OrderCancelled: _cancelled,
    # Fulfillment saga step events go here (a step PENDING / DONE / FAILED / COMPENSATED,
    # the saga COMPENSATING): add their types to this table, keyed on the order they are
    # about (`keys` takes the order id from the stream; a saga stream needs its own rule),
    # and evolve `fulfillment` = {state, steps: [{name, status, detail, updatedAt}], reason}
    # by replacing the step of the same name (or appending it) in a new list.
}
_ORDER_EVENT_TYPES = frozenset({OrderCreated, *_ORDER_EVOLVERS})
_HANDLED = frozenset(
    {
        *(cls.__name__ for cls in _ORDER_EVENT_TYPES),
        customer.CustomerRegistered.__name__,
        customer.CustomerRenamed.__name__,
        product.ProductRenamed.__name__,
    }
)


# --------------------------------------------------------------- helpers


def _fulfillment(
    state: str, steps: Sequence[Mapping[str, Any]] = (), reason: str | None = None
) -> dict[str, Any]:
    return {"state": state, "steps": [dict(step) for step in steps], "reason": reason}


def _steps(doc: Document) -> list[dict[str, Any]]:
    return [dict(step) for step in doc["fulfillment"]["steps"]]


def _state_of(doc: Document) -> Order:
    """The domain's view of the order's lines, rebuilt from the document."""
    names = doc["productNames"]
    lines = tuple(
        OrderLine(
            item["productId"],
            names.get(item["productId"], ""),
            item["quantity"],
            money_of(item["unitPrice"]),
        )
        for item in doc["items"]
    )
    return Order(
        doc["_id"],
        doc["customerId"],
        Decimal(doc["taxRate"]),
        OrderStatus(doc["status"]),
        lines,
    )


def _lines_fields(state: Order) -> dict[str, Any]:
    """Items, product names and ids, and the totals, from the domain state's lines."""
    totals = state.totals(DEFAULT_CURRENCY)
    return {
        "items": [
            {
                "productId": line.product_id,
                "quantity": line.quantity,
                "unitPrice": money_doc(line.unit_price),
                "lineTotal": money_doc(line.line_total),
            }
            for line in state.lines
        ],
        "productNames": {line.product_id: line.product_name for line in state.lines},
        "productIds": [line.product_id for line in state.lines],
        "subtotal": money_doc(totals.subtotal),
        "tax": money_doc(totals.tax),
        "total": money_doc(totals.total),
        "totalMinor": minor_units(totals.total),
        "currency": state.currency or DEFAULT_CURRENCY,
    }
