"""Events of the log as Kafka records: CloudEvents 1.0, Kafka protocol binding.

Pure functions. Where: the topic `<prefix><category>-events`, the category being the stream
id's part before the first `-`, lowercased; the key is the aggregate id (the stream id after
`<Category>-`), so one aggregate's events keep their order on one partition. How: binary mode
(the default) sends the event's data as the JSON value and every attribute as a `ce_` header;
structured mode sends the whole CloudEvent as the JSON value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple, assert_never
from uuid import UUID

import orjson

from messaging.event_schemas import schema_id
from write_model import stream_ids
from write_model.envelope import EventMetadata, RecordedEvent

SPEC_VERSION = "1.0"
JSON = "application/json"
CLOUDEVENTS_JSON = "application/cloudevents+json"
TYPE_PREFIX = "orders."


class ContentMode(StrEnum):
    BINARY = "binary"
    STRUCTURED = "structured"


class KafkaRecord(NamedTuple):
    # A NamedTuple, not a frozen dataclass: the relay makes one per event, and a tuple is
    # several times cheaper to build.
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def category_of(stream_id: str) -> str:
    """`CustomerEmail-ada@example.com` -> `customeremail`."""
    return stream_ids.stream_type(stream_id).lower()


def topic_of(stream_id: str, prefix: str = "") -> str:
    return f"{prefix}{category_of(stream_id)}-events"


def key_of(stream_id: str) -> bytes:
    return stream_ids.entity_id(stream_id).encode()


def rfc3339(event: RecordedEvent) -> str:
    moment = event.occurred_at
    if moment.tzinfo is not UTC:  # PostgreSQL's are UTC already
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # "+00:00" -> "Z"


def attributes(event: RecordedEvent, schema_version: int, source: str) -> dict[str, str]:
    """The CloudEvent's context attributes (`datacontenttype` aside), as strings: the
    required ones, `subject`, `time`, `dataschema`, and this project's extensions."""
    metadata = event.metadata
    found: dict[str, str] = {
        "specversion": SPEC_VERSION,
        "id": str(event.event_id),
        "source": source,
        "type": TYPE_PREFIX + event.type,
        "subject": event.stream_id,
        "time": rfc3339(event),
        "dataschema": schema_id(event.type, schema_version),
        "streamversion": str(event.version),
        "position": str(event.position),
        "transactionid": str(event.transaction_id),
        "correlationid": metadata.correlation_id,
        "schemaversion": str(schema_version),
    }
    if metadata.causation_id is not None:
        found["causationid"] = metadata.causation_id
    if metadata.traceparent is not None:
        found["traceparent"] = metadata.traceparent
    return found


class _HeaderNames(dict[str, str]):
    """Attribute -> binary-mode header name, remembered: `ce_<attribute>`, but the
    distributed-tracing extension travels as the W3C header itself."""

    def __missing__(self, attribute: str) -> str:
        self[attribute] = name = attribute if attribute == "traceparent" else "ce_" + attribute
        return name


_HEADER_NAMES = _HeaderNames()
_JSON_HEADER = ("content-type", JSON.encode())
_CLOUDEVENTS_JSON_HEADERS = (("content-type", CLOUDEVENTS_JSON.encode()),)


def to_record(
    event: RecordedEvent,
    data: Mapping[str, Any],
    schema_version: int,
    *,
    source: str,
    mode: ContentMode,
    topic_prefix: str = "",
) -> KafkaRecord:
    """`data`: the event's payload upcast to `schema_version`, its type's current one."""
    found = attributes(event, schema_version, source)
    topic, key = topic_of(event.stream_id, topic_prefix), key_of(event.stream_id)
    match mode:
        case ContentMode.BINARY:
            headers = [(_HEADER_NAMES[name], value.encode()) for name, value in found.items()]
            headers.append(_JSON_HEADER)
            return KafkaRecord(topic, key, orjson.dumps(data), tuple(headers))
        case ContentMode.STRUCTURED:
            envelope = {**found, "datacontenttype": JSON, "data": data}
            return KafkaRecord(topic, key, orjson.dumps(envelope), _CLOUDEVENTS_JSON_HEADERS)
        case _:
            assert_never(mode)


def from_record(value: bytes, headers: Mapping[str, bytes]) -> dict[str, Any]:
    """A consumed record back as one CloudEvent dict (attributes and `data`), in either mode:
    what a consumer reads, and what tests compare."""
    content_type = headers.get("content-type", b"").decode()
    if content_type == CLOUDEVENTS_JSON:
        event: dict[str, Any] = orjson.loads(value)
        return event
    found = {
        (name.removeprefix("ce_") if name.startswith("ce_") else name): raw.decode()
        for name, raw in headers.items()
        if name.startswith("ce_") or name == "traceparent"
    }
    return {**found, "datacontenttype": content_type, "data": orjson.loads(value)}


class MalformedRecord(ValueError):
    """A consumed record that is not one of our CloudEvents (bad JSON, an attribute missing
    or of the wrong form): parked with this reason, never handled."""


def to_event(value: bytes, headers: Mapping[str, bytes]) -> RecordedEvent:
    """A consumed record (either mode) back as the event of the log it was published from:
    the same id, stream, version, place in the log and metadata; `data` as published (upcast
    to `schemaversion`, which the metadata carries)."""
    try:
        found = from_record(value, headers)
    except (orjson.JSONDecodeError, UnicodeDecodeError) as error:
        raise MalformedRecord(f"not a CloudEvent: {error}") from None
    if not isinstance(found, dict):
        raise MalformedRecord("not a CloudEvent: the value is not a JSON object")
    missing = sorted(set(_REQUIRED) - found.keys())
    if missing:
        raise MalformedRecord(f"CloudEvent without {', '.join(missing)}")
    try:
        event_type = str(found["type"])
        if not event_type.startswith(TYPE_PREFIX):
            raise ValueError(f"type {event_type!r} is not one of ours ({TYPE_PREFIX}<EventType>)")
        data = found.get("data")
        if not isinstance(data, dict):
            raise ValueError("its data is not a JSON object")
        return RecordedEvent(
            event_id=UUID(str(found["id"])),
            stream_id=_checked_stream_id(str(found["subject"])),
            type=event_type.removeprefix(TYPE_PREFIX),
            version=int(found["streamversion"]),
            position=int(found["position"]),
            # Records published before the attribute existed: ordered by position alone.
            transaction_id=int(found.get("transactionid", 0)),
            occurred_at=datetime.fromisoformat(str(found["time"]).replace("Z", "+00:00")),
            data=data,
            metadata=EventMetadata(
                correlation_id=str(found["correlationid"]),
                causation_id=found.get("causationid"),
                schema_version=int(found["schemaversion"]),
                traceparent=found.get("traceparent"),
            ),
        )
    except (ValueError, TypeError) as error:
        raise MalformedRecord(f"CloudEvent {found.get('id')!r}: {error}") from None


_REQUIRED = (
    "id",
    "type",
    "subject",
    "time",
    "streamversion",
    "position",
    "correlationid",
    "schemaversion",
)


def _checked_stream_id(subject: str) -> str:
    stream_ids.entity_id(subject)  # a ValueError when it is no stream id
    return subject
