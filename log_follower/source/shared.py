"""Read once per process: the followers of one process (the three projections; the
orchestrator or the three participants; all of them in `orders dev`) read through one
`SharedReader`, so a full batch the first of them reads is handed to the others as it is,
not read and decoded again. A follower far behind the others (a rebuild, one that was
parked on an outage) asks for positions nobody else wants and reads on its own until it
catches up.

Only full batches are shared. The log before the head never changes, so a full batch after
a position is the one right answer for every reader at that position, whenever it asks. A
short batch is the log's head as it was when the read began: handed to a follower woken by
a later append, it would lack the event that woke it, and the follower would wait for the
next append with that event unread (a missed wake-up: up to `poll_seconds` late), or walk a
chain of such batches, one checkpoint save each. So a read that comes back short is
answered to the follower that asked for it only; the others read for themselves.

A full batch also starts the read of the one after it (read-ahead): a follower catching up
(a rebuild, a projector started behind) handles a batch while the next is on its way from
the database, instead of waiting for each read in turn."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

from log_follower.source.port import Source
from log_follower.source.wrapping import WrappingSource
from write_model.envelope import LogPosition, RecordedEvent


class SharedReader(WrappingSource):
    """A Source in front of another; every call but `read` passes through."""

    def __init__(self, source: Source, *, keep: int = 16) -> None:
        super().__init__(source)
        self._keep = keep  # batches kept: a few per follower of the process
        self._batches: OrderedDict[tuple[LogPosition, int], asyncio.Task[Sequence[RecordedEvent]]]
        self._batches = OrderedDict()
        self.reads = 0  # reads that reached the source (for tests and metrics)

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        key = (after, limit)
        task = self._batches.get(key)
        if task is not None:
            self._batches.move_to_end(key)
            try:
                events = await asyncio.shield(task)
            except Exception:
                events = ()  # the reader that began it reports the error; read anew
            if len(events) >= limit:
                self._read_ahead(events, limit)
                return events
            # Short: the head as it was when another follower began the read.
        task = asyncio.ensure_future(self._read(after, limit))
        self._batches[key] = task
        while len(self._batches) > self._keep:
            self._batches.popitem(last=False)
        try:
            events = await asyncio.shield(task)
        except BaseException:
            self._forget(key, task)
            raise
        if len(events) >= limit:
            self._read_ahead(events, limit)
        # A short batch stays known (never handed on: see above), so that no follower
        # reads ahead past the head again.
        return events

    def _read_ahead(self, events: Sequence[RecordedEvent], limit: int) -> None:
        key = (events[-1].log_position, limit)
        if key in self._batches:
            return
        task = asyncio.ensure_future(self._read(*key))
        self._batches[key] = task
        while len(self._batches) > self._keep:
            self._batches.popitem(last=False)

        def settle(done: asyncio.Task[Sequence[RecordedEvent]]) -> None:
            # A read-ahead that failed is dropped, not reported: the follower that asks for
            # that batch reads it itself, and meets (and reports) the error if it lasts.
            if not done.cancelled() and done.exception() is not None:
                self._forget(key, done)

        task.add_done_callback(settle)

    async def _read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        self.reads += 1
        return await self._source.read(after, limit)

    def _forget(self, key: tuple[LogPosition, int], task: asyncio.Task[object]) -> None:
        if self._batches.get(key) is task:
            del self._batches[key]

    @property
    def inner(self) -> Source:
        """The source it reads from: for a reader far behind (a rebuild) to read alone."""
        return self._source
