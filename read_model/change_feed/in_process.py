"""The change feed within one process (`orders dev`, tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from read_model.bounded_queue import DropOldestQueue
from read_model.change_feed.port import (
    SUBSCRIBER_QUEUE_SIZE,
    Connected,
    DocumentChanged,
    FeedGap,
    FeedItem,
)


class InProcessChangeFeed:
    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self._watchers: list[Callable[[FeedItem], None]] = []
        self._queue_size = queue_size

    async def publish(self, changes: Sequence[DocumentChanged]) -> None:
        batch = list(changes)
        for on_item in list(self._watchers):
            on_item(batch)

    @contextlib.asynccontextmanager
    async def watch(self, on_item: Callable[[FeedItem], None]) -> AsyncIterator[Connected]:
        self._watchers.append(on_item)
        try:
            yield always_connected
        finally:
            self._watchers.remove(on_item)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[FeedItem]]:
        queue: DropOldestQueue[FeedItem] = DropOldestQueue(self._queue_size)
        async with self.watch(queue.offer):
            yield drain(queue)


def always_connected() -> bool:
    """Publishing and watching happen in one process: nothing is ever lost between them."""
    return True


async def drain(queue: DropOldestQueue[FeedItem]) -> AsyncIterator[FeedItem]:
    """The queue's items, with a FeedGap before the next one wherever some were dropped."""
    dropped = 0
    while True:
        item = await queue.get()
        if queue.dropped > dropped:
            yield FeedGap(f"{queue.dropped - dropped} change batches dropped (slow consumer)")
            dropped = queue.dropped
        yield item
