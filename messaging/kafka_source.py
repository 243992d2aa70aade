"""A Kafka consumer group as a source of the one log follower (log_follower/): the follower's
retries, parking, dead letters, status and metrics work on the topics the relay publishes
as they do on the log.

`KafkaSource` is both the follower's `Source` and its `Checkpoint`:

- leading is membership of the group: no leader lock, the group's assignment says which keys
  this member follows. When the assignment changes, `lost` turns true once, so the follower
  leads again (and reads afresh which keys are parked: another member may have parked some
  of the partitions it now has);
- `read` decodes the records of a poll (messaging/cloudevents.py, the relay's own mapping)
  into the events they were published from, in log order (each partition is in log order;
  partitions of different topics merge by their place in the log). A record that is not one
  of our CloudEvents becomes a `MALFORMED` event of its key, which `RecordsConsumer` fails,
  so the follower parks it with a clear reason (and the key's later records behind it);
- `save` commits the offsets of the batch handed last, which the follower calls only once
  the effects (or the letters) of the whole batch are durable; a batch read but not saved
  (an outage, a failure outside any key) is read again: `read` seeks back to its first
  offsets first. A member killed mid-batch commits nothing of it, and the member that gets
  its partitions reads it again: redelivery, which the participants answer with nothing new
  (their event ids derive from the trigger's).
- the events of parked letters, for a retry, come from the log (`events_of` of the log's
  source): they are the same events, by id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from log_follower.checkpoint.port import Progress
from log_follower.consumer import Batch, Consumer, FollowerKind, KeyFailure
from log_follower.source.port import Source
from log_follower.status.port import FollowerReport, StatusBoard
from messaging.cloudevents import MalformedRecord, to_event
from messaging.group_consumer import ConsumedRecord, GroupConsumer, Partition, describe
from messaging.partitions import partition_of
from write_model.envelope import EventMetadata, LogPosition, RecordedEvent

log = logging.getLogger(__name__)

# The type of the stand-in event of a record that could not be decoded.
MALFORMED = "MalformedKafkaRecord"
_RECORD_IDS = uuid.UUID("5a0f3c1e-8d2b-4f7a-9c61-3e2d9b7a4c10")


@dataclass
class _Handed:
    """The batch read last: where each of its partitions starts (to read it again) and the
    offsets to commit once it is done."""

    first: dict[Partition, int]
    after: dict[Partition, int]
    committed: bool = False


class _Immediately:
    """The append listener of a Kafka source: its `read` waits for records itself."""

    async def wait(self, poll_seconds: float) -> None:
        return None


class KafkaSource:
    def __init__(
        self, consumer: GroupConsumer, log_source: Source, *, wait_seconds: float = 0.5
    ) -> None:
        self.consumer = consumer
        self._log = log_source
        self._wait = wait_seconds
        self._handed: _Handed | None = None
        self._records: dict[str, ConsumedRecord] = {}  # event id -> record, of the last batch
        self._head = LogPosition.start()
        self._changed = False
        consumer.on_change = self._assignment_changed

    def _assignment_changed(self) -> None:
        self._changed = True

    # ---------------------------------------------------------------- Source

    @contextlib.asynccontextmanager
    async def lead(self, follower: str) -> AsyncIterator[None]:
        await self.consumer.start()
        self._changed = False
        yield

    def lost(self, follower: str) -> bool:
        return self._changed

    def listener(self) -> _Immediately:
        return _Immediately()

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        handed = self._handed
        if handed is not None and not handed.committed:
            log.info("group %s: reading its last batch again", self.consumer.group)
            await self.consumer.seek(handed.first)
        self._handed = None
        changed = self._changed
        records = await self.consumer.poll(limit, self._wait)
        if not records:
            return []
        first: dict[Partition, int] = {}
        after_offsets: dict[Partition, int] = {}
        for record in records:
            where = (record.topic, record.partition)
            first.setdefault(where, record.offset)
            after_offsets[where] = record.offset + 1
        if self._changed and not changed:
            # Partitions came or went during this poll: not handed before the follower leads
            # again and learns which keys of its new partitions are parked.
            await self.consumer.seek(first)
            return []
        events = []
        self._records = {}
        for record in records:
            event = decoded(record)
            self._records[str(event.event_id)] = record
            events.append(event)
        self._handed = _Handed(first, after_offsets)
        events.sort(key=lambda event: event.log_position)
        self._head = max(self._head, events[-1].log_position)
        return events

    async def events_of(self, refs: Sequence[tuple[str, int]]) -> list[RecordedEvent]:
        return await self._log.events_of(refs)

    async def head(self) -> LogPosition:
        return self._head

    async def count_after(self, position: LogPosition) -> int:
        return sum((await self.consumer.lag()).values())

    # ------------------------------------------------------------ Checkpoint

    async def load(self, follower: str) -> LogPosition | None:
        return None  # the group's committed offsets are where it resumes

    async def save(self, follower: str, progress: Progress) -> None:
        handed = self._handed
        if handed is None or handed.committed:
            return
        await self.consumer.commit(handed.after)
        handed.committed = True

    # ----------------------------------------------------------- for letters

    def record_of(self, event_id: str) -> ConsumedRecord | None:
        """The record an event of the last batch was read from."""
        return self._records.get(event_id)

    async def owns(self, key: str, stream_id: str) -> bool:
        """Whether this member is assigned the partition of `key` (on the topic of
        `stream_id`'s records, or any topic it reads of the same size)."""
        from messaging.cloudevents import category_of

        assignment = self.consumer.assignment
        topics = [t for t in self.consumer.topics if t.endswith(f"{category_of(stream_id)}-events")]
        for topic in topics or self.consumer.topics[:1]:
            partition = partition_of(key.encode(), await self.consumer.partitions_of(topic))
            if (topic, partition) in assignment:
                return True
        return False


def decoded(record: ConsumedRecord) -> RecordedEvent:
    try:
        return to_event(record.value, dict(record.headers))
    except MalformedRecord as error:
        return malformed(record, str(error))


def malformed(record: ConsumedRecord, reason: str) -> RecordedEvent:
    """The stand-in of a record that is not one of our CloudEvents: of its key (or of its
    partition, without one), first of its batch, with why in its data."""
    where = f"{record.topic}:{record.partition}:{record.offset}"
    key = (
        record.key.decode(errors="replace") if record.key else f"{record.topic}:{record.partition}"
    )
    return RecordedEvent(
        event_id=uuid.uuid5(_RECORD_IDS, where),
        stream_id=f"KafkaRecord-{where}",
        type=MALFORMED,
        version=record.offset + 1,
        position=0,
        transaction_id=0,
        occurred_at=datetime.fromtimestamp(max(record.timestamp_ms, 0) / 1000, UTC),
        data={"key": key, "reason": reason},
        metadata=EventMetadata(correlation_id=where),
    )


class RecordsConsumer:
    """A follower's consumer reading from Kafka: the records that could not be decoded fail
    their key (so the follower parks them, with their reason, and the key's later records
    behind them); the rest go to `consumer`."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    @property
    def name(self) -> str:
        return self.consumer.name

    @property
    def kind(self) -> FollowerKind:
        return self.consumer.kind

    def key_of(self, event: RecordedEvent) -> str | None:
        if event.type == MALFORMED:
            return str(event.data["key"])
        return self.consumer.key_of(event)

    async def handle(self, batch: Batch) -> Sequence[KeyFailure]:
        failures = [
            KeyFailure(str(e.data["key"]), e, MalformedRecord(str(e.data["reason"])))
            for e in batch.events
            if e.type == MALFORMED
        ]
        failed = {failure.key for failure in failures}
        rest = [e for e in batch.events if e.type != MALFORMED and self.key_of(e) not in failed]
        if rest:
            failures += await self.consumer.handle(Batch(rest, batch.end, batch.redelivered))
        return failures

    def is_outage(self, error: BaseException) -> bool:
        return self.consumer.is_outage(error)


class MemberStatusBoard:
    """The follower's status board as a group member reports on it: its `leader` names the
    member and its assignment (`host:pid (order-events[0,1] ...)`), so `processes` shows
    which partitions the member that reported last follows. Its position is that of the
    last event it handled, which the log's later events of other topics would count as lag
    for ever: with nothing left to read on its partitions, it reports the log's head
    (`head`), as a follower of the log does once it has read everything."""

    def __init__(
        self,
        board: StatusBoard,
        consumer: GroupConsumer,
        head: Callable[[], Awaitable[LogPosition]],
    ) -> None:
        self._board = board
        self._consumer = consumer
        self._head = head

    async def report(self, report: FollowerReport) -> None:
        assignment = describe(self._consumer.assignment) or "no partitions"
        position = report.position
        if self._consumer.started and not any((await self._consumer.lag()).values()):
            position = max(position, await self._head())
        await self._board.report(
            dataclasses.replace(report, leader=f"{report.leader} ({assignment})", position=position)
        )

    async def reports(self) -> list[FollowerReport]:
        return await self._board.reports()
