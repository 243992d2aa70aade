"""Leadership across processes: a PostgreSQL session advisory lock per name, each on a
connection of its own, so a process that dies hands its leadership over when PostgreSQL ends
its session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator

import asyncpg

log = logging.getLogger(__name__)

_LOCK_NAMESPACE = 0x6F72  # "or": keeps our advisory lock keys apart from other users'


def lock_key(name: str) -> int:
    return (_LOCK_NAMESPACE << 32) | zlib.crc32(name.encode())


class PostgresLeaderLock:
    """A session advisory lock on a connection of its own: if the process dies, PostgreSQL
    ends the session and the lock passes to a standby within one retry interval.

    While leading, a heartbeat checks the connection every `heartbeat_seconds`; a
    connection that dropped, or gives no answer within `answer_seconds`, means the lock may
    already be another process's, so `lost` turns true and the leader stops (its in-flight
    writes are harmless: documents are guarded by position, appends by version, the relay's
    transactions by Kafka's fencing). An answer later than the heartbeat but within that
    bound is a database or a network slow for a moment, as under load, while the session
    holding the lock stays alive: leading goes on, and the delay is logged."""

    def __init__(
        self,
        dsn: str,
        namespace: str = "",
        retry_seconds: float = 0.5,
        heartbeat_seconds: float = 1.0,
        answer_seconds: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._namespace = namespace  # e.g. the read database: one leader per deployment
        self._retry_seconds = retry_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._answer_seconds = max(answer_seconds, heartbeat_seconds)
        self._connections: dict[str, asyncpg.Connection] = {}
        self._lost: set[str] = set()

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        connection = await asyncpg.connect(
            self._dsn, server_settings={"application_name": f"orders-lock {name}"}
        )
        heartbeat: asyncio.Task[None] | None = None
        try:
            announced = False
            key = lock_key(f"{self._namespace}/{name}")
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
                if not announced:
                    log.info("%s is led by another process; standing by", name)
                    announced = True
                await asyncio.sleep(self._retry_seconds)
            log.info("leading %s", name)
            self._lost.discard(name)
            self._connections[name] = connection
            heartbeat = asyncio.create_task(self._beat(name, connection), name=f"lock {name}")
            yield
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            self._connections.pop(name, None)
            if not connection.is_closed():
                await connection.close()  # ends the session, which releases the lock

    async def _beat(self, name: str, connection: asyncpg.Connection) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            asked = time.monotonic()
            try:
                async with asyncio.timeout(self._answer_seconds):
                    await connection.fetchval("SELECT 1")
            except TimeoutError:
                log.error(
                    "leadership of %s lost: its connection gave no answer in %.1f s",
                    name,
                    self._answer_seconds,
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.error("leadership of %s lost: its connection failed (%s)", name, e)
            else:
                waited = time.monotonic() - asked
                if waited > self._heartbeat_seconds:
                    log.warning(
                        "%s: the lock's connection answered after %.1f s; still leading",
                        name,
                        waited,
                    )
                continue
            self._lost.add(name)
            connection.terminate()
            return

    def lost(self, name: str) -> bool:
        connection = self._connections.get(name)
        return name in self._lost or connection is None or connection.is_closed()
