"""A queue that drops its oldest item when full: a consumer that falls behind loses old
items, never memory. Used wherever one producer fans out to consumers of unknown speed.

A deque and the futures of whoever waits on it, not an asyncio.Queue: one of these lives
per subscription, and an asyncio.Queue (its deque, its getters' and putters' deques, its
unfinished-tasks Event) costs about 1.5 KiB before it holds anything."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque(maxlen=size)
        self._waiting: list[asyncio.Future[None]] | None = None  # getters, while it is empty
        self.dropped = 0  # items lost to the bound, for logs and metrics

    def offer(self, item: T) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1  # the deque drops the oldest as it appends
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
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items
