"""The Kafka relay (`orders relay`) against the real broker: every event of the log on Kafka
exactly once, on its topic and key, with every CloudEvents attribute, in stream order per
key; crashes at any point and named failpoints lose and duplicate nothing; a relay that
lost its lock and still produces is fenced. The broker killed under API mutations, and a
broker that takes SASL/PLAIN: tests/e2e/test_relay.py."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from messaging.relay import RELAY
from tests.integration import write_side
from tests.integration.kafka_relay import (
    RelayProcess,
    TopicReader,
    assert_published_exactly,
    end_lock_session,
    kafka_address,
    relay_env,
    relay_log,
    wait_for,
    whole_log,
)
from tests.integration.private_services import free_port
from tests.integration.read_side import ADDRESS
from write_model import commands
from write_model.bus import CommandBus
from write_model.command_context import CommandContext
from write_model.domain.customer import CustomerRenamed
from write_model.domain.fulfillment import FulfillmentStarted, Line
from write_model.domain.money import Money
from write_model.domain.order import MAX_LINES, Address
from write_model.domain.validation import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
)
from write_model.envelope import EventMetadata, NewEvent, RecordedEvent
from write_model.event_store.port import ANY, EventStore
from write_model.event_types import build_registry

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

BUSY_WRITERS = 6


async def write_orders(bus: CommandBus, unique: str, orders: int) -> None:
    """A customer and a product, then `orders` orders each submitted: every event kind of a
    shop's day on streams of several categories."""
    context = CommandContext(correlation_id=f"corr-{unique}", causation_id=f"cause-{unique}")
    await write_side.customer_and_product(bus, context, unique, price="2.50", stock=10_000)
    for n in range(orders):
        order_id = f"o-{unique}-{n}"
        item = commands.OrderItem(f"p-{unique}", 1 + n % 3)
        await bus.dispatch(
            commands.CreateOrder(order_id=order_id, customer_id=f"c-{unique}", items=(item,)),
            context,
        )
        await bus.dispatch(commands.SetShippingAddress(order_id=order_id, address=ADDRESS), context)
        await bus.dispatch(commands.SubmitOrder(order_id=order_id), context)
    await bus.dispatch(commands.RenameCustomer(customer_id=f"c-{unique}", name="Ada B."), context)
    await bus.dispatch(
        commands.ChangeProductPrice(product_id=f"p-{unique}", price=Decimal("2.75")), context
    )


async def settled_log(store: EventStore, quiet_seconds: float = 3.0) -> list[RecordedEvent]:
    """The log once nothing has been appended to it for `quiet_seconds` (the saga done)."""
    log = await whole_log(store)
    for _ in range(60):
        await asyncio.sleep(quiet_seconds)
        again = await whole_log(store)
        if len(again) == len(log):
            return again
        log = again
    raise AssertionError("the log kept growing")


