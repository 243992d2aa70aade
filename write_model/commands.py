"""What the outside world can ask of the write side: one frozen dataclass per command.

A command carries what its sender knows, never what the write side looks up: no prices or
product names (the catalog has them), no tax rate (a setting). Where a command takes an
`expected_version`, it applies only to the stream at that version; without one, the bus
decides on whatever version is current and retries a conflicting append.

Every command goes through `CommandBus.dispatch` (write_model/bus.py); its handler is in
write_model/handlers.py. The domain's own commands (`write_model.domain.*`) are what the
deciders take once a handler has looked up what they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from write_model.domain.order import Address

# --------------------------------------------------------------- customers


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterCustomer:
    customer_id: str | None = None  # generated when not given
    name: str
    email: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameCustomer:
    customer_id: str
    name: str
    expected_version: int | None = None


# ---------------------------------------------------------------- products


@dataclass(frozen=True, slots=True, kw_only=True)
class AddProduct:
    product_id: str
    name: str
    price: Decimal
    currency: str = "USD"
    initial_stock: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameProduct:
    product_id: str
    name: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeProductPrice:
    """The price in the product's own currency."""

    product_id: str
    price: Decimal
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RestockProduct:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveStock:
    """Sent by the fulfillment saga for each line of a submitted order."""

    product_id: str
    order_id: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseStockReservation:
    """Sent by the fulfillment saga when it compensates a failed step."""

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
class OrderItem:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateOrder:
    order_id: str | None = None  # generated when not given
    customer_id: str
    items: tuple[OrderItem, ...] = ()
    shipping_address: Address | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddOrderItem:
    order_id: str
    product_id: str
    quantity: int
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveOrderItem:
    order_id: str
    product_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetShippingAddress:
    order_id: str
    address: Address
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrder:
    order_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    order_id: str
    reason: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmOrder:
    """Sent by the fulfillment saga when every step succeeded."""

    order_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectOrder:
    """Sent by the fulfillment saga after it compensated a failed step."""

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
