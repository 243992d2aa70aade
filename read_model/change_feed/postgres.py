"""The change feed between processes: NOTIFY on publish, LISTEN through the process's
shared PostgresListener on subscribe. Payloads are split under PostgreSQL's size limit."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
import orjson

from log_follower.postgres_listener import PostgresListener
from read_model.bounded_queue import DropOldestQueue
from read_model.change_feed.in_process import drain
from read_model.change_feed.port import (
    SUBSCRIBER_QUEUE_SIZE,
    Connected,
    DocumentChanged,
    FeedGap,
    FeedItem,
)

log = logging.getLogger(__name__)

DOCUMENTS_CHANNEL = "orders_documents"
NOTIFY_PAYLOAD_LIMIT = 7_000  # bytes; PostgreSQL refuses payloads of 8,000 or more


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


class PostgresChangeFeed:
    def __init__(
        self, pool: asyncpg.Pool, listener: PostgresListener, channel: str = DOCUMENTS_CHANNEL
    ) -> None:
        self._pool = pool
        self._listener = listener
        self._channel = channel

    async def publish(self, changes: Sequence[DocumentChanged]) -> None:
        for payload in encode(changes):
            await self._pool.execute("SELECT pg_notify($1, $2)", self._channel, payload)

    @contextlib.asynccontextmanager
    async def watch(self, on_item: Callable[[FeedItem], None]) -> AsyncIterator[Connected]:
        listener = self._listener

        def on_notify(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            try:
                batch = decode(payload)
            except (ValueError, TypeError):
                log.exception("malformed change notification %r", payload[:200])
                # What it announced is unknown: whoever relies on the feed makes up for it.
                on_item(FeedGap("a malformed change notification"))
                return
            on_item(batch)

        await listener.add(self._channel, on_notify)
        # Whatever was published while the connection was down is lost: say so.
        unregister = listener.on_reconnect(
            lambda: on_item(FeedGap("the LISTEN connection was replaced"))
        )
        try:
            yield lambda: listener.healthy
        finally:
            unregister()
            await listener.remove(self._channel, on_notify)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[FeedItem]]:
        queue: DropOldestQueue[FeedItem] = DropOldestQueue(SUBSCRIBER_QUEUE_SIZE)
        async with self.watch(queue.offer):
            yield drain(queue)
