"""The write side's use cases: one method per command the outside world can send.

Each method turns a request into a domain command, looking up what the domain needs from
other aggregates first (catalog prices and names, the customer's existence), then runs it
through the CommandHandler.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from write_model.domain import customer, order, product
from write_model.domain.errors import NotFound, ValidationFailed
from write_model.domain.money import Money
from write_model.handling import (
    CommandContext,
    CommandHandler,
    CommandOutcome,
    Decider,
    Idempotency,
)

ORDER = Decider(order.STREAM_TYPE, order.decide, order.evolve, order.initial_state)
CUSTOMER = Decider(customer.STREAM_TYPE, customer.decide, customer.evolve, customer.initial_state)
CUSTOMER_EMAIL = Decider(
    customer.EMAIL_STREAM_TYPE,
    customer.decide_email,
    customer.evolve_email,
    customer.email_initial_state,
)
PRODUCT = Decider(product.STREAM_TYPE, product.decide, product.evolve, product.initial_state)

_ID_NAMESPACE = uuid.UUID("6f1c7f2e-4d3b-4a59-9a67-0c5d2f8e1b10")


@dataclass(frozen=True, slots=True)
class ItemRequest:
    product_id: str
    quantity: int


class OrdersApplication:
    def __init__(
        self,
        handler: CommandHandler,
        *,
        tax_rate: Decimal,
        new_id: Callable[[], str],
    ) -> None:
        self.handler = handler
        self._tax_rate = tax_rate
        self._new_id = new_id

    # ----------------------------------------------------------- customers

    async def register_customer(
        self,
        customer_id: str | None,
        name: str,
        email: str,
        context: CommandContext,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        replayed = await self.handler.replay(idempotency)
        if replayed is not None:
            return replayed
        customer_id = customer_id or self._generated_id(idempotency)
        register = customer.RegisterCustomer(customer_id, name, email)
        stream_id = CUSTOMER.stream_id(customer_id)
        # Validate and refuse a second registration before the email is reserved for it.
        customer.decide(register, (await self.handler.load(CUSTOMER, stream_id))[0])
        email_key = customer.email_stream_key(email)
        await self.handler.handle(
            CUSTOMER_EMAIL,
            CUSTOMER_EMAIL.stream_id(email_key),
            customer.ReserveCustomerEmail(email_key, customer_id),
            context,
        )
        return await self.handler.handle(
            CUSTOMER, stream_id, register, context, idempotency=idempotency
        )

    async def rename_customer(
        self,
        customer_id: str,
        name: str,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        return await self.handler.handle(
            CUSTOMER,
            CUSTOMER.stream_id(customer_id),
            customer.RenameCustomer(customer_id, name),
            context,
            expected_version=expected_version,
            idempotency=idempotency,
        )

    # ------------------------------------------------------------ products

    async def add_product(
        self,
        product_id: str,
        name: str,
        price: Decimal,
        currency: str,
        initial_stock: int,
        context: CommandContext,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        return await self._product(
            product.AddProduct(product_id, name, Money(price, currency), initial_stock),
            product_id,
            context,
            None,
            idempotency,
        )

    async def rename_product(
        self,
        product_id: str,
        name: str,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        command = product.RenameProduct(product_id, name)
        return await self._product(command, product_id, context, expected_version, idempotency)

    async def change_product_price(
        self,
        product_id: str,
        price: Decimal,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        # The currency stays the product's; the decider refuses a mismatch.
        state, _ = await self.handler.load(PRODUCT, PRODUCT.stream_id(product_id))
        currency = state.price.currency if state is not None else "USD"
        command = product.ChangeProductPrice(product_id, Money(price, currency))
        return await self._product(command, product_id, context, expected_version, idempotency)

    async def restock_product(
        self,
        product_id: str,
        quantity: int,
        context: CommandContext,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        command = product.RestockProduct(product_id, quantity)
        return await self._product(command, product_id, context, None, idempotency)

    async def reserve_stock(
        self, product_id: str, order_id: str, quantity: int, context: CommandContext
    ) -> CommandOutcome:
        command = product.ReserveStock(product_id, order_id, quantity)
        return await self._product(command, product_id, context, None, None)

    async def release_stock_reservation(
        self, product_id: str, order_id: str, context: CommandContext
    ) -> CommandOutcome:
        command = product.ReleaseStockReservation(product_id, order_id)
        return await self._product(command, product_id, context, None, None)

    async def _product(
        self,
        command: product.ProductCommand,
        product_id: str,
        context: CommandContext,
        expected_version: int | None,
        idempotency: Idempotency | None,
    ) -> CommandOutcome:
        return await self.handler.handle(
            PRODUCT,
            PRODUCT.stream_id(product_id),
            command,
            context,
            expected_version=expected_version,
            idempotency=idempotency,
        )

    # -------------------------------------------------------------- orders

    async def create_order(
        self,
        order_id: str | None,
        customer_id: str,
        items: Sequence[ItemRequest],
        shipping_address: order.Address | None,
        context: CommandContext,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        replayed = await self.handler.replay(idempotency)
        if replayed is not None:
            return replayed
        order_id = order_id or self._generated_id(idempotency)
        # One read for the customer, the catalog entries and the order stream.
        loaded = await self.handler.load_many(
            [
                (CUSTOMER, CUSTOMER.stream_id(customer_id)),
                (ORDER, ORDER.stream_id(order_id)),
                *((PRODUCT, PRODUCT.stream_id(item.product_id)) for item in items),
            ]
        )
        (registered, _), current_order, *entries = loaded
        if registered is None:
            raise NotFound(f"customer {customer_id} not found", customer_id)
        priced = tuple(
            _priced(item, entry) for item, (entry, _) in zip(items, entries, strict=True)
        )
        command = order.CreateOrder(order_id, customer_id, self._tax_rate, priced, shipping_address)
        return await self._order(command, order_id, context, None, idempotency, current_order)

    async def add_order_item(
        self,
        order_id: str,
        item: ItemRequest,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        replayed = await self.handler.replay(idempotency)
        if replayed is not None:
            return replayed
        (entry, _), current_order = await self.handler.load_many(
            [(PRODUCT, PRODUCT.stream_id(item.product_id)), (ORDER, ORDER.stream_id(order_id))]
        )
        command = order.AddOrderItem(order_id, _priced(item, entry))
        return await self._order(
            command, order_id, context, expected_version, idempotency, current_order
        )

    async def remove_order_item(
        self,
        order_id: str,
        product_id: str,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        command = order.RemoveOrderItem(order_id, product_id)
        return await self._order(command, order_id, context, expected_version, idempotency)

    async def set_shipping_address(
        self,
        order_id: str,
        address: order.Address,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        command = order.SetShippingAddress(order_id, address)
        return await self._order(command, order_id, context, expected_version, idempotency)

    async def submit_order(
        self,
        order_id: str,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        command = order.SubmitOrder(order_id)
        return await self._order(command, order_id, context, expected_version, idempotency)

    async def cancel_order(
        self,
        order_id: str,
        reason: str | None,
        context: CommandContext,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandOutcome:
        command = order.CancelOrder(order_id, reason)
        return await self._order(command, order_id, context, expected_version, idempotency)

    async def confirm_order(self, order_id: str, context: CommandContext) -> CommandOutcome:
        return await self._order(order.ConfirmOrder(order_id), order_id, context, None, None)

    async def reject_order(
        self, order_id: str, reason: str, context: CommandContext
    ) -> CommandOutcome:
        command = order.RejectOrder(order_id, reason)
        return await self._order(command, order_id, context, None, None)

    async def _order(
        self,
        command: order.OrderCommand,
        order_id: str,
        context: CommandContext,
        expected_version: int | None,
        idempotency: Idempotency | None,
        loaded: tuple[order.OrderState, int] | None = None,
    ) -> CommandOutcome:
        return await self.handler.handle(
            ORDER,
            ORDER.stream_id(order_id),
            command,
            context,
            expected_version=expected_version,
            idempotency=idempotency,
            loaded=loaded,
        )

    def _generated_id(self, idempotency: Idempotency | None) -> str:
        # A retry under the same idempotency key must name the same entity.
        if idempotency is not None:
            return str(uuid.uuid5(_ID_NAMESPACE, idempotency.key))
        return self._new_id()


def _priced(item: ItemRequest, entry: product.ProductState) -> order.PricedItem:
    """The catalog's current name and price: the client never sends a price."""
    if item.quantity <= 0:
        raise ValidationFailed(
            f"quantity must be a positive whole number, got {item.quantity}", "quantity"
        )
    if entry is None:
        raise NotFound(f"product {item.product_id} not found", item.product_id)
    return order.PricedItem(entry.product_id, entry.name, item.quantity, entry.price)
