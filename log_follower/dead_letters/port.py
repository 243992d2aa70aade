"""The DeadLetters port: events a follower's consumer could not handle, parked per key with
every later event of that key, so the key keeps its order while the others flow.

Letters belong to an owner: a follower and, for projections, the collection version it
writes (a rebuild parks under the version it builds; its letters become the live ones when
readers switch to it, and the old version's go with its collections). One list of every
follower's letters in log order, (`sort_key`, `id`), serves `deadLetters`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from write_model.envelope import LogPosition

PARKED_BEHIND = "parked behind an earlier failed event of its key"


def position_key(position: LogPosition) -> str:
    """A string that sorts like (transaction_id, position): both zero-padded to 20 digits."""
    return f"{position.transaction_id:020d}:{position.position:020d}"


@dataclass(frozen=True, slots=True)
class LetterOwner:
    follower: str  # e.g. "orders" (a projection), "saga:fulfillment"
    version: int | None = None  # a projection's collection version; None for the others


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One parked event of one owner's key."""

    owner: LetterOwner
    key: str  # what the event concerns for the consumer (a stream id, an order id)
    event_id: str
    stream_id: str
    stream_version: int
    log_position: LogPosition
    event_type: str
    error: str
    attempts: int  # tries that failed (0: parked behind an earlier letter of its key)
    failed_at: datetime
    retry_requested: bool = False
    # The exception that failed it, while it is being parked (never stored): for a copy
    # published elsewhere with its class and stack trace (the Kafka dead-letter topic).
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        return letter_id(self.owner, self.event_id)

    @property
    def sort_key(self) -> str:
        return position_key(self.log_position)


def letter_id(owner: LetterOwner, event_id: str) -> str:
    """One letter per owner and event: parking it again (a batch read again after a crash)
    keeps the first. The ids letters had before there was one store (a projection's
    `<name>:v<version>:<event>`, the saga's `<subscriber>:<event>`), so old ones keep theirs."""
    if owner.version is None:
        return f"{owner.follower}:{event_id}"
    return f"{owner.follower}:v{owner.version}:{event_id}"


class DeadLetters(Protocol):
    async def park(self, letters: Sequence[DeadLetter]) -> None:
        """Store the letters; one whose id is stored already is left as it was."""
        ...

    async def parked_keys(self, owner: LetterOwner) -> set[str]:
        """The owner's keys that have letters."""
        ...

    async def of_key(self, owner: LetterOwner, key: str) -> list[DeadLetter]:
        """The key's letters, in log order."""
        ...

    async def get(self, letter_id: str) -> DeadLetter | None: ...

    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[DeadLetter]:
        """Letters of every owner in (`sort_key`, `id`) order, after that pair."""
        ...

    async def request_retry(self, letter_id: str) -> bool:
        """Ask the owner's leading process to retry the letter's key (every letter of it is
        marked). False: no such letter."""
        ...

    async def retry_requested(self, owner: LetterOwner) -> list[str]:
        """The owner's keys an operator asked to retry, sorted."""
        ...

    async def record_retry_failure(
        self, owner: LetterOwner, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        """A retry of the key failed again: every letter of it records `error`, counts
        `attempts` more tries, and is no longer marked for retry."""
        ...

    async def remove(self, letter_ids: Sequence[str]) -> None: ...

    async def remove_owner(self, owner: LetterOwner) -> None:
        """Every letter of the owner (a dropped collection version)."""
        ...

    async def count(self, follower: str | None = None) -> int:
        """Letters of `follower` (every version), or of every follower."""
        ...
