"""A member of a Kafka consumer group: confluent-kafka's `Consumer` on a worker thread.

librdkafka's consumer calls block (poll, commit, seek, watermarks) and must not run on two
threads at once: every call runs on one thread of our own, in order, so the event loop never
waits on the broker. The group uses the KIP-848 protocol (`group.protocol=consumer`: the
broker assigns, a member joining or leaving moves only the partitions it must) with the
broker's `range` assignor, so partition N of every topic the group reads goes to the same
member: one key (an aggregate id, on the same partition of each topic of the same size) is
always handled by one member. Reads are `read_committed` (a relay's aborted transactions are
never seen); a new group starts at the earliest offset; offsets are committed only when the
caller says (never automatically).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from messaging.kafka_producer import KafkaUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

Partition = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """A record as read, with where it was read from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def consumer_config(
    client: Mapping[str, str], group: str, *, session_timeout_ms: int | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        **client,
        "group.id": group,
        "group.protocol": "consumer",
        "group.remote.assignor": "range",
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        # A topic another member (or the relay) created is seen within seconds.
        "topic.metadata.refresh.interval.ms": 5000,
        # A read_committed fetch waiting for data is not answered when a transaction
        # commits, only when this expires (500 ms by default): each hop of the saga would
        # wait that long. Idle, a member asks this often.
        "fetch.wait.max.ms": 25,
    }
    return config


