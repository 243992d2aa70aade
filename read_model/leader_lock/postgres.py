"""Leadership across processes: a PostgreSQL session advisory lock per name, each on a
connection of its own, so a process that dies hands its leadership over when PostgreSQL ends
its session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator

import asyncpg

log = logging.getLogger(__name__)

_LOCK_NAMESPACE = 0x6F72  # "or": keeps our advisory lock keys apart from other users'


def lock_key(name: str) -> int:
    return (_LOCK_NAMESPACE << 32) | zlib.crc32(name.encode())


class PostgresLeaderLock:
    """A session advisory lock on a connection of its own: if the process dies, PostgreSQL
    ends the session and the lock passes to a standby within one retry interval."""

    def __init__(self, dsn: str, namespace: str = "", retry_seconds: float = 0.5) -> None:
        self._dsn = dsn
        self._namespace = namespace  # e.g. the read database: one leader per deployment
        self._retry_seconds = retry_seconds
        self._connections: dict[str, asyncpg.Connection] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        connection = await asyncpg.connect(self._dsn)
        try:
            announced = False
            key = lock_key(f"{self._namespace}/{name}")
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
                if not announced:
                    log.info("projection %s is led by another process; standing by", name)
                    announced = True
                await asyncio.sleep(self._retry_seconds)
            log.info("leading projection %s", name)
            self._connections[name] = connection
            yield
        finally:
            self._connections.pop(name, None)
            if not connection.is_closed():
                await connection.close()  # ends the session, which releases the lock

    def lost(self, name: str) -> bool:
        connection = self._connections.get(name)
        return connection is None or connection.is_closed()
