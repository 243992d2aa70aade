"""Append signal port."""

from __future__ import annotations

from typing import Protocol


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
