"""An EventStore that announces each of its appends to callbacks in this process: for a
process whose followers (the projector, the saga) are woken in-process rather than by
PostgreSQL's NOTIFY (`orders dev`). Built once around the process's store in the
composition root, so every writer (the command bus, the saga, the participants) wakes them
without having to remember to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from write_model.envelope import AppendResult, LogPosition, RecordedEvent
from write_model.event_store.port import (
    AppendsThroughStreams,
    EventStore,
    IdempotencyKey,
    IdempotencyRecord,
    Snapshot,
    StreamAppend,
    StreamFromSnapshot,
    last_of,
)


class AnnouncingEventStore(AppendsThroughStreams):
    def __init__(
        self, store: EventStore, announce: Sequence[Callable[[AppendResult], None]]
    ) -> None:
        self.inner = store
        self._announce = tuple(announce)

    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        appended = await self.inner.append_to_streams(appends, idempotency=idempotency)
        if any(part.events for part in appends):
            # Once, with the position that covers every part.
            for announce in self._announce:
                announce(last_of(appended))
        return appended

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        return await self.inner.read_stream(stream_id, from_version, to_version)

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        return await self.inner.read_streams(stream_ids)

    async def read_from_snapshots(
        self, schema_versions: Mapping[str, int | None]
    ) -> dict[str, StreamFromSnapshot]:
        return await self.inner.read_from_snapshots(schema_versions)

    async def save_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        await self.inner.save_snapshot(stream_id, snapshot)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return await self.inner.load_snapshot(stream_id)

    async def stream_version(self, stream_id: str) -> int:
        return await self.inner.stream_version(stream_id)

    async def read_all(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        return await self.inner.read_all(after, limit)

    async def count_after(self, after: LogPosition) -> int:
        return await self.inner.count_after(after)

    async def head_position(self) -> LogPosition:
        return await self.inner.head_position()

    async def find_idempotency_record(self, key: IdempotencyKey) -> IdempotencyRecord | None:
        return await self.inner.find_idempotency_record(key)

    async def close(self) -> None:
        await self.inner.close()
