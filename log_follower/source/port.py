"""The Source port."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

from log_follower.append_signal.port import AppendListener
from write_model.envelope import LogPosition, RecordedEvent


class Source(Protocol):
    def lead(self, follower: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait until this process may follow `follower` (the leader lock; a consumer
        group's assignment); that lasts until the block exits or `lost` turns true."""
        ...

    def lost(self, follower: str) -> bool:
        """True once leading `follower` can no longer be trusted (the lock's connection
        went): the follower stops and stands by again."""
        ...

    def listener(self) -> AppendListener:
        """Wakes a follower when events were appended (polling is the fallback)."""
        ...

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        """Up to `limit` events after `after` in log order, gap-free: an event that commits
        later is never behind one returned."""
        ...

    async def events_of(self, refs: Sequence[tuple[str, int]]) -> list[RecordedEvent]:
        """The events at (stream id, version) `refs` (parked letters'), in log order."""
        ...

    async def head(self) -> LogPosition:
        """The position of the newest event followers can read."""
        ...

    async def count_after(self, position: LogPosition) -> int:
        """How many events follow `position`: a follower's lag."""
        ...
