"""A Source that lingers: when a read finds fewer events than the batch holds, it waits
`linger_seconds` after that first sight of them and reads again, so the relay's batch (one
Kafka transaction) holds every event appended meanwhile, up to its size. The relay commits
when N records are pending (a full batch, no wait) or T ms after the first of them, never
one transaction per event under a steady trickle of appends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from log_follower.source.port import Source
from log_follower.source.wrapping import WrappingSource
from write_model.envelope import LogPosition, RecordedEvent


class LingeringSource(WrappingSource):
    def __init__(self, source: Source, linger_seconds: float) -> None:
        super().__init__(source)
        self._linger = linger_seconds

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        first = await self._source.read(after, limit)
        if not first or len(first) >= limit or self._linger <= 0:
            return first
        await asyncio.sleep(self._linger)
        return await self._source.read(after, limit)
