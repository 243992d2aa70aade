"""The Checkpoint port."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from write_model.envelope import LogPosition


class FollowerState(StrEnum):
    RUNNING = "RUNNING"  # at the head of the log
    CATCHING_UP = "CATCHING_UP"  # its last batch was full: more is waiting
    FAILED = "FAILED"  # its last batch failed (an outage, a bug); retried with backoff


@dataclass(frozen=True, slots=True)
class Progress:
    """What a follower saves: where it is, and how its last batch went."""

    position: LogPosition
    state: FollowerState = FollowerState.RUNNING
    last_error: str | None = None


class Checkpoint(Protocol):
    async def load(self, follower: str) -> LogPosition | None:
        """Where `follower` stopped; None before its first save."""
        ...

    async def save(self, follower: str, progress: Progress) -> None:
        """Called after a batch's effects and letters are durable, and at least every
        heartbeat while leading (the same position again: its save time is the heartbeat).
        A consumer that wrote this position with its own effects (the relay, in its Kafka
        transaction) has an adapter for which saving it again costs nothing."""
        ...
