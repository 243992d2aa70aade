"""Dead letters of a consumer group, on the real broker and PostgreSQL: the payment
participant (a member of its group in the test's process, on a provider refusing refunds)
parks a poison trigger, which lands on `<prefix>dead-letter-queue` with Spring Kafka's
headers; the order's later trigger is parked behind it while other orders finish;
`retryDeadLetter` after the provider is fixed finishes the saga with one refund. A record
that is no CloudEvent is parked with a clear reason and never stops the group."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from app.backends import shared_log_backend
from app.bootstrap import command_bus, follower_settings
from app.consumer_process import kafka_participants
from app.settings import Settings
from app.wiring import simulated_gateways
from log_follower import storage as follower_storage
from log_follower.consumer import PerKeyConsumer
from log_follower.dead_letters.port import PARKED_BEHIND, DeadLetter, LetterOwner
from sagas.choreography.participant import FulfillmentParticipant
from sagas.gateways.simulated import PaymentRules, SimulatedPayments
from sagas.orchestrator import FULFILLMENT
from tests.integration.app_process import AppProcess
from tests.integration.kafka_choreography import PARTITIONS, Member, choreography_env, relay
from tests.integration.kafka_relay import kafka_address
from tests.integration.read_side import own_postgres_database
from tests.integration.saga_invariants import NOWHERE
from tests.integration.saga_world import SagaWorld, saga_world
from tests.integration.test_saga_dead_letters import RefusingRefunds
from tests.subscriber_loop import eventually
from write_model.domain.choreography import Participant

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@contextlib.asynccontextmanager
async def payment_member(dsn: str, prefix: str, payments: RefusingRefunds) -> AsyncIterator[str]:
    """The payment participant as a member of its group, in this process: its group."""
    settings = Settings(
        database_url=dsn,
        saga_mode="choreography",
        kafka_bootstrap_servers=kafka_address(),
        kafka_topic_prefix=prefix,
        kafka_topic_partitions=PARTITIONS,
        kafka_timeout_seconds=10,
    )
    quick = dataclasses.replace(
        follower_settings(settings),
        max_attempts=2,
        backoff_seconds=0.01,
        maintenance_seconds=0.05,
        heartbeat_seconds=0.5,
    )
    async with shared_log_backend(settings, follows_log=False, migrates=True) as backend:
        gateways = simulated_gateways(backend.ledger, payments=payments)
        participant = FulfillmentParticipant(
            Participant.PAYMENT,
            backend.events,
            backend.registry,
            command_bus(settings, backend),
            gateways,
        )
        async with kafka_participants(
            settings, backend, [PerKeyConsumer(participant)], quick, CollectorRegistry()
        ) as members:
            stop = asyncio.Event()
            running = asyncio.create_task(members.run(stop))
            try:
                yield members.members[0].group
            finally:
                stop.set()
                await running


def dead_letter_topic(prefix: str, count: int, seconds: float = 60) -> list[dict[str, bytes]]:
    """The headers of the first `count` records of the dead-letter topic."""
    reader = Consumer(
        {
            "bootstrap.servers": kafka_address(),
            "group.id": f"{prefix}dlq-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    reader.subscribe([f"{prefix}dead-letter-queue"])
    found: list[dict[str, bytes]] = []
    deadline = time.monotonic() + seconds
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None or message.error() is not None:
                continue
            headers = {name: bytes(value or b"") for name, value in message.headers() or []}
            found.append({**headers, "key": message.key() or b"", "value": message.value() or b""})
    finally:
        reader.close()
    return found


async def ended(world: SagaWorld, order_id: str) -> str | None:
    events = await world.events.read_stream(FULFILLMENT.stream_id(order_id))
    last = events[-1].type if events else None
    return last if last in ("FulfillmentCompleted", "FulfillmentFailed") else None


async def test_a_poison_trigger_lands_on_the_dead_letter_topic_and_is_redriven(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"t{unique}."
    stuck, fine = f"o-stuck-{unique}", f"o-fine-{unique}"
    async with (
        own_postgres_database(f"kdlq_{unique}") as dsn,
        saga_world(dsn, "choreography") as world,
    ):
        await world.customer(f"c-{unique}")
        await world.product(f"p-{unique}", 10)
        env = choreography_env(dsn, kafka_address(), prefix)
        processes: list[AppProcess] = [
            relay(env, tmp_path / "relay.log"),
            *(Member(n, env, tmp_path / f"{n}.log") for n in ("inventory", "shipping")),
        ]
        payments = RefusingRefunds(SimulatedPayments(world.ledger, PaymentRules()))
        letters = follower_storage.postgres_stores(world.events.pool).dead_letters
        try:
            async with payment_member(dsn, prefix, payments) as group:
                owner = LetterOwner(group)
                # No shipping to AQ: the charge is to be refunded, and the provider refuses.
                await world.submitted_order(stuck, f"c-{unique}", [(f"p-{unique}", 2)], NOWHERE)
                [parked] = await eventually(lambda: letters.of_key(owner, stuck), seconds=90)
                # A later trigger of the order waits behind it; another order finishes.
                await world.cancel(stuck)
                await world.submitted_order(fine, f"c-{unique}", [(f"p-{unique}", 1)])
                assert await eventually(lambda: ended(world, fine), seconds=90) == (
                    "FulfillmentCompleted"
                )

                async def two_letters() -> list[DeadLetter] | None:
                    found = await letters.of_key(owner, stuck)
                    return found if len(found) == 2 else None

                first, behind = await eventually(two_letters, seconds=60)
                published = await asyncio.to_thread(dead_letter_topic, prefix, 2)
                assert await ended(world, stuck) is None

                payments.refusing = False  # the provider takes refunds again
                assert await letters.request_retry(first.id)
                assert await eventually(lambda: ended(world, stuck), seconds=60) == (
                    "FulfillmentFailed"
                )
                await eventually(lambda: _none_left(letters, owner, stuck), seconds=30)
        finally:
            for process in processes:
                process.stop()
        ledger = await world.ledger_of(stuck)
    assert parked.stream_id == f"Shipping-{stuck}" and parked.event_type == "ShipmentFailed"
    assert "refunds are switched off" in parked.error and parked.attempts == 2
    assert behind.stream_id == f"Order-{stuck}" and behind.error == PARKED_BEHIND
    # The dead-letter topic: the original record, and where and why it failed.
    poison, later = published
    assert poison["key"] == stuck.encode()
    assert poison["ce_type"] == b"orders.ShipmentFailed"
    assert poison["kafka_dlt-original-topic"] == f"{prefix}shipping-events".encode()
    assert 0 <= int.from_bytes(poison["kafka_dlt-original-partition"], "big") < PARTITIONS
    assert int.from_bytes(poison["kafka_dlt-original-offset"], "big") >= 0
    assert poison["kafka_dlt-original-consumer-group"] == f"{prefix}orders-payment".encode()
    assert poison["kafka_dlt-exception-fqcn"].endswith(b"CompensationRefused")
    assert b"refunds are switched off" in poison["kafka_dlt-exception-message"]
    assert b"Traceback" in poison["kafka_dlt-exception-stacktrace"]
    assert int.from_bytes(poison["kafka_deliveryAttempt"], "big") == 2
    assert poison["orders_dlt-parked-at"].startswith(b"20")
    assert later["ce_type"] == b"orders.OrderCancelled"
    assert later["kafka_dlt-exception-fqcn"].endswith(b"ParkedBehind")
    assert later["kafka_dlt-original-topic"] == f"{prefix}order-events".encode()
    # Exactly one charge and one refund, however often the trigger was handed.
    done = Counter(entry for entry in ledger if entry[2])
    assert done[("payment", "charge", True)] == 1 and done[("payment", "refund", True)] == 1


async def _none_left(letters: object, owner: LetterOwner, key: str) -> bool:
    return not await letters.of_key(owner, key)  # type: ignore[attr-defined]


async def test_a_record_that_is_no_cloudevent_is_parked_with_its_reason(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"t{unique}."
    async with (
        own_postgres_database(f"kbad_{unique}") as dsn,
        saga_world(dsn, "choreography") as world,
    ):
        payments = RefusingRefunds(SimulatedPayments(world.ledger, PaymentRules()), False)
        letters = follower_storage.postgres_stores(world.events.pool).dead_letters
        async with payment_member(dsn, prefix, payments) as group:
            producer = Producer({"bootstrap.servers": kafka_address()})
            producer.produce(
                f"{prefix}inventory-events",
                key=b"o-garbled",
                value=b"{not json",
                headers=[("content-type", b"application/json")],
            )
            producer.flush(10)
            [letter] = await eventually(
                lambda: letters.of_key(LetterOwner(group), "o-garbled"), seconds=60
            )
            published = await asyncio.to_thread(dead_letter_topic, prefix, 1)
    assert letter.error.startswith("MalformedRecord: not a CloudEvent")
    assert published[0]["value"] == b"{not json"
    assert published[0]["kafka_dlt-exception-fqcn"] == b"messaging.cloudevents.MalformedRecord"
