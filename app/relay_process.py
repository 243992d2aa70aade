"""`orders relay`: the log's events to Kafka (messaging/relay.py), built from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from app.backends import LogBackend
from app.kafka_setup import broker_check
from app.settings import Settings
from log_follower.follower import FollowerParts
from messaging.cloudevents import ContentMode
from messaging.kafka_checkpoint import KafkaCheckpoint
from messaging.kafka_config import client_config, masked, producer_config
from messaging.kafka_producer import TransactionalProducer
from messaging.kafka_topics import TopicCreator
from messaging.relay import Relay, RelayMetrics, RelayOptions, end_on_fatal
from messaging.relay_source import RelaySource
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
    metrics = RelayMetrics(metrics_registry)
    # A fatal error (fenced) ends the process, whichever call meets it: a batch's send, the
    # follower's checkpoint save, taking the lead.
    producer = TransactionalProducer(
        config, timeout_seconds=settings.kafka_timeout_seconds, on_fatal=end_on_fatal(metrics)
    )
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
        metrics,
    )
    return RelayParts(relay, producer, checkpoint, client)


@contextlib.asynccontextmanager
async def relay_follower_parts(
    settings: Settings, backend: LogBackend, relay: Relay
) -> AsyncIterator[FollowerParts]:
    """The process's follower parts, reading batches of up to N events paced by T ms, read
    ahead and encoded by `relay` while it publishes (messaging/relay_source.py)."""
    from app.bootstrap import follower_parts

    parts = follower_parts(settings, backend)
    source = RelaySource(
        parts.source, settings.kafka_transaction_linger_ms / 1000, prepare=relay.prepare
    )
    try:
        yield dataclasses.replace(
            parts,
            source=source,
            settings=dataclasses.replace(
                parts.settings, batch_size=settings.kafka_transaction_max_records
            ),
        )
    finally:
        await source.close()


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
                async with relay_follower_parts(settings, backend, parts.relay) as follower_parts:
                    follower = Follower(parts.relay, follower_parts, checkpoint=parts.checkpoint)
                    await follower.run(stop, start=parts.relay.take_lead)
            finally:
                await parts.producer.close()
