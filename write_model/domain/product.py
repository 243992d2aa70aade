"""Product (catalog entry and stock) as a decider. The product id is its SKU."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, assert_never

from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.money import Money, parse_price
from write_model.domain.validation import (
    require_id,
    require_name,
    require_quantity,
    require_stock,
)

STREAM_TYPE = "Product"

# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class AddProduct:
    product_id: str
    name: str
    price: Money
    initial_stock: int


@dataclass(frozen=True, slots=True)
class RenameProduct:
    product_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ChangeProductPrice:
    product_id: str
    price: Money


@dataclass(frozen=True, slots=True)
class RestockProduct:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReserveStock:
    product_id: str
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReleaseStockReservation:
    product_id: str
    order_id: str


@dataclass(frozen=True, slots=True)
class ShipReservedStock:
    """The order's shipment left: its reserved quantity leaves stock."""

    product_id: str
    order_id: str


@dataclass(frozen=True, slots=True)
class ReturnShippedStock:
    """The order's shipment was cancelled: what it took comes back on hand."""

    product_id: str
    order_id: str


ProductCommand = (
    AddProduct
    | RenameProduct
    | ChangeProductPrice
    | RestockProduct
    | ReserveStock
    | ReleaseStockReservation
    | ShipReservedStock
    | ReturnShippedStock
)

# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class ProductAdded:
    product_id: str
    name: str
    price: Money
    initial_stock: int


@dataclass(frozen=True, slots=True)
class ProductRenamed:
    name: str


@dataclass(frozen=True, slots=True)
class ProductPriceChanged:
    price: Money


@dataclass(frozen=True, slots=True)
class ProductRestocked:
    quantity: int


@dataclass(frozen=True, slots=True)
class StockReserved:
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StockReservationReleased:
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReservedStockShipped:
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ShippedStockReturned:
    order_id: str
    quantity: int


ProductEvent = (
    ProductAdded
    | ProductRenamed
    | ProductPriceChanged
    | ProductRestocked
    | StockReserved
    | StockReservationReleased
    | ReservedStockShipped
    | ShippedStockReturned
)

# ------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    price: Money
    stock_on_hand: int
    # order id -> reserved quantity; a tuple of pairs keeps the state hashable and frozen
    reservations: tuple[tuple[str, int], ...] = ()
    # order id -> quantity shipped, so a cancelled shipment returns exactly that
    shipped: tuple[tuple[str, int], ...] = ()

    @property
    def stock_reserved(self) -> int:
        return sum(quantity for _, quantity in self.reservations)

    @property
    def stock_available(self) -> int:
        return self.stock_on_hand - self.stock_reserved

    def reserved_for(self, order_id: str) -> int | None:
        return next((q for o, q in self.reservations if o == order_id), None)

    def shipped_for(self, order_id: str) -> int | None:
        return next((q for o, q in self.shipped if o == order_id), None)


ProductState = Product | None
initial_state: ProductState = None


def decide(command: ProductCommand, state: ProductState) -> list[ProductEvent]:
    match command:
        case AddProduct(product_id, name, price, initial_stock):
            if state is not None:
                raise InvalidState(f"product {product_id} already exists")
            return [
                ProductAdded(
                    require_id(product_id, "productId"),
                    require_name(name),
                    parse_price(price.amount, price.currency),
                    require_stock(initial_stock, "initialStock"),
                )
            ]
        case RenameProduct(product_id, name):
            product = _existing(state, product_id)
            new_name = require_name(name)
            return [] if new_name == product.name else [ProductRenamed(new_name)]
        case ChangeProductPrice(product_id, price):
            product = _existing(state, product_id)
            new_price = parse_price(price.amount, price.currency)
            if new_price.currency != product.price.currency:
                raise ValidationFailed(
                    f"price currency {new_price.currency} differs from the product's "
                    f"{product.price.currency}",
                    "currency",
                )
            return [] if new_price == product.price else [ProductPriceChanged(new_price)]
        case RestockProduct(product_id, quantity):
            product = _existing(state, product_id)
            require_stock(quantity, "quantity")
            if quantity == 0:
                raise ValidationFailed("restock quantity must be greater than zero", "quantity")
            require_stock(product.stock_on_hand + quantity, "stockOnHand")
            return [ProductRestocked(quantity)]
        case ReserveStock(product_id, order_id, quantity):
            product = _existing(state, product_id)
            require_quantity(quantity)
            already = product.reserved_for(order_id)
            if already is not None:
                # The saga may repeat a step after a crash: the same reservation is a no-op.
                if already == quantity:
                    return []
                raise InvalidState(
                    f"order {order_id} already holds {already} of {product.product_id}"
                )
            if quantity > product.stock_available:
                raise InvalidState(
                    f"insufficient stock for {product.product_id}: {quantity} requested, "
                    f"{product.stock_available} available"
                )
            return [StockReserved(order_id, quantity)]
        case ReleaseStockReservation(product_id, order_id):
            product = _existing(state, product_id)
            held = product.reserved_for(order_id)
            return [] if held is None else [StockReservationReleased(order_id, held)]
        case ShipReservedStock(product_id, order_id):
            product = _existing(state, product_id)
            held = product.reserved_for(order_id)
            if held is None:
                if product.shipped_for(order_id) is not None:
                    return []  # shipped already: the saga may repeat a step after a crash
                raise InvalidState(f"order {order_id} holds no {product.product_id} to ship")
            return [ReservedStockShipped(order_id, held)]
        case ReturnShippedStock(product_id, order_id):
            product = _existing(state, product_id)
            shipped = product.shipped_for(order_id)
            return [] if shipped is None else [ShippedStockReturned(order_id, shipped)]
        case _:
            assert_never(command)


def evolve(state: ProductState, event: ProductEvent) -> ProductState:
    match event:
        case ProductAdded(product_id, name, price, initial_stock):
            return Product(product_id, name, price, initial_stock)
        case ProductRenamed(name):
            return _replace(state, name=name)
        case ProductPriceChanged(price):
            return _replace(state, price=price)
        case ProductRestocked(quantity):
            product = _require(state)
            return _replace(product, stock_on_hand=product.stock_on_hand + quantity)
        case StockReserved(order_id, quantity):
            product = _require(state)
            return _replace(product, reservations=(*product.reservations, (order_id, quantity)))
        case StockReservationReleased(order_id, _):
            product = _require(state)
            kept = tuple(r for r in product.reservations if r[0] != order_id)
            return _replace(product, reservations=kept)
        case ReservedStockShipped(order_id, quantity):
            product = _require(state)
            return _replace(
                product,
                stock_on_hand=product.stock_on_hand - quantity,
                reservations=tuple(r for r in product.reservations if r[0] != order_id),
                shipped=(*product.shipped, (order_id, quantity)),
            )
        case ShippedStockReturned(order_id, quantity):
            product = _require(state)
            return _replace(
                product,
                stock_on_hand=product.stock_on_hand + quantity,
                shipped=tuple(s for s in product.shipped if s[0] != order_id),
            )
        case _:
            assert_never(event)


def _existing(state: ProductState, product_id: str) -> Product:
    if state is None:
        raise NotFound(f"product {product_id} not found", product_id)
    return state


def _require(state: ProductState) -> Product:
    if state is None:
        raise ValueError("event applied to a product that was never added")
    return state


def _replace(state: ProductState, **changes: Any) -> Product:
    return replace(_require(state), **changes)
