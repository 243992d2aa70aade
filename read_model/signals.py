"""Wake-ups and leadership for the projector.

`AppendSignal`: the projector sleeps until something was appended (or a poll interval
passes), so a quiet log costs no busy loop. `LeaderLock`: one active runner per projection
across processes; the others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Protocol

log = logging.getLogger(__name__)

APPENDED_CHANNEL = "orders_appended"
_LOCK_NAMESPACE = 0x6F72  # "or": keeps our advisory lock keys apart from other users'


class AppendListener(Protocol):
    async def wait(self, poll_seconds: float) -> None:
        """Return when an append was signalled since this listener's last wait (also while
        it was busy elsewhere), or after `poll_seconds`."""
        ...


class AppendSignal(Protocol):
    def listener(self) -> AppendListener:
        """A listener of its own for each waiter (each projection), so one waking up never
        consumes another's signal."""
        ...


class _Listeners:
    """Fan-out of append signals to per-listener events."""

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []

    def listener(self) -> _Listener:
        event = asyncio.Event()
        self._events.append(event)
        return _Listener(event)

    def notify(self) -> None:
        for event in self._events:
            event.set()


class _Listener:
    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    async def wait(self, poll_seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await self._event.wait()
        self._event.clear()


class LeaderLock(Protocol):
    def hold(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait until this process leads `name`; leadership lasts until the block exits."""
        ...

    def lost(self, name: str) -> bool:
        """True once leadership of `name` can no longer be trusted (connection gone)."""
        ...


class InProcessAppendSignal(_Listeners):
    """Woken by the command handler's after-append hook in the same process."""


class InProcessLeaderLock:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(name, asyncio.Lock()):
            yield

    def lost(self, name: str) -> bool:
        return False


class PostgresAppendSignal:
    """LISTENs on a connection of its own for the write side's append notifications."""

    def __init__(self, dsn: str, channel: str = APPENDED_CHANNEL) -> None:
        self._dsn = dsn
        self._channel = channel
        self._listeners = _Listeners()
        self._connection = None

    async def start(self) -> None:
        import asyncpg

        self._connection = await asyncpg.connect(self._dsn)
        await self._connection.add_listener(self._channel, lambda *_: self._listeners.notify())

    def listener(self) -> AppendListener:
        return self._listeners.listener()

    async def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()


def lock_key(name: str) -> int:
    return (_LOCK_NAMESPACE << 32) | zlib.crc32(name.encode())


class PostgresLeaderLock:
    """A session advisory lock on a connection of its own: if the process dies, PostgreSQL
    ends the session and the lock passes to a standby within one retry interval."""

    def __init__(self, dsn: str, namespace: str = "", retry_seconds: float = 0.5) -> None:
        self._dsn = dsn
        self._namespace = namespace  # e.g. the read database: one leader per deployment
        self._retry_seconds = retry_seconds
        self._connections: dict[str, object] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        import asyncpg

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
        return connection is None or connection.is_closed()  # type: ignore[attr-defined]
