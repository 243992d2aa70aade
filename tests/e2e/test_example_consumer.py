"""examples/confirmed-orders-per-customer run as another team would run it: its script alone,
with only its own settings, against the real relay and saga processes on real PostgreSQL and
a real broker. Killed twice while events flow, it still ends with each customer's count of
confirmed orders equal to the event log's."""

from __future__ import annotations

import asyncio
import os
import random
import re
import sqlite3
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from tests.integration import write_side
from tests.integration.app_process import AppProcess, SagaProcess
from tests.integration.kafka_relay import (
    ROOT,
    kafka_address,
    relay_log,
    wait_for,
    whole_log,
)
from tests.integration.read_side import ADDRESS
from write_model import commands
from write_model.bus import CommandBus
from write_model.command_context import CommandContext
from write_model.envelope import RecordedEvent
from write_model.event_store.port import EventStore

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

EXAMPLE = ROOT / "examples" / "confirmed-orders-per-customer" / "confirmed_orders.py"
CUSTOMERS = 4  # the first one's payments are declined: its orders are rejected
MAX_ORDERS = 400


def start_example(env: dict[str, str], log_path: Path) -> AppProcess:
    return AppProcess([], env, log_path, program=(sys.executable, str(EXAMPLE)))


def counted(database: Path) -> dict[str, int]:
    """The example's counts, read as its README says."""
    if not database.exists():
        return {}
    with closing(sqlite3.connect(database)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        if "confirmed_orders" not in tables:
            return {}
        return dict(db.execute("SELECT customer_id, confirmed FROM confirmed_orders"))


async def counting_beyond(example: AppProcess, database: Path, total: int) -> int:
    """Once the example has counted more than `total` confirmed orders: how many."""

    def counted_more() -> bool:
        if example.process.poll() is not None:
            raise AssertionError(f"the example exited:\n{example.log()}")
        return sum(counted(database).values()) > total

    await wait_for(counted_more, 60, f"the example counts more than {total} orders")
    return sum(counted(database).values())


async def place_orders(bus: CommandBus, unique: str, stop: asyncio.Event) -> set[str]:
    """One order after another, for each customer in turn, until `stop`: four in five
    submitted (the saga confirms or rejects them), the fifth left a draft. Returns the
    streams of the submitted ones."""
    context = CommandContext(correlation_id=f"corr-{unique}")
    submitted = set()
    for n in range(MAX_ORDERS):
        if stop.is_set():
            break
        customer = f"{unique}-{n % CUSTOMERS}"
        order_id = f"o-{unique}-{n}"
        item = commands.OrderItem(f"p-{customer}", 1)
        create = commands.CreateOrder(order_id=order_id, customer_id=f"c-{customer}", items=(item,))
        await bus.dispatch(create, context)
        if n % 5 != 4:
            address = commands.SetShippingAddress(order_id=order_id, address=ADDRESS)
            await bus.dispatch(address, context)
            await bus.dispatch(commands.SubmitOrder(order_id=order_id), context)
            submitted.add(f"Order-{order_id}")
        await asyncio.sleep(0.05)
    return submitted


async def decided_log(store: EventStore, submitted: set[str]) -> list[RecordedEvent]:
    """The log once the saga has confirmed or rejected every submitted order."""
    deadline = time.monotonic() + 90
    while True:
        log = await whole_log(store)
        decided = {e.stream_id for e in log if e.type in {"OrderConfirmed", "OrderRejected"}}
        if decided >= submitted:
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(submitted - decided)} submitted orders never decided")
        await asyncio.sleep(0.5)


def confirmed_per_customer(log: list[RecordedEvent]) -> dict[str, int]:
    customer_of = {e.stream_id: e.data["customerId"] for e in log if e.type == "OrderCreated"}
    return dict(Counter(customer_of[e.stream_id] for e in log if e.type == "OrderConfirmed"))


async def test_the_example_consumer_killed_twice_mid_stream_counts_each_confirmed_order_once(
    unique: str, tmp_path: Path
) -> None:
    database = tmp_path / "confirmed_orders.sqlite3"
    example_log = tmp_path / "example.log"
    async with relay_log(unique, tmp_path, "x") as world:
        example_env = {  # its own settings, nothing of Orders'
            "PATH": os.environ["PATH"],
            "KAFKA_BOOTSTRAP_SERVERS": kafka_address(),
            "ORDER_EVENTS_TOPIC": f"{world.prefix}order-events",
            "CONSUMER_GROUP": f"confirmed-orders-{unique}",
            "CONSUMER_INSTANCE_ID": f"confirmed-orders-{unique}",
            "DATABASE_PATH": str(database),
        }
        store, bus = world.store, world.bus
        relay = world.relay().start()
        declined = {"PAYMENT_DECLINE_CUSTOMERS": f"c-{unique}-0"}
        saga = SagaProcess({**world.env, **declined}, tmp_path / "saga.log")
        example = start_example(example_env, example_log)  # before the topic exists
        stop_ordering = asyncio.Event()
        ordering: asyncio.Task[set[str]] | None = None
        try:
            await saga.leading()
            context = CommandContext(correlation_id=f"corr-{unique}")
            for n in range(CUSTOMERS):
                await write_side.customer_and_product(
                    bus, context, f"{unique}-{n}", price="2.50", stock=10_000
                )
            ordering = asyncio.create_task(place_orders(bus, unique, stop_ordering))
            total = 0
            for _ in range(2):
                total = await counting_beyond(example, database, total)
                await asyncio.sleep(random.uniform(0, 0.3))  # anywhere in its loop
                assert not ordering.done(), "the orders ran out before the kill"
                example.kill()
                example = start_example(example_env, example_log)
            total = await counting_beyond(example, database, total)
            stop_ordering.set()
            log = await decided_log(store, await ordering)

            truth = confirmed_per_customer(log)
            assert set(truth) == {f"c-{unique}-{n}" for n in range(1, CUSTOMERS)}
            assert any(e.type == "OrderRejected" for e in log)  # the declined customer's

            await counting_beyond(example, database, sum(truth.values()) - 1)
            assert example.stop() == 0, example.log()
            assert counted(database) == truth
            # Each restart resumed from the offsets it had stored in SQLite.
            assert len(re.findall(r"resumes at \d+", example.log())) >= 2, example.log()
        finally:
            stop_ordering.set()
            if ordering is not None:
                await asyncio.gather(ordering, return_exceptions=True)
            example.stop()
            saga.stop()
            relay.stop()
