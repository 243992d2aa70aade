"""Append signals within one process: notified by the process's AnnouncingEventStore
(write_model/event_store/announcing.py) after each append."""

from __future__ import annotations

import asyncio
import contextlib


class AppendListeners:
    """Fan-out of append signals to per-listener events."""

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []

    def listener(self) -> EventListener:
        event = asyncio.Event()
        self._events.append(event)
        return EventListener(event)

    def notify(self) -> None:
        for event in self._events:
            event.set()


class EventListener:
    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    async def wait(self, poll_seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await self._event.wait()
        self._event.clear()


class InProcessAppendSignal(AppendListeners):
    """Notified in-process (`notify()`) after each append."""
