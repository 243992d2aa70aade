"""The relay tests' read_committed reader (tests/integration/kafka_relay.py) against the real
broker: it reports what the topics hold. A topic created while it reads rebalances its group,
which commits no offsets, so the consumer is handed every record again from the earliest:
those re-reads are no duplicates, while the same event written at two offsets is one."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported, undeclared

from messaging.cloudevents import CLOUDEVENTS_JSON
from tests.integration.kafka_relay import TopicReader, duplicates_and_missing, kafka_address

pytestmark = [pytest.mark.kafka]


def create_topic(name: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_address()})
    for created in admin.create_topics([NewTopic(name, 3, 1)]).values():
        created.result(timeout=30)


def publish(topic: str, event_ids: list[str]) -> None:
    producer = Producer({"bootstrap.servers": kafka_address(), "enable.idempotence": True})
    for n, event_id in enumerate(event_ids):
        event = {"specversion": "1.0", "id": event_id, "source": "/test", "type": "t", "data": {}}
        producer.produce(
            topic,
            key=f"k{n}".encode(),
            value=orjson.dumps(event),
            headers=[("content-type", CLOUDEVENTS_JSON.encode())],
        )
    assert producer.flush(30) == 0


def test_records_handed_again_after_a_rebalance_are_no_duplicates_but_a_second_write_is(
    unique: str,
) -> None:
    prefix = f"r{unique}."
    first = [str(uuid.uuid4()) for _ in range(20)]
    written_twice = first[7]
    create_topic(f"{prefix}a-events")
    publish(f"{prefix}a-events", [*first, written_twice])
    reader = TopicReader(kafka_address(), prefix)
    try:
        assert len(reader.poll_until(len(first) + 1, 60, settle=0)) == len(first) + 1
        # A new matching topic while it reads: the group rebalances and starts again.
        later = [str(uuid.uuid4()) for _ in range(5)]
        create_topic(f"{prefix}b-events")
        publish(f"{prefix}b-events", later)
        deadline = time.monotonic() + 60
        while reader.delivered_again == 0 and time.monotonic() < deadline:
            reader.poll_until(10**6, 1, settle=0)
        assert reader.delivered_again > 0, "the rebalance handed nothing again"
        consumed = reader.poll_until(len(first) + 1 + len(later), 60)
    finally:
        reader.close()
    assert sorted(str(record.event["id"]) for record in consumed) == sorted(
        [*first, written_twice, *later]
    )
    assert duplicates_and_missing([], consumed) == ([written_twice], [])
