"""The `customers` projection: one document per customer, shaped for the GraphQL `Customer`.

customers/<customerId>:
    {_id, name, email, registeredAt, orderCount, lifetimeValue, version}

customer_orders/<orderId>:  {_id, customerId, total, confirmed}  (a lookup: whose order,
    its total once submitted, so that a confirmation can be credited to the customer, and
    whether it is confirmed, so that cancelling a confirmed order takes its total back)

`orderCount` counts every order the customer created, whatever its status;
`lifetimeValue` sums the totals of CONFIRMED orders. `version` is the Customer stream's
version: order events change the counters, never the version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from read_model.document_store.port import Document, UpdateMany
from read_model.projections.base import DocKey, Owner, ProjectedEvent, View
from read_model.projections.money import money_doc, money_of, zero_money_doc
from write_model.domain import customer, order
from write_model.domain.customer import CustomerRegistered, CustomerRenamed
from write_model.domain.money import Money
from write_model.domain.order import OrderCancelled, OrderConfirmed, OrderCreated, OrderSubmitted
from write_model.stream_ids import entity_id

CUSTOMERS = "customers"
CUSTOMER_ORDERS = "customer_orders"

_HANDLED = frozenset(
    cls.__name__
    for cls in (
        CustomerRegistered,
        CustomerRenamed,
        OrderCreated,
        OrderSubmitted,
        OrderConfirmed,
        OrderCancelled,
    )
)


class CustomersProjection:
    name = "customers"
    collections: tuple[str, ...] = (CUSTOMERS, CUSTOMER_ORDERS)
    owners: Mapping[str, Owner] = {CUSTOMERS: "_id", CUSTOMER_ORDERS: "customerId"}

    def handles(self, event_type: str) -> bool:
        return event_type in _HANDLED

    def reads(self, event: ProjectedEvent) -> Sequence[DocKey]:
        match event.event:
            case OrderSubmitted() | OrderConfirmed() | OrderCancelled():
                return (_order_key(event),)
            case _:
                return ()

    def keys(self, event: ProjectedEvent, view: View) -> Sequence[DocKey]:
        match event.event:
            case CustomerRegistered() | CustomerRenamed():
                return (
                    DocKey(CUSTOMERS, entity_id(event.recorded.stream_id, customer.STREAM_TYPE)),
                )
            case OrderCreated(customer_id=customer_id):
                return (_order_key(event), DocKey(CUSTOMERS, customer_id))
            case OrderSubmitted():
                return (_order_key(event),)
            case OrderConfirmed() | OrderCancelled():
                # The customer first: it reads the lookup as it was before this event.
                return (DocKey(CUSTOMERS, _lookup(event, view)["customerId"]), _order_key(event))
            case _:
                return ()

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        recorded = event.recorded
        match key.collection, event.event:
            case "customers", CustomerRegistered(name=name, email=email):
                return {
                    **(doc or {}),
                    "_id": key.id,
                    "name": name,
                    "email": email,
                    "registeredAt": recorded.occurred_at,
                    "orderCount": 0,
                    "lifetimeValue": zero_money_doc(),
                    "version": recorded.version,
                }
            case "customers", CustomerRenamed(name=name):
                return {**_existing(key, doc, event), "name": name, "version": recorded.version}
            case "customers", OrderCreated():
                current = _existing(key, doc, event)
                return {**current, "orderCount": current["orderCount"] + 1}
            case "customers", OrderConfirmed():
                return _credited(_existing(key, doc, event), event, view)
            case "customers", OrderCancelled():
                current = _existing(key, doc, event)
                if not _lookup(event, view).get("confirmed"):
                    return current
                return _credited(current, event, view, sign=-1)
            case "customer_orders", OrderConfirmed():
                return {**_existing(key, doc, event), "confirmed": True}
            case "customer_orders", OrderCancelled():
                return {**_existing(key, doc, event), "confirmed": False}
            case "customer_orders", OrderCreated(customer_id=customer_id):
                return {**(doc or {}), "_id": key.id, "customerId": customer_id, "total": None}
            case "customer_orders", OrderSubmitted(total=total):
                return {**_existing(key, doc, event), "total": money_doc(total)}
            case _:
                return doc

    def effects(self, event: ProjectedEvent) -> Sequence[UpdateMany]:
        return ()

    def indexes(self) -> Mapping[str, Sequence[Sequence[tuple[str, int]]]]:
        return {CUSTOMERS: ((("registeredAt", -1), ("_id", 1)), (("email", 1),))}


def _order_key(event: ProjectedEvent) -> DocKey:
    return DocKey(CUSTOMER_ORDERS, entity_id(event.recorded.stream_id, order.STREAM_TYPE))


def _lookup(event: ProjectedEvent, view: View) -> Document:
    key = _order_key(event)
    found = view.get(key)
    if found is None:
        raise ValueError(f"{event.recorded.type} of order {key.id}, which was never created")
    return found


def _existing(key: DocKey, doc: Document | None, event: ProjectedEvent) -> Document:
    if doc is None:
        raise ValueError(f"{event.recorded.type} applied to {key.collection}/{key.id}, missing")
    return doc


def _credited(doc: Document, event: ProjectedEvent, view: View, sign: int = 1) -> Document:
    """The customer with a confirmed order's total added to the lifetime value (`sign` -1:
    taken back, the order was cancelled). The value takes the currency of the first
    confirmed order; a total in another currency cannot be added to it and is left out (the
    catalog is priced in one currency today)."""
    found = _lookup(event, view)
    if found["total"] is None:
        raise ValueError(f"order {found['_id']} was confirmed without being submitted")
    total = money_of(found["total"])
    value = money_of(doc["lifetimeValue"])
    if value.amount == 0:  # no confirmed order yet: confirmed totals are always positive
        value = Money.zero(total.currency)
    if total.currency != value.currency:
        return {**doc}
    return {**doc, "lifetimeValue": money_doc(value + total.times(sign))}
