"""The `orders` projection: given past events, when new ones, then the read documents."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from read_model.document_store.port import UpdateMany
from read_model.projections import ALL_PROJECTIONS
from read_model.projections.base import DocKey
from read_model.projections.money import money_of
from read_model.projections.orders import OrdersProjection
from tests.unit.given_when_then import raises, when
from tests.unit.projection_harness import Played, ProjectionHarness, at, projected
from write_model.domain import order
from write_model.domain.customer import CustomerEmailReserved, CustomerRegistered, CustomerRenamed
from write_model.domain.money import Money
from write_model.domain.order import (
    AddOrderItem,
    Address,
    CreateOrder,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderItemAdded,
    OrderItemRemoved,
    OrderRejected,
    OrderSubmitted,
    PricedItem,
    RemoveOrderItem,
    ShippingAddressSet,
)
from write_model.domain.product import ProductAdded, ProductRenamed

TAX = Decimal("0.10")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


PENDING_STEPS = [
    {"name": name, "status": "PENDING", "detail": None, "updatedAt": None}
    for name in ("ReserveInventory", "ProcessPayment", "CreateShipment")
]


def usd(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def registered(customer_id: str = "c1", name: str = "Ada") -> Played:
    return (
        f"Customer-{customer_id}",
        CustomerRegistered(customer_id, name, f"{customer_id}@example.com"),
    )


def renamed_customer(customer_id: str, name: str) -> Played:
    return (f"Customer-{customer_id}", CustomerRenamed(name))


def renamed_product(product_id: str, name: str) -> Played:
    return (f"Product-{product_id}", ProductRenamed(name))


def created(order_id: str = "o1", customer_id: str = "c1", tax_rate: Decimal = TAX) -> Played:
    return (f"Order-{order_id}", OrderCreated(order_id, customer_id, tax_rate))


def added(
    order_id: str,
    product_id: str,
    quantity: int,
    price: str,
    name: str | None = None,
    currency: str = "USD",
) -> Played:
    return (
        f"Order-{order_id}",
        OrderItemAdded(
            product_id, name or f"Product {product_id}", quantity, Money(Decimal(price), currency)
        ),
    )


def on(order_id: str, event: Any) -> Played:
    return (f"Order-{order_id}", event)


def submitted(order_id: str, subtotal: str, tax: str, total: str) -> Played:
    return on(
        order_id,
        OrderSubmitted(
            Money(Decimal(subtotal), "USD"),
            Money(Decimal(tax), "USD"),
            Money(Decimal(total), "USD"),
        ),
    )


def harness(batch_size: int = 1) -> ProjectionHarness:
    return ProjectionHarness(OrdersProjection(), batch_size=batch_size)


def two_line_order() -> list[Played]:
    """2 x 1.25 + 3 x 12.30 = 39.40; tax 3.94; total 43.34."""
    return [
        registered("c1", "Ada"),
        created("o1", "c1"),
        added("o1", "p1", 2, "1.25", "Widget"),
        added("o1", "p2", 3, "12.30", "Gadget"),
        on("o1", ShippingAddressSet(ADDRESS)),
    ]


# ----------------------------------------------------------------- creation


def test_a_new_order_is_a_draft_with_the_customer_name_and_empty_totals() -> None:
    h = harness().given(registered("c1", "Ada"))

    h.when(created("o1", "c1"))

    assert h.doc("orders", "o1") == {
        "_id": "o1",
        "customerId": "c1",
        "customerName": "Ada",
        "status": "DRAFT",
        "items": [],
        "productNames": {},
        "productIds": [],
        "subtotal": usd("0.00"),
        "tax": usd("0.00"),
        "total": usd("0.00"),
        "totalMinor": 0,
        "currency": "USD",
        "taxRate": "0.10",
        "shippingAddress": None,
        "fulfillment": {"state": "NOT_STARTED", "steps": [], "reason": None},
        "cancelReason": None,
        "createdAt": at(2),
        "updatedAt": at(2),
        "version": 1,
    }
    assert h.doc("order_customers", "c1") == {"_id": "c1", "name": "Ada"}


def test_an_order_of_a_customer_not_yet_seen_has_an_empty_customer_name() -> None:
    h = harness().when(created("o1", "c9"))

    assert h.doc("orders", "o1")["customerName"] == ""  # type: ignore[index]


def test_a_new_order_reads_the_customer_lookup_and_keys_on_its_own_stream() -> None:
    projection = OrdersProjection()
    h = harness()
    event = projected(h.record(*created("o1", "c1")))

    assert projection.reads(event) == (DocKey("order_customers", "c1"),)
    assert projection.keys(event, {}) == (DocKey("orders", "o1"),)


# ---------------------------------------------------------------- lifecycle


def test_full_lifecycle_to_confirmed_with_exact_totals() -> None:
    h = harness().given(*two_line_order())

    h.when(submitted("o1", "39.40", "3.94", "43.34"), on("o1", OrderConfirmed()))

    assert h.doc("orders", "o1") == {
        "_id": "o1",
        "customerId": "c1",
        "customerName": "Ada",
        "status": "CONFIRMED",
        "items": [
            {
                "productId": "p1",
                "quantity": 2,
                "unitPrice": usd("1.25"),
                "lineTotal": usd("2.50"),
            },
            {
                "productId": "p2",
                "quantity": 3,
                "unitPrice": usd("12.30"),
                "lineTotal": usd("36.90"),
            },
        ],
        "productNames": {"p1": "Widget", "p2": "Gadget"},
        "productIds": ["p1", "p2"],
        "subtotal": usd("39.40"),
        "tax": usd("3.94"),
        "total": usd("43.34"),
        "totalMinor": 4334,
        "currency": "USD",
        "taxRate": "0.10",
        "shippingAddress": {
            "line1": "1 Main St",
            "city": "Springfield",
            "postalCode": "12345",
            "country": "US",
        },
        "fulfillment": {"state": "COMPLETED", "steps": PENDING_STEPS, "reason": None},
        "cancelReason": None,
        "createdAt": at(2),
        "updatedAt": at(7),
        "version": 6,
    }


def test_totals_are_computed_as_items_are_added_before_submission() -> None:
    h = harness().given(registered(), created("o1"))

    h.when(added("o1", "p1", 2, "1.25"), added("o1", "p2", 3, "12.30"))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert (doc["subtotal"], doc["tax"], doc["total"], doc["totalMinor"]) == (
        usd("39.40"),
        usd("3.94"),
        usd("43.34"),
        4334,
    )
    assert (doc["version"], doc["createdAt"], doc["updatedAt"]) == (3, at(2), at(4))


def test_submission_starts_the_fulfillment_and_takes_the_recorded_totals() -> None:
    h = harness().given(*two_line_order())

    h.when(submitted("o1", "39.40", "3.94", "43.34"))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert doc["status"] == "SUBMITTED"
    assert doc["fulfillment"] == {"state": "RUNNING", "steps": PENDING_STEPS, "reason": None}
    assert doc["total"] == usd("43.34")
    assert doc["totalMinor"] == 4334


def test_rejection_fails_the_fulfillment_with_the_reason() -> None:
    h = harness().given(*two_line_order(), submitted("o1", "39.40", "3.94", "43.34"))

    h.when(on("o1", OrderRejected("payment declined")))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert doc["status"] == "REJECTED"
    assert doc["fulfillment"] == {
        "state": "FAILED",
        "steps": PENDING_STEPS,
        "reason": "payment declined",
    }
    assert doc["cancelReason"] is None
    assert (doc["version"], doc["updatedAt"]) == (6, at(7))


def test_cancelling_a_draft_records_the_reason_and_leaves_the_fulfillment() -> None:
    h = harness().given(*two_line_order())

    h.when(on("o1", OrderCancelled("changed my mind")))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert doc["status"] == "CANCELLED"
    assert doc["cancelReason"] == "changed my mind"
    assert doc["fulfillment"] == {"state": "NOT_STARTED", "steps": [], "reason": None}
    assert doc["total"] == usd("43.34")


def test_cancelling_without_a_reason() -> None:
    h = harness().given(registered(), created("o1"))

    h.when(on("o1", OrderCancelled(None)))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert (doc["status"], doc["cancelReason"]) == ("CANCELLED", None)


def test_a_submitted_order_can_be_cancelled_and_its_fulfillment_is_left_running() -> None:
    h = harness().given(*two_line_order(), submitted("o1", "39.40", "3.94", "43.34"))

    h.when(on("o1", OrderCancelled("too slow")))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert doc["status"] == "CANCELLED"
    assert doc["fulfillment"]["state"] == "RUNNING"


def test_setting_the_address_again_replaces_it() -> None:
    h = harness().given(*two_line_order())

    h.when(on("o1", ShippingAddressSet(Address("2 Side St", "Shelbyville", "54321", "CA"))))

    assert h.doc("orders", "o1")["shippingAddress"] == {  # type: ignore[index]
        "line1": "2 Side St",
        "city": "Shelbyville",
        "postalCode": "54321",
        "country": "CA",
    }


# -------------------------------------------------------------------- items


def test_adding_a_product_already_ordered_merges_into_its_line() -> None:
    h = harness().given(
        registered(),
        created("o1"),
        added("o1", "p1", 2, "1.25", "Widget"),
        added("o1", "p2", 1, "12.30", "Gadget"),
    )

    h.when(added("o1", "p1", 3, "1.50", "Widget Pro"))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert doc["items"] == [
        {"productId": "p1", "quantity": 5, "unitPrice": usd("1.50"), "lineTotal": usd("7.50")},
        {"productId": "p2", "quantity": 1, "unitPrice": usd("12.30"), "lineTotal": usd("12.30")},
    ]
    assert doc["productIds"] == ["p1", "p2"]
    assert doc["productNames"] == {"p1": "Widget Pro", "p2": "Gadget"}
    assert (doc["subtotal"], doc["tax"], doc["total"]) == (usd("19.80"), usd("1.98"), usd("21.78"))


def test_removing_an_item_drops_its_line_name_and_id_and_recomputes_totals() -> None:
    h = harness().given(*two_line_order())

    h.when(on("o1", OrderItemRemoved("p1")))

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert doc["items"] == [
        {"productId": "p2", "quantity": 3, "unitPrice": usd("12.30"), "lineTotal": usd("36.90")}
    ]
    assert doc["productIds"] == ["p2"]
    assert doc["productNames"] == {"p2": "Gadget"}
    assert (doc["subtotal"], doc["tax"], doc["total"], doc["totalMinor"]) == (
        usd("36.90"),
        usd("3.69"),
        usd("40.59"),
        4059,
    )


def test_an_order_takes_the_currency_of_its_first_line_and_usd_when_empty() -> None:
    h = harness().given(registered(), created("o1"))

    h.when(added("o1", "p1", 1, "9.99", currency="EUR"))
    doc = h.doc("orders", "o1")
    assert doc is not None
    assert (doc["currency"], doc["total"]) == ("EUR", usd("10.99", "EUR"))

    h.when(on("o1", OrderItemRemoved("p1")))
    doc = h.doc("orders", "o1")
    assert doc is not None
    assert (doc["currency"], doc["total"], doc["totalMinor"]) == ("USD", usd("0.00"), 0)


def test_tax_is_rounded_half_up_to_the_cent() -> None:
    h = harness().given(registered(), created("o1"))

    h.when(added("o1", "p1", 1, "0.05"))  # 0.005 of tax

    doc = h.doc("orders", "o1")
    assert doc is not None
    assert (doc["tax"], doc["total"], doc["totalMinor"]) == (usd("0.01"), usd("0.06"), 6)


_line_events = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.sampled_from(["p1", "p2", "p3"]),
            st.integers(1, 50),
            st.decimals("0.01", "999.99", places=2),
        ),
        st.tuples(st.just("remove"), st.sampled_from(["p1", "p2", "p3"])),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@for_all(_line_events, st.sampled_from(["0", "0.07", "0.10", "0.125", "0.2"]))
def test_items_and_totals_equal_the_write_sides(
    steps: list[tuple[Any, ...]], tax_rate: str
) -> None:
    events: list[order.OrderEvent] = [OrderCreated("o1", "c1", Decimal(tax_rate))]
    state = order.evolve(None, events[0])
    for step in steps:
        assert state is not None
        if step[0] == "add":
            _, product_id, quantity, price = step
            event: order.OrderEvent = OrderItemAdded(
                product_id, f"Product {product_id}", quantity, Money(price, "USD")
            )
        elif state.line(step[1]) is not None:
            event = OrderItemRemoved(step[1])
        else:
            continue
        events.append(event)
        state = order.evolve(state, event)
    assert state is not None

    h = harness().when(*(on("o1", event) for event in events))

    doc = h.doc("orders", "o1")
    assert doc is not None
    totals = state.totals()
    assert [(i["productId"], i["quantity"], i["unitPrice"]["amount"]) for i in doc["items"]] == [
        (line.product_id, line.quantity, str(line.unit_price.amount)) for line in state.lines
    ]
    assert Decimal(doc["subtotal"]["amount"]) == totals.subtotal.amount
    assert Decimal(doc["tax"]["amount"]) == totals.tax.amount
    assert Decimal(doc["total"]["amount"]) == totals.total.amount
    assert doc["totalMinor"] == int(totals.total.amount * 100)
    assert all(len(doc[f]["amount"].split(".")[1]) == 2 for f in ("subtotal", "tax", "total"))


_PRODUCTS = st.sampled_from(["p1", "p2", "p3", "p4"])
_order_commands = st.tuples(
    st.sampled_from(["USD", "EUR"]),
    st.decimals("0", "0.9999", places=4),  # any tax rate the decider accepts
    st.lists(
        st.one_of(
            st.tuples(
                st.just("add"),
                _PRODUCTS,
                st.integers(1, 40),
                st.decimals("0.01", "9999.99", places=2),
            ),
            st.tuples(st.just("remove"), _PRODUCTS),
        ),
        max_size=10,
    ),
)


def decided(
    order_id: str, currency: str, tax_rate: Decimal, steps: list[tuple[Any, ...]]
) -> tuple[list[Played], order.Order]:
    """An order built by the decider: its events (to project) and the write side's state."""
    state: order.OrderState = order.initial_state
    played: list[Played] = []

    def decide(command: order.OrderCommand) -> None:
        nonlocal state
        events, state = when(order.decide, order.evolve, state, command)
        played.extend(on(order_id, event) for event in events)

    decide(CreateOrder(order_id, "c1", tax_rate))
    for step in steps:
        assert state is not None
        if step[0] == "add":
            _, product_id, quantity, price = step
            name = f"Product {product_id} at {price}"  # a merged line takes the new name
            item = PricedItem(product_id, name, quantity, Money(price, currency))
            decide(AddOrderItem(order_id, item))
        elif state.line(step[1]) is not None:  # the decider refuses to remove a missing line
            decide(RemoveOrderItem(order_id, step[1]))
    assert state is not None
    return played, state


