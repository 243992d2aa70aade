"""One PostgreSQL LISTEN connection per process, shared by every channel it follows: the
append signal (projector, saga) and the change feed (API) both register their callbacks
here instead of each opening a connection of its own.

The connection is watched: when it drops (a server restart, `pg_terminate_backend`, a
network cut) or stops answering the periodic check, it is replaced, waiting by the one
backoff (write_model/backoff.py) between tries for as long as the outage lasts; every
channel is LISTENed again, and the `on_reconnect` callbacks run, so that users can make up
for notifications sent during the gap (the change feed re-sends the documents its
subscribers watch). `healthy` says whether the
listener is connected now, for /readyz and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from write_model import backoff

log = logging.getLogger(__name__)

# asyncpg's listener signature: (connection, backend pid, channel, payload).
NotificationCallback = Callable[[object, int, str, str], None]


class PostgresListener:
    def __init__(
        self,
        dsn: str,
        *,
        application_name: str = "orders listener",
        check_seconds: float = 2.0,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._application_name = application_name  # shown in pg_stat_activity
        self._check_seconds = check_seconds
        self._backoff_seconds = backoff_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._connection: asyncpg.Connection | None = None
        self._channels: dict[str, list[NotificationCallback]] = {}
        self._reconnect_callbacks: list[Callable[[], None]] = []
        self._lost = asyncio.Event()
        # One operation at a time on the connection: a channel added while the periodic
        # check runs would fail with asyncpg's "another operation is in progress".
        self._using = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self.reconnects = 0  # how often the connection was replaced
        self.last_error: str | None = None

    @property
    def healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def start(self) -> None:
        self._connection = await self._connect()
        self._watcher = asyncio.create_task(self._watch(), name="postgres-listener")

    async def _connect(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(
            self._dsn,
            server_settings={"application_name": self._application_name},
            timeout=self._check_seconds * 5,  # a server mid-restart may accept, then stall
        )
        connection.add_termination_listener(self._terminated)
        try:
            for channel, callbacks in self._channels.items():
                for callback in callbacks:
                    await connection.add_listener(channel, callback)
        except BaseException:
            connection.terminate()
            raise
        return connection

    def _terminated(self, connection: object) -> None:
        if connection is self._connection:  # not one this listener replaced or closed
            self._lost.set()

    def on_reconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after each reconnection; returns a function that unregisters it."""
        self._reconnect_callbacks.append(callback)
        return lambda: self._reconnect_callbacks.remove(callback)

    async def add(self, channel: str, callback: NotificationCallback) -> None:
        """Call `callback` for every notification on `channel` from now on."""
        self._channels.setdefault(channel, []).append(callback)
        async with self._using:
            if self.healthy:
                assert self._connection is not None
                await self._connection.add_listener(channel, callback)

    async def remove(self, channel: str, callback: NotificationCallback) -> None:
        callbacks = self._channels.get(channel, [])
        if callback in callbacks:
            callbacks.remove(callback)
        async with self._using:
            if self.healthy:
                assert self._connection is not None
                await self._connection.remove_listener(channel, callback)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()

    # --------------------------------------------------------------- watching

    async def _watch(self) -> None:
        while True:
            await self._until_lost()
            await self._replace()

    async def _until_lost(self) -> None:
        """Return once the connection is gone or does not answer a check in time."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._check_seconds):
                    await self._lost.wait()
            if self._lost.is_set():
                return
            try:
                assert self._connection is not None
                async with self._using, asyncio.timeout(self._check_seconds):
                    await self._connection.fetchval("SELECT 1")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                self.last_error = f"{type(e).__name__}: {e}"
                return

    async def _replace(self) -> None:
        log.warning("the PostgreSQL LISTEN connection was lost; reconnecting")
        old, self._connection = self._connection, None
        if old is not None:
            old.terminate()
        failures = 0
        while True:
            try:
                connection = await self._connect()
                break
            except Exception as error:  # whatever a restarting server answers: try again
                self.last_error = f"{type(error).__name__}: {error}"
                failures += 1
                delay = backoff.delay(failures, self._backoff_seconds, self._max_backoff_seconds)
                log.warning("LISTEN reconnect failed (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
        self._lost.clear()
        self._connection = connection
        self.reconnects += 1
        self.last_error = None
        log.info("the PostgreSQL LISTEN connection is back (reconnect %s)", self.reconnects)
        for callback in list(self._reconnect_callbacks):
            try:
                callback()
            except Exception:  # one user's bug must not keep the others from resyncing
                log.exception("a LISTEN reconnect callback failed")
