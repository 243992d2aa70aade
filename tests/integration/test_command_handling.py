"""Command handling over every EventStore adapter: load -> decide -> append, retries,
expected versions, idempotency, metadata and consistency tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.contracts.harness import StoreHarness
from write_model.application import ORDER, ItemRequest, OrdersApplication
from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.money import Money
from write_model.domain.order import Address, OrderCreated, OrderItemAdded, OrderSubmitted
from write_model.envelope import ConsistencyToken, EventMetadata, NewEvent
from write_model.event_store.port import NO_STREAM
from write_model.event_types import build_registry
from write_model.handling import (
    CommandContext,
    CommandHandler,
    ConcurrencyConflict,
    Idempotency,
    IdempotencyKeyReused,
)

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


def build_app(harness: StoreHarness, max_attempts: int = 5) -> OrdersApplication:
    handler = CommandHandler(
        harness.store,
        build_registry(),
        clock=lambda: datetime.now(UTC),
        new_event_id=uuid.uuid4,
        max_attempts=max_attempts,
    )
    return OrdersApplication(handler, tax_rate=Decimal("0.10"), new_id=lambda: uuid.uuid4().hex)


def ctx(correlation: str = "corr-test", user: str | None = "staff-1") -> CommandContext:
    return CommandContext(correlation_id=correlation, causation_id="req-1", user_id=user)


async def catalog(app: OrdersApplication, unique: str) -> tuple[str, str, str]:
    """A customer and two products; returns their ids."""
    customer_id = f"c-{unique}"
    await app.register_customer(customer_id, "Ada", f"ada-{unique}@example.com", ctx())
    await app.add_product(f"pen-{unique}", "Pen", Decimal("1.25"), "USD", 100, ctx())
    await app.add_product(f"ink-{unique}", "Ink", Decimal("12.30"), "USD", 100, ctx())
    return customer_id, f"pen-{unique}", f"ink-{unique}"


async def test_order_flow_prices_from_the_catalog(harness: StoreHarness, unique: str) -> None:
    app = build_app(harness)
    customer_id, pen, ink = await catalog(app, unique)

    created = await app.create_order(f"o-{unique}", customer_id, [ItemRequest(pen, 2)], None, ctx())
    await app.add_order_item(f"o-{unique}", ItemRequest(ink, 3), ctx())
    await app.set_shipping_address(f"o-{unique}", ADDRESS, ctx())
    submitted = await app.submit_order(f"o-{unique}", ctx())

    assert created.version == 2 and created.stream_id == f"Order-o-{unique}"
    assert submitted.version == 5
    assert submitted.events == (
        OrderSubmitted(
            subtotal=Money(Decimal("39.40"), "USD"),
            tax=Money(Decimal("3.94"), "USD"),
            total=Money(Decimal("43.34"), "USD"),
        ),
    )
    stored = await harness.store.read_stream(f"Order-o-{unique}")
    assert [e.type for e in stored] == [
        "OrderCreated",
        "OrderItemAdded",
        "OrderItemAdded",
        "ShippingAddressSet",
        "OrderSubmitted",
    ]
    assert stored[2].data["unit_price"] == {"amount": "12.30", "currency": "USD"}
    assert stored[2].data["product_name"] == "Ink"


async def test_metadata_carries_correlation_and_causation(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness)
    context = CommandContext(f"corr-{unique}", causation_id=f"cause-{unique}", user_id="u-9")

    await app.add_product(f"p-{unique}", "Pen", Decimal("1.00"), "USD", 1, context)

    [event] = await harness.store.read_stream(f"Product-p-{unique}")
    assert event.metadata == EventMetadata(f"corr-{unique}", f"cause-{unique}", "u-9", 1)


async def test_consistency_token_names_the_last_appended_event(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness)
    customer_id, pen, _ = await catalog(app, unique)

    outcome = await app.create_order(
        f"o-{unique}", customer_id, [ItemRequest(pen, 1)], ADDRESS, ctx()
    )

    last = (await harness.store.read_stream(f"Order-o-{unique}"))[-1]
    assert ConsistencyToken.decode(outcome.consistency_token) == last.log_position


async def test_stale_expected_version_is_a_conflict_and_appends_nothing(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness)
    customer_id, pen, ink = await catalog(app, unique)
    await app.create_order(f"o-{unique}", customer_id, [], None, ctx())
    await app.add_order_item(f"o-{unique}", ItemRequest(pen, 1), ctx(), expected_version=1)

    with pytest.raises(ConcurrencyConflict) as raised:
        await app.add_order_item(f"o-{unique}", ItemRequest(ink, 1), ctx(), expected_version=1)

    assert (raised.value.expected, raised.value.actual) == (1, 2)
    assert await harness.store.stream_version(f"Order-o-{unique}") == 2


async def test_concurrent_commands_without_expected_version_all_land(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness, max_attempts=20)
    customer_id, *_ = await catalog(app, unique)
    products = [f"p{n}-{unique}" for n in range(8)]
    for sku in products:
        await app.add_product(sku, sku, Decimal("2.00"), "USD", 10, ctx())
    await app.create_order(f"o-{unique}", customer_id, [], None, ctx())

    await asyncio.gather(
        *(app.add_order_item(f"o-{unique}", ItemRequest(sku, 1), ctx()) for sku in products)
    )

    state, version = await app.handler.load(ORDER, f"Order-o-{unique}")
    assert version == 9
    assert sorted(line.product_id for line in state.lines) == sorted(products)


async def test_retries_are_bounded(harness: StoreHarness, unique: str) -> None:
    app = build_app(harness, max_attempts=1)
    customer_id, *_ = await catalog(app, unique)
    products = [f"p{n}-{unique}" for n in range(6)]
    for sku in products:
        await app.add_product(sku, sku, Decimal("2.00"), "USD", 10, ctx())
    await app.create_order(f"o-{unique}", customer_id, [], None, ctx())

    outcomes = await asyncio.gather(
        *(app.add_order_item(f"o-{unique}", ItemRequest(sku, 1), ctx()) for sku in products),
        return_exceptions=True,
    )

    landed = [o for o in outcomes if not isinstance(o, BaseException)]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    assert len(landed) + len(conflicts) == 6
    assert await harness.store.stream_version(f"Order-o-{unique}") == 1 + len(landed)


async def test_same_idempotency_key_returns_the_first_result(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness)
    customer_id, pen, _ = await catalog(app, unique)
    key = Idempotency(f"key-{unique}", "createOrder:pen x1")

    first = await app.create_order(None, customer_id, [ItemRequest(pen, 1)], None, ctx(), key)
    again = await app.create_order(None, customer_id, [ItemRequest(pen, 1)], None, ctx(), key)

    assert again.replayed and not first.replayed
    assert (again.stream_id, again.version, again.consistency_token) == (
        first.stream_id,
        first.version,
        first.consistency_token,
    )
    assert await harness.store.stream_version(first.stream_id) == 2


async def test_same_idempotency_key_with_other_input_is_refused(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness)
    customer_id, pen, ink = await catalog(app, unique)
    await app.create_order(f"o-{unique}", customer_id, [], None, ctx())
    await app.add_order_item(
        f"o-{unique}", ItemRequest(pen, 1), ctx(), idempotency=Idempotency(f"k-{unique}", "a")
    )

    with pytest.raises(IdempotencyKeyReused):
        await app.add_order_item(
            f"o-{unique}", ItemRequest(ink, 1), ctx(), idempotency=Idempotency(f"k-{unique}", "b")
        )

    assert await harness.store.stream_version(f"Order-o-{unique}") == 2


async def test_concurrent_requests_with_one_key_append_once(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness)
    customer_id, pen, _ = await catalog(app, unique)
    await app.create_order(f"o-{unique}", customer_id, [], None, ctx())
    key = Idempotency(f"k-{unique}", "same")

    outcomes = await asyncio.gather(
        *(
            app.add_order_item(f"o-{unique}", ItemRequest(pen, 1), ctx(), idempotency=key)
            for _ in range(5)
        )
    )

    assert len({(o.version, o.consistency_token) for o in outcomes}) == 1
    assert await harness.store.stream_version(f"Order-o-{unique}") == 2


async def test_emails_are_unique_whatever_their_case(harness: StoreHarness, unique: str) -> None:
    app = build_app(harness)
    await app.register_customer(f"a-{unique}", "Ada", f"Ada.{unique}@Example.com", ctx())

    with pytest.raises(ValidationFailed) as raised:
        await app.register_customer(f"b-{unique}", "Bob", f"ada.{unique}@example.COM", ctx())

    assert raised.value.field == "email"
    assert await harness.store.stream_version(f"Customer-b-{unique}") == 0


async def test_bad_input_is_a_typed_error_and_appends_nothing(
    harness: StoreHarness, unique: str
) -> None:
    app = build_app(harness)
    customer_id, pen, _ = await catalog(app, unique)
    await app.create_order(f"o-{unique}", customer_id, [], None, ctx())
    head = await harness.store.head_position()

    with pytest.raises(NotFound) as unknown_product:
        await app.add_order_item(f"o-{unique}", ItemRequest(f"nope-{unique}", 1), ctx())
    with pytest.raises(ValidationFailed) as zero:
        await app.add_order_item(f"o-{unique}", ItemRequest(pen, 0), ctx())
    with pytest.raises(ValidationFailed) as negative:
        await app.add_order_item(f"o-{unique}", ItemRequest(pen, -2), ctx())
    with pytest.raises(ValidationFailed) as email:
        await app.register_customer(None, "Eve", "not-an-email", ctx())
    with pytest.raises(NotFound) as unknown_order:
        await app.submit_order(f"missing-{unique}", ctx())
    with pytest.raises(NotFound) as unknown_customer:
        await app.create_order(None, f"nobody-{unique}", [], None, ctx())
    with pytest.raises(InvalidState, match="no items"):
        await app.submit_order(f"o-{unique}", ctx())

    assert unknown_product.value.entity_id == f"nope-{unique}"
    assert zero.value.field == negative.value.field == "quantity"
    assert email.value.field == "email"
    assert unknown_order.value.entity_id == f"missing-{unique}"
    assert unknown_customer.value.entity_id == f"nobody-{unique}"
    assert await harness.store.head_position() == head


async def test_version_one_payloads_are_upcast_on_load(harness: StoreHarness, unique: str) -> None:
    """An OrderItemAdded stored under schema version 1 (bare USD amount) loads as Money."""
    app = build_app(harness)
    registry = build_registry()
    created_type, created, _ = registry.serialize(
        OrderCreated(f"o-{unique}", "c-1", Decimal("0.10"))
    )
    old = {"product_id": "pen", "product_name": "Pen", "quantity": 2, "unit_price": "1.25"}
    now = datetime.now(UTC)
    await harness.store.append_to_stream(
        f"Order-o-{unique}",
        "Order",
        NO_STREAM,
        [
            NewEvent(
                uuid.uuid4(), created_type, created, EventMetadata("c", schema_version=1), now
            ),
            NewEvent(
                uuid.uuid4(), "OrderItemAdded", old, EventMetadata("c", schema_version=1), now
            ),
        ],
    )

    state, _ = await app.handler.load(ORDER, f"Order-o-{unique}")
    [event] = [
        app.handler.domain_event(e)
        for e in await harness.store.read_stream(f"Order-o-{unique}", from_version=2)
    ]

    assert event == OrderItemAdded("pen", "Pen", 2, Money(Decimal("1.25"), "USD"))
    assert state.totals().subtotal == Money(Decimal("2.50"), "USD")
