"""The `products` projection: given past events, when new ones, then the read documents."""

from __future__ import annotations

import copy
from decimal import Decimal

from read_model.projections.base import DocKey
from read_model.projections.products import ProductsProjection
from tests.unit.given_when_then import raises
from tests.unit.projection_harness import Played, ProjectionHarness, projected
from write_model.domain.money import Money
from write_model.domain.product import (
    ProductAdded,
    ProductPriceChanged,
    ProductRenamed,
    ProductRestocked,
    StockReservationReleased,
    StockReserved,
)


def on(product_id: str, event: object) -> Played:
    return (f"Product-{product_id}", event)


def widget(stock: int = 10) -> Played:
    return on("p1", ProductAdded("p1", "Widget", Money(Decimal("12.30"), "USD"), stock))


def harness() -> ProjectionHarness:
    return ProjectionHarness(ProductsProjection())


def stock(doc: dict[str, object] | None) -> tuple[object, ...]:
    assert doc is not None
    return (doc["stockOnHand"], doc["stockReserved"], doc["stockAvailable"], doc["version"])


def test_an_added_product_has_its_price_and_initial_stock_available() -> None:
    h = harness()

    h.when(widget(stock=10))

    assert h.doc("products", "p1") == {
        "_id": "p1",
        "name": "Widget",
        "price": {"amount": "12.30", "currency": "USD"},
        "stockOnHand": 10,
        "stockReserved": 0,
        "stockAvailable": 10,
        "version": 1,
    }


def test_stock_through_restock_reserve_and_release() -> None:
    h = harness().given(widget(stock=10))

    h.when(on("p1", ProductRestocked(5)))
    assert stock(h.doc("products", "p1")) == (15, 0, 15, 2)

    h.when(on("p1", StockReserved("o1", 4)), on("p1", StockReserved("o2", 6)))
    assert stock(h.doc("products", "p1")) == (15, 10, 5, 4)

    h.when(on("p1", StockReservationReleased("o1", 4)))
    assert stock(h.doc("products", "p1")) == (15, 6, 9, 5)


def test_rename_and_price_change() -> None:
    h = harness().given(widget())

    h.when(
        on("p1", ProductRenamed("Widget Max")),
        on("p1", ProductPriceChanged(Money(Decimal("9.5"), "USD"))),
    )

    doc = h.doc("products", "p1")
    assert doc is not None
    assert (doc["name"], doc["price"], doc["version"]) == (
        "Widget Max",
        {"amount": "9.50", "currency": "USD"},
        3,
    )
    assert (doc["stockOnHand"], doc["stockAvailable"]) == (10, 10)


def test_products_are_kept_apart() -> None:
    h = harness().given(
        widget(), on("p2", ProductAdded("p2", "Gadget", Money(Decimal(1), "EUR"), 0))
    )

    h.when(on("p2", ProductRestocked(3)))

    assert stock(h.doc("products", "p1")) == (10, 0, 10, 1)
    assert stock(h.doc("products", "p2")) == (3, 0, 3, 2)
    assert h.doc("products", "p2")["price"] == {"amount": "1.00", "currency": "EUR"}  # type: ignore[index]


def test_evolve_leaves_its_input_document_unchanged() -> None:
    projection = ProductsProjection()
    h = harness().given(widget())
    key = DocKey("products", "p1")
    doc = h.store[key]
    before = copy.deepcopy(doc)

    for played in [
        on("p1", ProductRestocked(1)),
        on("p1", StockReserved("o1", 1)),
        on("p1", ProductRenamed("x")),
        on("p1", ProductPriceChanged(Money(Decimal("1.00"), "USD"))),
    ]:
        after = projection.evolve(key, doc, projected(h.record(*played)), {})
        assert after is not doc
        assert doc == before


def test_an_event_for_a_product_never_added_fails() -> None:
    projection = ProductsProjection()
    event = projected(harness().record(*on("p1", ProductRestocked(1))))

    with raises(ValueError, match="never added"):
        projection.evolve(DocKey("products", "p1"), None, event, {})


def test_replaying_the_same_events_from_scratch_gives_the_same_documents() -> None:
    events = [
        widget(),
        on("p1", StockReserved("o1", 2)),
        on("p1", ProductRenamed("Widget Max")),
        on("p1", StockReservationReleased("o1", 2)),
        on("p1", ProductRestocked(7)),
    ]

    first = harness().when(*events)
    second = harness().when(*events)

    assert first.store == second.store
    assert stock(first.doc("products", "p1")) == (17, 0, 17, 5)


def test_handles_every_product_event_and_nothing_else() -> None:
    projection = ProductsProjection()

    for event_type in [
        "ProductAdded",
        "ProductRenamed",
        "ProductPriceChanged",
        "ProductRestocked",
        "StockReserved",
        "StockReservationReleased",
    ]:
        assert projection.handles(event_type), event_type
    for event_type in ["OrderCreated", "CustomerRenamed", "CustomerEmailReserved"]:
        assert not projection.handles(event_type), event_type
    assert projection.keys(projected(harness().record(*widget())), {}) == (
        DocKey("products", "p1"),
    )
    assert projection.reads(projected(harness().record(*widget()))) == ()
    assert projection.collections == ("products",)
