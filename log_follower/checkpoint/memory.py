"""In-memory checkpoints: for unit tests (a restart starts again from the beginning)."""

from __future__ import annotations

from log_follower.checkpoint.port import Progress
from write_model.envelope import LogPosition


class InMemoryCheckpoint:
    def __init__(self) -> None:
        self.saved: dict[str, Progress] = {}

    async def load(self, follower: str) -> LogPosition | None:
        progress = self.saved.get(follower)
        return None if progress is None else progress.position

    async def save(self, follower: str, progress: Progress) -> None:
        self.saved[follower] = progress
