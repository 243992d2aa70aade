"""The choreography's participants over Kafka: with KAFKA_BOOTSTRAP_SERVERS set and
SAGA_MODE=choreography, `orders participant <name>` (and `orders saga`, for all three) follow
the relay's topics in a consumer group per participant (messaging/kafka_source.py) instead
of the log; started twice, the members share the partitions.

Each participant's follower is named by its group (`KAFKA_CONSUMER_GROUP`, by default
`<prefix>orders-<participant>`): its status, its dead letters (`deadLetters` shows the group)
and its metrics. Parked records are published to `<prefix>dead-letter-queue`
(messaging/dead_letter_topic.py). /readyz checks the broker and shows each group's
assignment; /metrics adds the consumer lag per group and partition, records handled,
retries and rebalances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.backends import LogBackend
from app.kafka_setup import consumer_group
from app.settings import Settings
from log_follower.consumer import Batch, Consumer, KeyFailure
from log_follower.dead_letters.port import LetterOwner
from log_follower.follower import Follower, FollowerParts, FollowerSettings
from messaging.dead_letter_topic import DeadLetterPublisher, GroupDeadLetters
from messaging.group_consumer import GroupConsumer, consumer_config, describe
from messaging.kafka_config import client_config
from messaging.kafka_source import KafkaSource, MemberStatusBoard, RecordsConsumer
from messaging.kafka_topics import TopicCreator
from sagas.choreography.participant import FulfillmentParticipant, trigger_topics
from write_model.domain.choreography import Participant

log = logging.getLogger(__name__)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "orders_consumer_records",
            "Records handed to a participant by its consumer group (first deliveries)",
            ["group"],
            registry=registry,
        )
        self.retries = Counter(
            "orders_consumer_retries",
            "Records handed again after their key failed (retries, redrives)",
            ["group"],
            registry=registry,
        )
        self.lag = Gauge(
            "orders_consumer_lag_records",
            "Records after this member's position, per group and partition (read at scrape)",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.assigned = Gauge(
            "orders_consumer_assigned_partitions",
            "Partitions the group has assigned to this member",
            ["group"],
            registry=registry,
        )
        self.rebalances = Gauge(
            "orders_consumer_assignment_changes",
            "Times this member's assignment changed since it started",
            ["group"],
            registry=registry,
        )


class CountedConsumer:
    """A consumer whose batches are counted in the group's metrics."""

    def __init__(self, consumer: Consumer, group: str, metrics: ConsumerMetrics) -> None:
        self._consumer = consumer
        self._records = metrics.records.labels(group)
        self._retries = metrics.retries.labels(group)
        self.name = consumer.name
        self.kind = consumer.kind
        self.key_of = consumer.key_of
        self.is_outage = consumer.is_outage

    async def handle(self, batch: Batch) -> Sequence[KeyFailure]:
        (self._retries if batch.redelivered else self._records).inc(len(batch.events))
        return await self._consumer.handle(batch)


@dataclass
class GroupMember:
    participant: Participant
    group: str
    consumer: GroupConsumer
    follower: Follower


@dataclass
class KafkaParticipants:
    members: list[GroupMember]
    metrics: ConsumerMetrics
    publisher: DeadLetterPublisher
    client: dict[str, str]

    async def readiness_details(self) -> dict[str, object]:
        return {
            "consumer_groups": {
                member.group: {
                    "joined": member.consumer.joined,
                    "assignment": describe(member.consumer.assignment) or "no partitions",
                    "last_error": member.consumer.last_error,
                }
                for member in self.members
            }
        }

    async def group_check(self) -> dict[str, str]:
        """Each group's member is subscribed and its last call to the broker went well (a
        member may have no partitions: more members than partitions)."""
        return {
            f"group {m.group}": (
                "not subscribed yet" if not m.consumer.started else m.consumer.last_error or "ok"
            )
            for m in self.members
        }

    async def refresh_metrics(self) -> None:
        for member in self.members:
            assignment = member.consumer.assignment
            self.metrics.assigned.labels(member.group).set(len(assignment))
            self.metrics.rebalances.labels(member.group).set(member.consumer.rebalances)
            for (topic, partition), lag in (await member.consumer.lag()).items():
                self.metrics.lag.labels(member.group, topic, str(partition)).set(lag)

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            for member in self.members:
                tasks.create_task(member.follower.run(stop), name=member.group)


@contextlib.asynccontextmanager
async def kafka_participants(
    settings: Settings,
    backend: LogBackend,
    consumers: Sequence[Consumer],
    follower_settings: FollowerSettings,
    registry: CollectorRegistry,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[KafkaParticipants]:
    """A group member per participant consumer (`saga_consumers`' PerKeyConsumers), its
    topics created when missing (as the relay would: the same partitions, so partition N of
    each holds the same keys); the consumers and the publisher closed at the end."""
    servers = settings.kafka_bootstrap_servers
    assert servers, "KAFKA_BOOTSTRAP_SERVERS is set"
    environ = dict(os.environ) if environ is None else environ
    client = client_config(servers, environ)
    prefix = settings.kafka_topic_prefix
    dead_letter_topic = prefix + settings.kafka_dead_letter_topic
    topics = TopicCreator(
        client,
        partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_replication_factor,
        timeout_seconds=settings.kafka_timeout_seconds,
    )
    metrics = ConsumerMetrics(registry)
    publisher = DeadLetterPublisher(client, timeout_seconds=settings.kafka_timeout_seconds)
    members: list[GroupMember] = []
    try:
        for consumer in consumers:
            handler = getattr(consumer, "handler", None)
            assert isinstance(handler, FulfillmentParticipant), consumer
            participant = handler.participant
            group = consumer_group(settings, participant)
            reads = trigger_topics(participant, prefix)
            await topics.ensure([*reads, dead_letter_topic])
            group_consumer = GroupConsumer(
                consumer_config(client, group),
                reads,
                timeout_seconds=settings.kafka_timeout_seconds,
            )
            source = KafkaSource(group_consumer, backend.source)
            parts = FollowerParts(
                source=source,
                checkpoint=source,
                dead_letters=GroupDeadLetters(
                    backend.followers.dead_letters, source, publisher, dead_letter_topic
                ),
                status=MemberStatusBoard(
                    backend.followers.status, group_consumer, backend.events.head_position
                ),
                settings=follower_settings,
            )
            follower = Follower(
                RecordsConsumer(CountedConsumer(consumer, group, metrics)),
                parts,
                checkpoint_name=group,
                owner=LetterOwner(group),
            )
            members.append(GroupMember(participant, group, group_consumer, follower))
        yield KafkaParticipants(members, metrics, publisher, client)
    finally:
        for member in members:
            try:
                await member.consumer.close()
            except Exception as error:  # leaving the group: the session timeout does it too
                log.warning("group %s: closing its consumer: %s", member.group, error)
        await publisher.close()
