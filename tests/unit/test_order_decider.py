"""Order decider: given past events, when a command, then new events or a domain error."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from tests.unit.given_when_then import given, raises, when
from write_model.domain import order
from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.money import Money
from write_model.domain.order import (
    MAX_LINES,
    AddOrderItem,
    Address,
    CancelOrder,
    ConfirmOrder,
    CreateOrder,
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderEvent,
    OrderItemAdded,
    OrderItemRemoved,
    OrderLine,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
    PricedItem,
    RejectOrder,
    RemoveOrderItem,
    SetShippingAddress,
    ShippingAddressSet,
    SubmitOrder,
)
from write_model.domain.validation import MAX_NAME_LENGTH, MAX_QUANTITY

TAX = Decimal("0.10")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


def money(amount: str, currency: str = "USD") -> Money:
    return Money(Decimal(amount), currency)


def item(
    product_id: str = "p1",
    quantity: int = 1,
    price: str = "12.30",
    currency: str = "USD",
    name: str | None = None,
) -> PricedItem:
    return PricedItem(product_id, name or f"Product {product_id}", quantity, money(price, currency))


def added(
    product_id: str = "p1",
    quantity: int = 1,
    price: str = "12.30",
    currency: str = "USD",
    name: str | None = None,
) -> OrderItemAdded:
    return OrderItemAdded(
        product_id, name or f"Product {product_id}", quantity, money(price, currency)
    )


def created(tax_rate: Decimal = TAX) -> OrderCreated:
    return OrderCreated("o1", "c1", tax_rate)


def state_of(events: Sequence[OrderEvent]) -> order.OrderState:
    return given(order.evolve, order.initial_state, events)


DRAFT: list[OrderEvent] = [created()]
READY: list[OrderEvent] = [created(), added("p1", 2), ShippingAddressSet(ADDRESS)]
SUBMITTED: list[OrderEvent] = [
    *READY,
    OrderSubmitted(money("24.60"), money("2.46"), money("27.06")),
]
CONFIRMED: list[OrderEvent] = [*SUBMITTED, OrderConfirmed()]
REJECTED: list[OrderEvent] = [*SUBMITTED, OrderRejected("payment declined")]
CANCELLED_DRAFT: list[OrderEvent] = [*READY, OrderCancelled(None)]
CANCELLED_SUBMITTED: list[OrderEvent] = [*SUBMITTED, OrderCancelled("changed my mind")]

NOT_DRAFT = pytest.mark.parametrize(
    "history",
    [SUBMITTED, CONFIRMED, REJECTED, CANCELLED_DRAFT, CANCELLED_SUBMITTED],
    ids=["submitted", "confirmed", "rejected", "cancelled-draft", "cancelled-submitted"],
)


# ------------------------------------------------------------------ CreateOrder


def test_create_order_records_the_order() -> None:
    events = order.decide(CreateOrder("o1", "c1", TAX), order.initial_state)

    assert events == [OrderCreated("o1", "c1", TAX)]


def test_created_order_is_an_empty_draft() -> None:
    state = state_of([created()])

    assert state == Order("o1", "c1", TAX, OrderStatus.DRAFT, (), None)
    assert state.currency is None
    assert state.totals() == order.Totals(money("0.00"), money("0.00"), money("0.00"))


def test_create_order_with_items_and_address_records_each() -> None:
    command = CreateOrder(
        "o1",
        "c1",
        TAX,
        items=(item("p1", 2), item("p2", 1, "5.00")),
        shipping_address=Address("  1 Main St ", " Springfield", "12345 ", " us "),
    )

    events = order.decide(command, order.initial_state)

    assert events == [
        OrderCreated("o1", "c1", TAX),
        added("p1", 2),
        added("p2", 1, "5.00"),
        ShippingAddressSet(ADDRESS),
    ]


def test_create_order_with_the_same_product_twice_merges_the_line() -> None:
    command = CreateOrder("o1", "c1", TAX, items=(item("p1", 2, "10.00"), item("p1", 3, "11.00")))

    events, state = when(order.decide, order.evolve, order.initial_state, command)

    assert events == [created(), added("p1", 2, "10.00"), added("p1", 3, "11.00")]
    assert state.lines == (OrderLine("p1", "Product p1", 5, money("11.00")),)


@pytest.mark.parametrize("tax_rate", ["0", "0.10", "0.25", "0.9999"])
def test_create_order_accepts_a_tax_rate_in_zero_to_one(tax_rate: str) -> None:
    events = order.decide(CreateOrder("o1", "c1", Decimal(tax_rate)), order.initial_state)

    assert events == [OrderCreated("o1", "c1", Decimal(tax_rate))]


@pytest.mark.parametrize("tax_rate", ["-0.01", "1", "1.5", "100", "NaN", "sNaN", "Infinity"])
def test_create_order_rejects_a_tax_rate_outside_zero_to_one(tax_rate: str) -> None:
    with raises(ValidationFailed, match="tax rate", field="taxRate"):
        order.decide(CreateOrder("o1", "c1", Decimal(tax_rate)), order.initial_state)


@pytest.mark.parametrize("order_id", ["", "-o1", "o 1", "o/1", "o.1", "o" * 101, "o1\n", "ö1"])
def test_create_order_rejects_a_malformed_order_id(order_id: str) -> None:
    with raises(ValidationFailed, field="orderId"):
        order.decide(CreateOrder(order_id, "c1", TAX), order.initial_state)


@pytest.mark.parametrize("order_id", ["o1", "O", "a" * 100, "order_1:3-4"])
def test_create_order_accepts_a_well_formed_order_id(order_id: str) -> None:
    events = order.decide(CreateOrder(order_id, "c1", TAX), order.initial_state)

    assert events == [OrderCreated(order_id, "c1", TAX)]


@pytest.mark.parametrize(
    "history", [DRAFT, SUBMITTED, CANCELLED_DRAFT], ids=["draft", "submitted", "cancelled"]
)
def test_create_order_that_exists_is_invalid(history: list[OrderEvent]) -> None:
    with raises(InvalidState, match="already exists"):
        order.decide(CreateOrder("o1", "c1", TAX), state_of(history))


def test_create_order_with_a_bad_item_quantity_fails() -> None:
    with raises(ValidationFailed, field="quantity"):
        order.decide(CreateOrder("o1", "c1", TAX, items=(item(quantity=0),)), None)


def test_create_order_with_items_in_two_currencies_fails() -> None:
    items = (item("p1", currency="USD"), item("p2", currency="EUR"))

    with raises(ValidationFailed, match="EUR", field="productId"):
        order.decide(CreateOrder("o1", "c1", TAX, items=items), None)


def test_create_order_with_too_many_lines_fails() -> None:
    items = tuple(item(f"p{i}") for i in range(MAX_LINES + 1))

    with raises(ValidationFailed, match="at most", field="productId"):
        order.decide(CreateOrder("o1", "c1", TAX, items=items), None)


def test_create_order_merging_past_the_quantity_limit_fails() -> None:
    items = (item("p1", MAX_QUANTITY), item("p1", 1))

    with raises(ValidationFailed, match="exceed", field="quantity"):
        order.decide(CreateOrder("o1", "c1", TAX, items=items), None)


def test_create_order_with_a_bad_address_fails() -> None:
    command = CreateOrder("o1", "c1", TAX, shipping_address=Address("1 Main St", "", "1", "US"))

    with raises(ValidationFailed, field="city"):
        order.decide(command, None)


# ---------------------------------------------------------------- AddOrderItem


def test_add_item_adds_a_line_at_the_catalog_price() -> None:
    state = state_of(DRAFT)

    events, after = when(order.decide, order.evolve, state, AddOrderItem("o1", item("p1", 2)))

    assert events == [added("p1", 2, "12.30")]
    assert after.lines == (OrderLine("p1", "Product p1", 2, money("12.30")),)
    assert after.currency == "USD"


def test_add_a_second_product_appends_a_line() -> None:
    state = state_of([created(), added("p1", 1)])

    events, after = when(
        order.decide, order.evolve, state, AddOrderItem("o1", item("p2", 3, "1.00"))
    )

    assert events == [added("p2", 3, "1.00")]
    assert [line.product_id for line in after.lines] == ["p1", "p2"]


def test_add_the_same_product_twice_merges_the_line_at_the_newer_price() -> None:
    state = state_of([created(), added("p1", 2, "10.00", name="Old name"), added("p2", 1)])

    events, after = when(
        order.decide,
        order.evolve,
        state,
        AddOrderItem("o1", item("p1", 3, "11.50", name="New name")),
    )

    assert events == [added("p1", 3, "11.50", name="New name")]
    assert after.lines == (
        OrderLine("p1", "New name", 5, money("11.50")),
        OrderLine("p2", "Product p2", 1, money("12.30")),
    )
    assert after.line("p1").line_total == money("57.50")


def test_add_item_to_an_unknown_order_is_not_found() -> None:
    with raises(NotFound, match="o9", entity_id="o9"):
        order.decide(AddOrderItem("o9", item()), order.initial_state)


@pytest.mark.parametrize("quantity", [0, -1, -100, MAX_QUANTITY + 1, 10**9])
def test_add_item_with_a_bad_quantity_fails(quantity: int) -> None:
    with raises(ValidationFailed, field="quantity"):
        order.decide(AddOrderItem("o1", item(quantity=quantity)), state_of(DRAFT))


def test_add_item_accepts_the_largest_quantity() -> None:
    events = order.decide(AddOrderItem("o1", item(quantity=MAX_QUANTITY)), state_of(DRAFT))

    assert events == [added(quantity=MAX_QUANTITY)]


def test_add_item_in_another_currency_than_the_order_fails() -> None:
    state = state_of([created(), added("p1", currency="USD")])

    with raises(ValidationFailed, match="priced in EUR, the order in USD", field="productId"):
        order.decide(AddOrderItem("o1", item("p2", currency="EUR")), state)


def test_add_same_product_in_another_currency_fails() -> None:
    state = state_of([created(), added("p1", currency="USD")])

    with raises(ValidationFailed, field="productId"):
        order.decide(AddOrderItem("o1", item("p1", currency="EUR")), state)


def test_an_order_whose_lines_were_all_removed_takes_any_currency() -> None:
    state = state_of([created(), added("p1", currency="USD"), OrderItemRemoved("p1")])

    events = order.decide(AddOrderItem("o1", item("p2", currency="EUR")), state)

    assert events == [added("p2", currency="EUR")]


def full_order() -> order.OrderState:
    return state_of([created(), *(added(f"p{i}") for i in range(MAX_LINES))])


def test_add_a_line_beyond_the_maximum_fails() -> None:
    state = full_order()
    assert len(state.lines) == MAX_LINES

    with raises(ValidationFailed, match=f"at most {MAX_LINES} lines", field="productId"):
        order.decide(AddOrderItem("o1", item("one-more")), state)


def test_add_to_an_existing_line_of_a_full_order_is_allowed() -> None:
    events = order.decide(AddOrderItem("o1", item("p0", 4)), full_order())

    assert events == [added("p0", 4)]


def test_add_merging_past_the_quantity_limit_fails() -> None:
    state = state_of([created(), added("p1", MAX_QUANTITY - 1)])

    with raises(ValidationFailed, match="exceed", field="quantity"):
        order.decide(AddOrderItem("o1", item("p1", 2)), state)


def test_add_merging_up_to_the_quantity_limit_is_allowed() -> None:
    state = state_of([created(), added("p1", MAX_QUANTITY - 1)])

    events, after = when(order.decide, order.evolve, state, AddOrderItem("o1", item("p1", 1)))

    assert events == [added("p1", 1)]
    assert after.line("p1").quantity == MAX_QUANTITY


@NOT_DRAFT
def test_add_item_after_submit_is_invalid(history: list[OrderEvent]) -> None:
    with raises(InvalidState, match="cannot add items to order o1"):
        order.decide(AddOrderItem("o1", item("p9")), state_of(history))


# ------------------------------------------------------------- RemoveOrderItem


def test_remove_item_removes_the_line() -> None:
    state = state_of([created(), added("p1"), added("p2"), added("p3")])

    events, after = when(order.decide, order.evolve, state, RemoveOrderItem("o1", "p2"))

    assert events == [OrderItemRemoved("p2")]
    assert [line.product_id for line in after.lines] == ["p1", "p3"]


def test_remove_then_add_again_starts_a_fresh_line() -> None:
    state = state_of([created(), added("p1", 5), OrderItemRemoved("p1")])

    _, after = when(order.decide, order.evolve, state, AddOrderItem("o1", item("p1", 1)))

    assert after.line("p1").quantity == 1


def test_remove_item_from_an_unknown_order_is_not_found() -> None:
    with raises(NotFound, entity_id="o9"):
        order.decide(RemoveOrderItem("o9", "p1"), order.initial_state)


def test_remove_an_item_the_order_does_not_hold_is_not_found() -> None:
    state = state_of([created(), added("p1")])

    with raises(NotFound, match="no item p2", entity_id="p2"):
        order.decide(RemoveOrderItem("o1", "p2"), state)


def test_remove_an_item_already_removed_is_not_found() -> None:
    state = state_of([created(), added("p1"), OrderItemRemoved("p1")])

    with raises(NotFound, entity_id="p1"):
        order.decide(RemoveOrderItem("o1", "p1"), state)


@NOT_DRAFT
def test_remove_item_after_submit_is_invalid(history: list[OrderEvent]) -> None:
    with raises(InvalidState, match="cannot remove items from order o1"):
        order.decide(RemoveOrderItem("o1", "p1"), state_of(history))


# ---------------------------------------------------------- SetShippingAddress


def test_set_shipping_address_records_it_normalized() -> None:
    command = SetShippingAddress("o1", Address(" 1 Main St ", "Springfield ", " 12345", " us"))

    events, after = when(order.decide, order.evolve, state_of(DRAFT), command)

    assert events == [ShippingAddressSet(ADDRESS)]
    assert after.shipping_address == ADDRESS


def test_set_the_same_shipping_address_again_changes_nothing() -> None:
    state = state_of([created(), ShippingAddressSet(ADDRESS)])

    assert order.decide(SetShippingAddress("o1", ADDRESS), state) == []
    equivalent = Address("1 Main St ", " Springfield", "12345", "us")
    assert order.decide(SetShippingAddress("o1", equivalent), state) == []


def test_set_another_shipping_address_replaces_it() -> None:
    state = state_of([created(), ShippingAddressSet(ADDRESS)])
    other = Address("2 Side St", "Paris", "75001", "FR")

    events, after = when(order.decide, order.evolve, state, SetShippingAddress("o1", other))

    assert events == [ShippingAddressSet(other)]
    assert after.shipping_address == other


def test_set_shipping_address_of_an_unknown_order_is_not_found() -> None:
    with raises(NotFound, entity_id="o9"):
        order.decide(SetShippingAddress("o9", ADDRESS), order.initial_state)


@pytest.mark.parametrize(
    ("address", "field"),
    [
        (Address("", "Springfield", "12345", "US"), "line1"),
        (Address("   ", "Springfield", "12345", "US"), "line1"),
        (Address("x" * (MAX_NAME_LENGTH + 1), "Springfield", "12345", "US"), "line1"),
        (Address("1 Main St", "", "12345", "US"), "city"),
        (Address("1 Main St", "x" * (MAX_NAME_LENGTH + 1), "12345", "US"), "city"),
        (Address("1 Main St", "Springfield", " ", "US"), "postalCode"),
        (Address("1 Main St", "Springfield", "9" * (MAX_NAME_LENGTH + 1), "US"), "postalCode"),
        (Address("1 Main St", "Springfield", "12345", ""), "country"),
        (Address("1 Main St", "Springfield", "12345", "USA"), "country"),
        (Address("1 Main St", "Springfield", "12345", "U"), "country"),
        (Address("1 Main St", "Springfield", "12345", "U1"), "country"),
        (Address("1 Main St", "Springfield", "12345", "U S"), "country"),
        # Two capital letters, but no country: user-assigned or never assigned.
        (Address("1 Main St", "Springfield", "12345", "ZZ"), "country"),
        (Address("1 Main St", "Springfield", "12345", "XX"), "country"),
        (Address("1 Main St", "Springfield", "12345", "QQ"), "country"),
        (Address("1 Main St", "Springfield", "12345", "UK"), "country"),  # it is GB
    ],
)
def test_set_a_bad_shipping_address_fails(address: Address, field: str) -> None:
    with raises(ValidationFailed, field=field):
        order.decide(SetShippingAddress("o1", address), state_of(DRAFT))


def test_set_shipping_address_accepts_the_longest_names() -> None:
    longest = "x" * MAX_NAME_LENGTH
    address = Address(longest, longest, longest, "DE")

    assert order.decide(SetShippingAddress("o1", address), state_of(DRAFT)) == [
        ShippingAddressSet(address)
    ]


@NOT_DRAFT
def test_set_shipping_address_after_submit_is_invalid(history: list[OrderEvent]) -> None:
    other = Address("2 Side St", "Paris", "75001", "FR")

    with raises(InvalidState, match="cannot change the shipping address of order o1"):
        order.decide(SetShippingAddress("o1", other), state_of(history))


# ------------------------------------------------------------------ SubmitOrder


def test_submit_records_the_totals() -> None:
    state = state_of([created(), added("p1", 2, "12.30"), ShippingAddressSet(ADDRESS)])

    events, after = when(order.decide, order.evolve, state, SubmitOrder("o1"))

    assert events == [OrderSubmitted(money("24.60"), money("2.46"), money("27.06"))]
    assert after.status is OrderStatus.SUBMITTED


@pytest.mark.parametrize(
    ("lines", "tax_rate", "subtotal", "tax", "total"),
    [
        ([("12.34", 3)], "0.10", "37.02", "3.70", "40.72"),
        ([("0.05", 1)], "0.10", "0.05", "0.01", "0.06"),  # tax 0.005 rounds half-up
        ([("0.04", 1)], "0.10", "0.04", "0.00", "0.04"),  # tax 0.004 rounds down
        ([("0.25", 1)], "0.10", "0.25", "0.03", "0.28"),  # half-up, not banker's 0.02
        ([("12.34", 3), ("0.99", 7)], "0.10", "43.95", "4.40", "48.35"),  # 4.395
        ([("19.99", 1)], "0.0825", "19.99", "1.65", "21.64"),  # 1.649175
        ([("10.00", 1)], "0", "10.00", "0.00", "10.00"),
        ([("0.10", 3)], "0.10", "0.30", "0.03", "0.33"),  # no float error
        ([("999.99", MAX_QUANTITY)], "0.10", "9999900.00", "999990.00", "10999890.00"),
    ],
)
def test_submit_totals_are_exact_with_tax_rounded_half_up_to_the_cent(
    lines: list[tuple[str, int]], tax_rate: str, subtotal: str, tax: str, total: str
) -> None:
    history: list[OrderEvent] = [created(Decimal(tax_rate))]
    history += [added(f"p{i}", quantity, price) for i, (price, quantity) in enumerate(lines)]
    history.append(ShippingAddressSet(ADDRESS))

    [submitted] = order.decide(SubmitOrder("o1"), state_of(history))

    assert submitted == OrderSubmitted(money(subtotal), money(tax), money(total))
    # exact Decimals to the cent, not merely equal values
    assert [str(m.amount) for m in (submitted.subtotal, submitted.tax, submitted.total)] == [
        subtotal,
        tax,
        total,
    ]


def test_submit_totals_use_the_newer_price_of_a_merged_line() -> None:
    state = state_of(
        [
            created(),
            added("p1", 1, "10.00"),
            added("p1", 2, "12.00"),
            ShippingAddressSet(ADDRESS),
        ]
    )

    assert order.decide(SubmitOrder("o1"), state) == [
        OrderSubmitted(money("36.00"), money("3.60"), money("39.60"))
    ]


def test_submit_totals_are_in_the_order_currency() -> None:
    state = state_of([created(), added("p1", 1, "10.00", "EUR"), ShippingAddressSet(ADDRESS)])

    assert order.decide(SubmitOrder("o1"), state) == [
        OrderSubmitted(money("10.00", "EUR"), money("1.00", "EUR"), money("11.00", "EUR"))
    ]


def test_submit_totals_ignore_removed_lines() -> None:
    state = state_of(
        [
            created(),
            added("p1", 1, "10.00"),
            added("p2", 1, "99.00"),
            OrderItemRemoved("p2"),
            ShippingAddressSet(ADDRESS),
        ]
    )

    assert order.decide(SubmitOrder("o1"), state) == [
        OrderSubmitted(money("10.00"), money("1.00"), money("11.00"))
    ]


def test_submit_without_items_is_invalid() -> None:
    state = state_of([created(), ShippingAddressSet(ADDRESS)])

    with raises(InvalidState, match="no items"):
        order.decide(SubmitOrder("o1"), state)


def test_submit_after_removing_every_item_is_invalid() -> None:
    state = state_of([created(), added("p1"), OrderItemRemoved("p1"), ShippingAddressSet(ADDRESS)])

    with raises(InvalidState, match="no items"):
        order.decide(SubmitOrder("o1"), state)


def test_submit_without_a_shipping_address_is_invalid() -> None:
    state = state_of([created(), added("p1")])

    with raises(InvalidState, match="no shipping address"):
        order.decide(SubmitOrder("o1"), state)


def test_submit_an_empty_order_reports_the_missing_items_first() -> None:
    with raises(InvalidState, match="no items"):
        order.decide(SubmitOrder("o1"), state_of(DRAFT))


def test_submit_an_unknown_order_is_not_found() -> None:
    with raises(NotFound, entity_id="o9"):
        order.decide(SubmitOrder("o9"), order.initial_state)


@NOT_DRAFT
def test_submit_twice_or_after_the_end_is_invalid(history: list[OrderEvent]) -> None:
    with raises(InvalidState, match="cannot submit order o1"):
        order.decide(SubmitOrder("o1"), state_of(history))


# ------------------------------------------------------------------ CancelOrder


@pytest.mark.parametrize(
    "history", [DRAFT, READY, SUBMITTED], ids=["empty-draft", "draft", "submitted"]
)
def test_cancel_a_draft_or_submitted_order(history: list[OrderEvent]) -> None:
    events, after = when(
        order.decide, order.evolve, state_of(history), CancelOrder("o1", "changed my mind")
    )

    assert events == [OrderCancelled("changed my mind")]
    assert after.status is OrderStatus.CANCELLED


@pytest.mark.parametrize(
    ("reason", "recorded"),
    [(None, None), ("", None), ("   ", None), ("  too slow \n", "too slow")],
)
def test_cancel_reason_is_trimmed_and_blank_means_none(
    reason: str | None, recorded: str | None
) -> None:
    assert order.decide(CancelOrder("o1", reason), state_of(READY)) == [OrderCancelled(recorded)]


@pytest.mark.parametrize(
    ("history", "status"),
    [
        (REJECTED, "REJECTED"),
        (CANCELLED_DRAFT, "CANCELLED"),
        (CANCELLED_SUBMITTED, "CANCELLED"),
    ],
)
def test_cancel_a_finished_order_is_invalid(history: list[OrderEvent], status: str) -> None:
    with raises(InvalidState, match=f"is {status} and cannot be cancelled"):
        order.decide(CancelOrder("o1"), state_of(history))


def test_cancel_a_confirmed_order_so_the_saga_undoes_its_steps() -> None:
    events, after = when(order.decide, order.evolve, state_of(CONFIRMED), CancelOrder("o1", "late"))

    assert events == [OrderCancelled("late")]
    assert after is not None and after.status is OrderStatus.CANCELLED


def test_cancel_an_unknown_order_is_not_found() -> None:
    with raises(NotFound, entity_id="o9"):
        order.decide(CancelOrder("o9"), order.initial_state)


# ----------------------------------------------------------------- ConfirmOrder


def test_confirm_a_submitted_order() -> None:
    events, after = when(order.decide, order.evolve, state_of(SUBMITTED), ConfirmOrder("o1"))

    assert events == [OrderConfirmed()]
    assert after.status is OrderStatus.CONFIRMED


def test_confirm_again_is_a_no_op() -> None:
    assert order.decide(ConfirmOrder("o1"), state_of(CONFIRMED)) == []


@pytest.mark.parametrize(
    ("history", "status"),
    [
        (DRAFT, "DRAFT"),
        (READY, "DRAFT"),
        (REJECTED, "REJECTED"),
        (CANCELLED_DRAFT, "CANCELLED"),
        (CANCELLED_SUBMITTED, "CANCELLED"),
    ],
)
def test_confirm_an_order_that_is_not_submitted_is_invalid(
    history: list[OrderEvent], status: str
) -> None:
    with raises(InvalidState, match=f"is {status} and cannot be confirmed"):
        order.decide(ConfirmOrder("o1"), state_of(history))


def test_confirm_an_unknown_order_is_not_found() -> None:
    with raises(NotFound, entity_id="o9"):
        order.decide(ConfirmOrder("o9"), order.initial_state)


# ------------------------------------------------------------------ RejectOrder


def test_reject_a_submitted_order() -> None:
    command = RejectOrder("o1", "out of stock")

    events, after = when(order.decide, order.evolve, state_of(SUBMITTED), command)

    assert events == [OrderRejected("out of stock")]
    assert after.status is OrderStatus.REJECTED


def test_reject_again_is_a_no_op() -> None:
    assert order.decide(RejectOrder("o1", "again"), state_of(REJECTED)) == []


@pytest.mark.parametrize(
    ("history", "status"),
    [
        (DRAFT, "DRAFT"),
        (READY, "DRAFT"),
        (CONFIRMED, "CONFIRMED"),
        (CANCELLED_DRAFT, "CANCELLED"),
        (CANCELLED_SUBMITTED, "CANCELLED"),
    ],
)
def test_reject_an_order_that_is_not_submitted_is_invalid(
    history: list[OrderEvent], status: str
) -> None:
    with raises(InvalidState, match=f"is {status} and cannot be rejected"):
        order.decide(RejectOrder("o1", "no"), state_of(history))


def test_reject_an_unknown_order_is_not_found() -> None:
    with raises(NotFound, entity_id="o9"):
        order.decide(RejectOrder("o9", "no"), order.initial_state)


# ----------------------------------------------------------------------- evolve


@pytest.mark.parametrize(
    "event",
    [
        added(),
        OrderItemRemoved("p1"),
        ShippingAddressSet(ADDRESS),
        OrderSubmitted(money("1.00"), money("0.10"), money("1.10")),
        OrderCancelled(None),
        OrderConfirmed(),
        OrderRejected("no"),
    ],
    ids=lambda event: type(event).__name__,
)
def test_evolve_refuses_events_before_the_order_exists(event: OrderEvent) -> None:
    with pytest.raises(ValueError, match="never created"):
        order.evolve(order.initial_state, event)


def test_evolve_keeps_the_tax_rate_recorded_at_creation() -> None:
    state = state_of([created(Decimal("0.20")), added("p1", 1, "10.00")])

    assert state.tax_rate == Decimal("0.20")
    assert state.totals() == order.Totals(money("10.00"), money("2.00"), money("12.00"))


def test_state_is_immutable_across_evolve() -> None:
    before = state_of(DRAFT)

    after = order.evolve(before, added("p1"))

    assert before.lines == ()
    assert after.lines != ()


# ---------------------------------------------------------- property: totals

PRODUCT_IDS = [f"p{i}" for i in range(8)]
prices = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2, allow_nan=False
)
tax_rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.9999"), places=4)


@settings(max_examples=200, deadline=None)
@for_all(tax_rate=tax_rates, data=st.data())
def test_totals_stay_consistent_for_any_valid_sequence_of_item_commands(
    tax_rate: Decimal, data: st.DataObject
) -> None:
    state = given(order.evolve, order.initial_state, [OrderCreated("o1", "c1", tax_rate)])
    expected_quantities: dict[str, int] = {}

    for _ in range(data.draw(st.integers(min_value=0, max_value=30), label="steps")):
        held = [line.product_id for line in state.lines]
        if held and data.draw(st.booleans(), label="remove?"):
            product_id = data.draw(st.sampled_from(held), label="remove")
            command: order.OrderCommand = RemoveOrderItem("o1", product_id)
            del expected_quantities[product_id]
        else:
            product_id = data.draw(st.sampled_from(PRODUCT_IDS), label="add")
            quantity = data.draw(st.integers(min_value=1, max_value=300), label="quantity")
            price = Money(data.draw(prices, label="price"), "USD")
            command = AddOrderItem("o1", PricedItem(product_id, product_id, quantity, price))
            expected_quantities[product_id] = expected_quantities.get(product_id, 0) + quantity

        events, state = when(order.decide, order.evolve, state, command)
        assert len(events) == 1

        totals = state.totals()
        line_sum = sum((line.line_total.amount for line in state.lines), Decimal("0"))
        assert totals.total == totals.subtotal + totals.tax
        assert totals.subtotal.amount == line_sum
        assert totals.tax == totals.subtotal.rate(tax_rate)
        assert abs(totals.tax.amount - totals.subtotal.amount * tax_rate) <= Decimal("0.005")
        for money_ in (totals.subtotal, totals.tax, totals.total):
            assert money_.amount == money_.amount.quantize(Decimal("0.01"))
            assert money_.currency == "USD"
        assert all(line.quantity > 0 for line in state.lines)
        assert len({line.product_id for line in state.lines}) == len(state.lines)
        assert {line.product_id: line.quantity for line in state.lines} == expected_quantities
