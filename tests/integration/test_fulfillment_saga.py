"""The fulfillment saga on real PostgreSQL (event store and gateway ledger), in both modes
(orchestration and choreography): what a user checks on the order, its saga stream, the
stock and the gateways' ledger, the same in each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from sagas.gateways.port import GatewayOutcome
from sagas.gateways.resilience import CallPolicy
from sagas.gateways.simulated import (
    Behaviour,
    PaymentRules,
    ShippingRules,
    SimulatedPayments,
    SimulatedShipping,
)
from sagas.orchestrator import FULFILLMENT
from tests.integration.saga_world import MODES, SagaWorld, saga_world
from tests.integration.write_side import build_bus
from write_model.domain.fulfillment import FulfillmentState, StepStatus
from write_model.domain.order import Address, OrderStatus
from write_model.event_store.port import EventStore

pytestmark = pytest.mark.postgres

DONE, FAILED, COMPENSATED, PENDING = (
    StepStatus.DONE,
    StepStatus.FAILED,
    StepStatus.COMPENSATED,
    StepStatus.PENDING,
)


@pytest.fixture(params=MODES)
async def world(request: pytest.FixtureRequest) -> AsyncIterator[SagaWorld]:
    async with saga_world(mode=request.param) as built:
        yield built


async def one_order(world: SagaWorld, unique: str, quantity: int = 2, stock: int = 10) -> str:
    await world.customer(f"c-{unique}")
    await world.product(f"p-{unique}", stock)
    await world.submitted_order(f"o-{unique}", f"c-{unique}", [(f"p-{unique}", quantity)])
    return f"o-{unique}"


async def statuses(world: SagaWorld, order_id: str) -> list[StepStatus]:
    return [record.status for record in (await world.saga(order_id)).steps]


async def test_happy_path_confirms_with_three_steps_done(world: SagaWorld, unique: str) -> None:
    order_id = await one_order(world, unique)

    await world.fulfil(world.driver(), order_id)

    order = await world.order(order_id)
    saga = await world.saga(order_id)
    assert order is not None and order.status is OrderStatus.CONFIRMED
    assert saga.state is FulfillmentState.COMPLETED
    assert await statuses(world, order_id) == [DONE, DONE, DONE]
    assert saga.steps[1].detail and saga.steps[1].detail.startswith("charge-")
    assert await world.stock(f"p-{unique}") == (8, 0)  # shipped: left stock
    assert await world.ledger_of(order_id) == [
        ("payment", "charge", True),
        ("shipping", "create", True),
    ]


async def test_the_saga_events_carry_the_submit_request_and_the_trigger(
    world: SagaWorld, unique: str
) -> None:
    order_id = await one_order(world, unique)
    await world.fulfil(world.driver(), order_id)

    submitted = [
        e for e in await world.events.read_stream(f"Order-{order_id}") if e.type == "OrderSubmitted"
    ]
    saga_events = await world.events.read_stream(FULFILLMENT.stream_id(order_id))
    reservations = await world.events.read_stream(f"Product-p-{unique}")

    assert [e.type for e in saga_events][:2] == ["FulfillmentStarted", "StepStarted"]
    caused = [*saga_events, *reservations[1:]]
    assert {e.metadata.correlation_id for e in caused} == {"submit-request"}
    reserved_stock = [e for e in reservations if e.type == "StockReserved"]
    assert {e.metadata.causation_id for e in reserved_stock} == {str(submitted[0].event_id)}
    if world.mode == "orchestration":
        assert {e.metadata.causation_id for e in saga_events} == {str(submitted[0].event_id)}
        assert {e.metadata.user_id for e in caused} == {"system:fulfillment-saga"}
        return
    # Choreography: each participant's events are caused by the one it reacted to.
    reserved, charged, shipped = [
        (await world.events.read_stream(f"{kind}-{order_id}"))[0]
        for kind in ("Inventory", "Payment", "Shipping")
    ]
    assert [reserved.type, charged.type, shipped.type] == [
        "InventoryReserved",
        "PaymentCharged",
        "ShipmentCreated",
    ]
    assert [e.metadata.causation_id for e in (reserved, charged, shipped)] == [
        str(submitted[0].event_id),
        str(reserved.event_id),
        str(charged.event_id),
    ]
    assert {e.metadata.causation_id for e in saga_events} == {
        str(e.event_id) for e in (submitted[0], reserved, charged)
    }
    assert {e.metadata.correlation_id for e in (reserved, charged, shipped)} == {"submit-request"}
    assert {e.metadata.user_id for e in (reserved, charged, shipped)} == {
        "system:fulfillment-inventory",
        "system:fulfillment-payment",
        "system:fulfillment-shipping",
    }


async def test_handling_the_same_trigger_again_does_nothing_twice(
    world: SagaWorld, unique: str
) -> None:
    order_id = await one_order(world, unique)
    orchestrator = world.driver()
    await world.fulfil(orchestrator, order_id)
    saga_events = await world.events.read_stream(FULFILLMENT.stream_id(order_id))

    await world.fulfil(world.driver(), order_id)

    assert await world.events.read_stream(FULFILLMENT.stream_id(order_id)) == saga_events
    assert await world.stock(f"p-{unique}") == (8, 0)
    assert len(await world.ledger_of(order_id)) == 2


async def test_out_of_stock_rejects_without_any_payment(world: SagaWorld, unique: str) -> None:
    order_id = await one_order(world, unique, quantity=20)

    await world.fulfil(world.driver(), order_id)

    order = await world.order(order_id)
    saga = await world.saga(order_id)
    assert order is not None and order.status is OrderStatus.REJECTED
    assert await statuses(world, order_id) == [FAILED, PENDING, PENDING]
    assert saga.reason is not None and "insufficient stock" in saga.reason
    assert await world.ledger_of(order_id) == []
    assert await world.stock(f"p-{unique}") == (10, 0)


async def test_a_line_out_of_stock_releases_the_lines_already_reserved(
    world: SagaWorld, unique: str
) -> None:
    await world.customer(f"c-{unique}")
    await world.product(f"a-{unique}", 5)
    await world.product(f"b-{unique}", 1)
    await world.submitted_order(
        f"o-{unique}", f"c-{unique}", [(f"a-{unique}", 3), (f"b-{unique}", 2)]
    )

    await world.fulfil(world.driver(), f"o-{unique}")

    assert (await world.order(f"o-{unique}")).status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert await world.stock(f"a-{unique}") == (5, 0)
    assert await world.stock(f"b-{unique}") == (1, 0)


async def test_payment_declined_releases_the_stock(world: SagaWorld, unique: str) -> None:
    order_id = await one_order(world, unique)
    declining = world.driver(payment_rules=PaymentRules(decline_above=Decimal("5")))

    await world.fulfil(declining, order_id)

    saga = await world.saga(order_id)
    assert (await world.order(order_id)).status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert await statuses(world, order_id) == [COMPENSATED, FAILED, PENDING]
    assert saga.reason == "payment declined: 22.00 USD is above 5"
    assert await world.stock(f"p-{unique}") == (10, 0)
    assert await world.ledger_of(order_id) == [
        ("payment", "charge", False),
        ("payment", "refund", True),  # nothing charged: the refund only closes the key
    ]


async def test_shipment_failed_refunds_and_releases(world: SagaWorld, unique: str) -> None:
    await world.customer(f"c-{unique}")
    await world.product(f"p-{unique}", 10)
    nowhere = Address("1 Road", "Town", "1", "AQ")
    await world.submitted_order(f"o-{unique}", f"c-{unique}", [(f"p-{unique}", 2)], nowhere)
    failing = world.driver(shipping_rules=ShippingRules(fail_countries=frozenset({"AQ"})))

    await world.fulfil(failing, f"o-{unique}")

    order_id = f"o-{unique}"
    assert (await world.order(order_id)).status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert await statuses(world, order_id) == [COMPENSATED, COMPENSATED, FAILED]
    assert (await world.saga(order_id)).reason == "no shipping to AQ"
    assert await world.stock(f"p-{unique}") == (10, 0)
    assert await world.ledger_of(order_id) == [
        ("payment", "charge", True),
        ("payment", "refund", True),
        ("shipping", "create", False),
        ("shipping", "cancel", True),
    ]
    refund = [
        e
        for e in await world.ledger.entries("payment")
        if e.key.endswith("refund") and order_id in e.key
    ]
    assert refund[0].amount == Decimal("22.00")


async def test_cancel_after_confirm_compensates_every_step(world: SagaWorld, unique: str) -> None:
    order_id = await one_order(world, unique)
    orchestrator = world.driver()
    await world.fulfil(orchestrator, order_id)

    await world.cancel(order_id)
    await world.fulfil(orchestrator, order_id)

    saga = await world.saga(order_id)
    assert (await world.order(order_id)).status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert await statuses(world, order_id) == [COMPENSATED] * 3
    assert (saga.state, saga.reason) == (FulfillmentState.FAILED, "order cancelled")
    assert await world.stock(f"p-{unique}") == (10, 0)  # the shipment came back
    assert [op for _, op, _ in await world.ledger_of(order_id)] == [
        "charge",
        "refund",
        "create",
        "cancel",
    ]


async def test_cancel_while_running_leaves_no_charge(world: SagaWorld, unique: str) -> None:
    order_id = await one_order(world, unique)
    slow = world.driver(payment_behaviour=Behaviour(latency_seconds=0.3))

    running = asyncio.create_task(world.fulfil(slow, order_id))
    await asyncio.sleep(0.15)  # the charge is under way
    await world.cancel(order_id)
    await running
    await world.fulfil(slow, order_id)  # the log brings OrderCancelled

    saga = await world.saga(order_id)
    assert (await world.order(order_id)).status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert (saga.state, saga.reason) == (FulfillmentState.FAILED, "order cancelled")
    # The shipment step had started when the cancel was seen: its key is voided unused.
    assert await statuses(world, order_id) == [COMPENSATED] * 3
    assert await world.stock(f"p-{unique}") == (10, 0)
    assert await world.ledger_of(order_id) == [
        ("payment", "charge", True),
        ("payment", "refund", True),
        ("shipping", "void", False),
        ("shipping", "cancel", True),
    ]


async def test_a_hanging_gateway_times_out_and_the_order_is_rejected(
    world: SagaWorld, unique: str
) -> None:
    order_id = await one_order(world, unique)
    hanging = world.driver(
        payment_behaviour=Behaviour(hang=True),
        policy=CallPolicy(timeout_seconds=0.1, max_attempts=2, backoff_seconds=0.01),
    )

    await asyncio.wait_for(world.fulfil(hanging, order_id), 10)

    assert (await world.order(order_id)).status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert (await world.saga(order_id)).reason == (
        "payment gateway failed after 2 attempts: timed out after 0.1 s"
    )
    assert await world.stock(f"p-{unique}") == (10, 0)
    # The timed-out charge's key is voided: a late answer can never charge.
    assert await world.ledger_of(order_id) == [
        ("payment", "void", False),
        ("payment", "refund", True),
    ]


async def test_a_transient_failure_is_retried_and_succeeds(world: SagaWorld, unique: str) -> None:
    order_id = await one_order(world, unique)
    # Seed 1 at a rate of 0.5: the first call fails, the second passes.
    flaky = SimulatedPayments(world.ledger, PaymentRules(), Behaviour(failure_rate=0.5, seed=1))

    await world.fulfil(world.driver(payments=flaky), order_id)

    assert (await world.order(order_id)).status is OrderStatus.CONFIRMED  # type: ignore[union-attr]
    assert flaky.calls == 2
    assert await world.ledger_of(order_id) == [
        ("payment", "charge", True),
        ("shipping", "create", True),
    ]


class SwitchableShipping:
    """A shipping provider that is down until `healthy` is set."""

    def __init__(self, down: SimulatedShipping, up: SimulatedShipping) -> None:
        self.down, self.up, self.healthy = down, up, False

    async def create(self, key: str, order_id: str, address: Address) -> GatewayOutcome:
        return await (self.up if self.healthy else self.down).create(key, order_id, address)

    async def cancel(self, key: str, shipment_key: str) -> GatewayOutcome:
        return await (self.up if self.healthy else self.down).cancel(key, shipment_key)


async def test_the_breaker_opens_then_closes_after_the_cool_down(
    world: SagaWorld, unique: str
) -> None:
    down = SimulatedShipping(world.ledger, ShippingRules(), Behaviour(failure_rate=1.0))
    shipping = SwitchableShipping(down, SimulatedShipping(world.ledger, ShippingRules()))
    policy = CallPolicy(
        timeout_seconds=1,
        max_attempts=2,
        backoff_seconds=0.001,
        breaker_failures=2,
        breaker_cooldown_seconds=0.5,
    )
    orchestrator = world.driver(shipping=shipping, policy=policy)
    first, second, third = [await one_order(world, f"{unique}-{n}") for n in range(3)]

    # The first shipment fails after its retries; undoing it fails too, and opens the breaker.
    undoing_first = asyncio.create_task(world.fulfil(orchestrator, first))
    await until(lambda: step_failed(world, first), "the first shipment failed")
    # Two tries of the create, two of the first cancel: the breaker opens.
    await until(lambda: asyncio.sleep(0, down.calls >= 4), "the cancel was tried")
    await asyncio.sleep(0.05)  # the last try's failure reaches the breaker
    calls_when_opened = down.calls
    undoing_second = asyncio.create_task(world.fulfil(orchestrator, second))
    await until(lambda: step_failed(world, second), "the second shipment failed")

    assert (await world.saga(first)).reason == (
        "shipping gateway failed after 2 attempts: simulated shipping provider error"
    )
    assert (await world.saga(second)).reason == (
        "shipping gateway unavailable: circuit open after repeated failures"
    )
    assert down.calls == calls_when_opened  # failed fast, the provider was not asked

    # The provider is back: after the cool-down a trial call closes the breaker, the
    # waiting cancels go through, and new orders ship.
    shipping.healthy = True
    await asyncio.wait_for(asyncio.gather(undoing_first, undoing_second), 20)
    await world.fulfil(orchestrator, third)

    assert (await world.order(first)).status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert (await world.order(second)).status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert (await world.order(third)).status is OrderStatus.CONFIRMED  # type: ignore[union-attr]


async def step_failed(world: SagaWorld, order_id: str) -> bool:
    saga, _ = await world.streams.load(FULFILLMENT, order_id)
    return saga is not None and saga.steps[2].status is FAILED


async def until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.02)


class Crashed(Exception):
    """The process died right after an append was committed."""


class CrashingStore:
    """The real event store, dying (raising) right after its `after`-th committed append:
    where a SIGKILL does most harm, the effect done and nothing after it."""

    def __init__(self, store: EventStore, after: int) -> None:
        self._store, self._left = store, after

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def append_to_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._committed(await self._store.append_to_stream(*args, **kwargs))

    async def append_to_streams(self, *args: Any, **kwargs: Any) -> Any:
        """An append to several streams at once (a participant's saga record and its own
        event) is one commit: one crash point."""
        return self._committed(await self._store.append_to_streams(*args, **kwargs))

    def _committed(self, appended: Any) -> Any:
        self._left -= 1
        if self._left == 0:
            raise Crashed("killed after an append")
        return appended


@pytest.mark.parametrize(
    ("country", "ends", "kept"),
    [
        ("US", OrderStatus.CONFIRMED, [("payment", "charge", True), ("shipping", "create", True)]),
        (
            "AQ",
            OrderStatus.REJECTED,
            [
                ("payment", "charge", True),
                ("payment", "refund", True),
                ("shipping", "create", False),
                ("shipping", "cancel", True),
            ],
        ),
    ],
)
async def test_killed_after_any_append_and_run_again_every_saga_ends_once(
    world: SagaWorld, unique: str, country: str, ends: OrderStatus, kept: list
) -> None:
    rules = ShippingRules(fail_countries=frozenset({"AQ"}))
    address = Address("1 Road", "Town", "1", country)
    crashes = 0
    while True:
        order_id = f"o-{unique}-{crashes}"
        await world.customer(f"c-{order_id}")
        await world.product(f"p-{order_id}", 10)
        await world.submitted_order(order_id, f"c-{order_id}", [(f"p-{order_id}", 2)], address)
        dying = CrashingStore(world.events, after=crashes + 1)
        crashing = replace(world, events=dying, bus=build_bus(dying))  # type: ignore[arg-type]
        try:
            await crashing.fulfil(crashing.driver(shipping_rules=rules), order_id)
        except* Crashed:
            crashes += 1
        else:
            break  # it got through without reaching its append: every point was tried
        await world.fulfil(world.driver(shipping_rules=rules), order_id)  # restarted

        saga = await world.saga(order_id)
        assert (await world.order(order_id)).status is ends, (crashes, saga)  # type: ignore[union-attr]
        assert saga.state in (FulfillmentState.COMPLETED, FulfillmentState.FAILED), crashes
        assert await world.ledger_of(order_id) == kept, crashes
        assert await world.stock(f"p-{order_id}") == (
            (8, 0) if ends is OrderStatus.CONFIRMED else (10, 0)
        )
        saga_events = await world.events.read_stream(FULFILLMENT.stream_id(order_id))
        recorded = [(e.type, e.data.get("step")) for e in saga_events]
        assert len(set(recorded)) == len(recorded), (crashes, recorded)
    assert crashes > 5  # a saga's every append was a point of death


async def test_switching_modes_with_sagas_finished_or_under_way_repeats_nothing(
    unique: str,
) -> None:
    async with saga_world(mode="orchestration") as world:
        confirmed, declined, waiting = [
            await one_order(world, f"{unique}-{n}") for n in ("ok", "no", "wait")
        ]
        await world.fulfil(world.driver(), confirmed)
        declining = PaymentRules(decline_above=Decimal("5"))
        await world.fulfil(world.driver(payment_rules=declining), declined)
        patient = CallPolicy(timeout_seconds=60, max_attempts=1)
        stuck = world.driver(payment_behaviour=Behaviour(hang=True), policy=patient)
        # Stopped while charging `waiting` (the provider never answered): only its
        # reservation is recorded.
        charging = asyncio.create_task(world.fulfil(stuck, waiting))
        await until(lambda: _step_status(world, waiting, 0, DONE), "the reservation")
        charging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await charging
        ledgers = {o: await world.ledger_of(o) for o in (confirmed, declined)}

        world.mode = "choreography"  # the same log and ledger, the other mode
        await world.fulfil(world.driver(), confirmed, declined, waiting)

        assert {o: await world.ledger_of(o) for o in (confirmed, declined)} == ledgers
        assert (await world.order(confirmed)).status is OrderStatus.CONFIRMED  # type: ignore[union-attr]
        assert (await world.order(declined)).status is OrderStatus.REJECTED  # type: ignore[union-attr]
        assert (await world.order(waiting)).status is OrderStatus.CONFIRMED  # type: ignore[union-attr]
        assert await statuses(world, waiting) == [DONE, DONE, DONE]
        assert await world.ledger_of(waiting) == [
            ("payment", "charge", True),
            ("shipping", "create", True),
        ]


async def _step_status(world: SagaWorld, order_id: str, index: int, status: StepStatus) -> bool:
    saga, _ = await world.streams.load(FULFILLMENT, order_id)
    return saga is not None and saga.steps[index].status is status
