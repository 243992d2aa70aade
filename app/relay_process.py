"""`orders relay`: the log's events to Kafka (messaging/relay.py), built from the settings."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from app.backends import LogBackend
from app.ops_server import Checks
from app.settings import Settings
from log_follower.follower import FollowerParts
from messaging.cloudevents import ContentMode
from messaging.kafka_checkpoint import KafkaCheckpoint
from messaging.kafka_config import client_config, mask_text, masked, producer_config
from messaging.kafka_producer import TransactionalProducer
from messaging.kafka_topics import TopicCreator
from messaging.lingering_source import LingeringSource
from messaging.relay import Relay, RelayMetrics, RelayOptions
from write_model.registry import EventTypeRegistry

log = logging.getLogger(__name__)

CHECKPOINT_TOPIC = "orders-relay-checkpoints"


@dataclass(frozen=True)
class RelayParts:
    relay: Relay
    producer: TransactionalProducer
    checkpoint: KafkaCheckpoint
    client_config: dict[str, str]


def build_relay(
    settings: Settings,
    registry: EventTypeRegistry,
    metrics_registry: CollectorRegistry,
    environ: Mapping[str, str],
) -> RelayParts:
    servers = settings.kafka_bootstrap_servers
    if not servers:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set: the relay has nowhere to publish")
    client = client_config(servers, environ)
    config = producer_config(
        servers,
        settings.kafka_transactional_id,
        environ,
        timeout_seconds=settings.kafka_timeout_seconds,
    )
    log.info("relay producer configuration: %s", masked(config, environ))
    producer = TransactionalProducer(config, timeout_seconds=settings.kafka_timeout_seconds)
    topics = TopicCreator(
        client,
        partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_replication_factor,
        timeout_seconds=settings.kafka_timeout_seconds,
    )
    checkpoint = KafkaCheckpoint(
        producer,
        topics,
        client,
        settings.kafka_topic_prefix + CHECKPOINT_TOPIC,
        timeout_seconds=settings.kafka_timeout_seconds,
    )
    relay = Relay(
        producer,
        checkpoint,
        topics,
        registry,
        RelayOptions(
            source=settings.kafka_source,
            mode=ContentMode(settings.kafka_content_mode),
            topic_prefix=settings.kafka_topic_prefix,
            max_records=settings.kafka_transaction_max_records,
        ),
        RelayMetrics(metrics_registry),
    )
    return RelayParts(relay, producer, checkpoint, client)


def broker_check(client: Mapping[str, str], environ: Mapping[str, str]) -> Checks:
    """/readyz's `kafka` check: the cluster answers a metadata request within 2 s."""
    admin = AdminClient({**client})

    async def check() -> dict[str, str]:
        try:
            await asyncio.to_thread(admin.list_topics, timeout=2.0)
            return {"kafka": "ok"}
        except KafkaException as error:
            return {"kafka": mask_text(error.args[0].str(), environ)}

    return check


def relay_follower_parts(settings: Settings, backend: LogBackend) -> FollowerParts:
    """The process's follower parts, reading batches of N events that linger T ms."""
    from app.bootstrap import follower_parts

    parts = follower_parts(settings, backend)
    return dataclasses.replace(
        parts,
        source=LingeringSource(parts.source, settings.kafka_transaction_linger_ms / 1000),
        settings=dataclasses.replace(
            parts.settings, batch_size=settings.kafka_transaction_max_records
        ),
    )


async def run_relay_process(settings: Settings, stop: asyncio.Event) -> None:
    """Lead (or stand by for) the relay until `stop`, with the ops endpoints on OPS_PORT."""
    from app.backends import shared_log_backend
    from app.metrics import Metrics
    from app.ops_server import ops_server
    from log_follower.follower import Follower

    metrics = Metrics()
    environ = dict(os.environ)
    async with shared_log_backend(
        settings, follows_log=True, migrates=settings.migrate_on_start
    ) as backend:
        parts = build_relay(settings, backend.registry, metrics.registry, environ)
        async with ops_server(
            settings,
            backend,
            None,
            metrics=metrics,
            more_checks=broker_check(parts.client_config, environ),
            refresh_metrics=lambda: parts.relay.refresh_lag(backend.source),
        ):
            try:
                follower = Follower(
                    parts.relay,
                    relay_follower_parts(settings, backend),
                    checkpoint=parts.checkpoint,
                )
                await follower.run(stop, start=parts.relay.take_lead)
            finally:
                await parts.producer.close()
