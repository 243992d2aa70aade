"""Mutations: each parses its input into one command (schema/mutation_inputs.py builds
it), dispatches it on the command bus and returns the contract's union: the success
payload, or the union member for an expected failure. `_dispatch` is that plumbing, written
once for every mutation.

`idempotencyKey` is scoped by the mutation (and, once there is authentication, by the
principal): the same key on another mutation is another key. It is passed with a
fingerprint of the input (sha256 of the mutation name and the canonical JSON of the input
without the key), so the same key with other input is an `IdempotencyKeyReusedError`.
`expectedVersion` goes into the command; a `ConcurrencyError` comes back only when it was
given and is stale, or when the bus's retries ran out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

import orjson
import strawberry

from schema.context import Info
from schema.errors import (
    EXPECTED_FAILURES,
    CommandError,
    ConcurrencyError,
    ForbiddenRequest,
    IdempotencyKeyReusedError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
    forbidden_as_request_error,
    not_found,
    user_error_of,
)
from schema.mutation_inputs import (
    AddOrderItemInput,
    AddProductInput,
    CancelOrderInput,
    ChangeProductPriceInput,
    CreateOrderInput,
    RegisterCustomerInput,
    RemoveOrderItemInput,
    RenameCustomerInput,
    RenameProductInput,
    RestockProductInput,
    SetShippingAddressInput,
    SubmitOrderInput,
)
from schema.rate_limit import RateLimited
from schema.types import Customer, Order, Product
from write_model import access, commands, stream_ids
from write_model.bus import Idempotency
from write_model.command_context import Principal
from write_model.domain import customer, order, product

# ---------------------------------------------------------------- payloads


@strawberry.type
class OrderAccepted:
    id_field: ClassVar[str] = "order_id"
    stream_type: ClassVar[str] = order.STREAM_TYPE

    order_id: strawberry.ID
    version: int
    consistency_token: str

    @strawberry.field(description="the order once the read model has this write")
    async def order(self, info: Info) -> Order | None:
        stream = stream_ids.stream_id(self.stream_type, str(self.order_id))
        await info.context.caught_up(self.consistency_token, stream)
        doc = await info.context.loaders.orders.load(str(self.order_id))
        return Order.of(doc) if doc is not None else None


@strawberry.type
class CustomerAccepted:
    id_field: ClassVar[str] = "customer_id"
    stream_type: ClassVar[str] = customer.STREAM_TYPE

    customer_id: strawberry.ID
    version: int
    consistency_token: str

    @strawberry.field(description="the customer once the read model has this write")
    async def customer(self, info: Info) -> Customer | None:
        stream = stream_ids.stream_id(self.stream_type, str(self.customer_id))
        await info.context.caught_up(self.consistency_token, stream)
        doc = await info.context.loaders.customers.load(str(self.customer_id))
        return Customer.of(doc) if doc is not None else None


@strawberry.type
class ProductAccepted:
    id_field: ClassVar[str] = "product_id"
    stream_type: ClassVar[str] = product.STREAM_TYPE

    product_id: strawberry.ID
    version: int
    consistency_token: str

    @strawberry.field(description="the product once the read model has this write")
    async def product(self, info: Info) -> Product | None:
        stream = stream_ids.stream_id(self.stream_type, str(self.product_id))
        await info.context.caught_up(self.consistency_token, stream)
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

# ----------------------------------------------------------------- running


class CommandInput(Protocol):
    idempotency_key: str | None

    def to_command(self) -> commands.Command: ...


Accepted = TypeVar("Accepted", OrderAccepted, CustomerAccepted, ProductAccepted)


def fingerprint(mutation: str, input: Any) -> str:
    """sha256 of the mutation name and the canonical JSON of its input without the key."""
    data = dataclasses.asdict(input)
    data.pop("idempotency_key", None)
    canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(mutation.encode() + b"\n" + canonical).hexdigest()


def _idempotency(mutation: str, input: CommandInput, principal: Principal) -> Idempotency | None:
    """The key scoped by the mutation and by who sends it (every client is anonymous until
    authentication exists)."""
    if input.idempotency_key is None:
        return None
    return Idempotency(
        input.idempotency_key,
        fingerprint(mutation, input),
        scope=mutation,
        principal=principal.user_id or "",
    )


async def _dispatch(
    info: Info, input: CommandInput, accepted: type[Accepted]
) -> Accepted | CommandError:
    """Parse, dispatch, answer: expected failures (bad input included) are union members."""
    context = info.context
    services = context.services
    mutation = info.field_name  # e.g. "createOrder", as the client and the metrics name it
    started = time.perf_counter()
    result, appended = "ERROR", 0  # what the metrics record when neither branch below ran
    try:
        services.mutation_limiter.take(context.rate_limit_key)
        command_context = context.command_context()
        outcome = await services.commands.dispatch(
            input.to_command(),
            command_context,
            _idempotency(mutation, input, command_context.principal),
        )
        result = "REPLAYED" if outcome.replayed else "ACCEPTED"
        appended = len(outcome.events)
    except RateLimited:
        result = RateLimited.code
        raise
    except access.Forbidden as refused:
        result = ForbiddenRequest.code
        raise ForbiddenRequest(str(refused)) from None
    except EXPECTED_FAILURES as error:
        failure = user_error_of(error)
        result = failure.code
        return failure
    finally:
        seconds = time.perf_counter() - started
        services.observer.command_finished(
            mutation, result, seconds, accepted.stream_type, appended
        )
    entity_id = strawberry.ID(stream_ids.entity_id(outcome.stream_id, accepted.stream_type))
    return accepted(
        **{accepted.id_field: entity_id},
        version=outcome.version,
        consistency_token=outcome.consistency_token,
    )


# ---------------------------------------------------------------- mutations


@strawberry.type
class Mutation:
    # ------------------------------------------------------------ customers

    @strawberry.mutation
    async def register_customer(self, info: Info, input: RegisterCustomerInput) -> CustomerResult:
        return await _dispatch(info, input, CustomerAccepted)

    @strawberry.mutation
    async def rename_customer(self, info: Info, input: RenameCustomerInput) -> CustomerResult:
        return await _dispatch(info, input, CustomerAccepted)

    # ------------------------------------------------------------- products

    @strawberry.mutation
    async def add_product(self, info: Info, input: AddProductInput) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    @strawberry.mutation(description="Rename a catalog entry (orders show the new name).")
    async def rename_product(self, info: Info, input: RenameProductInput) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    @strawberry.mutation
    async def change_product_price(
        self, info: Info, input: ChangeProductPriceInput
    ) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    @strawberry.mutation
    async def restock_product(self, info: Info, input: RestockProductInput) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    # --------------------------------------------------------------- orders

    @strawberry.mutation
    async def create_order(self, info: Info, input: CreateOrderInput) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation
    async def add_order_item(self, info: Info, input: AddOrderItemInput) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation
    async def remove_order_item(self, info: Info, input: RemoveOrderItemInput) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation
    async def set_shipping_address(self, info: Info, input: SetShippingAddressInput) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation
    async def submit_order(self, info: Info, input: SubmitOrderInput) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    # --------------------------------------------------------- dead letters

    @strawberry.mutation(
        description="Ask the leading projector to re-apply a dead letter's stream."
    )
    async def retry_dead_letter(self, info: Info, id: strawberry.ID) -> RetryResult:
        with forbidden_as_request_error():
            dead_letters = info.context.reader.dead_letters
        if await dead_letters.request_retry(str(id)):
            return DeadLetterRetried(id=id)
        return not_found(f"dead letter {id} not found", str(id))
