"""Relay benchmark: the log to Kafka, beside a bare transactional producer on the same broker.

1. Throughput: a log pre-filled with `--events` (100,000) events, published by the relay
   (in-process: the one log follower, gap-free reads, one Kafka transaction per batch with
   its checkpoint); events/s from taking the lead to the last commit. Ceiling: confluent-
   kafka's Producer alone, with exactly the relay's producer configuration and transaction
   size, sending the same records from memory.
2. Latency: `--rate` (1,000) events/s appended for `--seconds` while the relay runs; the
   time from each append's commit to a read_committed consumer's receipt, p50 and p99.
   Ceiling: the bare producer sending records at the same rate and transaction size, from
   the produce call to the consumer's receipt.

    python -m bench.relay [--events 100000] [--rate 1000] [--seconds 10]

Run under `make bench-relay` (tests/services/with-services provides DATABASE_URL and
ORDERS_TEST_KAFKA). Targets (issue 21): >= 10,000 events/s and >= 0.5 of the bare
producer; p99 under 100 ms at 1,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from app.backends import LogBackend, shared_log_backend
from app.relay_process import RelayParts, build_relay, relay_follower_parts
from app.settings import Settings
from bench.common import (
    machine_description,
    own_postgres_database,
    p50_p99_ms,
    run_main,
    say,
    verdict,
)
from log_follower.follower import Follower
from messaging.cloudevents import ContentMode, KafkaRecord, to_record
from messaging.kafka_config import producer_config
from messaging.relay import RELAY
from write_model.domain.customer import CustomerRenamed
from write_model.envelope import EventMetadata, LogPosition, NewEvent, RecordedEvent
from write_model.event_store.port import ANY, EventStore
from write_model.event_types import build_registry

REGISTRY = build_registry()
STREAM_EVENTS = 100  # events per stream of the pre-filled log, appended in one go


def new_events(count: int, tag: str) -> list[NewEvent]:
    type_name, data, version = REGISTRY.serialize(CustomerRenamed(name=f"Customer {tag}"))
    metadata = EventMetadata(f"bench-{tag}", schema_version=version)
    now = datetime.now(UTC)
    return [NewEvent(uuid.uuid4(), type_name, data, metadata, now) for _ in range(count)]


async def prefill(events: EventStore, total: int) -> None:
    slots = asyncio.Semaphore(8)

    async def one_stream(n: int) -> None:
        async with slots:
            await events.append_to_stream(
                f"Customer-bench{n}", "Customer", ANY, new_events(STREAM_EVENTS, str(n))
            )

    await asyncio.gather(*(one_stream(n) for n in range(total // STREAM_EVENTS)))


async def whole_log(events: EventStore) -> list[RecordedEvent]:
    found: list[RecordedEvent] = []
    after = LogPosition.start()
    while batch := await events.read_all(after, 5000):
        found += batch
        after = batch[-1].log_position
    return found


def records_of(log: Sequence[RecordedEvent], prefix: str) -> list[KafkaRecord]:
    return [
        to_record(
            event,
            REGISTRY.upcast(event.type, event.data, event.metadata.schema_version),
            REGISTRY.schema_version_of(event.type),
            source="/orders",
            mode=ContentMode.BINARY,
            topic_prefix=prefix,
        )
        for event in log
    ]


def bare_producer(settings: Settings, transactional_id: str) -> Producer:
    assert settings.kafka_bootstrap_servers is not None
    producer = Producer(
        producer_config(
            settings.kafka_bootstrap_servers,
            transactional_id,
            {},
            timeout_seconds=settings.kafka_timeout_seconds,
        )
    )
    producer.init_transactions(30)
    return producer


def bare_send(producer: Producer, records: Sequence[KafkaRecord]) -> None:
    producer.begin_transaction()
    for record in records:
        while True:
            try:
                producer.produce(
                    record.topic, value=record.value, key=record.key, headers=list(record.headers)
                )
                break
            except BufferError:
                producer.poll(0.05)
    producer.commit_transaction(30)


class Receipts:
    """A read_committed consumer on a thread: when each ce_id arrived."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.at: dict[str, float] = {}
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-{uuid.uuid4()}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "topic.metadata.refresh.interval.ms": 500,
            }
        )
        self._consumer.subscribe([f"^{prefix.replace('.', '[.]')}.*-events$"])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            now = time.monotonic()
            headers = message.headers() or []
            # A consumed record's headers are a list of pairs (the client's type allows a dict).
            for name, value in headers.items() if isinstance(headers, dict) else headers:
                if name == "ce_id" and value is not None:
                    self.at[value.decode() if isinstance(value, bytes) else value] = now

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


