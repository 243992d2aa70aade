"""One PostgreSQL LISTEN connection per process, shared by every channel it follows: the
append signal (projector, saga) and the change feed (API) both register their callbacks
here instead of each opening a connection of its own."""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

# asyncpg's listener signature: (connection, backend pid, channel, payload).
NotificationCallback = Callable[[object, int, str, str], None]


class PostgresListener:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._connection = await asyncpg.connect(self._dsn)

    def _connected(self) -> asyncpg.Connection:
        if self._connection is None:
            raise RuntimeError("the PostgreSQL listener is not started")
        return self._connection

    async def add(self, channel: str, callback: NotificationCallback) -> None:
        """Call `callback` for every notification on `channel` from now on."""
        await self._connected().add_listener(channel, callback)

    async def remove(self, channel: str, callback: NotificationCallback) -> None:
        connection = self._connected()
        if not connection.is_closed():
            await connection.remove_listener(channel, callback)

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()