class GroupConsumer:
    def __init__(
        self, config: Mapping[str, Any], topics: Sequence[str], *, timeout_seconds: float = 10.0
    ) -> None:
        self.group = str(config["group.id"])
        self.topics = list(topics)
        self._config = dict(config)
        self._timeout = timeout_seconds
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"kafka-{self.group}")
        self._consumer: Consumer | None = None
        self._assignment: frozenset[Partition] = frozenset()
        self._partition_counts: dict[str, int] = {}
        self.joined = False  # an assignment (even an empty one) came from the group
        self.rebalances = 0  # assignment changes since start
        self.on_change: Callable[[], None] | None = None  # called on the worker thread
        self.last_error: str | None = None
        self._failed_meanwhile = False

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    @property
    def assignment(self) -> frozenset[Partition]:
        return self._assignment

    @property
    def started(self) -> bool:
        return self._consumer is not None

    async def start(self) -> None:
        await self._run(self._start)

    async def poll(self, limit: int, wait_seconds: float) -> list[ConsumedRecord]:
        """Up to `limit` records: waits up to `wait_seconds` for the first, then takes what
        is fetched already (a record is handed on as soon as it arrives)."""
        return await self._run(self._poll, limit, wait_seconds)

    async def seek(self, offsets: Mapping[Partition, int]) -> None:
        """Read these partitions again from these offsets (those still assigned)."""
        await self._run(self._seek, dict(offsets))

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit the next offsets to read, synchronously; the broker away or this member
        fenced out of the group: KafkaUnavailable (its records are read again)."""
        await self._run(self._commit, dict(offsets))

    async def lag(self) -> dict[Partition, int]:
        """Records after this member's position on each partition it is assigned."""
        return await self._run(self._lag)

    async def partitions_of(self, topic: str) -> int:
        return await self._run(self._partitions_of, topic)

    async def close(self) -> None:
        await self._run(self._close)
        self._thread.shutdown(wait=True)

    # ------------------------------------------------------------- on the worker thread

    def _consumer_(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("the consumer is not started")
        return self._consumer

    def _start(self) -> None:
        if self._consumer is not None:
            return
        self._consumer = Consumer({**self._config, "error_cb": self._on_error})
        self._consumer.subscribe(
            self.topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )
        log.info("consumer group %s: subscribed to %s", self.group, ", ".join(self.topics))

    def _on_error(self, error: KafkaError) -> None:
        self._failed_meanwhile = True
        self.last_error = error.str()
        log.warning("kafka (group %s): %s", self.group, error.str())

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._changed(self._assignment | {(tp.topic, tp.partition) for tp in partitions})

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._changed(self._assignment - {(tp.topic, tp.partition) for tp in partitions})

    def _changed(self, assignment: frozenset[Partition]) -> None:
        self.joined = True
        if assignment == self._assignment:
            return
        self._assignment = assignment
        self.rebalances += 1
        log.info(
            "consumer group %s: assigned %s", self.group, describe(assignment) or "no partitions"
        )
        if self.on_change is not None:
            self.on_change()

    def _poll(self, limit: int, wait_seconds: float) -> list[ConsumedRecord]:
        consumer = self._consumer_()
        self._failed_meanwhile = False
        first = consumer.poll(wait_seconds)
        if first is None:
            if not self._failed_meanwhile:
                self.last_error = None  # the client said nothing was wrong while it waited
            return []
        messages = [first]
        if limit > 1:
            messages += consumer.consume(limit - 1, 0)
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                # Informational (a broker away, a topic not created yet): librdkafka retries;
                # logged by `_on_error`, which hears of the same errors.
                self.last_error = error.str()
                if error.fatal():
                    raise KafkaUnavailable(f"consumer group {self.group}: {error.str()}")
                log.debug("kafka (group %s): %s", self.group, error.str())
                continue
            _, timestamp = message.timestamp()
            records.append(
                ConsumedRecord(
                    topic=message.topic() or "",
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                    timestamp_ms=timestamp,
                    key=message.key(),
                    value=message.value() or b"",
                    headers=_headers(message.headers()),
                )
            )
        self.last_error = None
        return records

    def _seek(self, offsets: dict[Partition, int]) -> None:
        consumer = self._consumer_()
        for (topic, partition), offset in offsets.items():
            if (topic, partition) not in self._assignment:
                continue  # given to another member, which reads it from the committed offset
            try:
                consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as error:
                raise KafkaUnavailable(
                    f"seeking {topic}[{partition}]: {error.args[0].str()}"
                ) from None

    def _commit(self, offsets: dict[Partition, int]) -> None:
        if not offsets:
            return
        try:
            committed = self._consumer_().commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())],
                asynchronous=False,
            )
        except KafkaException as error:
            raise KafkaUnavailable(
                f"committing offsets of group {self.group}: {error.args[0].str()}"
            ) from None
        for tp in committed or []:
            if tp.error is not None:
                raise KafkaUnavailable(
                    f"committing offsets of group {self.group}: {tp.topic}[{tp.partition}]: "
                    f"{tp.error.str()}"
                )

    def _lag(self) -> dict[Partition, int]:
        consumer = self._consumer_()
        assigned = sorted(self._assignment)
        if not assigned:
            return {}
        positions = consumer.position([TopicPartition(t, p) for t, p in assigned])
        committed: dict[Partition, int] | None = None
        found = {}
        for tp in positions:
            partition = TopicPartition(tp.topic, tp.partition)
            try:
                # As of the last fetch (the member fetches from every partition it has, so
                # this is fresh); asked of the broker only before the first fetch.
                low, high = consumer.get_watermark_offsets(partition, cached=True)
                if high < 0:
                    low, high = consumer.get_watermark_offsets(partition, timeout=2.0)
            except KafkaException as error:
                raise KafkaUnavailable(f"watermarks: {error.args[0].str()}") from None
            offset = tp.offset
            if offset < 0:  # nothing read yet on it: from the committed offset, or the start
                if committed is None:
                    committed = {
                        (c.topic, c.partition): c.offset
                        for c in consumer.committed(
                            [TopicPartition(t, p) for t, p in assigned], timeout=2.0
                        )
                    }
                offset = committed.get((tp.topic, tp.partition), -1)
                offset = offset if offset >= 0 else low
            found[(tp.topic, tp.partition)] = max(0, high - offset)
        return found

    def _partitions_of(self, topic: str) -> int:
        if topic not in self._partition_counts:
            try:
                metadata = self._consumer_().list_topics(topic, timeout=self._timeout)
            except KafkaException as error:
                raise KafkaUnavailable(f"metadata of {topic}: {error.args[0].str()}") from None
            found = metadata.topics.get(topic)
            if found is None or found.error is not None or not found.partitions:
                raise KafkaUnavailable(f"topic {topic} is not known to the broker yet")
            self._partition_counts[topic] = len(found.partitions)
        return self._partition_counts[topic]

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()  # leaves the group: its partitions move at once
            self._consumer = None


def _headers(found: Any) -> tuple[tuple[str, bytes], ...]:
    return tuple((str(name), bytes(value or b"")) for name, value in found or [])


def describe(assignment: frozenset[Partition]) -> str:
    """`order-events[0,1] payment-events[0,1]`."""
    topics: dict[str, list[int]] = {}
    for topic, partition in sorted(assignment):
        topics.setdefault(topic, []).append(partition)
    return " ".join(f"{t}[{','.join(map(str, ps))}]" for t, ps in topics.items())
