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
customer rename sets `customerName` on that customer's orders.

The lines are kept here from the event payloads and the document alone, never from the write
side's `Order` state, so that the aggregate can change its state shape freely: an item of a
product already ordered merges into its line, which takes the new quantity sum, unit price
and name. The totals come from the domain's one rule, `order.order_totals` (the first
line's currency, DEFAULT_CURRENCY while empty; the tax at the rate recorded on OrderCreated,
rounded half-up to the cent), applied to those lines; a unit test pins the read totals to
the decider's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, assert_never, get_args

from read_model.document_store.port import Document, UpdateMany
from read_model.projections.base import DocKey, Owner, ProjectedEvent, View
from read_model.projections.money import minor_units, money_doc, money_of
from write_model.domain import customer, fulfillment, order, product
from write_model.domain.fulfillment import (
    FailedStepCleanedUp,
    FulfillmentCancelled,
    FulfillmentCompleted,
    FulfillmentEvent,
    FulfillmentFailed,
    FulfillmentStarted,
    StepCompensated,
    StepFailed,
    StepStarted,
    StepSucceeded,
)
from write_model.domain.money import Money
from write_model.domain.order import (
    Address,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderEvent,
    OrderItemAdded,
    OrderItemRemoved,
    OrderRejected,
    OrderSubmitted,
    ShippingAddressSet,
)
from write_model.stream_ids import entity_id

ORDERS = "orders"
ORDER_CUSTOMERS = "order_customers"

# Order statuses as the document (and the GraphQL `OrderStatus`) spells them.
DRAFT = "DRAFT"
SUBMITTED = "SUBMITTED"
CONFIRMED = "CONFIRMED"
REJECTED = "REJECTED"
CANCELLED = "CANCELLED"

# Fulfillment states and step statuses.
NOT_STARTED = "NOT_STARTED"
RUNNING = "RUNNING"
COMPENSATING = "COMPENSATING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
PENDING = "PENDING"
DONE = "DONE"
COMPENSATED = "COMPENSATED"


class OrdersProjection:
    name = "orders"
    collections: tuple[str, ...] = (ORDERS, ORDER_CUSTOMERS)
    owners: Mapping[str, Owner] = {ORDERS: "customerId", ORDER_CUSTOMERS: "_id"}

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
                return (
                    DocKey(
                        ORDER_CUSTOMERS, entity_id(event.recorded.stream_id, customer.STREAM_TYPE)
                    ),
                )
            case product.ProductRenamed():
                return ()  # an effect only
            case _ if type(event.event) in _ORDER_EVENT_TYPES:
                return (DocKey(ORDERS, entity_id(event.recorded.stream_id, order.STREAM_TYPE)),)
            case _ if type(event.event) in _SAGA_EVENT_TYPES:
                saga_of = entity_id(event.recorded.stream_id, fulfillment.STREAM_TYPE)
                return (DocKey(ORDERS, saga_of),)
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
        if type(event.event) in _SAGA_EVENT_TYPES:
            if doc is None:
                raise ValueError(f"{event.recorded.type} of order {key.id}, never created")
            # The saga's own stream: the order's `version` stays its own stream's.
            changed = _saga_evolved(doc, event.event, event.recorded.occurred_at)
            changed["updatedAt"] = event.recorded.occurred_at
            return changed
        if type(event.event) not in _ORDER_EVENT_TYPES:
            return doc
        if isinstance(event.event, OrderCreated):
            changed = _created(key, event, view)
        elif doc is None:
            raise ValueError(
                f"{event.recorded.type} applied to order {key.id}, which was never created"
            )
        else:
            changed = _evolved(doc, event.event)
        changed["updatedAt"] = event.recorded.occurred_at
        changed["version"] = event.recorded.version
        return changed

    def effects(self, event: ProjectedEvent) -> Sequence[UpdateMany]:
        match event.event:
            case customer.CustomerRenamed(name=name):
                customer_id = entity_id(event.recorded.stream_id, customer.STREAM_TYPE)
                return (UpdateMany(ORDERS, {"customerId": customer_id}, {"customerName": name}),)
            case product.ProductRenamed(name=name):
                product_id = entity_id(event.recorded.stream_id, product.STREAM_TYPE)
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
# Each function returns a NEW document (the input is never mutated: nested lists and dicts
# that change are rebuilt); `evolve` then stamps updatedAt and version.


def _created(key: DocKey, event: ProjectedEvent, view: View) -> Document:
    created: OrderCreated = event.event
    known = view.get(DocKey(ORDER_CUSTOMERS, created.customer_id))
    return {
        "_id": key.id,
        "customerId": created.customer_id,
        "customerName": known["name"] if known else "",
        "status": DRAFT,
        **_lines_fields([], {}, created.tax_rate),
        "taxRate": str(created.tax_rate),
        "shippingAddress": None,
        "fulfillment": _fulfillment(NOT_STARTED),
        "cancelReason": None,
        "createdAt": event.recorded.occurred_at,
    }


