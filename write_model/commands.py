"""What the outside world can ask of the write side: one frozen dataclass per command.

A command carries what its sender knows, never what the write side looks up: no prices or
product names (the catalog has them), no tax rate (a setting). Where a command takes an
`expected_version`, it applies only to the stream at that version; without one, the bus
decides on whatever version is current and retries a conflicting append.

Every command goes through `CommandBus.dispatch` (write_model/bus.py); its handler is in
write_model/handlers.py. The domain's own commands (`write_model.domain.*`) are what the
deciders take once a handler has looked up what they need.

Strings and lists are checked once, when a command is built (`Checked`), whoever builds it
(GraphQL, the CLI, `orders seed`, the saga): a control character, a bidi control in a name
or an id, an oversized value is a ValidationFailed naming the field, and nothing goes
further.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from write_model.domain.errors import ValidationFailed
from write_model.domain.money import DEFAULT_CURRENCY
from write_model.domain.order import MAX_LINES, Address
from write_model.domain.validation import (
    MAX_EMAIL_LENGTH,
    require_id,
    require_line,
    require_text,
)

# (the field's value, whatever its type; the field's name) -> raises ValidationFailed
Check = Callable[[Any, str], object]


def _email(value: str, field: str) -> object:
    return require_line(value, field, MAX_EMAIL_LENGTH)


def _code(value: str, field: str) -> object:
    return require_line(value, field, 10)  # currency and country codes, before parsing


ADDRESS_CHECKS: Mapping[str, Check] = {
    "line1": require_text,
    "city": require_line,
    "postal_code": require_line,
    "country": _code,
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Checked:
    """Runs the class's `checks` on its string fields (None is left alone) when it is
    built; an Address field is checked line by line, under its own field name."""

    __slots__ = ()
    checks: ClassVar[Mapping[str, Check]] = {}

    def __post_init__(self) -> None:
        for name, check in self.checks.items():
            value = getattr(self, name)
            if value is not None:
                check(value, _camel(name))


def _items(value: tuple[object, ...], field: str) -> object:
    # Each item of one request becomes an event: an order's lines bound them.
    if len(value) > MAX_LINES:
        raise ValidationFailed(f"{field} holds at most {MAX_LINES} items, got {len(value)}", field)
    return value


def _address(value: Address, field: str) -> object:
    for name, check in ADDRESS_CHECKS.items():
        check(getattr(value, name), f"{field}.{_camel(name)}")
    return value


# --------------------------------------------------------------- customers


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterCustomer(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "customer_id": require_id,
        "name": require_line,
        "email": _email,
    }

    customer_id: str | None = None  # generated when not given
    name: str
    email: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameCustomer(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "customer_id": require_id,
        "name": require_line,
    }

    customer_id: str
    name: str
    expected_version: int | None = None


# ---------------------------------------------------------------- products


@dataclass(frozen=True, slots=True, kw_only=True)
class AddProduct(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "product_id": require_id,
        "name": require_line,
        "currency": _code,
    }

    product_id: str
    name: str
    price: Decimal
    currency: str = DEFAULT_CURRENCY
    initial_stock: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameProduct(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "product_id": require_id,
        "name": require_line,
    }

    product_id: str
    name: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeProductPrice(Checked):
    """The price in the product's own currency."""

    checks: ClassVar[Mapping[str, Check]] = {
        "product_id": require_id,
    }

    product_id: str
    price: Decimal
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RestockProduct(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "product_id": require_id,
    }

    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveStock(Checked):
    """Sent by the fulfillment saga for each line of a submitted order."""

    checks: ClassVar[Mapping[str, Check]] = {
        "product_id": require_id,
        "order_id": require_id,
    }

    product_id: str
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseStockReservation(Checked):
    """Sent by the fulfillment saga when it compensates a failed step."""

    checks: ClassVar[Mapping[str, Check]] = {
        "product_id": require_id,
        "order_id": require_id,
    }

    product_id: str
    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipReservedStock:
    """Sent by the fulfillment saga once the order's shipment is created."""

    product_id: str
    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnShippedStock:
    """Sent by the fulfillment saga when it cancels the order's shipment."""

    product_id: str
    order_id: str


# ------------------------------------------------------------------ orders


@dataclass(frozen=True, slots=True)
class OrderItem(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "product_id": require_id,
    }

    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateOrder(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
        "customer_id": require_id,
        "items": _items,
        "shipping_address": _address,
    }

    order_id: str | None = None  # generated when not given
    customer_id: str
    items: tuple[OrderItem, ...] = ()
    shipping_address: Address | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOrderItem(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
        "product_id": require_id,
    }

    order_id: str
    product_id: str
    quantity: int
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveOrderItem(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
        "product_id": require_id,
    }

    order_id: str
    product_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetShippingAddress(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
        "address": _address,
    }

    order_id: str
    address: Address
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrder(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
    }

    order_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Checked):
    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
        "reason": require_text,
    }

    order_id: str
    reason: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmOrder(Checked):
    """Sent by the fulfillment saga when every step succeeded."""

    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
    }

    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectOrder(Checked):
    """Sent by the fulfillment saga after it compensated a failed step."""

    checks: ClassVar[Mapping[str, Check]] = {
        "order_id": require_id,
        "reason": require_text,
    }

    order_id: str
    reason: str


Command = (
    RegisterCustomer
    | RenameCustomer
    | AddProduct
    | RenameProduct
    | ChangeProductPrice
    | RestockProduct
    | ReserveStock
    | ReleaseStockReservation
    | ShipReservedStock
    | ReturnShippedStock
    | CreateOrder
    | AddOrderItem
    | RemoveOrderItem
    | SetShippingAddress
    | SubmitOrder
    | CancelOrder
    | ConfirmOrder
    | RejectOrder
)
