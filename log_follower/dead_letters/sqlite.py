"""SQLite dead letters in the embedded event store's file, so `orders dev` keeps them across
a restart. `SCHEMA` is the table alone; `migrate` also moves the letters the saga parked in
its own table before there was one store (`saga_dead_letters`) into it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from log_follower.dead_letters.port import DeadLetter, LetterOwner
from log_follower.dead_letters.rows import COLUMNS, FAILED_AT, IN_ORDER, SELECT, as_row, from_row

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    sort_key TEXT NOT NULL,
    follower TEXT NOT NULL,
    version INTEGER,
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
CREATE INDEX IF NOT EXISTS dead_letters_by_key ON dead_letters (follower, version, key, sort_key);
CREATE INDEX IF NOT EXISTS dead_letters_in_order ON dead_letters (sort_key, id);
"""

_FROM_SAGA_TABLE = """
INSERT OR IGNORE INTO dead_letters (
    id, sort_key, follower, version, key, event_id, stream_id, stream_version, transaction_id,
    position, event_type, error, attempts, failed_at, retry_requested
)
SELECT id, sort_key, subscriber, NULL, key, event_id, stream_id, stream_version,
    transaction_id, position, event_type, error, attempts, failed_at, retry_requested
FROM saga_dead_letters;
DROP TABLE saga_dead_letters;
"""

_OWNER = "follower = ? AND version IS ?"


async def migrate(connection: aiosqlite.Connection) -> None:
    await connection.executescript(SCHEMA)
    async with connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'saga_dead_letters'"
    ) as cursor:
        old_table = await cursor.fetchone()
    if old_table is not None:
        await connection.executescript(f"BEGIN; {_FROM_SAGA_TABLE} COMMIT;")


class SqliteDeadLetters:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection  # autocommit, schema in place (`migrate`)

    async def park(self, letters: Sequence[DeadLetter]) -> None:
        await self._connection.executemany(
            f"INSERT INTO dead_letters ({COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [_row(letter) for letter in letters],
        )

    async def parked_keys(self, owner: LetterOwner) -> set[str]:
        rows = await self._fetch(
            f"SELECT DISTINCT key FROM dead_letters WHERE {_OWNER}", _of(owner)
        )
        return {row[0] for row in rows}

    async def of_key(self, owner: LetterOwner, key: str) -> list[DeadLetter]:
        rows = await self._fetch(
            f"{SELECT} WHERE {_OWNER} AND key = ? {IN_ORDER}", (*_of(owner), key)
        )
        return [_letter(row) for row in rows]

    async def get(self, letter_id: str) -> DeadLetter | None:
        rows = await self._fetch(f"{SELECT} WHERE id = ?", (letter_id,))
        return _letter(rows[0]) if rows else None

    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[DeadLetter]:
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
            f"UPDATE dead_letters SET retry_requested = 1 WHERE {_OWNER} AND key = ?",
            (*_of(letter.owner), letter.key),
        )
        return True

    async def retry_requested(self, owner: LetterOwner) -> list[str]:
        rows = await self._fetch(
            f"SELECT DISTINCT key FROM dead_letters WHERE {_OWNER} AND retry_requested "
            "ORDER BY key",
            _of(owner),
        )
        return [row[0] for row in rows]

    async def record_retry_failure(
        self, owner: LetterOwner, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        await self._connection.execute(
            "UPDATE dead_letters SET error = ?, attempts = attempts + ?, failed_at = ?, "
            f"retry_requested = 0 WHERE {_OWNER} AND key = ?",
            (error, attempts, failed_at.isoformat(), *_of(owner), key),
        )

    async def remove(self, letter_ids: Sequence[str]) -> None:
        await self._connection.executemany(
            "DELETE FROM dead_letters WHERE id = ?", [(i,) for i in letter_ids]
        )

    async def remove_owner(self, owner: LetterOwner) -> None:
        await self._connection.execute(f"DELETE FROM dead_letters WHERE {_OWNER}", _of(owner))

    async def count(self, follower: str | None = None) -> int:
        if follower is None:
            rows = await self._fetch("SELECT count(*) FROM dead_letters", ())
        else:
            rows = await self._fetch(
                "SELECT count(*) FROM dead_letters WHERE follower = ?", (follower,)
            )
        return int(rows[0][0])

    async def _fetch(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        async with self._connection.execute(sql, parameters) as cursor:
            return list(await cursor.fetchall())


def _of(owner: LetterOwner) -> tuple[str, int | None]:
    return owner.follower, owner.version


def _row(letter: DeadLetter) -> tuple[Any, ...]:
    row = as_row(letter)
    return (*row[:FAILED_AT], letter.failed_at.isoformat(), int(letter.retry_requested))


def _letter(row: Any) -> DeadLetter:
    return from_row(row, datetime.fromisoformat(row[FAILED_AT]))
