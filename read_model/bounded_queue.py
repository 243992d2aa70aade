"""A queue that drops its oldest item when full: a consumer that falls behind loses old
items, never memory. Used wherever one producer fans out to consumers of unknown speed,
and (with no bound) as each websocket's receive queue, which the server bounds itself by
pausing the socket's reads (app/websocket_protocol.py).

A list and the futures of whoever waits on it, not an asyncio.Queue: one of these lives
per subscription and per websocket, and an asyncio.Queue (its deque, its getters' and
putters' deques, its unfinished-tasks Event, each deque a 64-slot block) costs about 3 KiB
before it holds anything; an empty deque alone is ~600 bytes, an empty list 56. The queue
holds a few items (at most `size`: 100 for a subscription, 1,000 for a change-feed
subscriber), so popping from the front of a list (a memmove of at most a few KiB) costs
nothing that matters."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    def __init__(self, size: int | None) -> None:
        """`size`: how many items it keeps (None: no bound, it never drops)."""
        self._items: list[T] = []
        self._size = size
        self._waiting: list[asyncio.Future[None]] | None = None  # getters, while it is empty
        self.dropped = 0  # items lost to the bound, for logs and metrics

    def offer(self, item: T) -> None:
        if self._size is not None and len(self._items) >= self._size:
            del self._items[0]
            self.dropped += 1
        self._items.append(item)
        waiting, self._waiting = self._waiting, None
        for getter in waiting or ():
            if not getter.done():
                getter.set_result(None)

    async def get(self) -> T:
        while not self._items:
            if self._waiting is None:
                self._waiting = []
            getter = asyncio.get_running_loop().create_future()
            self._waiting.append(getter)
            try:
                await getter
            finally:
                if self._waiting is not None and getter in self._waiting:
                    self._waiting.remove(getter)
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items
