"""Change feed port: the projector publishes which documents it wrote, API processes listen.

Adapters: `InProcessChangeFeed` (one process, `orders dev` and tests) and
`PostgresChangeFeed` (LISTEN/NOTIFY between processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

log = logging.getLogger(__name__)

DOCUMENTS_CHANNEL = "orders_documents"
NOTIFY_PAYLOAD_LIMIT = 7_000  # bytes; PostgreSQL refuses payloads of 8,000 or more


@dataclass(frozen=True, slots=True)
class DocumentChanged:
    collection: str  # logical collection, e.g. "orders"
    id: str
    version: int


ChangeBatch = list[DocumentChanged]


class ChangeFeed(Protocol):
    async def publish(self, changes: Sequence[DocumentChanged]) -> None: ...

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[ChangeBatch]]:
        """Batches of changes published after the subscription started."""
        ...


def encode(changes: Sequence[DocumentChanged]) -> list[str]:
    """NOTIFY payloads, each under the size limit."""
    payloads: list[str] = []
    chunk: list[list[object]] = []
    size = 2
    for change in changes:
        item = [change.collection, change.id, change.version]
        item_size = len(orjson.dumps(item)) + 1
        if chunk and size + item_size > NOTIFY_PAYLOAD_LIMIT:
            payloads.append(orjson.dumps(chunk).decode())
            chunk, size = [], 2
        chunk.append(item)
        size += item_size
    if chunk:
        payloads.append(orjson.dumps(chunk).decode())
    return payloads


def decode(payload: str) -> list[DocumentChanged]:
    return [DocumentChanged(c, i, v) for c, i, v in orjson.loads(payload)]


class InProcessChangeFeed:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[list[DocumentChanged]]] = set()
        self._queue_size = queue_size

    async def publish(self, changes: Sequence[DocumentChanged]) -> None:
        batch = list(changes)
        for queue in list(self._subscribers):
            _offer(queue, batch)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[list[DocumentChanged]]]:
        queue: asyncio.Queue[list[DocumentChanged]] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield _drain(queue)
        finally:
            self._subscribers.discard(queue)


class PostgresChangeFeed:
    """NOTIFY on publish; each subscription LISTENs on a connection of its own."""

    def __init__(self, pool, dsn: str, channel: str = DOCUMENTS_CHANNEL) -> None:
        self._pool = pool
        self._dsn = dsn
        self._channel = channel

    async def publish(self, changes: Sequence[DocumentChanged]) -> None:
        for payload in encode(changes):
            await self._pool.execute("SELECT pg_notify($1, $2)", self._channel, payload)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[list[DocumentChanged]]]:
        import asyncpg

        queue: asyncio.Queue[list[DocumentChanged]] = asyncio.Queue(1000)

        def on_notify(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            try:
                _offer(queue, decode(payload))
            except (ValueError, TypeError):
                log.exception("malformed change notification %r", payload[:200])

        connection = await asyncpg.connect(self._dsn)
        await connection.add_listener(self._channel, on_notify)
        try:
            yield _drain(queue)
        finally:
            if not connection.is_closed():
                await connection.remove_listener(self._channel, on_notify)
                await connection.close()


def _offer(queue: asyncio.Queue[list[DocumentChanged]], batch: list[DocumentChanged]) -> None:
    """Bounded: a subscriber that falls behind loses its oldest batches, never memory."""
    while True:
        try:
            queue.put_nowait(batch)
            return
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()


async def _drain(queue: asyncio.Queue[ChangeBatch]) -> AsyncIterator[ChangeBatch]:
    while True:
        yield await queue.get()
