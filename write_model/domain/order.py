"""Order as a decider.

Unit prices and product names come from the catalog: the command handler loads the
Product and passes a `PricedItem`; the client never sends a price. The tax rate is a
setting, recorded on `OrderCreated` so that totals never change when the setting does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import assert_never

from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.money import DEFAULT_CURRENCY, Money
from write_model.domain.validation import (
    MAX_QUANTITY,
    require_country,
    require_id,
    require_name,
    require_quantity,
)

STREAM_TYPE = "Order"
MAX_LINES = 100


class OrderStatus(StrEnum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    postal_code: str
    country: str


@dataclass(frozen=True, slots=True)
class PricedItem:
    """An item with the catalog's name and price at the time it is added."""

    product_id: str
    product_name: str
    quantity: int
    unit_price: Money


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class CreateOrder:
    order_id: str
    customer_id: str
    tax_rate: Decimal
    items: tuple[PricedItem, ...] = ()
    shipping_address: Address | None = None


@dataclass(frozen=True, slots=True)
class AddOrderItem:
    order_id: str
    item: PricedItem


@dataclass(frozen=True, slots=True)
class RemoveOrderItem:
    order_id: str
    product_id: str


@dataclass(frozen=True, slots=True)
class SetShippingAddress:
    order_id: str
    address: Address


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    order_id: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmOrder:
    """Sent by the fulfillment saga when every step succeeded."""

    order_id: str


@dataclass(frozen=True, slots=True)
class RejectOrder:
    """Sent by the fulfillment saga after it compensated a failed step."""

    order_id: str
    reason: str


OrderCommand = (
    CreateOrder
    | AddOrderItem
    | RemoveOrderItem
    | SetShippingAddress
    | SubmitOrder
    | CancelOrder
    | ConfirmOrder
    | RejectOrder
)

# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class OrderCreated:
    order_id: str
    customer_id: str
    tax_rate: Decimal


@dataclass(frozen=True, slots=True)
class OrderItemAdded:
    """`quantity` is added to the line; the line takes this `unit_price`."""

    product_id: str
    product_name: str
    quantity: int
    unit_price: Money


@dataclass(frozen=True, slots=True)
class OrderItemRemoved:
    product_id: str


@dataclass(frozen=True, slots=True)
class ShippingAddressSet:
    address: Address


@dataclass(frozen=True, slots=True)
class OrderSubmitted:
    subtotal: Money
    tax: Money
    total: Money


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    reason: str | None


@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    pass


@dataclass(frozen=True, slots=True)
class OrderRejected:
    reason: str


OrderEvent = (
    OrderCreated
    | OrderItemAdded
    | OrderItemRemoved
    | ShippingAddressSet
    | OrderSubmitted
    | OrderCancelled
    | OrderConfirmed
    | OrderRejected
)

# ------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: str
    product_name: str
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Money
    tax: Money
    total: Money


def order_totals(lines: Sequence[tuple[Money, int]], tax_rate: Decimal) -> Totals:
    """The totals of an order's lines, each (unit price, quantity): the subtotal of unit
    price times quantity in the first line's currency (DEFAULT_CURRENCY while there is no
    line), the tax on it at `tax_rate` rounded half-up to the cent, and their sum. Lines in
    two currencies fail (`decide` never adds one). The one rule, for the order and for every
    read model that shows its totals."""
    subtotal = Money.zero(lines[0][0].currency if lines else DEFAULT_CURRENCY)
    for unit_price, quantity in lines:
        subtotal = subtotal + unit_price.times(quantity)
    tax = subtotal.rate(tax_rate)
    return Totals(subtotal, tax, subtotal + tax)


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer_id: str
    tax_rate: Decimal
    status: OrderStatus = OrderStatus.DRAFT
    lines: tuple[OrderLine, ...] = ()
    shipping_address: Address | None = None

    @property
    def currency(self) -> str | None:
        return self.lines[0].unit_price.currency if self.lines else None

    def line(self, product_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.product_id == product_id), None)

    def totals(self) -> Totals:
        return order_totals(
            [(line.unit_price, line.quantity) for line in self.lines], self.tax_rate
        )


OrderState = Order | None
initial_state: OrderState = None


