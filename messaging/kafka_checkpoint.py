"""The relay's checkpoint, in Kafka: an adapter of the follower's Checkpoint port.

Each position is a record of a compacted topic (key: the follower's name), written in the
same Kafka transaction as the records it covers, so the two commit or vanish together. It
is read back with `isolation.level=read_committed` after `init_transactions` (which ends any
transaction the last producer with our transactional.id left open): what it says is exactly
what read_committed consumers have seen. Saving a position already written with the relay's
records costs nothing; any other save (the follower's heartbeat after a batch it parked
whole) is a transaction of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from log_follower.checkpoint.port import Progress
from messaging.cloudevents import KafkaRecord
from messaging.kafka_producer import KafkaUnavailable, TransactionalProducer
from messaging.kafka_topics import TopicCreator
from write_model import backoff
from write_model.envelope import LogPosition

log = logging.getLogger(__name__)


class KafkaCheckpoint:
    def __init__(
        self,
        producer: TransactionalProducer,
        topics: TopicCreator,
        client_config: Mapping[str, str],
        topic: str,
        *,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._client_config = dict(client_config)
        self.topic = topic
        self._timeout = timeout_seconds
        self._committed: dict[str, LogPosition] = {}

    def record(self, follower: str, position: LogPosition) -> KafkaRecord:
        value = {"transactionId": position.transaction_id, "position": position.position}
        return KafkaRecord(self.topic, follower.encode(), orjson.dumps(value), ())

    def committed(self, follower: str) -> LogPosition | None:
        """The position last committed to Kafka by this process (or loaded)."""
        return self._committed.get(follower)

    def mark_committed(self, follower: str, position: LogPosition) -> None:
        """The relay committed `position` with its records."""
        self._committed[follower] = position

    async def load(self, follower: str) -> LogPosition | None:
        await self._topics.ensure([self.topic], compacted=True)
        log.debug("reading the checkpoint of %s from %s", follower, self.topic)
        found = await asyncio.to_thread(self._read, follower)
        log.debug("checkpoint of %s: %s", follower, found)
        if found is not None:
            self._committed[follower] = found
        return found

    async def save(self, follower: str, progress: Progress) -> None:
        if self._committed.get(follower) == progress.position:
            return
        await self._topics.ensure([self.topic], compacted=True)
        await self._producer.send([self.record(follower, progress.position)])
        self._committed[follower] = progress.position

    def _watermarks(self, consumer: Consumer) -> tuple[int, int]:
        """The checkpoint partition's offsets. A topic created a moment ago may not be in the
        client's metadata yet (`Unknown partition`): asked again until the timeout."""
        partition = TopicPartition(self.topic, 0, 0)
        deadline = time.monotonic() + self._timeout
        failures = 0
        while True:
            try:
                low, high = consumer.get_watermark_offsets(partition, timeout=self._timeout)
                return int(low), int(high)
            except KafkaException as error:
                code = error.args[0].code()
                unknown = code in (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART)
                if not unknown or time.monotonic() > deadline:
                    raise
                failures += 1
                time.sleep(backoff.delay(failures, 0.05, 1.0))

    def _read(self, follower: str) -> LogPosition | None:
        consumer = Consumer(
            {
                **self._client_config,
                "group.id": f"orders-checkpoint-reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        try:
            low, high = self._watermarks(consumer)
            if high == low:
                return None
            consumer.assign([TopicPartition(self.topic, 0, low)])
            found: LogPosition | None = None
            while True:
                message = consumer.poll(self._timeout)
                if message is None:
                    raise KafkaUnavailable(f"reading {self.topic}: no answer in time")
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return found
                    raise KafkaUnavailable(f"reading {self.topic}: {error.str()}")
                if message.key() == follower.encode():
                    value = orjson.loads(message.value() or b"{}")
                    found = LogPosition(int(value["transactionId"]), int(value["position"]))
        except KafkaException as error:
            raise KafkaUnavailable(f"reading {self.topic}: {error.args[0].str()}") from None
        finally:
            consumer.close()