@settings(max_examples=60, deadline=None)
@for_all(st.lists(_order_commands, min_size=1, max_size=4), st.integers(1, 8))
def test_the_read_totals_of_decided_orders_equal_the_write_sides(
    orders: list[tuple[str, Decimal, list[tuple[Any, ...]]]], batch_size: int
) -> None:
    built = [decided(f"o{n}", *commands) for n, commands in enumerate(orders, start=1)]
    h = harness(batch_size).given(registered("c1"))

    h.when(*(event for played, _ in built for event in played))

    for played, state in built:
        doc = h.doc("orders", state.order_id)
        assert doc is not None
        totals = state.totals()
        read = {
            field: Money(Decimal(doc[field]["amount"]), doc[field]["currency"])
            for field in ("subtotal", "tax", "total")
        }
        assert read == {"subtotal": totals.subtotal, "tax": totals.tax, "total": totals.total}
        assert doc["currency"] == totals.total.currency
        assert doc["totalMinor"] == totals.total.amount * 100
        assert [
            (i["productId"], i["quantity"], money_of(i["unitPrice"])) for i in doc["items"]
        ] == [(line.product_id, line.quantity, line.unit_price) for line in state.lines]
        assert doc["productNames"] == {line.product_id: line.product_name for line in state.lines}
        assert doc["version"] == len(played)


