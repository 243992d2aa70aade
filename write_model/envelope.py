"""The event envelope: what the event store holds around each domain event."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class EventMetadata:
    correlation_id: str
    causation_id: str | None = None
    user_id: str | None = None
    schema_version: int = 1
    # W3C trace context of the request that caused the event, when one came with it: the
    # relay passes it on to Kafka consumers. Stored only when set.
    traceparent: str | None = None

    def to_json(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "correlationId": self.correlation_id,
            "causationId": self.causation_id,
            "userId": self.user_id,
            "schemaVersion": self.schema_version,
        }
        if self.traceparent is not None:
            stored["traceparent"] = self.traceparent
        return stored

    @staticmethod
    def from_json(data: dict[str, Any]) -> EventMetadata:
        return EventMetadata(
            correlation_id=data["correlationId"],
            causation_id=data.get("causationId"),
            user_id=data.get("userId"),
            schema_version=int(data.get("schemaVersion", 1)),
            traceparent=data.get("traceparent"),
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended: serialized, not yet given a version or position."""

    event_id: UUID
    type: str
    data: dict[str, Any]
    metadata: EventMetadata
    occurred_at: datetime


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """A place in the global log. The log is read in (transaction_id, position) order:
    positions are handed out before commit, so alone they can be passed by a later commit."""

    transaction_id: int
    position: int

    @staticmethod
    def start() -> LogPosition:
        return LogPosition(0, 0)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: with its version in the stream and its place in the global log."""

    event_id: UUID
    stream_id: str
    type: str
    version: int
    position: int
    transaction_id: int
    occurred_at: datetime
    data: dict[str, Any]
    metadata: EventMetadata

    @property
    def log_position(self) -> LogPosition:
        return LogPosition(self.transaction_id, self.position)


@dataclass(frozen=True, slots=True)
class AppendResult:
    stream_id: str
    version: int  # the stream's version after the append
    log_position: LogPosition  # of the last event appended (or the stream head when none)

    @property
    def consistency_token(self) -> str:
        return ConsistencyToken.encode(self.log_position)


class ConsistencyToken:
    """An opaque string naming a log position, for read-your-writes on the query side."""

    PREFIX = "ct1:"

    @classmethod
    def encode(cls, position: LogPosition) -> str:
        raw = f"{position.transaction_id}:{position.position}".encode()
        return cls.PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> LogPosition:
        if not token.startswith(cls.PREFIX):
            raise ValueError("not a consistency token")
        body = token[len(cls.PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
            transaction_id, position = (int(part) for part in raw.split(":"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError("not a consistency token") from None
        if transaction_id < 0 or position < 0:
            raise ValueError("not a consistency token")
        return LogPosition(transaction_id, position)
