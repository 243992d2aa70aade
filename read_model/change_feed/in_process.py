"""The change feed within one process (`orders dev`, tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from read_model.bounded_queue import DropOldestQueue
from read_model.change_feed.port import SUBSCRIBER_QUEUE_SIZE, ChangeBatch, DocumentChanged


class InProcessChangeFeed:
    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self._subscribers: set[DropOldestQueue[ChangeBatch]] = set()
        self._queue_size = queue_size

    async def publish(self, changes: Sequence[DocumentChanged]) -> None:
        batch = list(changes)
        for queue in list(self._subscribers):
            queue.offer(batch)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[ChangeBatch]]:
        queue: DropOldestQueue[ChangeBatch] = DropOldestQueue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield drain(queue)
        finally:
            self._subscribers.discard(queue)


async def drain(queue: DropOldestQueue[ChangeBatch]) -> AsyncIterator[ChangeBatch]:
    while True:
        yield await queue.get()
