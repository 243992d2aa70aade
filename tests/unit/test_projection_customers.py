"""The `customers` projection: given past events, when new ones, then the read documents."""

from __future__ import annotations

import copy
from decimal import Decimal

from read_model.projections.base import DocKey
from read_model.projections.customers import CustomersProjection
from tests.unit.given_when_then import raises
from tests.unit.projection_harness import Played, ProjectionHarness, at, projected
from write_model.domain.customer import CustomerRegistered, CustomerRenamed
from write_model.domain.money import Money
from write_model.domain.order import (
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderItemAdded,
    OrderRejected,
    OrderSubmitted,
)

TAX = Decimal("0.10")


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def registered(customer_id: str = "c1", name: str = "Ada") -> Played:
    return (
        f"Customer-{customer_id}",
        CustomerRegistered(customer_id, name, f"{customer_id}@example.com"),
    )


def created(order_id: str, customer_id: str = "c1") -> Played:
    return (f"Order-{order_id}", OrderCreated(order_id, customer_id, TAX))


def item_added(order_id: str, price: str, currency: str = "USD") -> Played:
    return (f"Order-{order_id}", OrderItemAdded("p1", "Widget", 1, Money(Decimal(price), currency)))


def submitted(order_id: str, total: str, currency: str = "USD") -> Played:
    amount = Money(Decimal(total), currency)
    return (f"Order-{order_id}", OrderSubmitted(amount, Money(Decimal("0.00"), currency), amount))


def confirmed(order_id: str) -> Played:
    return (f"Order-{order_id}", OrderConfirmed())


def harness() -> ProjectionHarness:
    return ProjectionHarness(CustomersProjection())


def test_a_registered_customer_has_no_orders_and_no_lifetime_value() -> None:
    h = harness()

    h.when(registered("c1", "Ada"))

    assert h.doc("customers", "c1") == {
        "_id": "c1",
        "name": "Ada",
        "email": "c1@example.com",
        "registeredAt": at(1),
        "orderCount": 0,
        "lifetimeValue": money("0.00"),
        "version": 1,
    }


def test_a_rename_changes_the_name_and_the_version() -> None:
    h = harness().given(registered("c1", "Ada"))

    h.when(("Customer-c1", CustomerRenamed("Ada Lovelace")))

    doc = h.doc("customers", "c1")
    assert doc is not None
    assert (doc["name"], doc["version"], doc["registeredAt"]) == ("Ada Lovelace", 2, at(1))


def test_every_created_order_counts_whatever_its_status() -> None:
    h = harness().given(registered("c1"), registered("c2"))

    h.when(
        created("o1", "c1"),
        created("o2", "c1"),
        ("Order-o2", OrderCancelled(None)),
        created("o3", "c1"),
        created("o4", "c2"),
    )

    docs = h.docs("customers")
    assert (docs["c1"]["orderCount"], docs["c2"]["orderCount"]) == (3, 1)
    # order events are not events of the customer: the version stays
    assert (docs["c1"]["version"], docs["c2"]["version"]) == (1, 1)


def test_the_order_lookup_remembers_the_customer_and_the_submitted_total() -> None:
    h = harness().given(registered("c1"), created("o1", "c1"))
    assert h.doc("customer_orders", "o1") == {"_id": "o1", "customerId": "c1", "total": None}

    h.when(item_added("o1", "39.40"), submitted("o1", "43.34"))

    assert h.doc("customer_orders", "o1") == {
        "_id": "o1",
        "customerId": "c1",
        "total": money("43.34"),
    }


def test_lifetime_value_sums_only_confirmed_orders() -> None:
    h = harness().given(
        registered("c1"),
        created("o1"),
        submitted("o1", "43.34"),
        created("o2"),
        submitted("o2", "10.00"),  # still running
        created("o3"),
        submitted("o3", "20.00"),
        ("Order-o3", OrderRejected("out of stock")),
        created("o4"),
        submitted("o4", "30.00"),
        ("Order-o4", OrderCancelled("too slow")),
    )

    h.when(confirmed("o1"))
    assert h.doc("customers", "c1")["lifetimeValue"] == money("43.34")  # type: ignore[index]

    h.when(confirmed("o2"))
    doc = h.doc("customers", "c1")
    assert doc is not None
    assert (doc["lifetimeValue"], doc["orderCount"], doc["version"]) == (money("53.34"), 4, 1)


