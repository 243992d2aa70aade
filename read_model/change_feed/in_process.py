"""The change feed within one process (`orders dev`, tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from read_model.bounded_queue import DropOldestQueue
from read_model.change_feed.port import (
    SUBSCRIBER_QUEUE_SIZE,
    DocumentChanged,
    FeedGap,
    FeedItem,
)


class InProcessChangeFeed:
    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self._subscribers: set[DropOldestQueue[FeedItem]] = set()
        self._queue_size = queue_size

    async def publish(self, changes: Sequence[DocumentChanged]) -> None:
        batch = list(changes)
        for queue in list(self._subscribers):
            queue.offer(batch)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[FeedItem]]:
        queue: DropOldestQueue[FeedItem] = DropOldestQueue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield drain(queue)
        finally:
            self._subscribers.discard(queue)


async def drain(queue: DropOldestQueue[FeedItem]) -> AsyncIterator[FeedItem]:
    """The queue's items, with a FeedGap before the next one wherever some were dropped."""
    dropped = 0
    while True:
        item = await queue.get()
        if queue.dropped > dropped:
            yield FeedGap(f"{queue.dropped - dropped} change batches dropped (slow consumer)")
            dropped = queue.dropped
        yield item
