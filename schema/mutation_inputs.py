"""The mutations' input types, each with the command it builds (write_model/commands.py):
the one place where the contract's shape meets the write side's. A malformed value raises
ValidationFailed, which the mutation answers as a union member (schema/mutations.py).
"""

from __future__ import annotations

from decimal import Decimal

import strawberry

from schema import descriptions as d
from schema.scalars import MalformedDecimal
from schema.unset import UNSET, Input
from write_model import commands
from write_model.domain import order
from write_model.domain.errors import ValidationFailed
from write_model.domain.money import DEFAULT_CURRENCY
from write_model.domain.validation import MAX_NAME_LENGTH, MAX_TEXT_LENGTH


@strawberry.input(description="A postal address to ship an order to.")
class AddressInput(Input):
    line1: str = strawberry.field(
        description=f"Street and number, free text of at most {MAX_TEXT_LENGTH} characters."
    )
    city: str = strawberry.field(
        description=f"City, one line of at most {MAX_NAME_LENGTH} characters."
    )
    postal_code: str = strawberry.field(
        description=f"Postal code, one line of at most {MAX_NAME_LENGTH} characters."
    )
    country: str = strawberry.field(description=d.COUNTRY)

    def to_domain(self) -> order.Address:
        return order.Address(self.line1, self.city, self.postal_code, self.country)


@strawberry.input(description="A new customer: a name and a unique email.")
class RegisterCustomerInput(Input):
    customer_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description=d.NEW_CUSTOMER_ID
    )
    name: str = strawberry.field(description=d.NAME)
    email: str = strawberry.field(description=d.EMAIL)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.RegisterCustomer:
        return commands.RegisterCustomer(
            customer_id=_optional_id(self.customer_id), name=self.name, email=self.email
        )


@strawberry.input(description="A customer's new display name.")
class RenameCustomerInput(Input):
    customer_id: strawberry.ID = strawberry.field(description=d.existing_id("customer"))
    name: str = strawberry.field(description=d.NAME)
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.RenameCustomer:
        return commands.RenameCustomer(
            customer_id=str(self.customer_id),
            name=self.name,
            expected_version=self.expected_version,
        )


@strawberry.input(description="A new catalog entry with its price and first stock (staff only).")
class AddProductInput(Input):
    product_id: strawberry.ID = strawberry.field(description=d.PRODUCT_SKU)
    name: str = strawberry.field(description=d.NAME)
    price: Decimal = strawberry.field(description=d.PRICE)
    currency: str | None = strawberry.field(default=DEFAULT_CURRENCY, description=d.CURRENCY)
    initial_stock: int | None = strawberry.field(default=0, description=d.INITIAL_STOCK)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.AddProduct:
        return commands.AddProduct(
            product_id=str(self.product_id),
            name=self.name,
            price=_decimal(self.price, "price"),
            currency=self.currency if self.currency is not None else DEFAULT_CURRENCY,
            initial_stock=self.initial_stock if self.initial_stock is not None else 0,
        )


@strawberry.input(description="A catalog entry's new name (staff only).")
class RenameProductInput(Input):
    product_id: strawberry.ID = strawberry.field(description=d.existing_id("product"))
    name: str = strawberry.field(description=d.NAME)
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.RenameProduct:
        return commands.RenameProduct(
            product_id=str(self.product_id),
            name=self.name,
            expected_version=self.expected_version,
        )


@strawberry.input(
    description="A catalog entry's new price, in its own currency (staff only); orders keep the "
    "price they were given."
)
class ChangeProductPriceInput(Input):
    product_id: strawberry.ID = strawberry.field(description=d.existing_id("product"))
    price: Decimal = strawberry.field(description=d.PRICE)
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.ChangeProductPrice:
        return commands.ChangeProductPrice(
            product_id=str(self.product_id),
            price=_decimal(self.price, "price"),
            expected_version=self.expected_version,
        )


