"""uvicorn's websocket protocol (websockets' sans-I/O implementation, the one uvicorn picks
by default) with less held per connection, for servers with thousands of subscribers:

- the receive queue is a `DropOldestQueue` without a bound (a list and a waiter) instead
  of an asyncio.Queue (four deques of 64 slots: ~3 KiB each connection); uvicorn bounds it
  already by pausing the socket's reads while a message waits;
- "the socket may be written" is a flag and a future made only while writes are paused,
  instead of an asyncio.Event (another deque);
- the handshake's request and response (their headers parsed into lists and dicts, ~2 KiB)
  are let go once the handshake is answered: uvicorn reads neither again, and the ASGI
  scope keeps the request's headers for the application.

Everything else (framing, pings, closing, back-pressure) is uvicorn's own, unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from read_model.bounded_queue import DropOldestQueue


class ReceiveQueue(DropOldestQueue[ASGIReceiveEvent]):
    """The asyncio.Queue calls uvicorn makes, on a queue that never drops."""

    def __init__(self) -> None:
        super().__init__(None)

    def put_nowait(self, message: ASGIReceiveEvent) -> None:
        self.offer(message)


class Writable:
    """The asyncio.Event calls uvicorn makes on its `writable`: set, clear, wait."""

    __slots__ = ("_resumed",)

    def __init__(self) -> None:
        self._resumed: asyncio.Future[None] | None = None  # while writes are paused

    def set(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None and not resumed.done():
            resumed.set_result(None)

    def clear(self) -> None:
        if self._resumed is None:
            self._resumed = asyncio.get_running_loop().create_future()

    def is_set(self) -> bool:
        return self._resumed is None

    async def wait(self) -> None:
        while (resumed := self._resumed) is not None:
            await asyncio.shield(resumed)  # one writer cancelled leaves the others waiting


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()  # type: ignore[assignment]  # the calls uvicorn makes
        self.writable = Writable()  # type: ignore[assignment]  # the calls uvicorn makes

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # Answered (accepted or refused): neither is read again.
            self.request = None  # type: ignore[assignment]  # let go; uvicorn types it as set
            self.response = None  # type: ignore[assignment]  # let go; uvicorn types it as set
