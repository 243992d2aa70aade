"""What the composition root needs to know of Kafka, apart from any process: whether the
choreography's participants consume Kafka, each participant's consumer group, and the
broker check of /readyz (the relay's and the participants')."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from app.settings import Settings
from messaging.kafka_config import mask_text
from write_model.domain.choreography import Participant


def consumes_kafka(settings: Settings) -> bool:
    """Whether the participants follow Kafka rather than the log."""
    return bool(settings.kafka_bootstrap_servers) and settings.saga_mode == "choreography"


def consumer_group(settings: Settings, participant: Participant) -> str:
    return settings.kafka_consumer_group.format(
        prefix=settings.kafka_topic_prefix, participant=participant.value.lower()
    )


def broker_check(
    client: Mapping[str, str], environ: Mapping[str, str]
) -> Callable[[], Awaitable[dict[str, str] | None]]:
    """/readyz's `kafka` check: the cluster answers a metadata request within 2 s."""
    admin = AdminClient({**client})

    async def check() -> dict[str, str] | None:
        try:
            await asyncio.to_thread(admin.list_topics, timeout=2.0)
            return {"kafka": "ok"}
        except KafkaException as error:
            return {"kafka": mask_text(error.args[0].str(), environ)}

    return check
