"""A Source in front of another that changes only how it reads (`read`): every other call
passes through. The process's shared reader and the relay's source are such."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from log_follower.append_signal.port import AppendListener
from log_follower.source.port import Source
from write_model.envelope import LogPosition, RecordedEvent


class WrappingSource:
    def __init__(self, source: Source) -> None:
        self._source = source

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
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