def test_lifetime_value_takes_the_currency_of_the_first_confirmed_order() -> None:
    h = harness().given(registered("c1"), created("o1"), submitted("o1", "12.50", "EUR"))

    h.when(confirmed("o1"))

    assert h.doc("customers", "c1")["lifetimeValue"] == money("12.50", "EUR")  # type: ignore[index]


def test_a_confirmation_is_credited_to_the_customer_named_by_the_lookup() -> None:
    projection = CustomersProjection()
    h = harness().given(registered("c1"), created("o1", "c1"), submitted("o1", "43.34"))
    event = projected(h.record(*confirmed("o1")))
    lookup = DocKey("customer_orders", "o1")

    assert projection.reads(event) == (lookup,)
    assert projection.keys(event, {lookup: h.store[lookup]}) == (DocKey("customers", "c1"), lookup)
    with raises(ValueError, match="never created"):
        projection.keys(event, {lookup: None})


def test_created_and_submitted_orders_key_on_the_lookup() -> None:
    projection = CustomersProjection()
    h = harness()
    new_order = projected(h.record(*created("o1", "c1")))
    submission = projected(h.record(*submitted("o1", "1.00")))

    assert projection.keys(new_order, {}) == (
        DocKey("customer_orders", "o1"),
        DocKey("customers", "c1"),
    )
    assert projection.reads(new_order) == ()
    assert projection.keys(submission, {}) == (DocKey("customer_orders", "o1"),)


def test_evolve_leaves_its_input_document_unchanged() -> None:
    projection = CustomersProjection()
    h = harness().given(registered("c1"), created("o1"), submitted("o1", "43.34"))
    key = DocKey("customers", "c1")
    doc = h.store[key]
    before = copy.deepcopy(doc)
    view = {DocKey("customer_orders", "o1"): h.store[DocKey("customer_orders", "o1")]}

    for played in [confirmed("o1"), created("o2"), ("Customer-c1", CustomerRenamed("Bo"))]:
        after = projection.evolve(key, doc, projected(h.record(*played)), view)
        assert after is not doc
        assert doc == before


def test_replaying_the_same_events_from_scratch_gives_the_same_documents() -> None:
    events = [
        registered("c1"),
        registered("c2"),
        created("o1", "c1"),
        submitted("o1", "43.34"),
        confirmed("o1"),
        ("Customer-c1", CustomerRenamed("Ada L.")),
        created("o2", "c2"),
    ]

    first = harness().when(*events)
    second = harness().when(*events)

    assert first.store == second.store
    assert first.doc("customers", "c1")["lifetimeValue"] == money("43.34")  # type: ignore[index]


def test_handles_customer_events_and_the_order_events_it_counts() -> None:
    projection = CustomersProjection()

    handled = {
        "CustomerRegistered",
        "CustomerRenamed",
        "OrderCreated",
        "OrderSubmitted",
        "OrderConfirmed",
        "OrderCancelled",
    }
    for event_type in handled:
        assert projection.handles(event_type), event_type
    for event_type in ["OrderItemAdded", "OrderRejected", "ProductAdded"]:
        assert not projection.handles(event_type), event_type
    assert projection.collections == ("customers", "customer_orders")


def test_cancelling_a_confirmed_order_takes_its_total_back() -> None:
    h = harness().given(
        registered("c1"),
        created("o1", "c1"),
        submitted("o1", "43.34"),
        confirmed("o1"),
        created("o2", "c1"),
        submitted("o2", "10.00"),
        confirmed("o2"),
    )

    h.when(("Order-o1", OrderCancelled("changed my mind")))

    assert h.doc("customers", "c1")["lifetimeValue"] == money("10.00")  # type: ignore[index]


def test_cancelling_an_unconfirmed_order_leaves_the_lifetime_value() -> None:
    h = harness().given(
        registered("c1"), created("o1", "c1"), submitted("o1", "43.34"), confirmed("o1")
    )
    h.given(created("o2", "c1"), submitted("o2", "10.00"))

    h.when(("Order-o2", OrderCancelled(None)))

    assert h.doc("customers", "c1")["lifetimeValue"] == money("43.34")  # type: ignore[index]