async def test_every_event_of_a_busy_log_appears_exactly_once_in_order_with_every_header(
    unique: str, tmp_path: Path
) -> None:
    """In binary mode while the log is busy (concurrent writers, the saga fulfilling their
    orders); then, in structured mode, the same log by a relay of another prefix and
    transactional.id (one relay leads a log at a time)."""
    ops_port = free_port()
    async with relay_log(unique, tmp_path, "t") as world:
        relay = world.relay(OPS_PORT=str(ops_port)).start()
        # The saga fulfils the submitted orders meanwhile (its own streams and products').
        saga = RelayProcess(world.env, tmp_path / "saga.log", command="saga").start()
        reader = world.reader()
        try:
            await wait_for(lambda: "leading saga" in saga.log_tail(400), 60, "the saga leads")
            await asyncio.gather(
                *(write_orders(world.bus, f"{unique}{n}", 8) for n in range(BUSY_WRITERS))
            )
            log = await settled_log(world.store)
            assert any(event.stream_id.startswith("Fulfillment-") for event in log), saga.log_tail()
            await world.assert_published(reader, 90)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as ops:
                ready = (await ops.get("/readyz")).json()
                metrics = (await ops.get("/metrics")).text
            assert ready["checks"]["kafka"] == "ok" and ready["checks"]["postgres"] == "ok"
            figures = {
                line.split(" ")[0]: float(line.split(" ")[1])
                for line in metrics.splitlines()
                if line.startswith("orders_relay_")
            }
            assert figures["orders_relay_events_published_total"] == len(log)
            assert figures['orders_relay_transactions_total{outcome="committed"}'] >= 1
            assert figures["orders_relay_lag_events"] == 0
            assert figures["orders_relay_oldest_unpublished_age_seconds"] == 0
            assert figures["orders_relay_position"] == max(event.position for event in log)
        finally:
            reader.close()
            saga.stop()
            assert relay.stop() == 0, relay.log_tail()

        structured_prefix = f"s{unique}."
        structured = RelayProcess(
            relay_env(
                world.url,
                kafka_address(),
                structured_prefix,
                f"relay-s-{unique}",
                KAFKA_CONTENT_MODE="structured",
            ),
            tmp_path / "structured.log",
        ).start()
        reader = TopicReader(kafka_address(), structured_prefix)
        try:
            consumed = await asyncio.to_thread(reader.poll_until, len(log), 90)
            assert_published_exactly(log, consumed, structured_prefix, "structured")
        finally:
            reader.close()
            assert structured.stop() == 0, structured.log_tail()


async def append_renames(store: EventStore, unique: str, appends: int, streams: int) -> None:
    """`appends` appends of 5 events each, to streams picked at random among `streams`."""
    type_name, data, version = build_registry().serialize(CustomerRenamed(name="Ada"))
    for _ in range(appends):
        events = [
            NewEvent(
                uuid.uuid4(),
                type_name,
                data,
                EventMetadata(f"corr-{unique}", schema_version=version),
                datetime.now(UTC),
            )
            for _ in range(5)
        ]
        stream = f"Customer-{unique}-{random.randrange(streams)}"
        await store.append_to_stream(stream, "Customer", ANY, events)
        await asyncio.sleep(0.1)  # appends go on across the relay's restarts


async def test_relay_killed_ten_times_while_5000_events_are_appended_publishes_the_log_exactly(
    unique: str, tmp_path: Path
) -> None:
    async with relay_log(unique, tmp_path, "k") as world:
        relay = world.relay().start()
        # 5,000 events: 20 writers of 50 appends of 5 events, over 200 streams.
        writing = asyncio.gather(*(append_renames(world.store, unique, 50, 200) for _ in range(20)))
        kills = leaderships = 0
        try:
            while not writing.done() or kills < 10:
                # At random points: every other kill while it publishes (after it took the
                # lead), the others anywhere from its start-up on.
                if kills % 2 == 0:
                    await wait_for(
                        lambda relay=relay, before=leaderships: _leaderships(relay) > before,
                        60,
                        "it leads",
                    )
                    await asyncio.sleep(random.uniform(0.05, 0.8))
                else:
                    await asyncio.sleep(random.uniform(0.1, 1.5))
                leaderships = _leaderships(relay)
                relay.kill()
                kills += 1
                relay = world.relay().start()
            await writing
            assert len(await whole_log(world.store)) == 5000
            assert kills >= 10
            reader = world.reader()
            try:
                await world.assert_published(reader, 120)
            finally:
                reader.close()
        finally:
            writing.cancel()
            relay.stop()


async def test_relays_killed_between_send_and_commit_and_right_after_commit_lose_nothing(
    unique: str, tmp_path: Path
) -> None:
    """A relay SIGKILLs itself at a named failpoint of its third transaction, between the
    producer's send and its commit; the next one right after its commit; the relay after
    them publishes the log exactly."""
    async with relay_log(unique, tmp_path, "f") as world:
        waves = 0
        for failpoint in ("after-send:3", "after-commit:3"):
            failing = world.relay(failpoint, ORDERS_RELAY_FAILPOINT=failpoint).start()
            try:
                # Waves of orders until the relay reaches its failpoint.
                while failing.process.poll() is None and waves < 400:  # type: ignore[union-attr]
                    await write_orders(world.bus, f"{unique}{waves}", 1)
                    waves += 1
                    await asyncio.sleep(0.05)
                exit_status = await asyncio.to_thread(failing.process.wait, 30)  # type: ignore[union-attr]
                assert exit_status == -9, failing.log_tail()  # it SIGKILLed itself there
            finally:
                failing.kill()
        await write_orders(world.bus, f"{unique}-after", 2)
        relay = world.relay().start()
        reader = world.reader()
        try:
            await world.assert_published(reader, 90)
        finally:
            reader.close()
            relay.stop()


