"""Events of the log as CloudEvents Kafka records: topic, key, every attribute, both modes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import orjson
import pytest

from messaging.cloudevents import ContentMode, from_record, key_of, to_record, topic_of
from write_model.envelope import EventMetadata, RecordedEvent


def _event(stream_id: str, **metadata: str) -> RecordedEvent:
    return RecordedEvent(
        event_id=uuid4(),
        stream_id=stream_id,
        type="OrderItemAdded",
        version=7,
        position=1234,
        transaction_id=99,
        occurred_at=datetime(2026, 5, 4, 3, 2, 1, 500000, tzinfo=timezone(timedelta(hours=2))),
        data={"ignored": "the relay sends the upcast data it is given"},
        metadata=EventMetadata(correlation_id="corr-1", schema_version=2, **metadata),  # type: ignore[arg-type]
    )


DATA = {
    "productId": "p-1",
    "productName": "Tea",
    "quantity": 2,
    "unitPrice": {"amount": "1.50", "currency": "EUR"},
}


@pytest.mark.parametrize(
    ("stream_id", "topic", "key"),
    [
        ("Order-7f3a-11ee", "order-events", b"7f3a-11ee"),
        ("Product-p1", "product-events", b"p1"),
        ("Customer-c1", "customer-events", b"c1"),
        ("Fulfillment-o1", "fulfillment-events", b"o1"),
        ("CustomerEmail-ada@example.com", "customeremail-events", b"ada@example.com"),
        ("Inventory-o1", "inventory-events", b"o1"),
    ],
)
def test_topic_per_category_and_key_per_aggregate(stream_id: str, topic: str, key: bytes) -> None:
    assert topic_of(stream_id) == topic
    assert topic_of(stream_id, "shop.") == "shop." + topic
    assert key_of(stream_id) == key


def test_binary_mode_sends_the_data_as_value_and_every_attribute_as_a_header() -> None:
    event = _event(
        "Order-o1", causation_id="cause-1", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    )
    record = to_record(event, DATA, 3, source="/orders", mode=ContentMode.BINARY, topic_prefix="t.")

    assert (record.topic, record.key) == ("t.order-events", b"o1")
    assert orjson.loads(record.value) == DATA
    assert dict(record.headers) == {
        "ce_specversion": b"1.0",
        "ce_id": str(event.event_id).encode(),
        "ce_source": b"/orders",
        "ce_type": b"orders.OrderItemAdded",
        "ce_subject": b"Order-o1",
        "ce_time": b"2026-05-04T01:02:01.500000Z",
        "ce_dataschema": b"urn:orders:event:OrderItemAdded:3",
        "ce_streamversion": b"7",
        "ce_position": b"1234",
        "ce_transactionid": b"99",
        "ce_correlationid": b"corr-1",
        "ce_schemaversion": b"3",
        "ce_causationid": b"cause-1",
        "traceparent": ("00-" + "a" * 32 + "-" + "b" * 16 + "-01").encode(),
        "content-type": b"application/json",
    }


def test_causation_and_traceparent_only_when_the_metadata_carries_them() -> None:
    record = to_record(_event("Order-o1"), DATA, 3, source="/orders", mode=ContentMode.BINARY)
    names = [name for name, _ in record.headers]
    assert "ce_causationid" not in names and "traceparent" not in names
    assert len(names) == len(set(names))


def test_structured_mode_sends_the_whole_cloudevent_as_json() -> None:
    event = _event("Customer-c9", causation_id="cause-2")
    record = to_record(event, DATA, 3, source="/shop", mode=ContentMode.STRUCTURED)

    assert (record.topic, record.key) == ("customer-events", b"c9")
    assert record.headers == (("content-type", b"application/cloudevents+json"),)
    assert orjson.loads(record.value) == {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": "/shop",
        "type": "orders.OrderItemAdded",
        "subject": "Customer-c9",
        "time": "2026-05-04T01:02:01.500000Z",
        "dataschema": "urn:orders:event:OrderItemAdded:3",
        "streamversion": "7",
        "position": "1234",
        "transactionid": "99",
        "correlationid": "corr-1",
        "schemaversion": "3",
        "causationid": "cause-2",
        "datacontenttype": "application/json",
        "data": DATA,
    }


def test_both_modes_read_back_as_the_same_cloudevent() -> None:
    event = _event("Order-o2", causation_id="c")
    read = [
        from_record(record.value, dict(record.headers))
        for mode in ContentMode
        for record in [to_record(event, DATA, 3, source="/orders", mode=mode)]
    ]
    assert read[0] == read[1]
    assert read[0]["time"] == datetime(2026, 5, 4, 1, 2, 1, 500000, tzinfo=UTC).isoformat().replace(
        "+00:00", "Z"
    )
