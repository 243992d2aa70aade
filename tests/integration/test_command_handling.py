"""Commands through the bus over every EventStore adapter: load -> decide -> append,
retries, expected versions, idempotency, metadata and consistency tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.contracts.harness import StoreHarness
from tests.integration.write_side import build_bus
from write_model import commands
from write_model.bus import (
    CommandBus,
    ConcurrencyConflict,
    Idempotency,
    IdempotencyKeyReused,
    Streams,
    UnknownCommand,
)
from write_model.command_context import CommandContext, Principal
from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.money import Money
from write_model.domain.order import Address, OrderCreated, OrderItemAdded, OrderSubmitted
from write_model.envelope import ConsistencyToken, EventMetadata, NewEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import NO_STREAM, EventStore
from write_model.event_types import build_registry
from write_model.handlers import ORDER, PRODUCT

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


def ctx() -> CommandContext:
    return CommandContext("corr-test", causation_id="req-1", principal=Principal.staff("staff-1"))


async def catalog(bus: CommandBus, unique: str) -> tuple[str, str, str]:
    """A customer and two products; returns their ids."""
    customer_id = f"c-{unique}"
    register = commands.RegisterCustomer(
        customer_id=customer_id, name="Ada", email=f"ada-{unique}@example.com"
    )
    await bus.dispatch(register, ctx())
    for sku, name, price in ((f"pen-{unique}", "Pen", "1.25"), (f"ink-{unique}", "Ink", "12.30")):
        add = commands.AddProduct(
            product_id=sku, name=name, price=Decimal(price), initial_stock=100
        )
        await bus.dispatch(add, ctx())
    return customer_id, f"pen-{unique}", f"ink-{unique}"


async def test_order_flow_prices_from_the_catalog(harness: StoreHarness, unique: str) -> None:
    bus = build_bus(harness.store)
    customer_id, pen, ink = await catalog(bus, unique)

    created = await bus.dispatch(
        commands.CreateOrder(
            order_id=f"o-{unique}", customer_id=customer_id, items=(commands.OrderItem(pen, 2),)
        ),
        ctx(),
    )
    await bus.dispatch(
        commands.AddOrderItem(order_id=f"o-{unique}", product_id=ink, quantity=3), ctx()
    )
    await bus.dispatch(commands.SetShippingAddress(order_id=f"o-{unique}", address=ADDRESS), ctx())
    submitted = await bus.dispatch(commands.SubmitOrder(order_id=f"o-{unique}"), ctx())

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
    assert stored[2].data["unitPrice"] == {"amount": "12.30", "currency": "USD"}
    assert stored[2].data["productName"] == "Ink"


async def test_metadata_carries_correlation_and_causation(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    context = CommandContext(
        f"corr-{unique}", causation_id=f"cause-{unique}", principal=Principal.staff("u-9")
    )

    await bus.dispatch(
        commands.AddProduct(
            product_id=f"p-{unique}",
            name="Pen",
            price=Decimal("1.00"),
            initial_stock=1,
        ),
        context,
    )

    [event] = await harness.store.read_stream(f"Product-p-{unique}")
    assert event.metadata == EventMetadata(f"corr-{unique}", f"cause-{unique}", "u-9", 2)


async def test_consistency_token_names_the_last_appended_event(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    customer_id, pen, _ = await catalog(bus, unique)

    outcome = await bus.dispatch(
        commands.CreateOrder(
            order_id=f"o-{unique}",
            customer_id=customer_id,
            items=(commands.OrderItem(pen, 1),),
            shipping_address=ADDRESS,
        ),
        ctx(),
    )

    last = (await harness.store.read_stream(f"Order-o-{unique}"))[-1]
    assert ConsistencyToken.decode(outcome.consistency_token) == last.log_position


async def test_stale_expected_version_is_a_conflict_and_appends_nothing(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    customer_id, pen, ink = await catalog(bus, unique)
    await bus.dispatch(commands.CreateOrder(order_id=f"o-{unique}", customer_id=customer_id), ctx())
    await bus.dispatch(
        commands.AddOrderItem(
            order_id=f"o-{unique}", product_id=pen, quantity=1, expected_version=1
        ),
        ctx(),
    )

    with pytest.raises(ConcurrencyConflict) as raised:
        await bus.dispatch(
            commands.AddOrderItem(
                order_id=f"o-{unique}", product_id=ink, quantity=1, expected_version=1
            ),
            ctx(),
        )

    assert (raised.value.expected, raised.value.actual) == (1, 2)
    assert await harness.store.stream_version(f"Order-o-{unique}") == 2


async def test_concurrent_commands_without_expected_version_all_land(
    harness: StoreHarness, unique: str
) -> None:
    """20 writers to one order at once, on the default retry settings: all land."""
    bus = build_bus(harness.store)
    customer_id, *_ = await catalog(bus, unique)
    products = [f"p{n}-{unique}" for n in range(20)]
    for sku in products:
        await bus.dispatch(
            commands.AddProduct(product_id=sku, name=sku, price=Decimal("2.00"), initial_stock=10),
            ctx(),
        )
    await bus.dispatch(commands.CreateOrder(order_id=f"o-{unique}", customer_id=customer_id), ctx())

    await asyncio.gather(
        *(
            bus.dispatch(
                commands.AddOrderItem(order_id=f"o-{unique}", product_id=sku, quantity=1), ctx()
            )
            for sku in products
        )
    )

    state, version = await Streams(harness.store, build_registry()).load(ORDER, f"o-{unique}")
    assert version == 21
    assert sorted(line.product_id for line in state.lines) == sorted(products)


async def test_retries_are_bounded(harness: StoreHarness, unique: str) -> None:
    bus = build_bus(harness.store, max_attempts=1)
    customer_id, *_ = await catalog(bus, unique)
    products = [f"p{n}-{unique}" for n in range(6)]
    for sku in products:
        await bus.dispatch(
            commands.AddProduct(product_id=sku, name=sku, price=Decimal("2.00"), initial_stock=10),
            ctx(),
        )
    await bus.dispatch(commands.CreateOrder(order_id=f"o-{unique}", customer_id=customer_id), ctx())

    outcomes = await asyncio.gather(
        *(
            bus.dispatch(
                commands.AddOrderItem(order_id=f"o-{unique}", product_id=sku, quantity=1), ctx()
            )
            for sku in products
        ),
        return_exceptions=True,
    )

    landed = [o for o in outcomes if not isinstance(o, BaseException)]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    assert len(landed) + len(conflicts) == 6
    for conflict in conflicts:
        # Versions the sender can act on: where the order is, not one it never sent.
        assert conflict.tries == 1 and conflict.actual > conflict.expected
        assert f"at version {conflict.actual} now" in str(conflict)
    assert await harness.store.stream_version(f"Order-o-{unique}") == 1 + len(landed)


async def test_same_idempotency_key_returns_the_first_result(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    customer_id, pen, _ = await catalog(bus, unique)
    key = Idempotency(f"key-{unique}", "createOrder:pen x1")

    first = await bus.dispatch(
        commands.CreateOrder(customer_id=customer_id, items=(commands.OrderItem(pen, 1),)),
        ctx(),
        key,
    )
    again = await bus.dispatch(
        commands.CreateOrder(customer_id=customer_id, items=(commands.OrderItem(pen, 1),)),
        ctx(),
        key,
    )

    assert again.replayed and not first.replayed
    assert (again.stream_id, again.version, again.consistency_token) == (
        first.stream_id,
        first.version,
        first.consistency_token,
    )
    assert await harness.store.stream_version(first.stream_id) == 2


async def test_the_same_idempotency_key_from_two_customers_is_two_keys(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    _, pen, _ = await catalog(bus, unique)
    outcomes = []
    for who in ("a", "b"):
        customer_id = f"c-{who}-{unique}"
        register = commands.RegisterCustomer(
            customer_id=customer_id, name=who, email=f"{who}-{unique}@example.com"
        )
        await bus.dispatch(register, ctx())
        as_customer = CommandContext("corr-test", principal=Principal.customer(customer_id))
        create = commands.CreateOrder(customer_id=customer_id, items=(commands.OrderItem(pen, 1),))
        key = Idempotency(f"shared-key-{unique}", "createOrder:pen x1")
        outcomes.append(await bus.dispatch(create, as_customer, key))

    # Neither replays the other's result: each created an order of its own.
    assert not any(outcome.replayed for outcome in outcomes)
    assert outcomes[0].stream_id != outcomes[1].stream_id
    for outcome, who in zip(outcomes, ("a", "b"), strict=True):
        created = (await harness.store.read_stream(outcome.stream_id))[0]
        assert created.data["customerId"] == f"c-{who}-{unique}"


async def ids_appended(
    store: EventStore,
    bus: CommandBus,
    command: commands.Command,
    context: CommandContext,
    idempotency: Idempotency | None = None,
) -> list[uuid.UUID]:
    before = await store.head_position()
    await bus.dispatch(command, context, idempotency)
    return [event.event_id for event in await store.read_all(before)]


async def test_a_keyed_command_appends_the_same_event_ids_whenever_it_is_sent(
    harness: StoreHarness, unique: str
) -> None:
    """A reaction sending its step command again after a crash (to a store that never
    stored the first try: here, another store of the same history) appends events with
    the same ids, so the store adds them once."""
    stores: list[EventStore] = [harness.store, InMemoryEventStore()]
    buses = [build_bus(store) for store in stores]
    pairs = list(zip(stores, buses, strict=True))
    for bus in buses:
        await catalog(bus, unique)
    pen = f"pen-{unique}"
    saga = CommandContext("corr", principal=Principal.system("fulfillment-saga"))
    reserve = commands.ReserveStock(product_id=pen, order_id="o-1", quantity=2)
    keyed = Idempotency(f"Fulfillment-{unique}:reserve:pen", "k")
    register = commands.RegisterCustomer(
        customer_id=f"c2-{unique}", name="Bo", email=f"bo-{unique}@example.com"
    )
    key = Idempotency(f"register-{unique}", "k", scope="registerCustomer")

    reserved = [await ids_appended(s, b, reserve, saga, keyed) for s, b in pairs]
    # Registering reserves the email first: both appends' ids follow the key.
    registered = [await ids_appended(s, b, register, ctx(), key) for s, b in pairs]

    assert reserved[0] == reserved[1] and len(reserved[0]) == 1
    assert registered[0] == registered[1] and len(set(registered[0])) == 2
    # Another key, the same key from another principal, or none: other ids.
    store, bus = stores[0], buses[0]
    others = [
        await ids_appended(
            store,
            bus,
            commands.ReserveStock(product_id=pen, order_id="o-2", quantity=1),
            saga,
            Idempotency(f"Fulfillment-{unique}:reserve:pen:o-2", "k"),
        ),
        await ids_appended(
            store,
            bus,
            commands.ReserveStock(product_id=pen, order_id="o-3", quantity=1),
            CommandContext("corr", principal=Principal.system("another-reaction")),
            keyed,
        ),
        await ids_appended(
            store, bus, commands.ReleaseStockReservation(product_id=pen, order_id="o-1"), saga
        ),
    ]
    assert all(len(ids) == 1 for ids in others)
    assert len({*reserved[0], *(ids[0] for ids in others)}) == 4


async def test_a_key_expected_new_answers_as_a_lookup_first_would(
    harness: StoreHarness, unique: str
) -> None:
    """A reaction's effect dispatched with expect_new skips the key lookup before deciding;
    sent again once the domain would refuse it (the stock it took has shipped), it still
    gets its first result, not the refusal."""
    bus = build_bus(harness.store)
    await catalog(bus, unique)
    pen = f"pen-{unique}"
    saga = CommandContext("corr", principal=Principal.system("fulfillment-saga"))
    reserve = commands.ReserveStock(product_id=pen, order_id="o-1", quantity=100)
    key = Idempotency(f"{unique}:reserve", "reserve o-1", expect_new=True)
    first = await bus.dispatch(reserve, saga, key)
    await bus.dispatch(commands.ShipReservedStock(product_id=pen, order_id="o-1"), saga)

    again = await bus.dispatch(reserve, saga, key)

    assert again.replayed and not first.replayed
    assert (again.version, again.consistency_token) == (first.version, first.consistency_token)
    with pytest.raises(InvalidState):  # a new key: the domain's answer
        await bus.dispatch(reserve, saga, Idempotency(f"{unique}:other", "x", expect_new=True))
    with pytest.raises(IdempotencyKeyReused):
        await bus.dispatch(reserve, saga, Idempotency(key.key, "other input", expect_new=True))
    assert await harness.store.stream_version(f"Product-{pen}") == 3


async def test_same_idempotency_key_with_other_input_is_refused(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    customer_id, pen, ink = await catalog(bus, unique)
    await bus.dispatch(commands.CreateOrder(order_id=f"o-{unique}", customer_id=customer_id), ctx())
    await bus.dispatch(
        commands.AddOrderItem(order_id=f"o-{unique}", product_id=pen, quantity=1),
        ctx(),
        Idempotency(f"k-{unique}", "a"),
    )

    with pytest.raises(IdempotencyKeyReused):
        await bus.dispatch(
            commands.AddOrderItem(order_id=f"o-{unique}", product_id=ink, quantity=1),
            ctx(),
            Idempotency(f"k-{unique}", "b"),
        )

    assert await harness.store.stream_version(f"Order-o-{unique}") == 2


async def test_concurrent_requests_with_one_key_append_once(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    customer_id, pen, _ = await catalog(bus, unique)
    await bus.dispatch(commands.CreateOrder(order_id=f"o-{unique}", customer_id=customer_id), ctx())
    key = Idempotency(f"k-{unique}", "same")

    outcomes = await asyncio.gather(
        *(
            bus.dispatch(
                commands.AddOrderItem(order_id=f"o-{unique}", product_id=pen, quantity=1),
                ctx(),
                key,
            )
            for _ in range(5)
        )
    )

    assert len({(o.version, o.consistency_token) for o in outcomes}) == 1
    assert await harness.store.stream_version(f"Order-o-{unique}") == 2


async def test_emails_are_unique_whatever_their_case(harness: StoreHarness, unique: str) -> None:
    bus = build_bus(harness.store)
    await bus.dispatch(
        commands.RegisterCustomer(
            customer_id=f"a-{unique}", name="Ada", email=f"Ada.{unique}@Example.com"
        ),
        ctx(),
    )

    with pytest.raises(ValidationFailed) as raised:
        await bus.dispatch(
            commands.RegisterCustomer(
                customer_id=f"b-{unique}", name="Bob", email=f"ada.{unique}@example.COM"
            ),
            ctx(),
        )

    assert raised.value.field == "email"
    assert await harness.store.stream_version(f"Customer-b-{unique}") == 0


async def test_bad_input_is_a_typed_error_and_appends_nothing(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    customer_id, pen, _ = await catalog(bus, unique)
    await bus.dispatch(commands.CreateOrder(order_id=f"o-{unique}", customer_id=customer_id), ctx())
    head = await harness.store.head_position()

    with pytest.raises(NotFound) as unknown_product:
        await bus.dispatch(
            commands.AddOrderItem(order_id=f"o-{unique}", product_id=f"nope-{unique}", quantity=1),
            ctx(),
        )
    with pytest.raises(ValidationFailed) as zero:
        await bus.dispatch(
            commands.AddOrderItem(order_id=f"o-{unique}", product_id=pen, quantity=0), ctx()
        )
    with pytest.raises(ValidationFailed) as negative:
        await bus.dispatch(
            commands.AddOrderItem(order_id=f"o-{unique}", product_id=pen, quantity=-2), ctx()
        )
    with pytest.raises(ValidationFailed) as email:
        await bus.dispatch(commands.RegisterCustomer(name="Eve", email="not-an-email"), ctx())
    with pytest.raises(NotFound) as unknown_order:
        await bus.dispatch(commands.SubmitOrder(order_id=f"missing-{unique}"), ctx())
    with pytest.raises(NotFound) as unknown_customer:
        await bus.dispatch(commands.CreateOrder(customer_id=f"nobody-{unique}"), ctx())
    with pytest.raises(InvalidState, match="no items"):
        await bus.dispatch(commands.SubmitOrder(order_id=f"o-{unique}"), ctx())

    assert unknown_product.value.entity_id == f"nope-{unique}"
    assert zero.value.field == negative.value.field == "quantity"
    assert email.value.field == "email"
    assert unknown_order.value.entity_id == f"missing-{unique}"
    assert unknown_customer.value.entity_id == f"nobody-{unique}"
    assert await harness.store.head_position() == head


async def test_an_order_stored_before_payloads_went_camel_case_takes_new_commands(
    harness: StoreHarness, unique: str
) -> None:
    """Schema version 1 payloads (snake_case; OrderItemAdded with a bare USD amount) fold
    into today's state, and the stream goes on with today's events."""
    bus = build_bus(harness.store)
    customer_id, _, ink = await catalog(bus, unique)
    created = {"order_id": f"o-{unique}", "customer_id": customer_id, "tax_rate": "0.10"}
    added = {"product_id": "pen", "product_name": "Pen", "quantity": 2, "unit_price": "1.25"}
    now = datetime.now(UTC)
    await harness.store.append_to_stream(
        f"Order-o-{unique}",
        "Order",
        NO_STREAM,
        [
            NewEvent(uuid.uuid4(), type_, data, EventMetadata("c", schema_version=1), now)
            for type_, data in (("OrderCreated", created), ("OrderItemAdded", added))
        ],
    )

    await bus.dispatch(
        commands.AddOrderItem(order_id=f"o-{unique}", product_id=ink, quantity=1), ctx()
    )

    registry = build_registry()
    state, version = await Streams(harness.store, registry).load(ORDER, f"o-{unique}")
    assert version == 3
    assert [(line.product_id, line.quantity) for line in state.lines] == [("pen", 2), (ink, 1)]
    assert state.totals().subtotal == Money(Decimal("14.80"), "USD")
    [first_item] = [
        registry.deserialize(e.type, e.data, e.metadata.schema_version)
        for e in await harness.store.read_stream(f"Order-o-{unique}", from_version=2, to_version=2)
    ]
    assert first_item == OrderItemAdded("pen", "Pen", 2, Money(Decimal("1.25"), "USD"))


async def submitted_order(bus: CommandBus, unique: str) -> tuple[str, str, str]:
    """A submitted order of 2 pens and 3 inks; returns the order id and the two skus."""
    customer_id, pen, ink = await catalog(bus, unique)
    items = (commands.OrderItem(pen, 2), commands.OrderItem(ink, 3))
    create = commands.CreateOrder(
        order_id=f"o-{unique}", customer_id=customer_id, items=items, shipping_address=ADDRESS
    )
    await bus.dispatch(create, ctx())
    await bus.dispatch(commands.SubmitOrder(order_id=f"o-{unique}"), ctx())
    return f"o-{unique}", pen, ink


async def test_the_saga_reserves_stock_and_confirms_as_the_system(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    order_id, pen, ink = await submitted_order(bus, unique)
    saga = CommandContext(
        f"saga-{unique}", causation_id="OrderSubmitted", principal=Principal.system("saga")
    )

    await bus.dispatch(commands.ReserveStock(product_id=pen, order_id=order_id, quantity=2), saga)
    await bus.dispatch(commands.ReserveStock(product_id=ink, order_id=order_id, quantity=3), saga)
    confirmed = await bus.dispatch(commands.ConfirmOrder(order_id=order_id), saga)
    # A saga step repeated after a crash changes nothing.
    again = await bus.dispatch(commands.ConfirmOrder(order_id=order_id), saga)
    reserved = await bus.dispatch(
        commands.ReserveStock(product_id=pen, order_id=order_id, quantity=2), saga
    )

    assert confirmed.version == 6 and again.version == 6 and again.events == ()
    assert reserved.version == 2 and reserved.events == ()
    (pen_state, _), (ink_state, _) = await Streams(harness.store, build_registry()).load_many(
        [(PRODUCT, pen), (PRODUCT, ink)]
    )
    assert (pen_state.stock_available, ink_state.stock_available) == (98, 97)
    [*_, last] = await harness.store.read_stream(f"Order-{order_id}")
    assert last.type == "OrderConfirmed"
    assert last.metadata == EventMetadata(
        f"saga-{unique}", "OrderSubmitted", "system:saga", last.metadata.schema_version
    )


async def test_the_saga_releases_stock_and_rejects_an_order_it_cannot_fill(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    order_id, pen, ink = await submitted_order(bus, unique)
    saga = CommandContext(f"saga-{unique}", principal=Principal.system("saga"))
    await bus.dispatch(commands.ReserveStock(product_id=pen, order_id=order_id, quantity=2), saga)

    with pytest.raises(InvalidState, match="insufficient stock"):
        await bus.dispatch(
            commands.ReserveStock(product_id=ink, order_id=order_id, quantity=101), saga
        )
    await bus.dispatch(commands.ReleaseStockReservation(product_id=pen, order_id=order_id), saga)
    rejected = await bus.dispatch(
        commands.RejectOrder(order_id=order_id, reason="out of ink"), saga
    )

    (pen_state, _), (order_state, _) = await Streams(harness.store, build_registry()).load_many(
        [(PRODUCT, pen), (ORDER, order_id)]
    )
    assert pen_state.stock_available == 100 and pen_state.reservations == ()
    assert rejected.version == 6 and order_state.status == "REJECTED"
    with pytest.raises(InvalidState, match="cannot be confirmed"):
        await bus.dispatch(commands.ConfirmOrder(order_id=order_id), saga)


async def test_a_command_without_a_handler_is_refused_and_appends_nothing(
    harness: StoreHarness, unique: str
) -> None:
    bus = build_bus(harness.store)
    head = await harness.store.head_position()

    with pytest.raises(UnknownCommand, match="OrderCreated"):
        await bus.dispatch(OrderCreated(f"o-{unique}", "c-1", Decimal("0.10")), ctx())

    assert await harness.store.head_position() == head