def _leads(relay: RelayProcess) -> bool:
    return "leading relay kafka-relay" in relay.log_tail(400)


def _leaderships(relay: RelayProcess) -> int:
    """How often a relay writing to this log took the lead."""
    return relay.log_path.read_text(errors="replace").count("leading relay kafka-relay")


async def test_a_relay_that_lost_its_lock_and_still_produces_is_fenced_and_its_standby_takes_over(
    unique: str, tmp_path: Path
) -> None:
    """Two relays: one leads, the other stands by. The leader freezes between sending a
    transaction's records and committing them (a failpoint: as a stalled VM would), and its
    lock's PostgreSQL session is ended meanwhile: the standby takes the lock and, taking the
    lead, fences the frozen relay's transactional.id. Woken, the old leader still commits
    what it sent: the broker refuses (fatal _FENCED), it exits with status 2, and a
    read_committed consumer sees the log exactly once."""
    async with relay_log(unique, tmp_path, "z") as world:
        # Orders first: the first relay's first transaction holds their records.
        await write_orders(world.bus, f"{unique}a", 2)
        zombie = world.relay("zombie", ORDERS_RELAY_FAILPOINT="after-send:1:freeze").start()
        standby = world.relay("standby")
        reader = world.reader()
        try:
            await wait_for(
                lambda: "freezing" in zombie.log_tail(400), 60, "the leader freezes before commit"
            )
            assert _leads(zombie)
            standby.start()
            await wait_for(
                lambda: "standing by" in standby.log_tail(400), 60, "the second relay stands by"
            )
            await write_orders(world.bus, f"{unique}b", 1)
            assert not _leads(standby), "the second relay must stand by while the first leads"
            assert await end_lock_session(world.url, RELAY) == 1
            await wait_for(
                lambda: "earlier producers fenced" in standby.log_tail(400),
                60,
                "the standby takes over",
            )
            zombie.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            exit_status = await asyncio.to_thread(zombie.process.wait, 60)  # type: ignore[union-attr]
            assert exit_status == 2, zombie.log_tail()
            fatal = [line for line in zombie.log_tail(400).splitlines() if "CRITICAL" in line]
            assert len(fatal) == 1 and "fenced" in fatal[0].lower(), zombie.log_tail()
            await write_orders(world.bus, f"{unique}c", 1)
            await world.assert_published(reader, 60)
        finally:
            reader.close()
            zombie.kill()
            standby.stop()


async def test_a_transaction_open_below_the_relays_position_is_never_overtaken(
    unique: str, tmp_path: Path
) -> None:
    registry = build_registry()
    async with relay_log(unique, tmp_path, "h") as world:
        store = world.store
        relay = world.relay().start()
        reader = world.reader()
        try:
            await write_orders(world.bus, f"{unique}a", 1)
            before = await whole_log(store)
            await asyncio.to_thread(reader.poll_until, len(before), 60, settle=0)
            type_name, data, version = registry.serialize(CustomerRenamed(name="Slow Writer"))
            held = NewEvent(
                uuid.uuid4(),
                type_name,
                data,
                EventMetadata(f"slow-{unique}", schema_version=version),
                datetime.now(UTC),
            )
            # A slow writer takes a position below the next writers' and holds it open.
            async with store.pool.acquire() as connection, connection.transaction():
                await store.append_on(connection, f"Customer-c-{unique}a", "Customer", ANY, [held])
                await write_orders(world.bus, f"{unique}b", 2)  # committed past the open one
                await asyncio.sleep(3)
                during = await asyncio.to_thread(reader.poll_until, 10**6, 3, settle=0)
                assert len(during) == len(before), "published past a transaction in flight"
            await world.assert_published(reader, 60)
        finally:
            reader.close()
            relay.stop()


