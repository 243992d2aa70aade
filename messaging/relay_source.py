"""The relay's reads of the log: paced by its commit rule, and encoded ahead while it
publishes.

Each batch the follower reads becomes one Kafka transaction, so this source decides when
transactions begin:

- a full batch (N records) is handed at once;
- a short one is handed at once when the previous batch was handed at least T ago (a quiet
  log commits at once); otherwise it waits until T after the previous batch and reads
  again, taking everything appended meanwhile (up to N).

So a record waits at most T before its transaction begins, and a steady trickle of appends
makes one transaction per T, never one per event.

Encoding ahead: after a full batch (the relay is catching up), the process's shared reader
reads the next one ahead (log_follower/source/shared.py); this source takes that batch as
soon as it is read and hands it to `prepare` (the relay encodes its records), while the relay
sends and commits the batch before it. The producer's thread waits on the broker without the
GIL, and the event loop decodes and encodes meanwhile.
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
        self._linger = linger_seconds
        self._clock = clock
        self._sleep = sleep
        self._prepare = prepare
        self._handed_at = -float("inf")  # when the last batch with events was handed
        self._preparing: asyncio.Task[None] | None = None

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        events = await self._source.read(after, limit)
        if events and len(events) < limit:
            wait = self._handed_at + self._linger - self._clock()
            if wait > 0:
                await self._sleep(wait)
                events = await self._source.read(after, limit)
        if events:
            self._handed_at = self._clock()
        if len(events) >= limit and self._prepare is not None:
            await self._drop_preparing()  # done by now, unless the relay read elsewhere
            self._preparing = asyncio.create_task(
                self._prepare_next(events[-1].log_position, limit)
            )
        return events

    async def _prepare_next(self, after: LogPosition, limit: int) -> None:
        assert self._prepare is not None
        # The shared reader answers from its read-ahead (no second read of the database).
        self._prepare(await self._source.read(after, limit))

    async def close(self) -> None:
        """Drop the preparation under way (the relay stops): nothing outlives the pool."""
        await self._drop_preparing()

    async def _drop_preparing(self) -> None:
        task, self._preparing = self._preparing, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and (error := task.exception()) is not None:
            # Nobody needs it: the relay encodes what it is handed itself, and the next
            # read meets an outage this one met.
            log.info("encoding ahead failed: %s: %s", type(error).__name__, error)
