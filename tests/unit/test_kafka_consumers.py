"""The Kafka consumers' pure parts: which partition a key is on (Kafka's murmur2, so a member
knows which letters are its own), a consumed record back as the log's event, a record that
is no CloudEvent failing its key with its reason, and a dead letter's copy with Spring
Kafka's headers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from log_follower.consumer import Batch, FollowerKind, KeyFailure
from log_follower.dead_letters.port import PARKED_BEHIND, DeadLetter, LetterOwner
from messaging.cloudevents import ContentMode, MalformedRecord, to_event, to_record
from messaging.dead_letter_topic import dead_letter_record
from messaging.group_consumer import ConsumedRecord
from messaging.kafka_source import MALFORMED, RecordsConsumer, decoded
from messaging.partitions import murmur2, partition_of
from write_model.envelope import EventMetadata, LogPosition, RecordedEvent


def test_murmur2_is_kafkas() -> None:
    # Utils.murmur2 of the Java client on these keys (as signed ints).
    java = {"0": 971027396, "1": -1993445489, "128": -326012175, "2187": -1508407203}
    for key, expected in java.items():
        assert murmur2(key.encode()) == expected & 0xFFFFFFFF
    assert {partition_of(f"o-{n}".encode(), 4) for n in range(100)} == {0, 1, 2, 3}


def _event() -> RecordedEvent:
    return RecordedEvent(
        event_id=uuid4(),
        stream_id="Payment-o-7",
        type="PaymentCharged",
        version=2,
        position=120,
        transaction_id=77,
        occurred_at=datetime(2026, 12, 6, 8, 0, 1, 250000, tzinfo=UTC),
        data={"orderId": "o-7", "paymentId": "charge-1"},
        metadata=EventMetadata("corr", "cause", None, 1, None),
    )


@pytest.mark.parametrize("mode", list(ContentMode))
def test_a_record_is_the_event_it_was_published_from(mode: ContentMode) -> None:
    event = _event()
    record = to_record(event, event.data, 1, source="/orders", mode=mode)
    assert to_event(record.value, dict(record.headers)) == event


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{oops", {"content-type": b"application/json"}, "not a CloudEvent"),
        (b"[1]", {"content-type": b"application/cloudevents+json"}, "not a JSON object"),
        (b"{}", {"content-type": b"application/json", "ce_id": b"x"}, "without correlationid"),
    ],
)
def test_a_record_that_is_no_cloudevent_says_why(
    value: bytes, headers: dict[str, bytes], reason: str
) -> None:
    with pytest.raises(MalformedRecord, match=reason):
        to_event(value, headers)


def _record(value: bytes, key: bytes | None = b"o-7", offset: int = 5) -> ConsumedRecord:
    return ConsumedRecord("t.payment-events", 1, offset, 1_700_000_000_000, key, value, ())


class Recording:
    """A consumer that records what it was handed."""

    name = "saga:payment"
    kind = FollowerKind.PARTICIPANT

    def __init__(self) -> None:
        self.handed: list[RecordedEvent] = []

    def key_of(self, event: RecordedEvent) -> str | None:
        return event.stream_id.split("-", 1)[1]

    async def handle(self, batch: Batch) -> Sequence[KeyFailure]:
        self.handed += batch.events
        return []

    def is_outage(self, error: BaseException) -> bool:
        return False


def test_a_malformed_record_fails_its_key_and_holds_back_the_keys_later_events() -> None:
    bad = decoded(_record(b"{oops"))
    good_same_key = _event()
    other = RecordedEvent(**_fields(good_same_key, "Payment-o-8"))  # type: ignore[arg-type]
    inner = Recording()
    consumer = RecordsConsumer(inner)

    failures = asyncio.run(
        consumer.handle(Batch([bad, good_same_key, other], LogPosition(77, 120)))
    )

    assert bad.type == MALFORMED and consumer.key_of(bad) == "o-7"
    [failure] = failures
    assert failure.key == "o-7" and failure.event == bad
    assert isinstance(failure.error, MalformedRecord)
    assert "not a CloudEvent" in str(failure.error)
    assert inner.handed == [other]  # o-7's later event waits behind the bad record


def _fields(event: RecordedEvent, stream_id: str) -> dict[str, object]:
    return {
        "event_id": uuid4(),
        "stream_id": stream_id,
        "type": event.type,
        "version": 1,
        "position": 121,
        "transaction_id": 78,
        "occurred_at": event.occurred_at,
        "data": event.data,
        "metadata": event.metadata,
    }


def _letter(error: str, cause: BaseException | None, attempts: int) -> DeadLetter:
    return DeadLetter(
        owner=LetterOwner("t.orders-payment"),
        key="o-7",
        event_id=str(uuid4()),
        stream_id="Payment-o-7",
        stream_version=2,
        log_position=LogPosition(77, 120),
        event_type="PaymentCharged",
        error=error,
        attempts=attempts,
        failed_at=datetime(2026, 12, 6, 8, 0, 2, tzinfo=UTC),
        cause=cause,
    )


def test_a_dead_letters_copy_carries_spring_kafkas_headers() -> None:
    try:
        raise RuntimeError("the provider refused")
    except RuntimeError as error:
        cause = error
    record = ConsumedRecord(
        "t.payment-events", 3, 41, 1_700_000_000_123, b"o-7", b"{}", (("ce_id", b"e1"),)
    )

    letter = _letter("RuntimeError: x", cause, 4)
    copy = dead_letter_record(letter, record, "t.orders-payment", "t.dlq")
    headers = dict(copy.headers)

    assert (copy.topic, copy.key, copy.value) == ("t.dlq", b"o-7", b"{}")
    assert headers["ce_id"] == b"e1"  # the original headers
    assert headers["kafka_dlt-original-topic"] == b"t.payment-events"
    assert headers["kafka_dlt-original-partition"] == (3).to_bytes(4, "big")
    assert headers["kafka_dlt-original-offset"] == (41).to_bytes(8, "big")
    assert headers["kafka_dlt-original-timestamp"] == (1_700_000_000_123).to_bytes(8, "big")
    assert headers["kafka_dlt-original-consumer-group"] == b"t.orders-payment"
    assert headers["kafka_dlt-exception-fqcn"] == b"RuntimeError"
    assert headers["kafka_dlt-exception-message"] == b"the provider refused"
    assert b"Traceback" in headers["kafka_dlt-exception-stacktrace"]
    assert headers["kafka_deliveryAttempt"] == (4).to_bytes(4, "big")
    assert headers["orders_dlt-parked-at"] == b"2026-12-06T08:00:02+00:00"

    behind = dict(dead_letter_record(_letter(PARKED_BEHIND, None, 0), record, "g", "t").headers)
    assert behind["kafka_dlt-exception-fqcn"] == b"messaging.dead_letter_topic.ParkedBehind"
    assert behind["kafka_dlt-exception-message"] == PARKED_BEHIND.encode()