# ------------------------------------------------------ denormalized names


def test_renaming_a_customer_renames_their_orders_only() -> None:
    h = harness().given(
        registered("c1", "Ada"),
        registered("c2", "Bob"),
        created("o1", "c1"),
        created("o2", "c1"),
        created("o3", "c2"),
    )

    h.when(renamed_customer("c1", "Ada Lovelace"))

    names = {order_id: doc["customerName"] for order_id, doc in h.docs("orders").items()}
    assert names == {"o1": "Ada Lovelace", "o2": "Ada Lovelace", "o3": "Bob"}
    assert h.doc("order_customers", "c1") == {"_id": "c1", "name": "Ada Lovelace"}
    # a rename is not an event of the order: its version and updatedAt stay
    doc = h.doc("orders", "o1")
    assert doc is not None
    assert (doc["version"], doc["updatedAt"]) == (1, at(3))


def test_an_order_created_after_a_rename_gets_the_new_name() -> None:
    h = harness().given(registered("c1", "Ada"), renamed_customer("c1", "Ada L."))

    h.when(created("o1", "c1"))

    assert h.doc("orders", "o1")["customerName"] == "Ada L."  # type: ignore[index]


def test_renaming_a_product_renames_it_on_the_orders_that_hold_it() -> None:
    h = harness().given(
        registered(),
        created("o1"),
        added("o1", "p1", 1, "1.00", "Widget"),
        added("o1", "p2", 1, "2.00", "Gadget"),
        created("o2"),
        added("o2", "p2", 1, "2.00", "Gadget"),
        created("o3"),
        added("o3", "p1", 1, "1.00", "Widget"),
        on("o3", OrderItemRemoved("p1")),
    )

    h.when(renamed_product("p1", "Widget Max"))

    docs = h.docs("orders")
    assert docs["o1"]["productNames"] == {"p1": "Widget Max", "p2": "Gadget"}
    assert docs["o2"]["productNames"] == {"p2": "Gadget"}
    assert docs["o3"]["productNames"] == {}