@strawberry.input(description="Units received for a catalog entry (staff only).")
class RestockProductInput(Input):
    product_id: strawberry.ID = strawberry.field(description=d.existing_id("product"))
    quantity: int = strawberry.field(description=d.RESTOCK_QUANTITY)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.RestockProduct:
        return commands.RestockProduct(product_id=str(self.product_id), quantity=self.quantity)


@strawberry.input(description="One line of a new order: a product and how many.")
class OrderItemInput(Input):
    product_id: strawberry.ID = strawberry.field(description=d.existing_id("product"))
    quantity: int = strawberry.field(description=d.QUANTITY)

    def to_command(self) -> commands.OrderItem:
        return commands.OrderItem(str(self.product_id), self.quantity)


@strawberry.input(
    description="A new DRAFT order for a customer, with its first lines and optionally its address."
)
class CreateOrderInput(Input):
    order_id: strawberry.ID | None = strawberry.field(default=UNSET, description=d.new_id("order"))
    customer_id: strawberry.ID = strawberry.field(description=d.existing_id("customer"))
    items: list[OrderItemInput] | None = strawberry.field(default_factory=list, description=d.ITEMS)
    shipping_address: AddressInput | None = strawberry.field(
        default=UNSET, description="Where to ship; may also be set later with setShippingAddress."
    )
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.CreateOrder:
        address = self.shipping_address
        return commands.CreateOrder(
            order_id=_optional_id(self.order_id),
            customer_id=str(self.customer_id),
            items=tuple(item.to_command() for item in self.items or ()),
            shipping_address=address.to_domain() if address is not None else None,
        )


@strawberry.input(
    description="A line to add to a DRAFT order (the same product again adds to its quantity)."
)
class AddOrderItemInput(Input):
    order_id: strawberry.ID = strawberry.field(description=d.existing_id("order"))
    product_id: strawberry.ID = strawberry.field(description=d.existing_id("product"))
    quantity: int = strawberry.field(description=d.QUANTITY)
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.AddOrderItem:
        return commands.AddOrderItem(
            order_id=str(self.order_id),
            product_id=str(self.product_id),
            quantity=self.quantity,
            expected_version=self.expected_version,
        )


@strawberry.input(description="A line to take off a DRAFT order.")
class RemoveOrderItemInput(Input):
    order_id: strawberry.ID = strawberry.field(description=d.existing_id("order"))
    product_id: strawberry.ID = strawberry.field(description=d.existing_id("product"))
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.RemoveOrderItem:
        return commands.RemoveOrderItem(
            order_id=str(self.order_id),
            product_id=str(self.product_id),
            expected_version=self.expected_version,
        )


@strawberry.input(description="Where a DRAFT order ships to (needed before submitOrder).")
class SetShippingAddressInput(Input):
    order_id: strawberry.ID = strawberry.field(description=d.existing_id("order"))
    address: AddressInput = strawberry.field(description="The address, replacing any earlier one.")
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.SetShippingAddress:
        return commands.SetShippingAddress(
            order_id=str(self.order_id),
            address=self.address.to_domain(),
            expected_version=self.expected_version,
        )


@strawberry.input(description="A DRAFT order to submit for fulfillment.")
class SubmitOrderInput(Input):
    order_id: strawberry.ID = strawberry.field(description=d.existing_id("order"))
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

    def to_command(self) -> commands.SubmitOrder:
        return commands.SubmitOrder(
            order_id=str(self.order_id), expected_version=self.expected_version
        )


@strawberry.input(
    description="An order to cancel: a DRAFT or SUBMITTED one, or a CONFIRMED one, whose "
    "fulfillment is then undone."
)
class CancelOrderInput(Input):
    order_id: strawberry.ID = strawberry.field(description=d.existing_id("order"))
    reason: str | None = strawberry.field(default=UNSET, description=d.REASON)
    expected_version: int | None = strawberry.field(default=UNSET, description=d.EXPECTED_VERSION)
    idempotency_key: str | None = strawberry.field(default=UNSET, description=d.IDEMPOTENCY_KEY)

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
