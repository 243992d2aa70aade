"""The saga on the embedded defaults (`orders dev`): its ledger and checkpoint live in the
SQLite file, so a restart neither runs a finished saga again nor charges twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from app.bootstrap import command_bus, embedded_backend, saga_dependencies
from app.settings import Settings
from tests.integration.write_side import customer_and_product
from write_model import commands
from write_model.command_context import CommandContext
from write_model.domain.order import Address
from write_model.sagas.orchestrator import FULFILLMENT, SUBSCRIBER
from write_model.sagas.process import run_subscriber

CONTEXT = CommandContext(correlation_id="embedded-saga-test")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


def embedded_settings(data_dir: Path) -> Settings:
    # Explicit None: the test services' URLs in the environment must not apply here.
    return Settings(database_url=None, mongo_url=None, orders_data_dir=data_dir)


async def saga_running_until(settings: Settings, order_id: str, last_type: str) -> None:
    """Run the saga of a fresh `orders dev` backend until the order's saga ends."""
    async with embedded_backend(settings) as backend:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_subscriber(saga_dependencies(settings, backend), stop))
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


async def test_a_restarted_orders_dev_does_not_run_a_finished_saga_again(
    tmp_path: Path, unique: str
) -> None:
    settings = embedded_settings(tmp_path)
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
        checkpoint = await backend.saga.checkpoints.load(SUBSCRIBER)
        head = await backend.events.head_position()
    assert [e.type for e in saga_events].count("StepSucceeded") == 3
    assert [(e.operation, e.succeeded) for e in charges] == [("charge", True)]
    assert [(e.operation, e.succeeded) for e in shipments] == [("create", True)]
    assert checkpoint is not None and checkpoint <= head
