"""The choreographed saga over Kafka, for bench/saga.py: `orders relay` and the three `orders
participant` processes (each a consumer group of one member) on a database and a topic
prefix of their own, the orders submitted by this process.

1. Throughput: `orders` orders are submitted while the relay is not running (the
   participants wait, joined to their groups), then the relay starts: sagas per second from
   the first saga event to the last OrderConfirmed, by the log's own timestamps (so the
   relay's start-up is not counted).
2. Latency: orders submitted at `rate` per second for `seconds` (after `warm_up` seconds
   not counted): OrderSubmitted -> OrderConfirmed in the log, p50 and p99; and the consumer
   lag (records after each group's committed offsets, summed over its partitions, asked of
   the broker by an admin client, so that measuring costs the participants nothing)
   sampled every 0.25 s during the run: its peak and mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, undeclared
    AdminClient,
    OffsetSpec,
)

from bench.common import AppProcess, p50_p99_ms, say
from bench.saga import Bench
from log_follower import storage as follower_storage
from sagas import storage
from sagas.choreography.participant import trigger_topics
from write_model.domain.choreography import Participant
from write_model.event_store import postgres

PARTICIPANTS = ("inventory", "payment", "shipping")
PARTITIONS = 4


@dataclass(frozen=True)
class KafkaLatency:
    p50_ms: float
    p99_ms: float
    lag_peak: int
    lag_mean: float


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """The relay and the participants of one run, their logs in a folder of its own."""

    def __init__(self, dsn: str, bootstrap: str) -> None:
        self.prefix = f"bench{uuid.uuid4().hex[:8]}."
        self.logs = Path(tempfile.mkdtemp(prefix="orders-bench-kafka-"))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MONGO_"))},
            "DATABASE_URL": dsn,
            "SAGA_MODE": "choreography",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_TRANSACTIONAL_ID": f"{self.prefix}relay",
            "KAFKA_REPLICATION_FACTOR": "1",
            "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
            "LOG_LEVEL": "WARNING",
        }
        self.ops_ports = {name: _free_port() for name in PARTICIPANTS}
        self.running: list[AppProcess] = []

    def start_participants(self) -> None:
        for name in PARTICIPANTS:
            env = {**self.env, "OPS_PORT": str(self.ops_ports[name])}
            self.running.append(
                AppProcess(name, ["participant", name], env, self.logs / f"{name}.log")
            )

    def start_relay(self) -> None:
        self.running.append(AppProcess("relay", ["relay"], self.env, self.logs / "relay.log"))

    async def joined(self, seconds: float = 60) -> None:
        """Until each participant's group has given it its partitions (its /readyz)."""
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient() as client:
            for name, port in self.ops_ports.items():
                while True:
                    for process in self.running:
                        process.check_running()
                    with contextlib.suppress(httpx.HTTPError):
                        ready = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                        groups = ready.json().get("consumer_groups", {})
                        if ready.status_code == 200 and all(
                            g["assignment"] != "no partitions" for g in groups.values()
                        ):
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not join its group in {seconds} s")
                    await asyncio.sleep(0.2)

    def lag(self, admin: AdminClient) -> int:
        """Records after the groups' committed offsets, summed (read_committed ends)."""
        wanted = {
            # confluent-kafka declares no types for OffsetSpec.
            TopicPartition(topic, partition): OffsetSpec.latest()  # type: ignore[no-untyped-call]
            for name in PARTICIPANTS
            for topic in trigger_topics(Participant(name.capitalize()), self.prefix)
            for partition in range(PARTITIONS)
        }
        ends = {
            (tp.topic, tp.partition): future.result().offset
            for tp, future in admin.list_offsets(
                wanted, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=5
            ).items()
        }
        total = 0
        for name in PARTICIPANTS:
            group = f"{self.prefix}orders-{name}"
            request = [ConsumerGroupTopicPartitions(group)]
            for future in admin.list_consumer_group_offsets(request).values():
                for tp in future.result().topic_partitions or []:
                    if tp.offset >= 0:
                        total += max(0, ends.get((tp.topic, tp.partition), 0) - tp.offset)
        return total

    async def stop(self) -> None:
        for process in self.running:
            await process.stop()


@contextlib.asynccontextmanager
async def prepared(dsn: str, bootstrap: str) -> AsyncIterator[tuple[Bench, Processes, Any]]:
    pool = await postgres.create_pool(dsn, min_size=4, max_size=20)
    processes = Processes(dsn, bootstrap)
    try:
        await postgres.migrate(pool)
        await storage.migrate_postgres(pool)
        await follower_storage.migrate_postgres(pool)
        bench = Bench(pool, dsn, "choreography")  # its submits; its own followers never run
        await bench.catalog()
        yield bench, processes, pool
    finally:
        await processes.stop()
        await pool.close()


async def kafka_throughput(dsn: str, bootstrap: str, orders: int) -> float:
    async with prepared(dsn, bootstrap) as (bench, processes, pool):
        processes.start_participants()
        await processes.joined()
        order_ids = await bench.submit_queued(orders)
        processes.start_relay()
        await bench.until_confirmed(order_ids)
        first, last = await pool.fetchrow(
            "SELECT min(occurred_at) FILTER (WHERE type = 'FulfillmentStarted'), "
            "max(occurred_at) FILTER (WHERE type = 'OrderConfirmed') FROM events"
        )
        elapsed = float((last - first).total_seconds())
        say(
            f"choreography over Kafka throughput: {orders} sagas in {elapsed:.1f} s = "
            f"{orders / elapsed:.0f} sagas/s (relay and participants as processes)"
        )
        return orders / elapsed


async def kafka_latency(
    dsn: str, bootstrap: str, rate: float, seconds: float, warm_up: float
) -> KafkaLatency:
    async with prepared(dsn, bootstrap) as (bench, processes, _):
        processes.start_participants()
        processes.start_relay()
        await processes.joined()
        lags: list[int] = []
        done = asyncio.Event()

        admin = AdminClient({"bootstrap.servers": bootstrap})

        async def sample() -> None:
            while not done.is_set():
                lags.append(await asyncio.to_thread(processes.lag, admin))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        warm_ups = int(rate * warm_up)
        order_ids = await bench.submit_paced(rate, warm_ups + int(rate * seconds))
        await bench.until_confirmed(order_ids)
        done.set()
        await sampler
        p50, p99 = p50_p99_ms(await bench.to_confirmed(order_ids[warm_ups:]))
        peak = max(lags, default=0)
        mean = sum(lags) / len(lags) if lags else 0.0
        say(
            f"choreography over Kafka latency at {rate:g} submits/s: submitted -> "
            f"OrderConfirmed in the log p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 < 250 "
            f"ms); consumer lag peak {peak} records, mean {mean:.1f} ({len(lags)} samples)"
        )
        return KafkaLatency(p50, p99, peak, mean)
