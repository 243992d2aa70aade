"""A Source that lingers: when a read finds fewer events than the batch holds, it waits
`linger_seconds` after that first sight of them and reads again, so the relay's batch (one
Kafka transaction) holds every event appended meanwhile, up to its size. The relay commits
when N records are pending (a full batch, no wait) or T ms after the first of them, never
one transaction per event under a steady trickle of appends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from log_follower.append_signal.port import AppendListener
from log_follower.source.port import Source
from write_model.envelope import LogPosition, RecordedEvent


class LingeringSource:
    def __init__(self, source: Source, linger_seconds: float) -> None:
        self._source = source
        self._linger = linger_seconds

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        first = await self._source.read(after, limit)
        if not first or len(first) >= limit or self._linger <= 0:
            return first
        await asyncio.sleep(self._linger)
        return await self._source.read(after, limit)

    def lead(self, follower: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._source.lead(follower)

    def lost(self, follower: str) -> bool:
        return self._source.lost(follower)

    def listener(self) -> AppendListener:
        return self._source.listener()

    async def events_of(self, refs: Sequence[tuple[str, int]]) -> list[RecordedEvent]:
        return await self._source.events_of(refs)

    async def head(self) -> LogPosition:
        return await self._source.head()

    async def count_after(self, position: LogPosition) -> int:
        return await self._source.count_after(position)