def decide(command: OrderCommand, state: OrderState) -> list[OrderEvent]:
    match command:
        case CreateOrder(order_id, customer_id, tax_rate, items, shipping_address):
            if state is not None:
                raise InvalidState(f"order {order_id} already exists")
            if not (tax_rate.is_finite() and Decimal(0) <= tax_rate < Decimal(1)):
                raise ValidationFailed(f"tax rate {tax_rate} is not in [0, 1)", "taxRate")
            events: list[OrderEvent] = [
                OrderCreated(require_id(order_id, "orderId"), customer_id, tax_rate)
            ]
            order = Order(order_id, customer_id, tax_rate)
            for item in items:
                added = _add_item(order, item)
                order = _require(evolve(order, added))
                events.append(added)
            if shipping_address is not None:
                events.append(ShippingAddressSet(_valid_address(shipping_address)))
            return events
        case AddOrderItem(order_id, item):
            return [_add_item(_draft(state, order_id, "add items to"), item)]
        case RemoveOrderItem(order_id, product_id):
            order = _draft(state, order_id, "remove items from")
            if order.line(product_id) is None:
                raise NotFound(f"order {order_id} has no item {product_id}", product_id)
            return [OrderItemRemoved(product_id)]
        case SetShippingAddress(order_id, address):
            order = _draft(state, order_id, "change the shipping address of")
            valid = _valid_address(address)
            return [] if valid == order.shipping_address else [ShippingAddressSet(valid)]
        case SubmitOrder(order_id):
            order = _draft(state, order_id, "submit")
            if not order.lines:
                raise InvalidState(f"order {order_id} has no items")
            if order.shipping_address is None:
                raise InvalidState(f"order {order_id} has no shipping address")
            totals = order.totals()
            return [OrderSubmitted(totals.subtotal, totals.tax, totals.total)]
        case CancelOrder(order_id, reason):
            order = _existing(state, order_id)
            # A confirmed order may be cancelled too: the saga then undoes its steps.
            if order.status not in (
                OrderStatus.DRAFT,
                OrderStatus.SUBMITTED,
                OrderStatus.CONFIRMED,
            ):
                raise InvalidState(f"order {order_id} is {order.status} and cannot be cancelled")
            return [OrderCancelled((reason or "").strip() or None)]
        case ConfirmOrder(order_id):
            order = _existing(state, order_id)
            if order.status is OrderStatus.CONFIRMED:
                return []  # the saga may repeat a step after a crash
            if order.status is not OrderStatus.SUBMITTED:
                raise InvalidState(f"order {order_id} is {order.status} and cannot be confirmed")
            return [OrderConfirmed()]
        case RejectOrder(order_id, reason):
            order = _existing(state, order_id)
            if order.status is OrderStatus.REJECTED:
                return []
            if order.status is not OrderStatus.SUBMITTED:
                raise InvalidState(f"order {order_id} is {order.status} and cannot be rejected")
            return [OrderRejected(reason)]
        case _:
            assert_never(command)


def evolve(state: OrderState, event: OrderEvent) -> OrderState:
    match event:
        case OrderCreated(order_id, customer_id, tax_rate):
            return Order(order_id, customer_id, tax_rate)
        case OrderItemAdded(product_id, product_name, quantity, unit_price):
            order = _require(state)
            existing = order.line(product_id)
            if existing is None:
                lines = (*order.lines, OrderLine(product_id, product_name, quantity, unit_price))
            else:
                merged = OrderLine(
                    product_id, product_name, existing.quantity + quantity, unit_price
                )
                lines = tuple(merged if line is existing else line for line in order.lines)
            return replace(order, lines=lines)
        case OrderItemRemoved(product_id):
            order = _require(state)
            lines = tuple(line for line in order.lines if line.product_id != product_id)
            return replace(order, lines=lines)
        case ShippingAddressSet(address):
            return replace(_require(state), shipping_address=address)
        case OrderSubmitted():
            return replace(_require(state), status=OrderStatus.SUBMITTED)
        case OrderCancelled():
            return replace(_require(state), status=OrderStatus.CANCELLED)
        case OrderConfirmed():
            return replace(_require(state), status=OrderStatus.CONFIRMED)
        case OrderRejected():
            return replace(_require(state), status=OrderStatus.REJECTED)
        case _:
            assert_never(event)


def _add_item(order: Order, item: PricedItem) -> OrderItemAdded:
    require_quantity(item.quantity)
    if order.currency is not None and item.unit_price.currency != order.currency:
        raise ValidationFailed(
            f"product {item.product_id} is priced in {item.unit_price.currency}, "
            f"the order in {order.currency}",
            "productId",
        )
    existing = order.line(item.product_id)
    if existing is None and len(order.lines) >= MAX_LINES:
        raise ValidationFailed(f"an order holds at most {MAX_LINES} lines", "productId")
    if existing is not None and existing.quantity + item.quantity > MAX_QUANTITY:
        raise ValidationFailed(
            f"quantity of {item.product_id} would exceed {MAX_QUANTITY}", "quantity"
        )
    return OrderItemAdded(item.product_id, item.product_name, item.quantity, item.unit_price)


def _valid_address(address: Address) -> Address:
    return Address(
        require_name(address.line1, "line1"),
        require_name(address.city, "city"),
        require_name(address.postal_code, "postalCode"),
        require_country(address.country.strip().upper()),
    )


def _existing(state: OrderState, order_id: str) -> Order:
    if state is None:
        raise NotFound(f"order {order_id} not found", order_id)
    return state


def _draft(state: OrderState, order_id: str, action: str) -> Order:
    order = _existing(state, order_id)
    if order.status is not OrderStatus.DRAFT:
        raise InvalidState(f"cannot {action} order {order_id}: it is {order.status}")
    return order


def _require(state: OrderState) -> Order:
    if state is None:
        raise ValueError("event applied to an order that was never created")
    return state
