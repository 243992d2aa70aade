"""The mutations' input types, each with the command it builds (write_model/commands.py):
the one place where the contract's shape meets the write side's. A malformed value raises
ValidationFailed, which the mutation answers as a union member (schema/mutations.py).
"""

from __future__ import annotations

from decimal import Decimal

import strawberry

from schema.scalars import MalformedDecimal
from schema.unset import UNSET, Input
from write_model import commands
from write_model.domain import order
from write_model.domain.errors import ValidationFailed
from write_model.domain.money import DEFAULT_CURRENCY


@strawberry.input
class AddressInput(Input):
    line1: str
    city: str
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2")

    def to_domain(self) -> order.Address:
        return order.Address(self.line1, self.city, self.postal_code, self.country)


@strawberry.input
class RegisterCustomerInput(Input):
    customer_id: strawberry.ID | None = UNSET
    name: str
    email: str
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.RegisterCustomer:
        return commands.RegisterCustomer(
            customer_id=_optional_id(self.customer_id), name=self.name, email=self.email
        )


@strawberry.input
class RenameCustomerInput(Input):
    customer_id: strawberry.ID
    name: str
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.RenameCustomer:
        return commands.RenameCustomer(
            customer_id=str(self.customer_id),
            name=self.name,
            expected_version=self.expected_version,
        )


@strawberry.input
class AddProductInput(Input):
    product_id: strawberry.ID
    name: str
    price: Decimal
    currency: str | None = DEFAULT_CURRENCY
    initial_stock: int | None = 0
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.AddProduct:
        return commands.AddProduct(
            product_id=str(self.product_id),
            name=self.name,
            price=_decimal(self.price, "price"),
            currency=self.currency if self.currency is not None else DEFAULT_CURRENCY,
            initial_stock=self.initial_stock if self.initial_stock is not None else 0,
        )


@strawberry.input
class RenameProductInput(Input):
    product_id: strawberry.ID
    name: str
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.RenameProduct:
        return commands.RenameProduct(
            product_id=str(self.product_id),
            name=self.name,
            expected_version=self.expected_version,
        )


@strawberry.input
class ChangeProductPriceInput(Input):
    product_id: strawberry.ID
    price: Decimal
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.ChangeProductPrice:
        return commands.ChangeProductPrice(
            product_id=str(self.product_id),
            price=_decimal(self.price, "price"),
            expected_version=self.expected_version,
        )


@strawberry.input
class RestockProductInput(Input):
    product_id: strawberry.ID
    quantity: int
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.RestockProduct:
        return commands.RestockProduct(product_id=str(self.product_id), quantity=self.quantity)


@strawberry.input
class OrderItemInput(Input):
    product_id: strawberry.ID
    quantity: int

    def to_command(self) -> commands.OrderItem:
        return commands.OrderItem(str(self.product_id), self.quantity)


@strawberry.input
class CreateOrderInput(Input):
    order_id: strawberry.ID | None = UNSET
    customer_id: strawberry.ID
    items: list[OrderItemInput] | None = strawberry.field(default_factory=list)
    shipping_address: AddressInput | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.CreateOrder:
        address = self.shipping_address
        return commands.CreateOrder(
            order_id=_optional_id(self.order_id),
            customer_id=str(self.customer_id),
            items=tuple(item.to_command() for item in self.items or ()),
            shipping_address=address.to_domain() if address is not None else None,
        )


@strawberry.input
class AddOrderItemInput(Input):
    order_id: strawberry.ID
    product_id: strawberry.ID
    quantity: int
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.AddOrderItem:
        return commands.AddOrderItem(
            order_id=str(self.order_id),
            product_id=str(self.product_id),
            quantity=self.quantity,
            expected_version=self.expected_version,
        )


@strawberry.input
class RemoveOrderItemInput(Input):
    order_id: strawberry.ID
    product_id: strawberry.ID
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.RemoveOrderItem:
        return commands.RemoveOrderItem(
            order_id=str(self.order_id),
            product_id=str(self.product_id),
            expected_version=self.expected_version,
        )


@strawberry.input
class SetShippingAddressInput(Input):
    order_id: strawberry.ID
    address: AddressInput
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.SetShippingAddress:
        return commands.SetShippingAddress(
            order_id=str(self.order_id),
            address=self.address.to_domain(),
            expected_version=self.expected_version,
        )


@strawberry.input
class SubmitOrderInput(Input):
    order_id: strawberry.ID
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.SubmitOrder:
        return commands.SubmitOrder(
            order_id=str(self.order_id), expected_version=self.expected_version
        )


@strawberry.input
class CancelOrderInput(Input):
    order_id: strawberry.ID
    reason: str | None = UNSET
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET

    def to_command(self) -> commands.CancelOrder:
        return commands.CancelOrder(
            order_id=str(self.order_id),
            reason=self.reason,
            expected_version=self.expected_version,
        )


def _decimal(value: Decimal | MalformedDecimal, field: str) -> Decimal:
    if isinstance(value, MalformedDecimal):
        raise ValidationFailed(f"{value.raw!r} is not a decimal number", field)
    return value


def _optional_id(value: strawberry.ID | None) -> str | None:
    return str(value) if value is not None else None
