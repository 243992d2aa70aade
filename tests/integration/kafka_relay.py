"""Helpers of the relay's tests: a log of a test's own with the relay's environment, the
relay as a process, a read_committed consumer of what it published, and the log it
published, to compare."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import jsonschema
from confluent_kafka import Consumer

from messaging.cloudevents import from_record
from messaging.event_schemas import SCHEMA_DIRECTORY
from tests.integration import write_side
from tests.integration.read_side import own_postgres_database, postgres_store
from write_model.bus import CommandBus
from write_model.envelope import LogPosition, RecordedEvent
from write_model.event_store.port import EventStore
from write_model.event_store.postgres import PostgresEventStore
from write_model.event_types import build_registry

ROOT = Path(__file__).resolve().parents[2]


def kafka_address() -> str:
    address = os.environ.get("ORDERS_TEST_KAFKA")
    if not address:
        raise AssertionError("ORDERS_TEST_KAFKA is not set: run the suite with `make test`")
    return address


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes
    headers: dict[str, bytes]
    event: dict[str, object]  # the CloudEvent: attributes and data


def relay_env(
    database_url: str, bootstrap: str, prefix: str, transactional_id: str, **more: str
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KAFKA_", "ORDERS_RELAY_"))
    }
    env.update(
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_TOPIC_PREFIX=prefix,
        KAFKA_TRANSACTIONAL_ID=transactional_id,
        KAFKA_TOPIC_PARTITIONS="3",
        KAFKA_REPLICATION_FACTOR="1",
        KAFKA_TIMEOUT_SECONDS="10",
        FOLLOWER_POLL_SECONDS="0.2",
        FOLLOWER_HEARTBEAT_SECONDS="0.5",
        LOG_LEVEL="INFO",
    )
    env.update(more)
    return env


class RelayProcess:
    """`orders relay` (or another `orders` command) as a process, its output in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, command: str = "relay") -> None:
        self.env = env
        self.log_path = log_path
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", self.command],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class TopicReader:
    """A read_committed consumer of every `<prefix>*-events` topic, from the beginning: what
    the topics hold, each record once.

    Its group commits no offsets, so each rebalance (a topic created while it reads matches
    the pattern; the broker restarted) starts it again from the earliest offset, and the
    records already read come again. Those are the same records, not a second publication:
    counted in `delivered_again`, kept once. A duplicate is the same event at two offsets."""

    bootstrap: str
    prefix: str
    config: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-reader-{self.prefix}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 500,
                **(self.config or {}),
            }
        )
        self.consumer.subscribe([f"^{self.prefix.replace('.', '[.]')}.*-events$"])
        self.read: list[Consumed] = []
        self.delivered_again = 0
        self._offsets_read: set[tuple[str, int, int]] = set()

    def poll_until(self, count: int, seconds: float, *, settle: float = 1.5) -> list[Consumed]:
        """Read until `count` records arrived (then `settle` seconds more, for duplicates) or
        `seconds` passed."""
        deadline = time.monotonic() + seconds
        settled_at: float | None = None
        while time.monotonic() < deadline:
            if len(self.read) >= count:
                settled_at = settled_at or time.monotonic() + settle
                if time.monotonic() >= settled_at:
                    break
            message = self.consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                continue  # unknown topic until the relay creates it; partition EOF
            topic, partition, offset = (
                message.topic() or "",
                message.partition() or 0,
                message.offset() or 0,
            )
            if (topic, partition, offset) in self._offsets_read:
                self.delivered_again += 1
                continue
            self._offsets_read.add((topic, partition, offset))
            headers = {name: value or b"" for name, value in message.headers() or []}
            self.read.append(
                Consumed(
                    topic,
                    partition,
                    offset,
                    message.key() or b"",
                    headers,
                    from_record(message.value() or b"", headers),
                )
            )
        return self.read

    def close(self) -> None:
        self.consumer.close()


async def whole_log(store: EventStore) -> list[RecordedEvent]:
    events: list[RecordedEvent] = []
    after = LogPosition.start()
    while batch := await store.read_all(after, 1000):
        events += batch
        after = batch[-1].log_position
    return events


def duplicates_and_missing(
    log: list[RecordedEvent], consumed: list[Consumed]
) -> tuple[list[str], list[str]]:
    ids = [str(record.event["id"]) for record in consumed]
    seen: set[str] = set()
    duplicates = [event_id for event_id in ids if event_id in seen or seen.add(event_id)]  # type: ignore[func-returns-value]
    missing = [str(event.event_id) for event in log if str(event.event_id) not in seen]
    return duplicates, missing


async def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds:g} s")
        await asyncio.sleep(0.1)


async def end_lock_session(database_url: str, follower: str) -> int:
    """pg_terminate_backend on the session that holds `follower`'s leader lock (as when the
    leader's network to PostgreSQL fails): how many sessions were ended."""
    connection = await asyncpg.connect(database_url)
    try:
        ended: int = await connection.fetchval(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            f"orders-lock {follower}",
        )
        return ended
    finally:
        await connection.close()


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


@dataclass(frozen=True)
class RelayLog:
    """One test's log: a PostgreSQL database of its own with its store and a bus over it,
    the relay's environment with a topic prefix and transactional.id of the test's own, and
    the folder the relays' output goes to."""

    url: str
    store: PostgresEventStore
    bus: CommandBus
    prefix: str
    env: dict[str, str]
    folder: Path

    def relay(self, name: str = "relay", **more_env: str) -> RelayProcess:
        """A relay of this log, not started; its output in `<name>.log`."""
        return RelayProcess({**self.env, **more_env}, self.folder / f"{name}.log")

    def reader(self) -> TopicReader:
        return TopicReader(kafka_address(), self.prefix)

    async def assert_published(
        self, reader: TopicReader, seconds: float, content_mode: str = "binary"
    ) -> list[Consumed]:
        """The whole log, read back through `reader` within `seconds`, is on Kafka exactly
        once (see `assert_published_exactly`)."""
        log = await whole_log(self.store)
        consumed = await asyncio.to_thread(reader.poll_until, len(log), seconds)
        assert_published_exactly(log, consumed, self.prefix, content_mode)
        return consumed


@contextlib.asynccontextmanager
async def relay_log(unique: str, folder: Path, letter: str) -> AsyncIterator[RelayLog]:
    """`letter` starts the topic prefix: tests of one run tell theirs apart by it."""
    prefix = f"{letter}{unique}."
    async with (
        own_postgres_database(f"relay_{unique}") as url,
        postgres_store(dsn=url) as store,
    ):
        env = relay_env(url, kafka_address(), prefix, f"relay-{unique}")
        bus = write_side.build_bus(store, max_attempts=50)
        yield RelayLog(url, store, bus, prefix, env, folder)
