"""The relay's reads of the log: paced by its commit rule, and read ahead while it publishes.

Each batch the follower reads becomes one Kafka transaction, so this source decides when
transactions begin:

- a full batch (N records) is handed at once;
- a short one is handed at once when the previous batch was handed at least T ago (a quiet
  log commits at once); otherwise it waits until T after the previous batch and reads
  again, taking everything appended meanwhile (up to N).

So a record waits at most T before its transaction begins, and a steady trickle of appends
makes one transaction per T, never one per event.

Read-ahead: after a full batch (the relay is catching up), the batch after it is read at
once, in the background, and handed to `prepare` (the relay encodes its records), while the
relay sends and commits the one handed: the producer's thread waits on the broker without
the GIL, and the event loop works meanwhile. The
follower's next read (from that batch's end, if it was published) takes it. A gap-free read
stays correct when used later: every event that commits meanwhile comes after it in the
log, so a full batch read early is the batch a later read would return, and a short one a
prefix of it (waited on and read again as above).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from log_follower.source.port import Source
from log_follower.source.wrapping import WrappingSource
from write_model.envelope import LogPosition, RecordedEvent

log = logging.getLogger(__name__)

_Read = asyncio.Task[Sequence[RecordedEvent]]


class RelaySource(WrappingSource):
    def __init__(
        self,
        source: Source,
        linger_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        prepare: Callable[[Sequence[RecordedEvent]], None] | None = None,
    ) -> None:
        super().__init__(source)
        self._prepare = prepare
        self._linger = linger_seconds
        self._clock = clock
        self._sleep = sleep
        self._handed_at = -float("inf")  # when the last batch with events was handed
        self._ahead: tuple[LogPosition, int, _Read] | None = None

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        events = await self._read(after, limit)
        if events and len(events) < limit:
            wait = self._handed_at + self._linger - self._clock()
            if wait > 0:
                await self._sleep(wait)
                events = await self._source.read(after, limit)
        if events:
            self._handed_at = self._clock()
        if len(events) >= limit:
            end = events[-1].log_position
            self._ahead = (end, limit, asyncio.create_task(self._read_ahead(end, limit)))
        return events

    async def _read_ahead(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        events = await self._source.read(after, limit)
        if self._prepare is not None:
            self._prepare(events)
        return events

    async def _read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        """The batch read ahead when it is the one asked for, else a read now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            position, size, task = ahead
            if (position, size) == (after, limit):
                return await task
            await _dropped(task)  # the relay read elsewhere (its batch was not published)
        return await self._source.read(after, limit)

    async def close(self) -> None:
        """Drop the read ahead (the relay stops): no read outlives the process's pool."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await _dropped(ahead[2])


async def _dropped(task: _Read) -> None:
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and (error := task.exception()) is not None:
        # Nobody needs its result; an outage it met, the next read meets too.
        log.info("a read ahead that was not needed failed: %s: %s", type(error).__name__, error)
