"""The saga on the embedded defaults (`orders dev`), in both modes: its ledger and
checkpoints live in the SQLite file, so a restart neither runs a finished saga again nor
charges twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.bootstrap import command_bus, embedded_backend, run_subscribers, saga_subscribers
from app.settings import Settings
from tests.integration.saga_world import MODES
from tests.integration.write_side import customer_and_product
from write_model import commands
from write_model.command_context import CommandContext
from write_model.domain.order import Address
from write_model.sagas.orchestrator import FULFILLMENT

CONTEXT = CommandContext(correlation_id="embedded-saga-test")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


def embedded_settings(data_dir: Path, mode: str) -> Settings:
    # Explicit None: the test services' URLs in the environment must not apply here.
    return Settings(database_url=None, mongo_url=None, orders_data_dir=data_dir, saga_mode=mode)


async def saga_running_until(settings: Settings, order_id: str, last_type: str) -> None:
    """Run the saga of a fresh `orders dev` backend until the order's saga ends."""
    async with embedded_backend(settings) as backend:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_subscribers(saga_subscribers(settings, backend), stop))
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
        charges = await backend.saga.ledger.entries("payment")
        shipments = await backend.saga.ledger.entries("shipping")
        subscribers = [d.reaction.subscriber for d in saga_subscribers(settings, backend)]
        checkpoints = [await backend.saga.checkpoints.load(name) for name in subscribers]
        head = await backend.events.head_position()
        shipped = await backend.events.read_stream(f"Shipping-{order_id}")
    assert [e.type for e in saga_events].count("StepSucceeded") == 3
    assert [(e.operation, e.succeeded) for e in charges] == [("charge", True)]
    assert [(e.operation, e.succeeded) for e in shipments] == [("create", True)]
    assert all(c is not None and c <= head for c in checkpoints), checkpoints
    # Choreography: the shipping participant recorded its shipment once on its stream.
    assert [e.type for e in shipped] == ([] if mode == "orchestration" else ["ShipmentCreated"])
