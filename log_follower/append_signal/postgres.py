"""Append signals between processes: the PostgreSQL event store NOTIFYs `APPENDED_CHANNEL`
after each commit; this LISTENs through the process's shared PostgresListener."""

from __future__ import annotations

from collections.abc import Callable

from log_follower.append_signal.in_process import AppendListeners
from log_follower.append_signal.port import AppendListener
from log_follower.postgres_listener import PostgresListener

APPENDED_CHANNEL = "orders_appended"


class PostgresAppendSignal:
    def __init__(self, listener: PostgresListener, channel: str = APPENDED_CHANNEL) -> None:
        self._listener = listener
        self._channel = channel
        self._listeners = AppendListeners()
        self._unregister: Callable[[], None] = lambda: None

    async def start(self) -> None:
        await self._listener.add(self._channel, self._notified)
        # Appends made while the connection was down sent nothing: look at the log now.
        self._unregister = self._listener.on_reconnect(self._listeners.notify)

    def _notified(self, _connection: object, _pid: int, _channel: str, _payload: str) -> None:
        self._listeners.notify()

    def listener(self) -> AppendListener:
        return self._listeners.listener()

    async def close(self) -> None:
        self._unregister()
        await self._listener.remove(self._channel, self._notified)
