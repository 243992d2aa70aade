"""In-memory saga dead letters: for unit tests (a restart forgets them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime

from write_model.sagas.dead_letters.port import SagaLetter


class InMemorySagaDeadLetters:
    def __init__(self) -> None:
        self._letters: dict[str, SagaLetter] = {}

    async def park(self, letters: Sequence[SagaLetter]) -> None:
        for letter in letters:
            self._letters.setdefault(letter.id, letter)

    async def parked_keys(self, subscriber: str) -> set[str]:
        return {letter.key for letter in self._of(subscriber)}

    async def of_key(self, subscriber: str, key: str) -> list[SagaLetter]:
        return _ordered(letter for letter in self._of(subscriber) if letter.key == key)

    async def get(self, letter_id: str) -> SagaLetter | None:
        return self._letters.get(letter_id)

    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[SagaLetter]:
        letters = _ordered(self._letters.values())
        if after is not None:
            letters = [letter for letter in letters if (letter.sort_key, letter.id) > after]
        return letters[:limit]

    async def request_retry(self, letter_id: str) -> bool:
        letter = self._letters.get(letter_id)
        if letter is None:
            return False
        for marked in self._of(letter.subscriber):
            if marked.key == letter.key:
                self._letters[marked.id] = dataclasses.replace(marked, retry_requested=True)
        return True

    async def retry_requested(self, subscriber: str) -> list[str]:
        return sorted({letter.key for letter in self._of(subscriber) if letter.retry_requested})

    async def record_retry_failure(
        self, subscriber: str, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        for letter in self._of(subscriber):
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

    async def count(self) -> int:
        return len(self._letters)

    def _of(self, subscriber: str) -> list[SagaLetter]:
        return [letter for letter in self._letters.values() if letter.subscriber == subscriber]


def _ordered(letters: Iterable[SagaLetter]) -> list[SagaLetter]:
    return sorted(letters, key=lambda letter: (letter.sort_key, letter.id))