def test_rename_effects_name_the_orders_by_equality_filters() -> None:
    projection = OrdersProjection()
    h = harness()
    customer_renamed = projected(h.record(*renamed_customer("c1", "Ada L.")))
    product_renamed = projected(h.record(*renamed_product("p1", "Widget Max")))
    customer_registered = projected(h.record(*registered("c2", "Bob")))

    assert projection.effects(customer_renamed) == (
        UpdateMany("orders", {"customerId": "c1"}, {"customerName": "Ada L."}),
    )
    assert projection.effects(product_renamed) == (
        UpdateMany("orders", {"productIds": "p1"}, {"productNames.p1": "Widget Max"}),
    )
    assert projection.keys(product_renamed, {}) == ()
    assert projection.effects(customer_registered) == ()


def test_a_batch_gives_the_same_documents_as_one_event_at_a_time() -> None:
    events = [
        registered("c1", "Ada"),
        created("o1", "c1"),
        added("o1", "p1", 1, "1.00", "Widget"),
        renamed_customer("c1", "Ada L."),
        renamed_product("p1", "Widget Max"),
        created("o2", "c1"),
        added("o2", "p1", 2, "1.00", "Widget Max"),
        renamed_customer("c1", "Ada Lovelace"),
        added("o1", "p2", 1, "5.00", "Gadget"),
    ]

    one_by_one = harness().when(*events)
    batched = harness(batch_size=len(events)).when(*events)

    assert batched.store == one_by_one.store
    assert {d["customerName"] for d in one_by_one.docs("orders").values()} == {"Ada Lovelace"}
    assert one_by_one.doc("orders", "o1")["productNames"] == {  # type: ignore[index]
        "p1": "Widget Max",
        "p2": "Gadget",
    }