async def test_the_largest_order_the_api_accepts_fits_and_is_read_from_its_topic(
    unique: str, tmp_path: Path
) -> None:
    """MAX_LINES lines of the longest ids and names (4-byte characters), the longest address,
    and the saga's FulfillmentStarted of it: the largest events the API can append."""
    registry = build_registry()
    wide = "\U0001d11e"  # a 4-byte UTF-8 character
    context = CommandContext(correlation_id=f"corr-{unique}")
    async with relay_log(unique, tmp_path, "l") as world:
        store, bus = world.store, world.bus
        customer = f"c-{unique}"
        await bus.dispatch(
            commands.RegisterCustomer(
                customer_id=customer, name=wide * MAX_NAME_LENGTH, email=f"{unique}@example.com"
            ),
            context,
        )
        products = [f"p{n:03d}{unique}".ljust(MAX_ID_LENGTH, "x") for n in range(MAX_LINES)]
        for product in products:
            await bus.dispatch(
                commands.AddProduct(
                    product_id=product,
                    name=wide * MAX_NAME_LENGTH,
                    price=Decimal("99999.99"),
                    initial_stock=MAX_QUANTITY,
                ),
                context,
            )
        order_id = f"o-{unique}".ljust(MAX_ID_LENGTH, "x")
        items = tuple(commands.OrderItem(product, MAX_QUANTITY) for product in products)
        await bus.dispatch(
            commands.CreateOrder(order_id=order_id, customer_id=customer, items=items), context
        )
        address = Address(wide * MAX_NAME_LENGTH, wide * MAX_NAME_LENGTH, "12345", "US")
        await bus.dispatch(commands.SetShippingAddress(order_id=order_id, address=address), context)
        await bus.dispatch(
            commands.CancelOrder(order_id=order_id, reason=wide * MAX_TEXT_LENGTH), context
        )
        started = FulfillmentStarted(
            order_id=order_id,
            customer_id=customer,
            lines=tuple(Line(product, MAX_QUANTITY) for product in products),
            total=Money(Decimal("99999999999.99"), "USD"),
            address=address,
        )
        type_name, data, version = registry.serialize(started)
        await store.append_to_stream(
            f"Fulfillment-{order_id}",
            "Fulfillment",
            ANY,
            [
                NewEvent(
                    uuid.uuid4(),
                    type_name,
                    data,
                    EventMetadata("x", schema_version=version),
                    datetime.now(UTC),
                )
            ],
        )
        relay = world.relay().start()
        reader = world.reader()
        try:
            consumed = await world.assert_published(reader, 90)
        finally:
            reader.close()
            relay.stop()
        fulfillment = next(r for r in consumed if r.topic == f"{world.prefix}fulfillment-events")
        assert fulfillment.event["data"] == data


async def test_a_lone_relay_that_lost_its_lock_leads_again_and_publishes_on(
    unique: str, tmp_path: Path
) -> None:
    """The only relay's lock session ends (PostgreSQL's network blinked): it takes the lock
    again in the same process, leads again, and publishes what was written meanwhile; a
    read_committed consumer sees the log exactly once."""
    async with relay_log(unique, tmp_path, "a") as world:
        relay = world.relay().start()
        reader = world.reader()
        try:
            await write_orders(world.bus, f"{unique}a", 1)
            before = await whole_log(world.store)
            await asyncio.to_thread(reader.poll_until, len(before), 60, settle=0)
            assert await end_lock_session(world.url, RELAY) == 1
            await write_orders(world.bus, f"{unique}b", 1)
            await world.assert_published(reader, 60)
            assert relay.process is not None and relay.process.poll() is None, relay.log_tail()
        finally:
            reader.close()
            relay.stop()
