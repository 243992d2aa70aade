"""Product decider: catalog entry, price and stock with per-order reservations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.given_when_then import given, raises, when
from write_model.domain import product
from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.money import Money
from write_model.domain.product import (
    AddProduct,
    ChangeProductPrice,
    Product,
    ProductAdded,
    ProductPriceChanged,
    ProductRenamed,
    ProductRestocked,
    ReleaseStockReservation,
    RenameProduct,
    ReservedStockShipped,
    ReserveStock,
    RestockProduct,
    ReturnShippedStock,
    ShippedStockReturned,
    ShipReservedStock,
    StockReservationReleased,
    StockReserved,
)
from write_model.domain.validation import MAX_NAME_LENGTH, MAX_QUANTITY, MAX_STOCK


def money(amount: str, currency: str = "USD") -> Money:
    return Money(Decimal(amount), currency)


ADDED = ProductAdded("sku-1", "Widget", money("9.99"), 10)


def state_of(*events: product.ProductEvent) -> product.ProductState:
    return given(product.evolve, product.initial_state, events)


# ------------------------------------------------------------------- AddProduct


def test_add_a_product() -> None:
    command = AddProduct("sku-1", "Widget", money("9.99"), 10)

    events, state = when(product.decide, product.evolve, product.initial_state, command)

    assert events == [ProductAdded("sku-1", "Widget", money("9.99"), 10)]
    assert state == Product("sku-1", "Widget", money("9.99"), 10, ())
    assert (state.stock_on_hand, state.stock_reserved, state.stock_available) == (10, 0, 10)


def test_add_a_product_normalizes_name_and_price() -> None:
    [added] = product.decide(AddProduct("sku-1", "  Widget ", money("5"), 0), None)

    assert added == ProductAdded("sku-1", "Widget", money("5.00"), 0)
    assert str(added.price.amount) == "5.00"


def test_add_a_product_with_the_largest_stock() -> None:
    [added] = product.decide(AddProduct("sku-1", "Widget", money("1.00"), MAX_STOCK), None)

    assert added.initial_stock == MAX_STOCK


def test_add_an_existing_product_is_invalid() -> None:
    with raises(InvalidState, match="sku-1 already exists"):
        product.decide(AddProduct("sku-1", "Widget", money("9.99"), 10), state_of(ADDED))


@pytest.mark.parametrize(
    "amount", ["0", "0.00", "-1", "-0.01", "1.005", "9.999", "NaN", "sNaN", "Infinity", "-Infinity"]
)
def test_add_a_product_with_a_bad_price_fails(amount: str) -> None:
    with raises(ValidationFailed, field="price"):
        product.decide(AddProduct("sku-1", "Widget", money(amount), 10), None)


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "", "12A", "USD\n"])
def test_add_a_product_with_a_bad_currency_fails(currency: str) -> None:
    with raises(ValidationFailed, field="currency"):
        product.decide(AddProduct("sku-1", "Widget", money("9.99", currency), 10), None)


@pytest.mark.parametrize("stock", [-1, -1000, MAX_STOCK + 1])
def test_add_a_product_with_a_bad_initial_stock_fails(stock: int) -> None:
    with raises(ValidationFailed, field="initialStock"):
        product.decide(AddProduct("sku-1", "Widget", money("9.99"), stock), None)


@pytest.mark.parametrize("product_id", ["", "-sku", "sku 1", "sku/1", "sku.1", "s" * 101, "sku\n"])
def test_add_a_product_with_a_malformed_id_fails(product_id: str) -> None:
    with raises(ValidationFailed, field="productId"):
        product.decide(AddProduct(product_id, "Widget", money("9.99"), 10), None)


@pytest.mark.parametrize("name", ["", "  ", "x" * (MAX_NAME_LENGTH + 1)])
def test_add_a_product_with_a_bad_name_fails(name: str) -> None:
    with raises(ValidationFailed, field="name"):
        product.decide(AddProduct("sku-1", name, money("9.99"), 10), None)


# ---------------------------------------------------------------- RenameProduct


def test_rename_a_product() -> None:
    events, state = when(
        product.decide, product.evolve, state_of(ADDED), RenameProduct("sku-1", " Gadget ")
    )

    assert events == [ProductRenamed("Gadget")]
    assert state.name == "Gadget"


@pytest.mark.parametrize("name", ["Widget", " Widget  "])
def test_rename_to_the_same_name_changes_nothing(name: str) -> None:
    assert product.decide(RenameProduct("sku-1", name), state_of(ADDED)) == []


@pytest.mark.parametrize("name", ["", " ", "x" * (MAX_NAME_LENGTH + 1)])
def test_rename_to_a_bad_name_fails(name: str) -> None:
    with raises(ValidationFailed, field="name"):
        product.decide(RenameProduct("sku-1", name), state_of(ADDED))


def test_rename_an_unknown_product_is_not_found() -> None:
    with raises(NotFound, match="sku-9 not found", entity_id="sku-9"):
        product.decide(RenameProduct("sku-9", "Gadget"), product.initial_state)


# ----------------------------------------------------------- ChangeProductPrice


def test_change_the_price() -> None:
    events, state = when(
        product.decide, product.evolve, state_of(ADDED), ChangeProductPrice("sku-1", money("12.5"))
    )

    assert events == [ProductPriceChanged(money("12.50"))]
    assert str(events[0].price.amount) == "12.50"
    assert state.price == money("12.50")


@pytest.mark.parametrize("amount", ["9.99", "9.990"])
def test_change_to_the_same_price_changes_nothing(amount: str) -> None:
    assert product.decide(ChangeProductPrice("sku-1", money(amount)), state_of(ADDED)) == []


def test_change_the_price_to_another_currency_fails() -> None:
    with raises(ValidationFailed, match="differs", field="currency"):
        product.decide(ChangeProductPrice("sku-1", money("9.99", "EUR")), state_of(ADDED))


@pytest.mark.parametrize("amount", ["0", "-9.99", "9.999", "NaN", "Infinity"])
def test_change_to_a_bad_price_fails(amount: str) -> None:
    with raises(ValidationFailed, field="price"):
        product.decide(ChangeProductPrice("sku-1", money(amount)), state_of(ADDED))


def test_change_to_a_malformed_currency_fails() -> None:
    with raises(ValidationFailed, match="ISO 4217", field="currency"):
        product.decide(ChangeProductPrice("sku-1", money("9.99", "usd")), state_of(ADDED))


def test_change_the_price_of_an_unknown_product_is_not_found() -> None:
    with raises(NotFound, entity_id="sku-9"):
        product.decide(ChangeProductPrice("sku-9", money("1.00")), product.initial_state)


# --------------------------------------------------------------- RestockProduct


def test_restock_adds_to_stock_on_hand() -> None:
    state = state_of(ADDED, StockReserved("o1", 4))

    events, after = when(product.decide, product.evolve, state, RestockProduct("sku-1", 5))

    assert events == [ProductRestocked(5)]
    assert (after.stock_on_hand, after.stock_reserved, after.stock_available) == (15, 4, 11)


def test_restock_up_to_the_maximum_stock() -> None:
    assert product.decide(RestockProduct("sku-1", MAX_STOCK - 10), state_of(ADDED)) == [
        ProductRestocked(MAX_STOCK - 10)
    ]


@pytest.mark.parametrize("quantity", [0, -1, -10, MAX_STOCK + 1])
def test_restock_with_a_bad_quantity_fails(quantity: int) -> None:
    with raises(ValidationFailed, field="quantity"):
        product.decide(RestockProduct("sku-1", quantity), state_of(ADDED))


def test_restock_beyond_the_maximum_stock_fails() -> None:
    with raises(ValidationFailed, field="stockOnHand"):
        product.decide(RestockProduct("sku-1", MAX_STOCK - 9), state_of(ADDED))


def test_restock_an_unknown_product_is_not_found() -> None:
    with raises(NotFound, entity_id="sku-9"):
        product.decide(RestockProduct("sku-9", 1), product.initial_state)


# ----------------------------------------------------------------- ReserveStock


def test_reserve_stock_for_an_order() -> None:
    events, state = when(
        product.decide, product.evolve, state_of(ADDED), ReserveStock("sku-1", "o1", 3)
    )

    assert events == [StockReserved("o1", 3)]
    assert state.reserved_for("o1") == 3
    assert (state.stock_on_hand, state.stock_reserved, state.stock_available) == (10, 3, 7)


def test_stock_available_is_on_hand_minus_every_reservation() -> None:
    state = state_of(ADDED, StockReserved("o1", 3), StockReserved("o2", 4), ProductRestocked(2))

    assert state.stock_on_hand == 12
    assert state.stock_reserved == 7
    assert state.stock_available == 5
    assert state.reserved_for("o2") == 4
    assert state.reserved_for("o3") is None


def test_reserve_exactly_what_is_available() -> None:
    state = state_of(ADDED, StockReserved("o1", 4))

    events, after = when(product.decide, product.evolve, state, ReserveStock("sku-1", "o2", 6))

    assert events == [StockReserved("o2", 6)]
    assert after.stock_available == 0


def test_reserve_more_than_on_hand_is_invalid() -> None:
    with raises(InvalidState, match="insufficient stock for sku-1: 11 requested, 10 available"):
        product.decide(ReserveStock("sku-1", "o1", 11), state_of(ADDED))


def test_reserve_more_than_what_other_orders_left_is_invalid() -> None:
    state = state_of(ADDED, StockReserved("o1", 8))

    with raises(InvalidState, match="3 requested, 2 available"):
        product.decide(ReserveStock("sku-1", "o2", 3), state)


def test_reserve_from_empty_stock_is_invalid() -> None:
    state = state_of(ProductAdded("sku-1", "Widget", money("9.99"), 0))

    with raises(InvalidState, match="insufficient stock"):
        product.decide(ReserveStock("sku-1", "o1", 1), state)


def test_reserve_the_same_quantity_for_the_same_order_again_is_a_no_op() -> None:
    state = state_of(ADDED, StockReserved("o1", 6))

    assert product.decide(ReserveStock("sku-1", "o1", 6), state) == []


def test_repeating_a_reservation_is_a_no_op_even_when_nothing_is_left() -> None:
    state = state_of(ADDED, StockReserved("o1", 10))

    assert product.decide(ReserveStock("sku-1", "o1", 10), state) == []


@pytest.mark.parametrize("quantity", [1, 5])
def test_reserve_another_quantity_for_the_same_order_is_invalid(quantity: int) -> None:
    state = state_of(ADDED, StockReserved("o1", 3))

    with raises(InvalidState, match="o1 already holds 3 of sku-1"):
        product.decide(ReserveStock("sku-1", "o1", quantity), state)


def test_reserve_again_after_a_release() -> None:
    state = state_of(ADDED, StockReserved("o1", 3), StockReservationReleased("o1", 3))

    assert product.decide(ReserveStock("sku-1", "o1", 5), state) == [StockReserved("o1", 5)]


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_reserve_a_bad_quantity_fails(quantity: int) -> None:
    state = state_of(ProductAdded("sku-1", "Widget", money("9.99"), MAX_STOCK))

    with raises(ValidationFailed, field="quantity"):
        product.decide(ReserveStock("sku-1", "o1", quantity), state)


def test_reserve_stock_of_an_unknown_product_is_not_found() -> None:
    with raises(NotFound, entity_id="sku-9"):
        product.decide(ReserveStock("sku-9", "o1", 1), product.initial_state)


# ------------------------------------------------------ ReleaseStockReservation


def test_release_a_reservation_returns_its_quantity() -> None:
    state = state_of(ADDED, StockReserved("o1", 3), StockReserved("o2", 4))

    events, after = when(
        product.decide, product.evolve, state, ReleaseStockReservation("sku-1", "o1")
    )

    assert events == [StockReservationReleased("o1", 3)]
    assert after.reservations == (("o2", 4),)
    assert (after.stock_on_hand, after.stock_reserved, after.stock_available) == (10, 4, 6)


def test_release_an_unknown_reservation_is_a_no_op() -> None:
    state = state_of(ADDED, StockReserved("o1", 3))

    assert product.decide(ReleaseStockReservation("sku-1", "o2"), state) == []


def test_release_twice_is_a_no_op() -> None:
    state = state_of(ADDED, StockReserved("o1", 3), StockReservationReleased("o1", 3))

    assert product.decide(ReleaseStockReservation("sku-1", "o1"), state) == []


def test_release_on_an_unknown_product_is_not_found() -> None:
    with raises(NotFound, entity_id="sku-9"):
        product.decide(ReleaseStockReservation("sku-9", "o1"), product.initial_state)


# ----------------------------------------------------------------------- evolve


@pytest.mark.parametrize(
    "event",
    [
        ProductRenamed("Gadget"),
        ProductPriceChanged(money("1.00")),
        ProductRestocked(1),
        StockReserved("o1", 1),
        StockReservationReleased("o1", 1),
    ],
    ids=lambda event: type(event).__name__,
)
def test_evolve_refuses_events_before_the_product_exists(event: product.ProductEvent) -> None:
    with pytest.raises(ValueError, match="never added"):
        product.evolve(product.initial_state, event)


def test_stock_never_goes_negative_through_decide() -> None:
    state = state_of(ADDED)
    for order_id in ("o1", "o2"):
        _, state = when(product.decide, product.evolve, state, ReserveStock("sku-1", order_id, 4))
    assert state.stock_available == 2

    with raises(InvalidState, match="insufficient stock"):
        product.decide(ReserveStock("sku-1", "o3", 4), state)


# ------------------------------------------------------- shipping reserved stock


def test_shipping_takes_the_reserved_quantity_out_of_stock() -> None:
    state = state_of(ADDED, StockReserved("o1", 3))

    events, after = when(product.decide, product.evolve, state, ShipReservedStock("sku-1", "o1"))

    assert events == [ReservedStockShipped("o1", 3)]
    assert after is not None
    assert (after.stock_on_hand, after.stock_reserved, after.stock_available) == (7, 0, 7)


def test_shipping_twice_is_a_no_op_and_shipping_nothing_reserved_is_invalid() -> None:
    shipped = state_of(ADDED, StockReserved("o1", 3), ReservedStockShipped("o1", 3))

    assert product.decide(ShipReservedStock("sku-1", "o1"), shipped) == []
    with raises(InvalidState, match="holds no sku-1 to ship"):
        product.decide(ShipReservedStock("sku-1", "o2"), shipped)


def test_returning_a_shipment_puts_it_back_on_hand_once() -> None:
    shipped = state_of(ADDED, StockReserved("o1", 3), ReservedStockShipped("o1", 3))

    events, after = when(product.decide, product.evolve, shipped, ReturnShippedStock("sku-1", "o1"))

    assert events == [ShippedStockReturned("o1", 3)]
    assert after is not None and (after.stock_on_hand, after.stock_reserved) == (10, 0)
    assert product.decide(ReturnShippedStock("sku-1", "o1"), after) == []
    # Releasing the reservation afterwards has nothing left to release.
    assert product.decide(ReleaseStockReservation("sku-1", "o1"), after) == []
