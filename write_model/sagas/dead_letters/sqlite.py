"""SQLite saga dead letters in the embedded event store's file, so `orders dev` keeps
them across a restart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from write_model.sagas.dead_letters.port import SagaLetter
from write_model.sagas.dead_letters.rows import COLUMNS, IN_ORDER, SELECT, as_row, from_row

SCHEMA = """
CREATE TABLE IF NOT EXISTS saga_dead_letters (
    id TEXT PRIMARY KEY,
    sort_key TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    stream_version INTEGER NOT NULL,
    transaction_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failed_at TEXT NOT NULL,
    retry_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS saga_dead_letters_by_key
    ON saga_dead_letters (subscriber, key, sort_key);
CREATE INDEX IF NOT EXISTS saga_dead_letters_in_order ON saga_dead_letters (sort_key, id);
"""


class SqliteSagaDeadLetters:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection  # autocommit, schema in place (write_model.sagas.storage)

    async def park(self, letters: Sequence[SagaLetter]) -> None:
        await self._connection.executemany(
            f"INSERT INTO saga_dead_letters ({COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [_row(letter) for letter in letters],
        )

    async def parked_keys(self, subscriber: str) -> set[str]:
        rows = await self._fetch(
            "SELECT DISTINCT key FROM saga_dead_letters WHERE subscriber = ?", (subscriber,)
        )
        return {row[0] for row in rows}

    async def of_key(self, subscriber: str, key: str) -> list[SagaLetter]:
        rows = await self._fetch(
            f"{SELECT} WHERE subscriber = ? AND key = ? {IN_ORDER}", (subscriber, key)
        )
        return [_letter(row) for row in rows]

    async def get(self, letter_id: str) -> SagaLetter | None:
        rows = await self._fetch(f"{SELECT} WHERE id = ?", (letter_id,))
        return _letter(rows[0]) if rows else None

    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[SagaLetter]:
        if after is None:
            rows = await self._fetch(f"{SELECT} {IN_ORDER} LIMIT ?", (limit,))
        else:
            rows = await self._fetch(
                f"{SELECT} WHERE (sort_key, id) > (?, ?) {IN_ORDER} LIMIT ?",
                (after[0], after[1], limit),
            )
        return [_letter(row) for row in rows]

    async def request_retry(self, letter_id: str) -> bool:
        letter = await self.get(letter_id)
        if letter is None:
            return False
        await self._connection.execute(
            "UPDATE saga_dead_letters SET retry_requested = 1 WHERE subscriber = ? AND key = ?",
            (letter.subscriber, letter.key),
        )
        return True

    async def retry_requested(self, subscriber: str) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT key FROM saga_dead_letters "
            "WHERE subscriber = ? AND retry_requested ORDER BY key",
            (subscriber,),
        )
        return [row[0] for row in rows]

    async def record_retry_failure(
        self, subscriber: str, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        await self._connection.execute(
            "UPDATE saga_dead_letters SET error = ?, attempts = attempts + ?, failed_at = ?, "
            "retry_requested = 0 WHERE subscriber = ? AND key = ?",
            (error, attempts, failed_at.isoformat(), subscriber, key),
        )

    async def remove(self, letter_ids: Sequence[str]) -> None:
        await self._connection.executemany(
            "DELETE FROM saga_dead_letters WHERE id = ?", [(i,) for i in letter_ids]
        )

    async def count(self) -> int:
        rows = await self._fetch("SELECT count(*) FROM saga_dead_letters", ())
        return int(rows[0][0])

    async def _fetch(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        async with self._connection.execute(sql, parameters) as cursor:
            return list(await cursor.fetchall())


def _row(letter: SagaLetter) -> tuple[Any, ...]:
    row = as_row(letter)
    return (*row[:12], letter.failed_at.isoformat(), int(letter.retry_requested))


def _letter(row: Any) -> SagaLetter:
    return from_row(row, datetime.fromisoformat(row[12]))
