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

from schema import descriptions as d
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


@strawberry.type(description="The order command was accepted: its events are in the event store.")
class OrderAccepted:
    id_field: ClassVar[str] = "order_id"
    stream_type: ClassVar[str] = order.STREAM_TYPE

    order_id: strawberry.ID = strawberry.field(description="The order's id.")
    version: int = strawberry.field(description="The order stream's version after this write.")
    consistency_token: str = strawberry.field(description=d.CONSISTENCY_TOKEN_RETURNED)

    @strawberry.field(description="the order once the read model has this write")
    async def order(self, info: Info) -> Order | None:
        stream = stream_ids.stream_id(self.stream_type, str(self.order_id))
        await info.context.caught_up(self.consistency_token, stream)
        doc = await info.context.loaders.orders.load(str(self.order_id))
        return Order.of(doc) if doc is not None else None


@strawberry.type(
    description="The customer command was accepted: its events are in the event store."
)
class CustomerAccepted:
    id_field: ClassVar[str] = "customer_id"
    stream_type: ClassVar[str] = customer.STREAM_TYPE

    customer_id: strawberry.ID = strawberry.field(description="The customer's id.")
    version: int = strawberry.field(description="The customer stream's version after this write.")
    consistency_token: str = strawberry.field(description=d.CONSISTENCY_TOKEN_RETURNED)

    @strawberry.field(description="the customer once the read model has this write")
    async def customer(self, info: Info) -> Customer | None:
        stream = stream_ids.stream_id(self.stream_type, str(self.customer_id))
        await info.context.caught_up(self.consistency_token, stream)
        doc = await info.context.loaders.customers.load(str(self.customer_id))
        return Customer.of(doc) if doc is not None else None


@strawberry.type(description="The product command was accepted: its events are in the event store.")
class ProductAccepted:
    id_field: ClassVar[str] = "product_id"
    stream_type: ClassVar[str] = product.STREAM_TYPE

    product_id: strawberry.ID = strawberry.field(description="The product's id.")
    version: int = strawberry.field(description="The product stream's version after this write.")
    consistency_token: str = strawberry.field(description=d.CONSISTENCY_TOKEN_RETURNED)

    @strawberry.field(description="the product once the read model has this write")
    async def product(self, info: Info) -> Product | None:
        stream = stream_ids.stream_id(self.stream_type, str(self.product_id))
        await info.context.caught_up(self.consistency_token, stream)
        doc = await info.context.loaders.products.load(str(self.product_id))
        return Product.of(doc) if doc is not None else None


@strawberry.type(description="The retry was requested; the leader re-applies the stream shortly.")
class DeadLetterRetried:
    id: strawberry.ID = strawberry.field(description="The dead letter's id.")


_ERRORS = ValidationError | NotFoundError | ConcurrencyError | InvalidStateError
OrderResult = Annotated[
    OrderAccepted | _ERRORS | IdempotencyKeyReusedError,
    strawberry.union(
        "OrderResult",
        description="The order command's outcome: OrderAccepted, or the expected failure that "
        "refused it.",
    ),
]
CustomerResult = Annotated[
    CustomerAccepted | _ERRORS | IdempotencyKeyReusedError,
    strawberry.union(
        "CustomerResult",
        description="The customer command's outcome: CustomerAccepted, or the expected failure "
        "that refused it.",
    ),
]
ProductResult = Annotated[
    ProductAccepted | _ERRORS | IdempotencyKeyReusedError,
    strawberry.union(
        "ProductResult",
        description="The product command's outcome: ProductAccepted, or the expected failure that "
        "refused it.",
    ),
]
RetryResult = Annotated[
    DeadLetterRetried | NotFoundError,
    strawberry.union(
        "RetryResult",
        description="DeadLetterRetried, or a NotFoundError for an unknown (or already retried) "
        "dead letter.",
    ),
]

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