# ------------------------------------------------------------- properties


def test_replaying_the_same_events_from_scratch_gives_the_same_documents() -> None:
    events = [
        *two_line_order(),
        renamed_customer("c1", "Ada L."),
        submitted("o1", "39.40", "3.94", "43.34"),
        on("o1", OrderConfirmed()),
        created("o2", "c1"),
        added("o2", "p1", 1, "1.25"),
        on("o2", OrderCancelled("no")),
    ]

    first = harness().when(*events)
    second = harness().when(*events)

    assert first.store == second.store
    assert len(first.docs("orders")) == 2


def test_evolve_leaves_its_input_document_unchanged() -> None:
    projection = OrdersProjection()
    h = harness().given(*two_line_order())
    key = DocKey("orders", "o1")
    doc = h.store[key]
    before = copy.deepcopy(doc)

    for stream_id, event in [
        added("o1", "p1", 1, "1.25"),
        on("o1", OrderItemRemoved("p2")),
        on("o1", ShippingAddressSet(Address("x", "y", "z", "FR"))),
        submitted("o1", "39.40", "3.94", "43.34"),
        on("o1", OrderCancelled("x")),
    ]:
        after = projection.evolve(key, doc, projected(h.record(stream_id, event)), {})
        assert after is not doc
        assert doc == before


def test_an_event_for_an_order_never_created_fails() -> None:
    projection = OrdersProjection()
    h = harness()
    event = projected(h.record(*added("o1", "p1", 1, "1.00")))

    with raises(ValueError, match="never created"):
        projection.evolve(DocKey("orders", "o1"), None, event, {})


def test_handles_order_events_customer_names_and_product_renames_only() -> None:
    projection = OrdersProjection()

    for handled in [
        "OrderCreated",
        "OrderItemAdded",
        "OrderItemRemoved",
        "ShippingAddressSet",
        "OrderSubmitted",
        "OrderConfirmed",
        "OrderRejected",
        "OrderCancelled",
        "CustomerRegistered",
        "CustomerRenamed",
        "ProductRenamed",
    ]:
        assert projection.handles(handled), handled
    for ignored in ["ProductAdded", "ProductPriceChanged", "StockReserved"]:
        assert not projection.handles(ignored), ignored


