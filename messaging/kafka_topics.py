"""Topics the relay writes to, created when missing: each sized for the largest record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported, undeclared

from messaging.kafka_config import MAX_RECORD_BYTES
from messaging.kafka_producer import KafkaUnavailable


class TopicCreator:
    def __init__(
        self,
        client_config: Mapping[str, str],
        *,
        partitions: int,
        replication_factor: int | None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._admin = AdminClient(dict(client_config))
        self._partitions = partitions
        self._replication = replication_factor or -1  # -1: the broker's default
        self._timeout = timeout_seconds
        self._known: set[str] = set()

    async def ensure(self, topics: Iterable[str], *, compacted: bool = False) -> None:
        missing = set(topics) - self._known
        if missing:
            await asyncio.to_thread(self._create, missing, compacted)
            self._known |= missing

    def _create(self, topics: set[str], compacted: bool) -> None:
        try:
            existing = self._admin.list_topics(timeout=self._timeout).topics
        except KafkaException as error:
            raise KafkaUnavailable(f"listing topics: {error.args[0].str()}") from None
        config = {"max.message.bytes": str(MAX_RECORD_BYTES + 65_536)}
        if compacted:
            config["cleanup.policy"] = "compact"
        new = [
            NewTopic(
                topic,
                num_partitions=1 if compacted else self._partitions,
                replication_factor=self._replication,
                config=config,
            )
            for topic in sorted(topics - existing.keys())
        ]
        if not new:
            return
        for topic, future in self._admin.create_topics(
            new, operation_timeout=self._timeout, request_timeout=self._timeout
        ).items():
            try:
                future.result()
            except KafkaException as error:
                kafka_error: KafkaError = error.args[0]
                if kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                if kafka_error.retriable():
                    raise KafkaUnavailable(f"creating {topic}: {kafka_error.str()}") from None
                raise TopicNotCreated(f"creating topic {topic}: {kafka_error.str()}") from None


class TopicNotCreated(Exception):
    """The broker refused a topic (a replication factor above its brokers, no permission)."""