@strawberry.type(
    description="Writes: each runs one command and answers a union, the accepted payload or an "
    "expected failure (never GraphQL errors for those)."
)
class Mutation:
    # ------------------------------------------------------------ customers

    @strawberry.mutation(
        description="Register a customer; answers its id and the stream's version. An email "
        "registered to another customer is a ValidationError, a taken id an InvalidStateError."
    )
    async def register_customer(
        self, info: Info, input: Annotated[RegisterCustomerInput, d.COMMAND_INPUT]
    ) -> CustomerResult:
        return await _dispatch(info, input, CustomerAccepted)

    @strawberry.mutation(
        description="Change a customer's display name (its orders show the new name)."
    )
    async def rename_customer(
        self, info: Info, input: Annotated[RenameCustomerInput, d.COMMAND_INPUT]
    ) -> CustomerResult:
        return await _dispatch(info, input, CustomerAccepted)

    # ------------------------------------------------------------- products

    @strawberry.mutation(
        description="Add a catalog entry with its price and first stock (staff only)."
    )
    async def add_product(
        self, info: Info, input: Annotated[AddProductInput, d.COMMAND_INPUT]
    ) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    @strawberry.mutation(
        description="Rename a catalog entry (staff only; orders show the new name)."
    )
    async def rename_product(
        self, info: Info, input: Annotated[RenameProductInput, d.COMMAND_INPUT]
    ) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    @strawberry.mutation(
        description="Change a catalog entry's price (staff only); orders keep the prices their "
        "lines were given."
    )
    async def change_product_price(
        self, info: Info, input: Annotated[ChangeProductPriceInput, d.COMMAND_INPUT]
    ) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    @strawberry.mutation(description="Add received units to a catalog entry's stock (staff only).")
    async def restock_product(
        self, info: Info, input: Annotated[RestockProductInput, d.COMMAND_INPUT]
    ) -> ProductResult:
        return await _dispatch(info, input, ProductAccepted)

    # --------------------------------------------------------------- orders

    @strawberry.mutation(
        description="Create a DRAFT order for a customer (a customer: only for itself), its lines "
        "priced from the catalog plus TAX_RATE tax."
    )
    async def create_order(
        self, info: Info, input: Annotated[CreateOrderInput, d.COMMAND_INPUT]
    ) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation(
        description="Add a line to a DRAFT order, or units to one of the same product; an "
        "InvalidStateError once it is submitted."
    )
    async def add_order_item(
        self, info: Info, input: Annotated[AddOrderItemInput, d.COMMAND_INPUT]
    ) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation(description="Take a product's line off a DRAFT order.")
    async def remove_order_item(
        self, info: Info, input: Annotated[RemoveOrderItemInput, d.COMMAND_INPUT]
    ) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation(description="Set (or replace) where a DRAFT order ships to.")
    async def set_shipping_address(
        self, info: Info, input: Annotated[SetShippingAddressInput, d.COMMAND_INPUT]
    ) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation(
        description="Submit a DRAFT order with lines and an address: the fulfillment saga then "
        "reserves stock, charges the payment, books the shipment and confirms it, or undoes "
        "what it did and rejects it (watch it with orderUpdated)."
    )
    async def submit_order(
        self, info: Info, input: Annotated[SubmitOrderInput, d.COMMAND_INPUT]
    ) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    @strawberry.mutation(
        description="Cancel an order; a SUBMITTED or CONFIRMED one has its fulfillment undone "
        "(stock released, payment refunded, shipment cancelled). A REJECTED or CANCELLED one "
        "is an InvalidStateError."
    )
    async def cancel_order(
        self, info: Info, input: Annotated[CancelOrderInput, d.COMMAND_INPUT]
    ) -> OrderResult:
        return await _dispatch(info, input, OrderAccepted)

    # --------------------------------------------------------- dead letters

    @strawberry.mutation(
        description="Ask the leading projector (or saga process) to re-apply a dead letter's "
        "stream, in order (staff only)."
    )
    async def retry_dead_letter(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The dead letter's id.")],
    ) -> RetryResult:
        with forbidden_as_request_error():
            dead_letters = info.context.reader.dead_letters
        if await dead_letters.request_retry(str(id)):
            return DeadLetterRetried(id=id)
        return not_found(f"dead letter {id} not found", str(id))