def test_no_projection_handles_the_email_reservation() -> None:
    h = ProjectionHarness(OrdersProjection())
    reserved = h.record("CustomerEmail-a@x.io", CustomerEmailReserved("a@x.io", "c1"))

    assert reserved.type == "CustomerEmailReserved"
    assert not any(p.handles(reserved.type) for p in ALL_PROJECTIONS)
    assert [p.name for p in ALL_PROJECTIONS] == ["orders", "customers", "products"]


def test_product_added_is_ignored_by_the_orders_projection() -> None:
    h = harness().when(("Product-p1", ProductAdded("p1", "Widget", Money(Decimal("1"), "USD"), 3)))

    assert h.store == {}


def test_the_projection_keeps_orders_and_the_customer_name_lookup() -> None:
    assert OrdersProjection.collections == ("orders", "order_customers")


def test_ids_with_dashes_and_colons_are_taken_whole_from_the_stream_id() -> None:
    h = harness().given(registered("cust-1:a", "Ada"))

    h.when(created("ord-1:x", "cust-1:a"), added("ord-1:x", "sku-9", 1, "1.00"))
    h.when(renamed_customer("cust-1:a", "Ada L."), renamed_product("sku-9", "Nine"))

    doc = h.doc("orders", "ord-1:x")
    assert doc is not None
    assert (doc["customerName"], doc["productNames"]) == ("Ada L.", {"sku-9": "Nine"})


# ------------------------------------------------------------- fulfillment


def saga(order_id: str, event: Any) -> Played:
    return (f"Fulfillment-{order_id}", event)


def test_each_saga_step_shows_on_the_order_as_it_happens_and_the_version_stays_the_orders() -> None:
    from write_model.domain import fulfillment as f

    h = harness().given(*two_line_order(), submitted("o1", "39.40", "3.94", "43.34"))
    version = h.doc("orders", "o1")["version"]  # type: ignore[index]
    started = f.FulfillmentStarted("o1", "c1", (), Money(Decimal("43.34"), "USD"), ADDRESS)

    h.when(
        saga("o1", started),
        saga("o1", f.StepStarted(f.Step.RESERVE_INVENTORY)),
        saga("o1", f.StepSucceeded(f.Step.RESERVE_INVENTORY, "5 units reserved")),
        saga("o1", f.StepStarted(f.Step.PROCESS_PAYMENT)),
        saga("o1", f.StepFailed(f.Step.PROCESS_PAYMENT, "payment declined")),
    )

    doc = h.doc("orders", "o1")
    assert doc is not None and doc["version"] == version
    assert doc["fulfillment"]["state"] == "COMPENSATING"
    assert doc["fulfillment"]["reason"] == "payment declined"
    assert [(s["name"], s["status"], s["detail"]) for s in doc["fulfillment"]["steps"]] == [
        ("ReserveInventory", "DONE", "5 units reserved"),
        ("ProcessPayment", "FAILED", "payment declined"),
        ("CreateShipment", "PENDING", None),
    ]
    assert doc["fulfillment"]["steps"][0]["updatedAt"] is not None

    h.when(
        saga("o1", f.FailedStepCleanedUp(f.Step.PROCESS_PAYMENT)),
        saga("o1", f.StepCompensated(f.Step.RESERVE_INVENTORY)),
        on("o1", OrderRejected("payment declined")),
        saga("o1", f.FulfillmentFailed("payment declined")),
    )

    doc = h.doc("orders", "o1")
    assert doc is not None and doc["status"] == "REJECTED"
    assert doc["fulfillment"]["state"] == "FAILED"
    assert [s["status"] for s in doc["fulfillment"]["steps"]] == [
        "COMPENSATED",
        "FAILED",
        "PENDING",
    ]
    assert doc["fulfillment"]["steps"][0]["detail"] == "5 units reserved"


def test_the_harness_fails_a_projection_whose_evolve_changes_its_input_document() -> None:
    class Tampering(OrdersProjection):
        def evolve(self, key: DocKey, doc: Any, event: Any, view: Any) -> Any:
            evolved = super().evolve(key, doc, event, view)
            if key.collection == "orders" and doc is not None:
                doc["status"] = "TAMPERED"
            return evolved

    h = ProjectionHarness(Tampering()).given(registered("c1"), created("o1", "c1"))

    with raises(AssertionError, match="evolve changed its input document"):
        h.when(on("o1", OrderCancelled("changed my mind")))
