"""The event store's log as a source: gap-free reads of the EventStore port, leadership from a
leader lock (PostgreSQL advisory locks across processes, an asyncio lock in one), waking on
the append signal (PostgreSQL LISTEN, or in-process)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from log_follower.append_signal.port import AppendListener, AppendSignal
from log_follower.leader_lock.port import LeaderLock
from write_model.envelope import LogPosition, RecordedEvent
from write_model.event_store.port import EventStore


class LogSource:
    def __init__(self, events: EventStore, lock: LeaderLock, signal: AppendSignal) -> None:
        self.events = events
        self._lock = lock
        self._signal = signal

    def lead(self, follower: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._lock.hold(follower)

    def lost(self, follower: str) -> bool:
        return self._lock.lost(follower)

    def listener(self) -> AppendListener:
        return self._signal.listener()

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        return await self.events.read_all(after, limit)

    async def events_of(self, refs: Sequence[tuple[str, int]]) -> list[RecordedEvent]:
        wanted: dict[str, set[int]] = {}
        for stream_id, version in refs:
            wanted.setdefault(stream_id, set()).add(version)
        found: list[RecordedEvent] = []
        for stream_id, versions in wanted.items():
            read = await self.events.read_stream(stream_id, min(versions), max(versions))
            found.extend(event for event in read if event.version in versions)
        return sorted(found, key=lambda event: event.log_position)

    async def head(self) -> LogPosition:
        return await self.events.head_position()

    async def count_after(self, position: LogPosition) -> int:
        return await self.events.count_after(position)
