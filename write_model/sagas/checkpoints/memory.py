"""In-memory checkpoints: for unit tests (a restart starts again from the beginning)."""

from __future__ import annotations

from write_model.envelope import LogPosition


class InMemoryCheckpoints:
    def __init__(self) -> None:
        self._positions: dict[str, LogPosition] = {}

    async def load(self, subscriber: str) -> LogPosition | None:
        return self._positions.get(subscriber)

    async def save(self, subscriber: str, position: LogPosition) -> None:
        self._positions[subscriber] = position
