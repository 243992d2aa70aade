"""The Kafka relay: a consumer of the one log follower that publishes every event of the log
to Kafka, exactly once for read_committed consumers.

The follower (log_follower/) leads through the leader lock (a second relay stands by), reads
gap-free batches (never past a transaction still in flight) and hands them here. Each batch
goes out as one Kafka transaction (or several of `max_records`), holding the batch's records
and the relay's checkpoint: both commit, or neither does. Taking the lead runs
`init_transactions`, which fences any earlier producer with the same transactional.id (a
zombie relay's next send fails `_FENCED`, and it exits) and ends its open transaction; the
checkpoint is then read back with read_committed. Events at or before the checkpoint are
never sent again, so a batch handed again after a crash or an abort goes out exactly once.

Errors: an abortable transaction is aborted and the batch handed again (the follower reads
it again after a backoff); the broker away is an outage the follower waits out without
reading further; a fatal error (fenced) ends the process with one log line and status 2,
whichever producer call meets it (`end_on_fatal`): a batch's transaction, the follower's
checkpoint heartbeat, or taking the lead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from log_follower.consumer import Batch, FollowerKind, KeyFailure, is_connection_error
from log_follower.follower import Follower
from log_follower.source.port import Source
from messaging.cloudevents import ContentMode, KafkaRecord, to_record
from messaging.kafka_checkpoint import KafkaCheckpoint
from messaging.kafka_producer import (
    KafkaFatal,
    OnFatal,
    TransactionAborted,
    TransactionalProducer,
)
from messaging.kafka_topics import TopicCreator
from write_model.envelope import LogPosition, RecordedEvent
from write_model.registry import EventTypeRegistry

log = logging.getLogger(__name__)

RELAY = "kafka-relay"
FATAL_EXIT_STATUS = 2


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "orders_relay_events_published",
            "Events the relay published to Kafka (counted when their transaction committed)",
            registry=registry,
        )
        self.transactions = Counter(
            "orders_relay_transactions",
            "Kafka transactions of the relay by outcome (committed, aborted)",
            ["outcome"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "orders_relay_commit_seconds",
            "From a transaction's begin to its commit",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        self.fenced = Counter(
            "orders_relay_fenced",
            "Times the relay was fenced by another with its transactional.id (it exits)",
            registry=registry,
        )
        self.position = Gauge(
            "orders_relay_position",
            "Global log position published up to (committed in Kafka)",
            registry=registry,
        )
        self.lag = Gauge(
            "orders_relay_lag_events",
            "Events in the log not yet published (read at scrape)",
            registry=registry,
        )
        self.oldest_unpublished_age = Gauge(
            "orders_relay_oldest_unpublished_age_seconds",
            "Age of the oldest event not yet published; 0 when none waits (read at scrape)",
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class RelayOptions:
    source: str = "/orders"
    mode: ContentMode = ContentMode.BINARY
    topic_prefix: str = ""
    max_records: int = 1000


class Relay:
    """The follower's consumer (log_follower.consumer.Consumer): every event, keyed by its
    stream (its order is kept per stream); `take_lead` is the follower's `start`."""

    def __init__(
        self,
        producer: TransactionalProducer,
        checkpoint: KafkaCheckpoint,
        topics: TopicCreator,
        registry: EventTypeRegistry,
        options: RelayOptions,
        metrics: RelayMetrics,
        *,
        name: str = RELAY,
    ) -> None:
        self._producer = producer
        self.checkpoint = checkpoint
        self._topics = topics
        self._registry = registry
        self._options = options
        self._metrics = metrics
        self._name = name
        self._doubtful_end: LogPosition | None = None
        # Records encoded ahead (`prepare`), by event id; each taken when its event is
        # handed, so at most the batch read ahead waits here.
        self._prepared: dict[UUID, KafkaRecord | Exception] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> FollowerKind:
        return FollowerKind.RELAY

    def key_of(self, event: RecordedEvent) -> str:
        return event.stream_id

    def is_outage(self, error: BaseException) -> bool:
        # KafkaUnavailable and TransactionAborted are ConnectionErrors: waited out, the
        # batch handed again; nothing the relay sends is ever parked for the broker's sake.
        return is_connection_error(error)

    async def take_lead(self, _follower: Follower) -> None:
        """Before the first batch of each leadership: fence every earlier producer of our
        transactional.id and end its transaction (the follower then loads the checkpoint,
        read_committed, from Kafka)."""
        self._prepared.clear()  # read while another process may have led
        # A transaction of the last leadership still in doubt is ended by `start` (the
        # checkpoint, loaded next, says whether it committed).
        self._doubtful_end = None
        await self._producer.start()
        log.info("relay leads: transactions initialised, earlier producers fenced")

    async def handle(self, batch: Batch) -> Sequence[KeyFailure]:
        log.debug("batch of %s events up to %s", len(batch.events), batch.end)
        return await self._handle(batch)

    async def _handle(self, batch: Batch) -> Sequence[KeyFailure]:
        if self._producer.in_doubt:
            if await self._producer.resolve() and self._doubtful_end is not None:
                self._committed(self._doubtful_end, 0)
        after = self.checkpoint.committed(self._name) or LogPosition.start()
        records: list[tuple[RecordedEvent, KafkaRecord]] = []
        failures: list[KeyFailure] = []
        failed_keys: set[str] = set()
        # Events at or before the checkpoint were published (a batch handed again after a
        # crash or an abort). The batch is in log order: when its first event is fresh, all are.
        stale = bool(batch.events) and batch.events[0].log_position <= after
        for event in batch.events:
            prepared = self._prepared.pop(event.event_id, None)
            if (stale and event.log_position <= after) or event.stream_id in failed_keys:
                continue
            encoded = self._encode(event) if prepared is None else prepared
            if isinstance(encoded, Exception):  # an event the registry cannot upcast
                failed_keys.add(event.stream_id)
                failures.append(KeyFailure(event.stream_id, event, encoded))
            else:
                records.append((event, encoded))
        await self._topics.ensure({record.topic for _, record in records})
        size = self._options.max_records
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            last = start + size >= len(records)
            # With a failed key the follower parks letters before it saves batch.end itself.
            end = batch.end if last and not failures else chunk[-1][0].log_position
            await self._send([record for _, record in chunk], end)
        if not records and not failures and batch.end > after:
            await self._send([], batch.end)
        return failures

    async def _send(self, records: list[KafkaRecord], end: LogPosition) -> None:
        self._doubtful_end = end
        started = time.monotonic()
        try:
            await self._producer.send([*records, self.checkpoint.record(self._name, end)])
        except TransactionAborted:
            self._metrics.transactions.labels("aborted").inc()
            raise
        self._metrics.commit_seconds.observe(time.monotonic() - started)
        self._committed(end, len(records))

    def _committed(self, end: LogPosition, published: int) -> None:
        self._doubtful_end = None
        self.checkpoint.mark_committed(self._name, end)
        self._metrics.transactions.labels("committed").inc()
        self._metrics.published.inc(published)
        self._metrics.position.set(end.position)

    async def refresh_lag(self, source: Source) -> None:
        """The lag figures of /metrics, from the log after the committed position."""
        after = self.checkpoint.committed(self._name) or LogPosition.start()
        self._metrics.lag.set(await source.count_after(after))
        oldest = await source.read(after, 1)
        age = (datetime.now(UTC) - oldest[0].occurred_at).total_seconds() if oldest else 0.0
        self._metrics.oldest_unpublished_age.set(max(age, 0.0))

    def prepare(self, events: Sequence[RecordedEvent]) -> None:
        """Encode `events` ahead, while the transaction before them commits (the relay's
        source calls this with each batch it reads ahead): `handle` then takes them as
        they are. An event that cannot be encoded keeps its error, for `handle` to park."""
        for event in events:
            self._prepared[event.event_id] = self._encode(event)

    def _encode(self, event: RecordedEvent) -> KafkaRecord | Exception:
        """The event's record, or why it cannot be made."""
        try:
            return self._record(event)
        except Exception as error:  # handed back, and its key parked, by `handle`
            return error

    def _record(self, event: RecordedEvent) -> KafkaRecord:
        version = self._registry.schema_version_of(event.type)
        data = self._registry.upcast(event.type, event.data, event.metadata.schema_version)
        return to_record(
            event,
            data,
            version,
            source=self._options.source,
            mode=self._options.mode,
            topic_prefix=self._options.topic_prefix,
        )


def end_on_fatal(metrics: RelayMetrics) -> OnFatal:
    """What the relay's producer does with a fatal error, whichever call met it: count a
    fencing, then end the process (exit_fatally)."""

    def fatal(error: KafkaFatal) -> NoReturn:
        if "fenced" in str(error).lower():
            metrics.fenced.inc()
        exit_fatally(f"relay stopped: Kafka says {error}; exiting with status 2")

    return fatal


def exit_fatally(message: str) -> NoReturn:
    """One clear log line, then the process ends with status 2 at once, for its supervisor
    to restart: nothing after a fatal producer error may run (the relay is crash-safe at any
    instruction, so no clean-up is needed)."""
    log.critical(message)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(FATAL_EXIT_STATUS)
