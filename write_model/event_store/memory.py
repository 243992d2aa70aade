"""In-memory EventStore: a real adapter (it passes the whole conformance suite), for unit
tests and for anything that needs a store without I/O. Appends commit atomically at once,
so transaction ids follow commit order and nothing is ever left open."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from uuid import UUID

from write_model.envelope import AppendResult, LogPosition, NewEvent, RecordedEvent
from write_model.event_store.port import (
    NO_STREAM,
    DuplicateEventError,
    ExpectedVersion,
    IdempotencyKey,
    IdempotencyKeyConflict,
    IdempotencyRecord,
    Snapshot,
    StreamFromSnapshot,
    WrongExpectedVersion,
)


class InMemoryEventStore:
    def __init__(self) -> None:
        self._log: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._by_event_id: dict[UUID, RecordedEvent] = {}
        self._snapshots: dict[str, Snapshot] = {}
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
            if idempotency is not None and idempotency[0] in self._idempotency:
                raise IdempotencyKeyConflict(idempotency[0].key)
            repeated = self._repeated_append(stream_id, stream, events)
            if repeated is not None:
                return repeated
            actual = len(stream)
            if (expected_version is NO_STREAM and actual != 0) or (
                isinstance(expected_version, int) and expected_version != actual
            ):
                raise WrongExpectedVersion(stream_id, expected_version, actual)

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
            self._by_event_id.update((event.event_id, event) for event in recorded)
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

    async def read_from_snapshots(
        self, schema_versions: Mapping[str, int | None]
    ) -> dict[str, StreamFromSnapshot]:
        found = {}
        for stream_id, schema_version in schema_versions.items():
            snapshot = self._snapshots.get(stream_id)
            if snapshot is None or snapshot.schema_version != schema_version:
                snapshot = None
            after = snapshot.version if snapshot is not None else 0
            found[stream_id] = StreamFromSnapshot(
                snapshot, list(self._streams.get(stream_id, [])[after:])
            )
        return found

    async def save_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        stored = self._snapshots.get(stream_id)
        if stored is None or stored.version <= snapshot.version:
            self._snapshots[stream_id] = snapshot

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return self._snapshots.get(stream_id)

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

    def _repeated_append(
        self, stream_id: str, stream: list[RecordedEvent], events: Sequence[NewEvent]
    ) -> AppendResult | None:
        """The first result when `events` repeat one earlier append exactly; None when no
        id is stored (see the port)."""
        ids = [event.event_id for event in events]
        stored = [self._by_event_id.get(event_id) for event_id in ids]
        if len(set(ids)) != len(ids):
            raise DuplicateEventError(f"an event id occurs twice in the batch for {stream_id}")
        if not any(stored):
            return None
        first, last = stored[0], stored[-1]
        if first is None or last is None or first.stream_id != stream_id:
            raise DuplicateEventError(f"an event id in the batch for {stream_id} is stored")
        # The whole of one append: its events in order, none of the same append around them.
        same = stream[first.version - 1 : last.version]
        around = stream[max(first.version - 2, 0) : first.version - 1] + stream[last.version :][:1]
        if (
            [e.event_id for e in same] != ids
            or any(e.transaction_id != first.transaction_id for e in same)
            or any(e.transaction_id == first.transaction_id for e in around)
        ):
            raise DuplicateEventError(f"an event id in the batch for {stream_id} is stored")
        return AppendResult(stream_id, last.version, last.log_position)

    def _head(self) -> LogPosition:
        return self._log[-1].log_position if self._log else LogPosition.start()
