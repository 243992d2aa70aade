"""In-memory dead letters: for unit tests and `orders dev` on a memory event store (a
restart forgets them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime

from log_follower.dead_letters.port import DeadLetter, LetterOwner


class InMemoryDeadLetters:
    def __init__(self) -> None:
        self._letters: dict[str, DeadLetter] = {}

    async def park(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            # Not its cause: stored letters keep the error's text, as the other stores do.
            self._letters.setdefault(letter.id, dataclasses.replace(letter, cause=None))

    async def parked_keys(self, owner: LetterOwner) -> set[str]:
        return {letter.key for letter in self._of(owner)}

    async def of_key(self, owner: LetterOwner, key: str) -> list[DeadLetter]:
        return _ordered(letter for letter in self._of(owner) if letter.key == key)

    async def get(self, letter_id: str) -> DeadLetter | None:
        return self._letters.get(letter_id)

    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[DeadLetter]:
        letters = _ordered(self._letters.values())
        if after is not None:
            letters = [letter for letter in letters if (letter.sort_key, letter.id) > after]
        return letters[:limit]

    async def request_retry(self, letter_id: str) -> bool:
        letter = self._letters.get(letter_id)
        if letter is None:
            return False
        for marked in self._of(letter.owner):
            if marked.key == letter.key:
                self._letters[marked.id] = dataclasses.replace(marked, retry_requested=True)
        return True

    async def retry_requested(self, owner: LetterOwner) -> list[str]:
        return sorted({letter.key for letter in self._of(owner) if letter.retry_requested})

    async def record_retry_failure(
        self, owner: LetterOwner, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        for letter in self._of(owner):
            if letter.key == key:
                self._letters[letter.id] = dataclasses.replace(
                    letter,
                    error=error,
                    attempts=letter.attempts + attempts,
                    failed_at=failed_at,
                    retry_requested=False,
                )

    async def remove(self, letter_ids: Sequence[str]) -> None:
        for letter_id in letter_ids:
            self._letters.pop(letter_id, None)

    async def remove_owner(self, owner: LetterOwner) -> None:
        await self.remove([letter.id for letter in self._of(owner)])

    async def count(self, follower: str | None = None) -> int:
        return sum(
            1 for letter in self._letters.values() if follower in (None, letter.owner.follower)
        )

    def _of(self, owner: LetterOwner) -> list[DeadLetter]:
        return [letter for letter in self._letters.values() if letter.owner == owner]


def _ordered(letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    return sorted(letters, key=lambda letter: (letter.sort_key, letter.id))