async def relay_running(
    settings: Settings, backend: LogBackend, stop: asyncio.Event
) -> tuple[RelayParts, asyncio.Future[float], asyncio.Task[None]]:
    parts = build_relay(settings, backend.registry, CollectorRegistry(), {})
    leading: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def start(follower: Follower) -> None:
        await parts.relay.take_lead(follower)
        leading.set_result(time.monotonic())

    follower = Follower(
        parts.relay,
        relay_follower_parts(settings, backend),
        checkpoint=parts.checkpoint,
    )
    task = asyncio.create_task(follower.run(stop, start=start))
    return parts, leading, task


async def throughput(settings: Settings, events_total: int) -> tuple[float, float]:
    async with shared_log_backend(settings, follows_log=True, migrates=True) as backend:
        t0 = time.monotonic()
        await prefill(backend.events, events_total)
        say(f"  pre-filled {events_total:,} events in {time.monotonic() - t0:.1f} s")
        head = await backend.events.head_position()
        stop = asyncio.Event()
        parts, leading, task = await relay_running(settings, backend, stop)
        while parts.checkpoint.committed(RELAY) != head:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        relay_rate = events_total / (time.monotonic() - await leading)
        stop.set()
        await task
        await parts.producer.close()
        log = await whole_log(backend.events)
    records = records_of(log, "bare.")
    size = settings.kafka_transaction_max_records
    producer = await asyncio.to_thread(bare_producer, settings, f"bench-bare-{uuid.uuid4()}")
    await parts.relay._topics.ensure({record.topic for record in records})
    t0 = time.monotonic()
    for start in range(0, len(records), size):
        await asyncio.to_thread(bare_send, producer, records[start : start + size])
    bare_rate = len(records) / (time.monotonic() - t0)
    return relay_rate, bare_rate


async def paced(
    rate: int, seconds: float, tick: float, act: Callable[[int, int], Awaitable[None]]
) -> None:
    per_tick = max(1, round(rate * tick))
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        await act(n, per_tick)
        n += 1
        await asyncio.sleep(max(0.0, started + n * tick - time.monotonic()))


async def latency(settings: Settings, rate: int, seconds: float) -> tuple[list[float], list[float]]:
    assert settings.kafka_bootstrap_servers is not None
    relay_receipts = Receipts(settings.kafka_bootstrap_servers, settings.kafka_topic_prefix)
    committed_at: dict[str, float] = {}
    async with shared_log_backend(settings, follows_log=True, migrates=True) as backend:
        stop = asyncio.Event()
        parts, leading, task = await relay_running(settings, backend, stop)
        await leading

        async def append(n: int, count: int) -> None:
            async def one(k: int) -> None:
                event = new_events(1, f"{n}-{k}")[0]
                await backend.events.append_to_stream(
                    f"Customer-lat{n}-{k}", "Customer", ANY, [event]
                )
                committed_at[str(event.event_id)] = time.monotonic()

            await asyncio.gather(*(one(k) for k in range(count)))

        await paced(rate, seconds, 0.01, append)
        await asyncio.sleep(2)
        stop.set()
        await task
        await parts.producer.close()
    relay_receipts.close()
    relay_latencies = sorted(
        relay_receipts.at[i] - t for i, t in committed_at.items() if i in relay_receipts.at
    )
    missing = len(committed_at) - len(relay_latencies)
    if missing:
        say(f"  relay: {missing} events not received within 2 s of the end")

    bare_prefix = f"bare-lat{uuid.uuid4().hex[:6]}."
    bare_receipts = Receipts(settings.kafka_bootstrap_servers, bare_prefix)
    producer = await asyncio.to_thread(bare_producer, settings, f"bench-bare-{uuid.uuid4()}")
    sent_at: dict[str, float] = {}
    await parts.relay._topics.ensure({f"{bare_prefix}customer-events"})

    async def send(n: int, count: int) -> None:
        now = datetime.now(UTC)
        batch = []
        for k in range(count):
            event = new_events(1, f"{n}-{k}")[0]
            recorded = RecordedEvent(
                event.event_id, f"Customer-lat{n}-{k}", event.type, 1, n * count + k, 1,
                now, event.data, event.metadata,
            )  # fmt: skip
            batch.append(records_of([recorded], bare_prefix)[0])
            sent_at[str(event.event_id)] = time.monotonic()
        await asyncio.to_thread(bare_send, producer, batch)

    await paced(rate, seconds, 0.01, send)
    await asyncio.sleep(2)
    bare_receipts.close()
    bare_latencies = sorted(
        bare_receipts.at[i] - t for i, t in sent_at.items() if i in bare_receipts.at
    )
    return relay_latencies, bare_latencies


