"""In-memory EventStore: a real adapter (it passes the whole conformance suite), for unit
tests and for anything that needs a store without I/O. Appends commit atomically at once,
so transaction ids follow commit order and nothing is ever left open."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from uuid import UUID

from write_model.envelope import AppendResult, LogPosition, RecordedEvent
from write_model.event_store.port import (
    NO_STREAM,
    AppendsThroughStreams,
    DuplicateEventError,
    IdempotencyKey,
    IdempotencyKeyConflict,
    IdempotencyRecord,
    Snapshot,
    StreamAppend,
    StreamFromSnapshot,
    WrongExpectedVersion,
    check_appends,
)


class InMemoryEventStore(AppendsThroughStreams):
    def __init__(self) -> None:
        self._log: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._by_event_id: dict[UUID, RecordedEvent] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._idempotency: dict[IdempotencyKey, IdempotencyRecord] = {}
        self._transaction_id = 0
        self._lock = asyncio.Lock()

    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        check_appends(appends)
        async with self._lock:
            if idempotency is not None and idempotency[0] in self._idempotency:
                raise IdempotencyKeyConflict(idempotency[0].key)
            repeated = self._repeated_append(appends)
            if repeated is not None:
                return repeated
            for part in appends:
                actual = len(self._streams.get(part.stream_id, []))
                expected = part.expected_version
                if (expected is NO_STREAM and actual != 0) or (
                    isinstance(expected, int) and expected != actual
                ):
                    raise WrongExpectedVersion(part.stream_id, expected, actual)

            if any(part.events for part in appends):
                self._transaction_id += 1
            results = [self._write(part) for part in appends]
            if idempotency is not None:
                key, fingerprint = idempotency
                self._idempotency[key] = IdempotencyRecord(key.key, fingerprint, results[0])
            return results

    def _write(self, part: StreamAppend) -> AppendResult:
        stream = self._streams.get(part.stream_id, [])
        actual = len(stream)
        recorded = [
            RecordedEvent(
                event_id=event.event_id,
                stream_id=part.stream_id,
                type=event.type,
                version=actual + offset,
                position=len(self._log) + offset,
                transaction_id=self._transaction_id,
                occurred_at=event.occurred_at,
                data=event.data,
                metadata=event.metadata,
            )
            for offset, event in enumerate(part.events, start=1)
        ]
        self._log.extend(recorded)
        self._by_event_id.update((event.event_id, event) for event in recorded)
        if recorded:
            self._streams[part.stream_id] = [*stream, *recorded]
        return AppendResult(part.stream_id, actual + len(recorded), self._last_of(part.stream_id))

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

    def _repeated_append(self, appends: Sequence[StreamAppend]) -> list[AppendResult] | None:
        """The first results when `appends` repeat one earlier append exactly; None when no
        id is stored (see the port)."""
        ids = [event.event_id for part in appends for event in part.events]
        if len(set(ids)) != len(ids):
            raise DuplicateEventError("an event id occurs twice in the append")
        if not any(event_id in self._by_event_id for event_id in ids):
            return None
        results = []
        transactions = set()
        for part in appends:
            if not part.events:
                version = len(self._streams.get(part.stream_id, []))
                results.append(AppendResult(part.stream_id, version, self._last_of(part.stream_id)))
                continue
            first, last = self._repeated_part(part)
            transactions.add(first.transaction_id)
            results.append(AppendResult(part.stream_id, last.version, last.log_position))
        if len(transactions) != 1:
            raise DuplicateEventError("the stored events of the append are of several appends")
        return results

    def _repeated_part(self, part: StreamAppend) -> tuple[RecordedEvent, RecordedEvent]:
        """The first and last stored event of a part that repeats the whole of one earlier
        append to its stream: its events in order, none of the same append around them."""
        stream_id = part.stream_id
        ids = [event.event_id for event in part.events]
        first, last = self._by_event_id.get(ids[0]), self._by_event_id.get(ids[-1])
        if first is None or last is None or first.stream_id != stream_id:
            raise DuplicateEventError(f"an event id in the batch for {stream_id} is stored")
        stream = self._streams[stream_id]
        same = stream[first.version - 1 : last.version]
        around = stream[max(first.version - 2, 0) : first.version - 1] + stream[last.version :][:1]
        if (
            [e.event_id for e in same] != ids
            or any(e.transaction_id != first.transaction_id for e in same)
            or any(e.transaction_id == first.transaction_id for e in around)
        ):
            raise DuplicateEventError(f"an event id in the batch for {stream_id} is stored")
        return first, last

    def _last_of(self, stream_id: str) -> LogPosition:
        """The position of the stream's last event (the start for a stream with none), as
        the SQL adapters answer an append without events."""
        stream = self._streams.get(stream_id)
        return stream[-1].log_position if stream else LogPosition.start()

    def _head(self) -> LogPosition:
        return self._log[-1].log_position if self._log else LogPosition.start()
