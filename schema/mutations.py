"""Mutation: each maps its input to one OrdersApplication call and returns the contract's
union: the success payload, or the union member for an expected failure.

`idempotencyKey` is passed with a fingerprint of the input (sha256 of the mutation name and
the canonical JSON of the input without the key), so the same key with other input is an
`IdempotencyKeyReusedError`. `expectedVersion` is passed through; a `ConcurrencyError` comes
back only when it was given and is stale, or when the handler's retries ran out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

import orjson
import strawberry

from schema.context import Info
from schema.errors import (
    EXPECTED_FAILURES,
    CommandError,
    ConcurrencyError,
    IdempotencyKeyReusedError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
    not_found,
    user_error_of,
)
from schema.scalars import MalformedDecimal
from schema.types import Customer, Order, Product
from schema.unset import UNSET, Input
from write_model.application import ItemRequest, OrdersApplication
from write_model.domain import customer, order, product
from write_model.domain.errors import ValidationFailed
from write_model.handling import CommandContext, CommandOutcome, Idempotency

# ---------------------------------------------------------------- payloads


def _entity_id(outcome: CommandOutcome) -> strawberry.ID:
    """`Order-<id>` -> `<id>`."""
    return strawberry.ID(outcome.stream_id.partition("-")[2])


@strawberry.type
class OrderAccepted:
    order_id: strawberry.ID
    version: int
    consistency_token: str

    @strawberry.field(description="the order once the read model has this write")
    async def order(self, info: Info) -> Order | None:
        await info.context.caught_up(self.consistency_token)
        doc = await info.context.loaders.orders.load(str(self.order_id))
        return Order.of(doc) if doc is not None else None


@strawberry.type
class CustomerAccepted:
    customer_id: strawberry.ID
    version: int
    consistency_token: str

    @strawberry.field(description="the customer once the read model has this write")
    async def customer(self, info: Info) -> Customer | None:
        await info.context.caught_up(self.consistency_token)
        doc = await info.context.loaders.customers.load(str(self.customer_id))
        return Customer.of(doc) if doc is not None else None


@strawberry.type
class ProductAccepted:
    product_id: strawberry.ID
    version: int
    consistency_token: str

    @strawberry.field(description="the product once the read model has this write")
    async def product(self, info: Info) -> Product | None:
        await info.context.caught_up(self.consistency_token)
        doc = await info.context.loaders.products.load(str(self.product_id))
        return Product.of(doc) if doc is not None else None


@strawberry.type
class DeadLetterRetried:
    id: strawberry.ID


_ERRORS = ValidationError | NotFoundError | ConcurrencyError | InvalidStateError
OrderResult = Annotated[
    OrderAccepted | _ERRORS | IdempotencyKeyReusedError, strawberry.union("OrderResult")
]
CustomerResult = Annotated[
    CustomerAccepted | _ERRORS | IdempotencyKeyReusedError, strawberry.union("CustomerResult")
]
ProductResult = Annotated[
    ProductAccepted | _ERRORS | IdempotencyKeyReusedError, strawberry.union("ProductResult")
]
RetryResult = Annotated[DeadLetterRetried | NotFoundError, strawberry.union("RetryResult")]

# ------------------------------------------------------------------ inputs


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


@strawberry.input
class RenameCustomerInput(Input):
    customer_id: strawberry.ID
    name: str
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class AddProductInput(Input):
    product_id: strawberry.ID
    name: str
    price: Decimal
    currency: str | None = "USD"
    initial_stock: int | None = 0
    idempotency_key: str | None = UNSET


@strawberry.input
class RenameProductInput(Input):
    product_id: strawberry.ID
    name: str
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class ChangeProductPriceInput(Input):
    product_id: strawberry.ID
    price: Decimal
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class RestockProductInput(Input):
    product_id: strawberry.ID
    quantity: int
    idempotency_key: str | None = UNSET


@strawberry.input
class OrderItemInput(Input):
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class CreateOrderInput(Input):
    order_id: strawberry.ID | None = UNSET
    customer_id: strawberry.ID
    items: list[OrderItemInput] | None = strawberry.field(default_factory=list)
    shipping_address: AddressInput | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class AddOrderItemInput(Input):
    order_id: strawberry.ID
    product_id: strawberry.ID
    quantity: int
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class RemoveOrderItemInput(Input):
    order_id: strawberry.ID
    product_id: strawberry.ID
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class SetShippingAddressInput(Input):
    order_id: strawberry.ID
    address: AddressInput
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class SubmitOrderInput(Input):
    order_id: strawberry.ID
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


@strawberry.input
class CancelOrderInput(Input):
    order_id: strawberry.ID
    reason: str | None = UNSET
    expected_version: int | None = UNSET
    idempotency_key: str | None = UNSET


# ----------------------------------------------------------------- running

Call = Callable[[OrdersApplication, CommandContext, Idempotency | None], Awaitable[CommandOutcome]]


def fingerprint(mutation: str, input: Any) -> str:
    """sha256 of the mutation name and the canonical JSON of its input without the key."""
    data = dataclasses.asdict(input)
    data.pop("idempotency_key", None)
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(mutation.encode() + b"\n" + canonical).hexdigest()


def _idempotency(mutation: str, input: Any) -> Idempotency | None:
    key = getattr(input, "idempotency_key", None)
    if key is None:
        return None
    return Idempotency(key, fingerprint(mutation, input))


async def _run(
    info: Info, mutation: str, stream_type: str, input: Any, call: Call
) -> CommandOutcome | CommandError:
    """Run one command; expected failures come back as union members."""
    context = info.context
    services = context.services
    started = time.perf_counter()
    try:
        outcome = await call(
            services.application, context.command_context(), _idempotency(mutation, input)
        )
    except EXPECTED_FAILURES as error:
        failure = user_error_of(error)
        services.observer.command_finished(
            mutation, failure.code, time.perf_counter() - started, stream_type, 0
        )
        return failure
    except BaseException:
        services.observer.command_finished(
            mutation, "ERROR", time.perf_counter() - started, stream_type, 0
        )
        raise
    services.observer.command_finished(
        mutation,
        "REPLAYED" if outcome.replayed else "ACCEPTED",
        time.perf_counter() - started,
        stream_type,
        len(outcome.events),
    )
    return outcome


def _decimal(value: Decimal | MalformedDecimal, field: str) -> Decimal:
    if isinstance(value, MalformedDecimal):
        raise ValidationFailed(f"{value.raw!r} is not a decimal number", field)
    return value


async def _customer(info: Info, mutation: str, input: Any, call: Call) -> CustomerResult:
    result = await _run(info, mutation, customer.STREAM_TYPE, input, call)
    if not isinstance(result, CommandOutcome):
        return result
    return CustomerAccepted(
        customer_id=_entity_id(result),
        version=result.version,
        consistency_token=result.consistency_token,
    )


async def _product(info: Info, mutation: str, input: Any, call: Call) -> ProductResult:
    result = await _run(info, mutation, product.STREAM_TYPE, input, call)
    if not isinstance(result, CommandOutcome):
        return result
    return ProductAccepted(
        product_id=_entity_id(result),
        version=result.version,
        consistency_token=result.consistency_token,
    )


async def _order(info: Info, mutation: str, input: Any, call: Call) -> OrderResult:
    result = await _run(info, mutation, order.STREAM_TYPE, input, call)
    if not isinstance(result, CommandOutcome):
        return result
    return OrderAccepted(
        order_id=_entity_id(result),
        version=result.version,
        consistency_token=result.consistency_token,
    )


# ---------------------------------------------------------------- mutations


@strawberry.type
class Mutation:
    # ------------------------------------------------------------ customers

    @strawberry.mutation
    async def register_customer(self, info: Info, input: RegisterCustomerInput) -> CustomerResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            customer_id = str(input.customer_id) if input.customer_id is not None else None
            return await app.register_customer(
                customer_id, input.name, input.email, context, idempotency
            )

        return await _customer(info, "registerCustomer", input, call)

    @strawberry.mutation
    async def rename_customer(self, info: Info, input: RenameCustomerInput) -> CustomerResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.rename_customer(
                str(input.customer_id), input.name, context, input.expected_version, idempotency
            )

        return await _customer(info, "renameCustomer", input, call)

    # ------------------------------------------------------------- products

    @strawberry.mutation
    async def add_product(self, info: Info, input: AddProductInput) -> ProductResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.add_product(
                str(input.product_id),
                input.name,
                _decimal(input.price, "price"),
                input.currency if input.currency is not None else "USD",
                input.initial_stock if input.initial_stock is not None else 0,
                context,
                idempotency,
            )

        return await _product(info, "addProduct", input, call)

    @strawberry.mutation(description="Rename a catalog entry (orders show the new name).")
    async def rename_product(self, info: Info, input: RenameProductInput) -> ProductResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.rename_product(
                str(input.product_id), input.name, context, input.expected_version, idempotency
            )

        return await _product(info, "renameProduct", input, call)

    @strawberry.mutation
    async def change_product_price(
        self, info: Info, input: ChangeProductPriceInput
    ) -> ProductResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.change_product_price(
                str(input.product_id),
                _decimal(input.price, "price"),
                context,
                input.expected_version,
                idempotency,
            )

        return await _product(info, "changeProductPrice", input, call)

    @strawberry.mutation
    async def restock_product(self, info: Info, input: RestockProductInput) -> ProductResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.restock_product(
                str(input.product_id), input.quantity, context, idempotency
            )

        return await _product(info, "restockProduct", input, call)

    # --------------------------------------------------------------- orders

    @strawberry.mutation
    async def create_order(self, info: Info, input: CreateOrderInput) -> OrderResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            address = input.shipping_address
            return await app.create_order(
                str(input.order_id) if input.order_id is not None else None,
                str(input.customer_id),
                [ItemRequest(str(i.product_id), i.quantity) for i in input.items or ()],
                address.to_domain() if address is not None else None,
                context,
                idempotency,
            )

        return await _order(info, "createOrder", input, call)

    @strawberry.mutation
    async def add_order_item(self, info: Info, input: AddOrderItemInput) -> OrderResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.add_order_item(
                str(input.order_id),
                ItemRequest(str(input.product_id), input.quantity),
                context,
                input.expected_version,
                idempotency,
            )

        return await _order(info, "addOrderItem", input, call)

    @strawberry.mutation
    async def remove_order_item(self, info: Info, input: RemoveOrderItemInput) -> OrderResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.remove_order_item(
                str(input.order_id),
                str(input.product_id),
                context,
                input.expected_version,
                idempotency,
            )

        return await _order(info, "removeOrderItem", input, call)

    @strawberry.mutation
    async def set_shipping_address(self, info: Info, input: SetShippingAddressInput) -> OrderResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.set_shipping_address(
                str(input.order_id),
                input.address.to_domain(),
                context,
                input.expected_version,
                idempotency,
            )

        return await _order(info, "setShippingAddress", input, call)

    @strawberry.mutation
    async def submit_order(self, info: Info, input: SubmitOrderInput) -> OrderResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.submit_order(
                str(input.order_id), context, input.expected_version, idempotency
            )

        return await _order(info, "submitOrder", input, call)

    @strawberry.mutation
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> OrderResult:
        async def call(
            app: OrdersApplication, context: CommandContext, idempotency: Idempotency | None
        ) -> CommandOutcome:
            return await app.cancel_order(
                str(input.order_id), input.reason, context, input.expected_version, idempotency
            )

        return await _order(info, "cancelOrder", input, call)

    # --------------------------------------------------------- dead letters

    @strawberry.mutation(
        description="Ask the leading projector to re-apply a dead letter's stream."
    )
    async def retry_dead_letter(self, info: Info, id: strawberry.ID) -> RetryResult:
        if await info.context.services.read_model.dead_letters.request_retry(str(id)):
            return DeadLetterRetried(id=id)
        return not_found(f"dead letter {id} not found", str(id))
