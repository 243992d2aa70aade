"""Dead letters of a consumer group: kept in the follower's one dead-letter store (PostgreSQL,
so every member of the group sees them across rebalances) and published to the dead-letter
topic `<prefix>dead-letter-queue` as their copy for tools that read Kafka.

Each letter goes out with its original record's key, value and headers, plus Spring Kafka's
`kafka_dlt-*` headers (so existing tools read them): the original topic, partition (4-byte
big-endian int), offset and timestamp (8-byte big-endian longs), the consumer group, the
exception's class, message and stack trace; and the tries (`kafka_deliveryAttempt`, a 4-byte
int, Spring's delivery-attempt header) and when it was parked (`orders_dlt-parked-at`, RFC
3339). A letter parked behind an earlier one of its key names `ParkedBehind` as its
exception. The store is written first: a copy lost to a crash before publishing is sent
again when the batch is read again (the topic may hold a letter twice, the store never).

`retry_requested` answers only the keys on this member's partitions: the member that owns a
key's partition is the one that re-runs its letters, between its batches.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from log_follower.dead_letters.port import PARKED_BEHIND, DeadLetter, DeadLetters, LetterOwner
from messaging.cloudevents import KafkaRecord
from messaging.group_consumer import ConsumedRecord
from messaging.kafka_producer import KafkaUnavailable
from messaging.kafka_source import KafkaSource

log = logging.getLogger(__name__)

DEAD_LETTER_TOPIC = "dead-letter-queue"


class ParkedBehind(Exception):
    """Not a failure of the record: an earlier record of its key failed and is parked."""


def _qualified(error: BaseException) -> str:
    kind = type(error)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def dead_letter_record(
    letter: DeadLetter, record: ConsumedRecord, group: str, topic: str
) -> KafkaRecord:
    """The letter's copy on the dead-letter topic, keyed as its original record."""
    error = letter.cause if letter.cause is not None else ParkedBehind(PARKED_BEHIND)
    if letter.cause is None and letter.error != PARKED_BEHIND:
        error = Exception(letter.error)
    stack = "".join(traceback.format_exception(error)) if error.__traceback__ else letter.error
    headers = (
        *record.headers,
        ("kafka_dlt-original-topic", record.topic.encode()),
        ("kafka_dlt-original-partition", record.partition.to_bytes(4, "big", signed=True)),
        ("kafka_dlt-original-offset", record.offset.to_bytes(8, "big", signed=True)),
        ("kafka_dlt-original-timestamp", record.timestamp_ms.to_bytes(8, "big", signed=True)),
        ("kafka_dlt-original-timestamp-type", b"CreateTime"),
        ("kafka_dlt-original-consumer-group", group.encode()),
        ("kafka_dlt-exception-fqcn", _qualified(error).encode()),
        ("kafka_dlt-exception-message", str(error).encode()),
        ("kafka_dlt-exception-stacktrace", stack.encode()),
        ("kafka_deliveryAttempt", letter.attempts.to_bytes(4, "big", signed=True)),
        ("orders_dlt-parked-at", letter.failed_at.astimezone(UTC).isoformat().encode()),
    )
    return KafkaRecord(topic, record.key or b"", record.value, headers)


class DeadLetterPublisher:
    """An idempotent producer on a worker thread: `send` returns once every record is
    acknowledged by the broker (KafkaUnavailable when it is not)."""

    def __init__(self, config: Mapping[str, Any], *, timeout_seconds: float = 10.0) -> None:
        self._config = {**config, "enable.idempotence": True, "acks": "all"}
        self._timeout = timeout_seconds
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kafka-dead-letters")
        self._producer: Producer | None = None

    async def send(self, records: Sequence[KafkaRecord]) -> None:
        if records:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._send, records)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _send(self, records: Sequence[KafkaRecord]) -> None:
        if self._producer is None:
            self._producer = Producer(self._config)
        errors: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                errors.append(error)

        try:
            for record in records:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                    on_delivery=delivered,
                )
        except (BufferError, KafkaException) as error:
            raise KafkaUnavailable(f"publishing dead letters: {error}") from None
        if self._producer.flush(self._timeout) > 0:
            raise KafkaUnavailable("publishing dead letters: not acknowledged in time")
        if errors:
            raise KafkaUnavailable(f"publishing dead letters: {errors[0].str()}")

    def _close(self) -> None:
        if self._producer is not None:
            self._producer.flush(min(self._timeout, 5.0))


class GroupDeadLetters:
    """The follower's dead-letter store as one consumer group's member uses it."""

    def __init__(
        self,
        store: DeadLetters,
        source: KafkaSource,
        publisher: DeadLetterPublisher,
        topic: str,
    ) -> None:
        self._store = store
        self._source = source
        self._publisher = publisher
        self.topic = topic

    async def park(self, letters: Sequence[DeadLetter]) -> None:
        await self._store.park(letters)
        group = self._source.consumer.group
        copies = [
            dead_letter_record(letter, record, group, self.topic)
            for letter in letters
            if (record := self._source.record_of(letter.event_id)) is not None
        ]
        await self._publisher.send(copies)
        log.info("group %s: %s dead letters published to %s", group, len(copies), self.topic)

    async def retry_requested(self, owner: LetterOwner) -> list[str]:
        keys = await self._store.retry_requested(owner)
        mine = []
        for key in keys:
            letters = await self._store.of_key(owner, key)
            if letters and await self._source.owns(key, letters[0].stream_id):
                mine.append(key)
        return mine

    async def parked_keys(self, owner: LetterOwner) -> set[str]:
        return await self._store.parked_keys(owner)

    async def of_key(self, owner: LetterOwner, key: str) -> list[DeadLetter]:
        return await self._store.of_key(owner, key)

    async def get(self, letter_id: str) -> DeadLetter | None:
        return await self._store.get(letter_id)

    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[DeadLetter]:
        return await self._store.page(limit, after)

    async def request_retry(self, letter_id: str) -> bool:
        return await self._store.request_retry(letter_id)

    async def record_retry_failure(
        self, owner: LetterOwner, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        await self._store.record_retry_failure(owner, key, error, attempts, failed_at)

    async def remove(self, letter_ids: Sequence[str]) -> None:
        await self._store.remove(letter_ids)

    async def remove_owner(self, owner: LetterOwner) -> None:
        await self._store.remove_owner(owner)

    async def count(self, follower: str | None = None) -> int:
        return await self._store.count(follower)