def _evolved(doc: Document, event: OrderEvent) -> Document:
    """The document of an existing order after one of its events."""
    match event:
        case OrderCreated():
            raise ValueError(f"order {doc['_id']} is created again (its stream's first event)")
        case OrderItemAdded():
            return _item_added(doc, event)
        case OrderItemRemoved(product_id=product_id):
            items = [dict(item) for item in doc["items"] if item["productId"] != product_id]
            return {**doc, **_lines_fields(items, doc["productNames"], _tax_rate(doc))}
        case ShippingAddressSet(address=address):
            return {**doc, "shippingAddress": _address_doc(address)}
        case OrderSubmitted(subtotal=subtotal, tax=tax, total=total):
            # The totals the customer is charged, as recorded (equal to the computed ones).
            return {
                **doc,
                "status": SUBMITTED,
                "subtotal": money_doc(subtotal),
                "tax": money_doc(tax),
                "total": money_doc(total),
                "totalMinor": minor_units(total),
                # Every step is listed from the start, PENDING until the saga reaches it.
                "fulfillment": _fulfillment(RUNNING, _pending_steps()),
            }
        case OrderConfirmed():
            return {**doc, "status": CONFIRMED, "fulfillment": _fulfillment(COMPLETED, _steps(doc))}
        case OrderRejected(reason=reason):
            return {
                **doc,
                "status": REJECTED,
                "fulfillment": _fulfillment(FAILED, _steps(doc), reason),
            }
        case OrderCancelled(reason=reason):
            # The fulfillment is left as it is: for a SUBMITTED order, the saga's own events
            # (compensation) will say what became of it.
            return {**doc, "status": CANCELLED, "cancelReason": reason}
        case _:
            assert_never(event)


def _item_added(doc: Document, added: OrderItemAdded) -> Document:
    """A product already ordered merges into its line, in place: the quantities add up and
    the line takes the new unit price (and name); a new product is a line at the end."""
    items = list(doc["items"])  # the other lines are shared, never changed
    position = next(
        (i for i, item in enumerate(items) if item["productId"] == added.product_id), None
    )
    if position is None:
        items.append(_item(added.product_id, added.quantity, added.unit_price))
    else:
        quantity = items[position]["quantity"] + added.quantity
        items[position] = _item(added.product_id, quantity, added.unit_price)
    names = {**doc["productNames"], added.product_id: added.product_name}
    return {**doc, **_lines_fields(items, names, _tax_rate(doc))}


def _saga_evolved(doc: Document, event: FulfillmentEvent, at: Any) -> Document:
    """The order's `fulfillment` after one of its saga's events: {state, steps: [{name,
    status, detail, updatedAt}], reason}, each change a new document."""
    current = doc["fulfillment"]
    steps = _steps(doc) or _pending_steps()
    state, reason = current["state"], current["reason"]
    match event:
        case FulfillmentStarted():
            state = RUNNING
        case StepStarted() | FailedStepCleanedUp():
            return {**doc}  # nothing a user sees: the step stays PENDING, or FAILED
        case StepSucceeded(step=step, detail=detail):
            steps = _step_set(steps, step, DONE, at, detail)
        case StepFailed(step=step, reason=why):
            steps = _step_set(steps, step, FAILED, at, why)
            state, reason = COMPENSATING, why
        case StepCompensated(step=step):
            steps = _step_set(steps, step, COMPENSATED, at)
        case FulfillmentCancelled(reason=why):
            state, reason = COMPENSATING, why
        case FulfillmentCompleted():
            state = COMPLETED
        case FulfillmentFailed(reason=why):
            state, reason = FAILED, why
        case _:
            assert_never(event)
    return {**doc, "fulfillment": _fulfillment(state, steps, reason)}


def _pending_steps() -> list[dict[str, Any]]:
    return [
        {"name": str(step), "status": PENDING, "detail": None, "updatedAt": None}
        for step in fulfillment.STEPS
    ]


def _step_set(
    steps: list[dict[str, Any]], step: str, status: str, at: Any, detail: str | None = None
) -> list[dict[str, Any]]:
    """The steps with `step` replaced; a compensation keeps the step's detail."""
    return [
        {
            **current,
            "status": status,
            "detail": detail if detail is not None else current["detail"],
            "updatedAt": at,
        }
        if current["name"] == step
        else current
        for current in steps
    ]


_ORDER_EVENT_TYPES: frozenset[type] = frozenset(get_args(OrderEvent))
_SAGA_EVENT_TYPES: frozenset[type] = frozenset(get_args(FulfillmentEvent))
_HANDLED = frozenset(
    {
        *(cls.__name__ for cls in _ORDER_EVENT_TYPES),
        *(cls.__name__ for cls in _SAGA_EVENT_TYPES),
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


def _address_doc(address: Address) -> dict[str, str]:
    return {
        "line1": address.line1,
        "city": address.city,
        "postalCode": address.postal_code,
        "country": address.country,
    }


def _tax_rate(doc: Document) -> Decimal:
    """The rate recorded on OrderCreated (kept as its exact decimal text)."""
    return Decimal(doc["taxRate"])


def _item(product_id: str, quantity: int, unit_price: Money) -> dict[str, Any]:
    return {
        "productId": product_id,
        "quantity": quantity,
        "unitPrice": money_doc(unit_price),
        "lineTotal": money_doc(unit_price.times(quantity)),
    }


def _lines_fields(
    items: list[dict[str, Any]], names: Mapping[str, str], tax_rate: Decimal
) -> dict[str, Any]:
    """Items, product names and ids, currency and totals of the order's lines, the totals
    by the domain's one rule (`order.order_totals`)."""
    totals = order.order_totals(
        [(money_of(item["unitPrice"]), item["quantity"]) for item in items], tax_rate
    )
    return {
        "items": items,
        "productNames": {item["productId"]: names[item["productId"]] for item in items},
        "productIds": [item["productId"] for item in items],
        "subtotal": money_doc(totals.subtotal),
        "tax": money_doc(totals.tax),
        "total": money_doc(totals.total),
        "totalMinor": minor_units(totals.total),
        "currency": totals.total.currency,
    }
