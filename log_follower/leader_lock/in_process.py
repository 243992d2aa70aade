"""Leadership within one process (`orders dev`, tests): an asyncio lock per name."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class InProcessLeaderLock:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(name, asyncio.Lock()):
            yield

    def lost(self, name: str) -> bool:
        return False
