"""The Kafka relay (`orders relay`) against the real broker: every event of the log on Kafka
exactly once, on its topic and key, with every CloudEvents attribute, in stream order per
key; crashes at any point and named failpoints lose and duplicate nothing."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import jsonschema
import pytest

from messaging.event_schemas import SCHEMA_DIRECTORY
from messaging.kafka_config import producer_config, rdkafka_overrides
from messaging.kafka_producer import TransactionalProducer
from tests.integration import write_side
from tests.integration.kafka_relay import (
    Consumed,
    RelayProcess,
    TopicReader,
    duplicates_and_missing,
    kafka_address,
    relay_env,
    wait_for,
    whole_log,
)
from tests.integration.private_services import free_port, private_kafka
from tests.integration.read_side import ADDRESS, own_postgres_database, postgres_store
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


def assert_published_exactly(
    log: list[RecordedEvent], consumed: list[Consumed], prefix: str, mode: str = "binary"
) -> None:
    duplicates, missing = duplicates_and_missing(log, consumed)
    assert (duplicates[:5], missing[:5]) == ([], []), (len(duplicates), len(missing))
    assert len(consumed) == len(log)
    registry = build_registry()
    by_id = {str(event.event_id): event for event in log}
    per_key: dict[tuple[str, bytes], list[int]] = defaultdict(list)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    for record in consumed:
        event = by_id[str(record.event["id"])]
        category, _, aggregate = event.stream_id.partition("-")
        assert record.topic == f"{prefix}{category.lower()}-events"
        assert record.key == aggregate.encode()
        version = registry.schema_version_of(event.type)
        expected = {
            "specversion": "1.0",
            "id": str(event.event_id),
            "source": "/orders",
            "type": f"orders.{event.type}",
            "subject": event.stream_id,
            "dataschema": f"urn:orders:event:{event.type}:{version}",
            "streamversion": str(event.version),
            "position": str(event.position),
            "transactionid": str(event.transaction_id),
            "correlationid": event.metadata.correlation_id,
            "schemaversion": str(version),
            "datacontenttype": "application/json",
        }
        if event.metadata.causation_id is not None:
            expected["causationid"] = event.metadata.causation_id
        attributes = {k: v for k, v in record.event.items() if k not in {"data", "time"}}
        assert attributes == expected
        assert str(record.event["time"]).endswith("Z")
        content_type = "application/json" if mode == "binary" else "application/cloudevents+json"
        assert record.headers["content-type"].decode() == content_type
        schema = json.loads((SCHEMA_DIRECTORY / event.type / f"{version}.json").read_text())
        jsonschema.validate(record.event["data"], schema)
        per_key[(record.topic, record.key)].append(event.version)
        partitions_of_key[record.key].add(record.partition)
    for key, versions in per_key.items():
        assert versions == sorted(versions), key  # stream-version order per key
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_every_event_of_a_busy_log_appears_exactly_once_in_order_with_every_header(
    mode: str, unique: str, tmp_path: Path
) -> None:
    prefix = f"t{unique}."
    ops_port = free_port()
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        bus = write_side.build_bus(store, max_attempts=50)
        env = relay_env(url, kafka_address(), prefix, f"relay-{unique}", KAFKA_CONTENT_MODE=mode)
        relay = RelayProcess({**env, "OPS_PORT": str(ops_port)}, tmp_path / "relay.log").start()
        # The saga fulfils the submitted orders meanwhile (its own streams and products').
        saga = RelayProcess(env, tmp_path / "saga.log", command="saga").start()
        reader = TopicReader(kafka_address(), prefix)
        try:
            await wait_for(lambda: "leading saga" in saga.log_tail(400), 60, "the saga leads")
            await asyncio.gather(
                *(write_orders(bus, f"{unique}{n}", 8) for n in range(BUSY_WRITERS))
            )
            log = await settled_log(store)
            assert any(event.stream_id.startswith("Fulfillment-") for event in log), saga.log_tail()
            consumed = await asyncio.to_thread(reader.poll_until, len(log), 90)
            assert_published_exactly(log, consumed, prefix, mode)
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
    prefix = f"k{unique}."
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        env = relay_env(url, kafka_address(), prefix, f"relay-{unique}")
        relay = RelayProcess(env, tmp_path / "relay.log").start()
        # 5,000 events: 20 writers of 50 appends of 5 events, over 200 streams.
        writing = asyncio.gather(*(append_renames(store, unique, 50, 200) for _ in range(20)))
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
                relay = RelayProcess(env, tmp_path / "relay.log").start()
            await writing
            log = await whole_log(store)
            assert len(log) == 5000
            reader = TopicReader(kafka_address(), prefix)
            try:
                consumed = await asyncio.to_thread(reader.poll_until, len(log), 120)
            finally:
                reader.close()
            assert kills >= 10
            assert_published_exactly(log, consumed, prefix)
        finally:
            writing.cancel()
            relay.stop()


@pytest.mark.parametrize("failpoint", ["after-send:3", "after-commit:3"])
async def test_a_relay_killed_between_send_and_commit_or_right_after_commit_loses_nothing(
    failpoint: str, unique: str, tmp_path: Path
) -> None:
    prefix = f"f{unique}."
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        bus = write_side.build_bus(store, max_attempts=50)
        env = relay_env(url, kafka_address(), prefix, f"relay-{unique}")
        failing = RelayProcess({**env, "ORDERS_RELAY_FAILPOINT": failpoint}, tmp_path / "a.log")
        failing.start()
        waves = 0
        # Waves of orders until the relay reaches its failpoint (its third transaction).
        while failing.process.poll() is None and waves < 200:  # type: ignore[union-attr]
            await write_orders(bus, f"{unique}{waves}", 1)
            waves += 1
            await asyncio.sleep(0.05)
        try:
            exit_status = await asyncio.to_thread(failing.process.wait, 30)  # type: ignore[union-attr]
            assert exit_status == -9, failing.log_tail()  # it SIGKILLed itself there
            await write_orders(bus, f"{unique}-after", 2)
            relay = RelayProcess(env, tmp_path / "b.log").start()
            log = await whole_log(store)
            reader = TopicReader(kafka_address(), prefix)
            try:
                consumed = await asyncio.to_thread(reader.poll_until, len(log), 90)
            finally:
                reader.close()
                relay.stop()
            assert_published_exactly(log, consumed, prefix)
        finally:
            failing.kill()


def _leads(relay: RelayProcess) -> bool:
    return "leading relay kafka-relay" in relay.log_tail(400)


def _leaderships(relay: RelayProcess) -> int:
    """How often a relay writing to this log took the lead."""
    return relay.log_path.read_text(errors="replace").count("leading relay kafka-relay")


async def test_two_relays_one_leads_the_other_takes_over_nothing_duplicated(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"s{unique}."
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        bus = write_side.build_bus(store, max_attempts=50)
        env = relay_env(url, kafka_address(), prefix, f"relay-{unique}")
        first = RelayProcess(env, tmp_path / "first.log").start()
        await wait_for(lambda: _leads(first), 60, "the first relay leads")
        second = RelayProcess(env, tmp_path / "second.log").start()
        try:
            await write_orders(bus, f"{unique}a", 5)
            await asyncio.sleep(2)
            assert not _leads(second), "the second relay must stand by"
            first.kill()
            await wait_for(lambda: _leads(second), 60, "the standby takes over")
            await write_orders(bus, f"{unique}b", 5)
            log = await whole_log(store)
            reader = TopicReader(kafka_address(), prefix)
            try:
                consumed = await asyncio.to_thread(reader.poll_until, len(log), 60)
            finally:
                reader.close()
            assert_published_exactly(log, consumed, prefix)
        finally:
            first.kill()
            second.stop()


async def test_a_relay_that_produces_after_another_took_over_is_fenced_and_exits_2(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"z{unique}."
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        bus = write_side.build_bus(store, max_attempts=50)
        env = relay_env(url, kafka_address(), prefix, f"relay-{unique}")
        zombie = RelayProcess(env, tmp_path / "zombie.log").start()
        try:
            await wait_for(lambda: _leads(zombie), 60, "the relay leads")
            await write_orders(bus, f"{unique}a", 1)
            first_orders = await whole_log(store)
            reader = TopicReader(kafka_address(), prefix)
            try:
                await asyncio.to_thread(reader.poll_until, len(first_orders), 60, settle=0)
                # A newer relay with the same transactional.id takes over (as after the zombie
                # lost its lock in a network partition): its init_transactions fences it.
                newer = TransactionalProducer(
                    producer_config(kafka_address(), f"relay-{unique}", {}, timeout_seconds=10),
                    timeout_seconds=10,
                )
                await newer.start()
                try:
                    await write_orders(bus, f"{unique}b", 1)  # the zombie tries to publish these
                    exit_status = await asyncio.to_thread(zombie.process.wait, 60)  # type: ignore[union-attr]
                finally:
                    await newer.close()
                assert exit_status == 2
                fatal = [line for line in zombie.log_tail(400).splitlines() if "CRITICAL" in line]
                assert len(fatal) == 1 and "fenced" in fatal[0].lower(), zombie.log_tail()
                consumed = await asyncio.to_thread(reader.poll_until, 10**6, 4)
            finally:
                reader.close()
            assert_published_exactly(first_orders, consumed, prefix)  # nothing after the fence
        finally:
            zombie.kill()


async def test_a_transaction_open_below_the_relays_position_is_never_overtaken(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"h{unique}."
    registry = build_registry()
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        bus = write_side.build_bus(store, max_attempts=50)
        relay = RelayProcess(
            relay_env(url, kafka_address(), prefix, f"relay-{unique}"), tmp_path / "relay.log"
        ).start()
        reader = TopicReader(kafka_address(), prefix)
        try:
            await write_orders(bus, f"{unique}a", 1)
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
                await write_orders(bus, f"{unique}b", 2)  # committed past the open one
                await asyncio.sleep(3)
                during = await asyncio.to_thread(reader.poll_until, 10**6, 3, settle=0)
                assert len(during) == len(before), "published past a transaction in flight"
            log = await whole_log(store)
            consumed = await asyncio.to_thread(reader.poll_until, len(log), 60)
            assert_published_exactly(log, consumed, prefix)
        finally:
            reader.close()
            relay.stop()


async def test_the_broker_killed_and_restarted_under_load_loses_and_duplicates_nothing(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"b{unique}."
    with private_kafka(tmp_path) as broker:
        async with (
            own_postgres_database(f"relay_{unique}") as url,
            postgres_store(dsn=url) as store,
        ):
            bus = write_side.build_bus(store, max_attempts=50)
            relay = RelayProcess(
                relay_env(url, broker.bootstrap_servers, prefix, f"relay-{unique}"),
                tmp_path / "relay.log",
            ).start()
            reader = TopicReader(broker.bootstrap_servers, prefix)
            try:
                await wait_for(lambda: _leads(relay), 60, "the relay leads")
                await write_orders(bus, f"{unique}a", 3)
                await asyncio.to_thread(
                    reader.poll_until, len(await whole_log(store)), 60, settle=0
                )
                writing = asyncio.gather(*(write_orders(bus, f"{unique}w{n}", 6) for n in range(4)))
                await asyncio.sleep(0.3)
                broker.kill()
                await writing  # appends keep succeeding with the broker away
                await asyncio.sleep(2)
                assert relay.process.poll() is None, relay.log_tail()  # waits, no crash loop
                broker.start()
                log = await whole_log(store)
                consumed = await asyncio.to_thread(reader.poll_until, len(log), 120)
                assert_published_exactly(log, consumed, prefix)
                assert relay.stop() == 0
            finally:
                reader.close()
                relay.kill()


async def test_the_relay_publishes_to_a_broker_that_takes_sasl_plain_and_masks_its_password(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"a{unique}."
    password = f"secret-{unique}"
    with private_kafka(tmp_path, sasl_user=f"relay:{password}") as broker:
        async with (
            own_postgres_database(f"relay_{unique}") as url,
            postgres_store(dsn=url) as store,
        ):
            sasl = {
                "KAFKA_RDKAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_RDKAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_RDKAFKA_SASL_USERNAME": "relay",
                "KAFKA_RDKAFKA_SASL_PASSWORD": password,
            }
            relay = RelayProcess(
                relay_env(url, broker.bootstrap_servers, prefix, f"relay-{unique}", **sasl),
                tmp_path / "relay.log",
            ).start()
            reader = TopicReader(
                broker.bootstrap_servers,
                prefix,
                rdkafka_overrides(sasl),
            )
            try:
                await write_orders(bus := write_side.build_bus(store), f"{unique}a", 2)
                del bus
                log = await whole_log(store)
                consumed = await asyncio.to_thread(reader.poll_until, len(log), 90)
                assert_published_exactly(log, consumed, prefix)
            finally:
                reader.close()
                relay.stop()
            text = relay.log_path.read_text()
            assert "relay producer configuration" in text and password not in text


async def test_the_largest_order_the_api_accepts_fits_and_is_read_from_its_topic(
    unique: str, tmp_path: Path
) -> None:
    """MAX_LINES lines of the longest ids and names (4-byte characters), the longest address,
    and the saga's FulfillmentStarted of it: the largest events the API can append."""
    prefix = f"l{unique}."
    registry = build_registry()
    wide = "\U0001d11e"  # a 4-byte UTF-8 character
    context = CommandContext(correlation_id=f"corr-{unique}")
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        bus = write_side.build_bus(store, max_attempts=50)
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
        relay = RelayProcess(
            relay_env(url, kafka_address(), prefix, f"relay-{unique}"), tmp_path / "relay.log"
        ).start()
        reader = TopicReader(kafka_address(), prefix)
        try:
            log = await whole_log(store)
            consumed = await asyncio.to_thread(reader.poll_until, len(log), 90)
        finally:
            reader.close()
            relay.stop()
        assert_published_exactly(log, consumed, prefix)
        fulfillment = next(r for r in consumed if r.topic == f"{prefix}fulfillment-events")
        assert fulfillment.event["data"] == data
