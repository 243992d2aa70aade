"""In-memory EventStore: a real adapter (it passes the whole conformance suite), for unit
tests and for anything that needs a store without I/O. Appends commit atomically at once,
so transaction ids follow commit order and nothing is ever left open."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Sequence

from write_model.envelope import AppendResult, LogPosition, NewEvent, RecordedEvent
from write_model.event_store.port import (
    NO_STREAM,
    DuplicateEventError,
    ExpectedVersion,
    IdempotencyKey,
    IdempotencyKeyConflict,
    IdempotencyRecord,
    WrongExpectedVersion,
)


class InMemoryEventStore:
    def __init__(self) -> None:
        self._log: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._event_ids: set[object] = set()
        self._idempotency: dict[IdempotencyKey, IdempotencyRecord] = {}
        self._transaction_id = 0
        self._lock = asyncio.Lock()

    async def append_to_stream(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: ExpectedVersion,
        events: Sequence[NewEvent],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> AppendResult:
        async with self._lock:
            stream = self._streams.get(stream_id, [])
            actual = len(stream)
            if (expected_version is NO_STREAM and actual != 0) or (
                isinstance(expected_version, int) and expected_version != actual
            ):
                raise WrongExpectedVersion(stream_id, expected_version, actual)
            if idempotency is not None and idempotency[0] in self._idempotency:
                raise IdempotencyKeyConflict(idempotency[0].key)
            ids = [event.event_id for event in events]
            if len(set(ids)) != len(ids) or any(i in self._event_ids for i in ids):
                raise DuplicateEventError(f"an event id in the batch for {stream_id} is stored")

            if events:
                self._transaction_id += 1
            recorded = [
                RecordedEvent(
                    event_id=event.event_id,
                    stream_id=stream_id,
                    type=event.type,
                    version=actual + offset,
                    position=len(self._log) + offset,
                    transaction_id=self._transaction_id,
                    occurred_at=event.occurred_at,
                    data=event.data,
                    metadata=event.metadata,
                )
                for offset, event in enumerate(events, start=1)
            ]
            self._log.extend(recorded)
            self._event_ids.update(ids)
            if recorded:
                self._streams[stream_id] = [*stream, *recorded]
            last = recorded[-1].log_position if recorded else self._head()
            result = AppendResult(stream_id, actual + len(recorded), last)
            if idempotency is not None:
                key, fingerprint = idempotency
                self._idempotency[key] = IdempotencyRecord(key.key, fingerprint, result)
            return result

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        stream = self._streams.get(stream_id, [])
        end = len(stream) if to_version is None else min(to_version, len(stream))
        return stream[max(from_version, 1) - 1 : end]

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        return {stream_id: list(self._streams.get(stream_id, [])) for stream_id in stream_ids}

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, []))

    async def read_all(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        # Positions are dense and given in commit order, so the log is sorted by both keys.
        start = bisect_right(self._log, after, key=lambda e: e.log_position)
        return self._log[start : start + limit]

    async def count_after(self, after: LogPosition) -> int:
        return len(self._log) - bisect_right(self._log, after, key=lambda e: e.log_position)

    async def head_position(self) -> LogPosition:
        return self._head()

    async def find_idempotency_record(self, key: IdempotencyKey) -> IdempotencyRecord | None:
        return self._idempotency.get(key) or self._idempotency.get(key.legacy())

    async def close(self) -> None:
        return None

    def _head(self) -> LogPosition:
        return self._log[-1].log_position if self._log else LogPosition.start()
