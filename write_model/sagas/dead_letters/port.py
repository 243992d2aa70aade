"""SagaDeadLetters port: events a reaction (the orchestrator, a choreography participant)
could not handle, parked per key with every later event of that key, so the key keeps its
order while the others flow. Adapters: memory, sqlite (`orders dev`), postgres; every one
passes tests/contracts/test_saga_dead_letters.py.

Letters sort by (`sort_key`, `id`): `sort_key` is the event's log position as the read
model's dead letters carry it (read_model.document_store.port.position_key), so the two
lists merge into one in log order (`deadLetters`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from read_model.document_store.port import position_key
from write_model.envelope import LogPosition

PARKED_BEHIND = "parked behind an earlier failed event of its key"


@dataclass(frozen=True, slots=True)
class SagaLetter:
    """One parked event of one subscriber's key."""

    subscriber: str  # e.g. "saga:fulfillment"
    key: str  # what the event concerns for the reaction (an order id)
    event_id: str
    stream_id: str
    stream_version: int
    log_position: LogPosition
    event_type: str
    error: str
    attempts: int  # tries that failed (0: parked behind an earlier letter of its key)
    failed_at: datetime
    retry_requested: bool = False

    @property
    def id(self) -> str:
        return letter_id(self.subscriber, self.event_id)

    @property
    def sort_key(self) -> str:
        return position_key(self.log_position)


def letter_id(subscriber: str, event_id: str) -> str:
    """One letter per subscriber and event: parking it again (a batch read again after a
    crash) keeps the first."""
    return f"{subscriber}:{event_id}"


class SagaDeadLetters(Protocol):
    async def park(self, letters: Sequence[SagaLetter]) -> None:
        """Store the letters; one whose id is stored already is left as it was."""
        ...

    async def parked_keys(self, subscriber: str) -> set[str]:
        """The subscriber's keys that have letters."""
        ...

    async def of_key(self, subscriber: str, key: str) -> list[SagaLetter]:
        """The key's letters, in log order."""
        ...

    async def get(self, letter_id: str) -> SagaLetter | None: ...

    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[SagaLetter]:
        """Letters of every subscriber in (`sort_key`, `id`) order, after that pair."""
        ...

    async def request_retry(self, letter_id: str) -> bool:
        """Ask the subscriber's leading process to retry the letter's key (every letter of
        it is marked). False: no such letter."""
        ...

    async def retry_requested(self, subscriber: str) -> list[str]:
        """The subscriber's keys an operator asked to retry, sorted."""
        ...

    async def record_retry_failure(
        self, subscriber: str, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        """A retry of the key failed again: every letter of it records `error`, counts
        `attempts` more tries, and is no longer marked for retry."""
        ...

    async def remove(self, letter_ids: Sequence[str]) -> None: ...

    async def count(self) -> int:
        """Letters of every subscriber."""
        ...
