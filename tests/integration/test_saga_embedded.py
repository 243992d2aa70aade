"""The saga on the embedded defaults (`orders dev`), in both modes: its ledger, checkpoints
and dead letters live in the SQLite file, so a restart neither runs a finished saga again
nor charges twice, and a parked saga stays parked (and listed)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.backends import Backend, embedded_backend
from app.bootstrap import (
    build_read_model,
    command_bus,
    follower_parts,
    run_followers,
    saga_consumers,
)
from app.settings import Settings
from log_follower.dead_letters.port import PARKED_BEHIND, DeadLetter, LetterOwner
from log_follower.follower import Follower
from sagas.orchestrator import FULFILLMENT, SUBSCRIBER
from tests.integration.saga_world import MODES
from tests.integration.write_side import customer_and_product
from tests.subscriber_loop import eventually, subscriber_running
from write_model import commands
from write_model.command_context import CommandContext
from write_model.domain.order import Address
from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store.port import ANY

CONTEXT = CommandContext(correlation_id="embedded-saga-test")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


def embedded_settings(data_dir: Path, mode: str) -> Settings:
    # Explicit None: the test services' URLs in the environment must not apply here.
    return Settings(database_url=None, mongo_url=None, orders_data_dir=data_dir, saga_mode=mode)


async def saga_running_until(settings: Settings, order_id: str, last_type: str) -> None:
    """Run the saga of a fresh `orders dev` backend until the order's saga ends."""
    async with embedded_backend(settings) as backend:
        stop = asyncio.Event()
        loop = asyncio.create_task(
            run_followers(
                saga_consumers(settings, backend), follower_parts(settings, backend), stop
            )
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                events = await backend.events.read_stream(FULFILLMENT.stream_id(order_id))
                if events and events[-1].type == last_type:
                    break
                assert time.monotonic() < deadline, f"saga of {order_id} did not end: {events}"
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await loop


@pytest.mark.parametrize("mode", MODES)
async def test_a_restarted_orders_dev_does_not_run_a_finished_saga_again(
    tmp_path: Path, unique: str, mode: str
) -> None:
    settings = embedded_settings(tmp_path, mode)
    order_id = f"o-{unique}"
    async with embedded_backend(settings) as backend:
        bus = command_bus(settings, backend)
        await customer_and_product(bus, CONTEXT, unique, price="5.00", stock=10)
        item = commands.OrderItem(f"p-{unique}", 2)
        create = commands.CreateOrder(
            order_id=order_id,
            customer_id=f"c-{unique}",
            items=(item,),
            shipping_address=ADDRESS,
        )
        await bus.dispatch(create, CONTEXT)
        await bus.dispatch(commands.SubmitOrder(order_id=order_id), CONTEXT)

    await saga_running_until(settings, order_id, "FulfillmentCompleted")
    await saga_running_until(settings, order_id, "FulfillmentCompleted")  # restarted

    async with embedded_backend(settings) as backend:
        saga_events = await backend.events.read_stream(FULFILLMENT.stream_id(order_id))
        charges = await backend.ledger.entries("payment")
        shipments = await backend.ledger.entries("shipping")
        subscribers = [consumer.name for consumer in saga_consumers(settings, backend)]
        checkpoints = [await backend.followers.checkpoint.load(name) for name in subscribers]
        head = await backend.events.head_position()
        shipped = await backend.events.read_stream(f"Shipping-{order_id}")
    assert [e.type for e in saga_events].count("StepSucceeded") == 3
    assert [(e.operation, e.succeeded) for e in charges] == [("charge", True)]
    assert [(e.operation, e.succeeded) for e in shipments] == [("create", True)]
    assert all(c is not None and c <= head for c in checkpoints), checkpoints
    # Choreography: the shipping participant recorded its shipment once on its stream.
    assert [e.type for e in shipped] == ([] if mode == "orchestration" else ["ShipmentCreated"])


async def poison_trigger(backend: Backend, order_id: str, type_name: str) -> None:
    """A trigger of the saga whose payload it cannot use (and no order behind it)."""
    poison = NewEvent(uuid.uuid4(), type_name, {}, EventMetadata("poison"), datetime.now(UTC))
    await backend.events.append_to_stream(f"Order-{order_id}", "Order", ANY, [poison])


async def test_orders_dev_keeps_the_saga_dead_letters_across_a_restart(
    tmp_path: Path, unique: str
) -> None:
    settings = embedded_settings(tmp_path, "orchestration").model_copy(
        update={"follower_max_attempts": 1, "follower_backoff_seconds": 0.0}
    )
    poison = f"o-poison-{unique}"
    async with embedded_backend(settings) as backend:
        await poison_trigger(backend, poison, "OrderSubmitted")
        async with subscriber_running(
            Follower(saga_consumers(settings, backend)[0], follower_parts(settings, backend))
        ):
            [parked] = await eventually(
                lambda: backend.followers.dead_letters.of_key(LetterOwner(SUBSCRIBER), poison)
            )

    async with embedded_backend(settings) as backend:  # restarted
        listed = await build_read_model(settings, backend).dead_letters.page(10)
        # The restarted saga knows the key is parked: its next event is parked behind.
        await poison_trigger(backend, poison, "OrderCancelled")
        async with subscriber_running(
            Follower(saga_consumers(settings, backend)[0], follower_parts(settings, backend))
        ):
            letters = await eventually(
                lambda: _two(backend.followers.dead_letters.of_key(LetterOwner(SUBSCRIBER), poison))
            )
    assert [(d["_id"], d["subscriber"], d["streamId"]) for d in listed] == [
        (parked.id, SUBSCRIBER, f"Order-{poison}")
    ]
    assert letters[0] == parked
    assert (letters[1].event_type, letters[1].error) == ("OrderCancelled", PARKED_BEHIND)


async def _two(letters: Awaitable[list[DeadLetter]]) -> list[DeadLetter] | None:
    found = await letters
    return found if len(found) == 2 else None