@dataclass(frozen=True)
class RelayFigures:
    relay_rate: float  # events/s from a pre-filled log
    bare_rate: float  # the bare producer's, same records and transaction size
    relay_p50_ms: float  # commit -> read_committed receipt at `rate` events/s
    relay_p99_ms: float
    bare_p50_ms: float  # produce call -> receipt, same rate and transaction size
    bare_p99_ms: float


async def measure(admin: str, kafka: str, events: int, rate: int, seconds: float) -> RelayFigures:
    """Both measurements, each on a database and topics of its own."""
    run = uuid.uuid4().hex[:8]
    async with own_postgres_database(admin, f"bench_relay_{run}") as url:
        settings = Settings(
            database_url=url,
            kafka_bootstrap_servers=kafka,
            kafka_topic_prefix=f"bench{run}.",
            kafka_transactional_id=f"bench-relay-{run}",
            kafka_replication_factor=1,
            kafka_topic_partitions=6,
        )
        relay_rate, bare_rate = await throughput(settings, events)
    async with own_postgres_database(admin, f"bench_relay_lat_{run}") as url:
        settings = Settings(
            database_url=url,
            kafka_bootstrap_servers=kafka,
            kafka_topic_prefix=f"benchlat{run}.",
            kafka_transactional_id=f"bench-relay-lat-{run}",
            kafka_replication_factor=1,
            kafka_topic_partitions=6,
        )
        relay_latencies, bare_latencies = await latency(settings, rate, seconds)
    relay_p50, relay_p99 = p50_p99_ms(relay_latencies)
    bare_p50, bare_p99 = p50_p99_ms(bare_latencies)
    return RelayFigures(relay_rate, bare_rate, relay_p50, relay_p99, bare_p50, bare_p99)


def kafka_address() -> str:
    """The test run's broker (tests/services/with-services), else KAFKA_BOOTSTRAP_SERVERS."""
    return os.environ.get("ORDERS_TEST_KAFKA") or os.environ["KAFKA_BOOTSTRAP_SERVERS"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    say(f"relay benchmark on {machine_description()} (a shared machine: figures are noisy)")
    found = await measure(
        os.environ["DATABASE_URL"], kafka_address(), args.events, args.rate, args.seconds
    )
    ratio = found.relay_rate / found.bare_rate
    met = verdict(found.relay_rate >= 10_000 and ratio >= 0.5)
    say("")
    say("| figure | relay | bare producer (ceiling) | target |")
    say("|---|---|---|---|")
    say(
        f"| events/s, pre-filled log of {args.events:,} | {found.relay_rate:,.0f} "
        f"| {found.bare_rate:,.0f} | >= 10,000 and >= 0.5 of bare: {ratio:.2f} ({met}) |"
    )
    say(
        f"| commit -> receipt p50 at {args.rate:,}/s | {found.relay_p50_ms:.1f} ms "
        f"| {found.bare_p50_ms:.1f} ms | |"
    )
    say(
        f"| commit -> receipt p99 at {args.rate:,}/s | {found.relay_p99_ms:.1f} ms "
        f"| {found.bare_p99_ms:.1f} ms | < 100 ms ({verdict(found.relay_p99_ms < 100)}) |"
    )


if __name__ == "__main__":
    run_main(main)
