"""PostgreSQL dead letters, a table beside the event store's. Ids and sort keys compare
bytewise (COLLATE "C"), as Python compares them, so every adapter lists letters in one
order. `SCHEMA` also moves the letters the saga parked in its own table before there was
one store (`saga_dead_letters`) into this one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from log_follower.dead_letters.port import DeadLetter, LetterOwner
from log_follower.dead_letters.rows import COLUMNS, FAILED_AT, IN_ORDER, SELECT, as_row, from_row

# The table lives in the event store's database: its outages are the event store's, so a
# follower waits them out instead of parking what it was doing as a dead letter.
from write_model.event_store.postgres import (
    _unavailable_when_disconnected as unavailable_when_disconnected,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id text COLLATE "C" PRIMARY KEY,
    sort_key text COLLATE "C" NOT NULL,
    follower text NOT NULL,
    version integer,
    key text NOT NULL,
    event_id text NOT NULL,
    stream_id text NOT NULL,
    stream_version bigint NOT NULL,
    transaction_id bigint NOT NULL,
    position bigint NOT NULL,
    event_type text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    failed_at timestamptz NOT NULL,
    retry_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS dead_letters_by_key
    ON dead_letters (follower, version, key, sort_key);
CREATE INDEX IF NOT EXISTS dead_letters_in_order ON dead_letters (sort_key, id);
DO $$
BEGIN
    IF to_regclass('saga_dead_letters') IS NOT NULL THEN
        INSERT INTO dead_letters (
            id, sort_key, follower, version, key, event_id, stream_id, stream_version,
            transaction_id, position, event_type, error, attempts, failed_at,
            retry_requested
        )
        SELECT id, sort_key, subscriber, NULL, key, event_id, stream_id, stream_version,
            transaction_id, position, event_type, error, attempts, failed_at, retry_requested
        FROM saga_dead_letters
        ON CONFLICT (id) DO NOTHING;
        DROP TABLE saga_dead_letters;
    END IF;
END $$;
"""

_OWNER = "follower = $1 AND version IS NOT DISTINCT FROM $2"


class PostgresDeadLetters:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @unavailable_when_disconnected
    async def park(self, letters: Sequence[DeadLetter]) -> None:
        await self._pool.executemany(
            f"INSERT INTO dead_letters ({COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
            "ON CONFLICT (id) DO NOTHING",
            [as_row(letter) for letter in letters],
        )

    @unavailable_when_disconnected
    async def parked_keys(self, owner: LetterOwner) -> set[str]:
        rows = await self._pool.fetch(
            f"SELECT DISTINCT key FROM dead_letters WHERE {_OWNER}", *_of(owner)
        )
        return {row[0] for row in rows}

    @unavailable_when_disconnected
    async def of_key(self, owner: LetterOwner, key: str) -> list[DeadLetter]:
        rows = await self._pool.fetch(
            f"{SELECT} WHERE {_OWNER} AND key = $3 {IN_ORDER}", *_of(owner), key
        )
        return [_letter(row) for row in rows]

    @unavailable_when_disconnected
    async def get(self, letter_id: str) -> DeadLetter | None:
        row = await self._pool.fetchrow(f"{SELECT} WHERE id = $1", letter_id)
        return None if row is None else _letter(row)

    @unavailable_when_disconnected
    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[DeadLetter]:
        if after is None:
            rows = await self._pool.fetch(f"{SELECT} {IN_ORDER} LIMIT $1", limit)
        else:
            rows = await self._pool.fetch(
                f"{SELECT} WHERE (sort_key, id) > ($1, $2) {IN_ORDER} LIMIT $3",
                after[0],
                after[1],
                limit,
            )
        return [_letter(row) for row in rows]

    @unavailable_when_disconnected
    async def request_retry(self, letter_id: str) -> bool:
        marked = await self._pool.fetchval(
            "WITH letter AS (SELECT follower, version, key FROM dead_letters WHERE id = $1), "
            "marked AS (UPDATE dead_letters SET retry_requested = true FROM letter "
            "WHERE dead_letters.follower = letter.follower "
            "AND dead_letters.version IS NOT DISTINCT FROM letter.version "
            "AND dead_letters.key = letter.key RETURNING 1) "
            "SELECT count(*) FROM letter",
            letter_id,
        )
        return bool(marked)

    @unavailable_when_disconnected
    async def retry_requested(self, owner: LetterOwner) -> list[str]:
        rows = await self._pool.fetch(
            f"SELECT DISTINCT key FROM dead_letters WHERE {_OWNER} AND retry_requested "
            "ORDER BY key",
            *_of(owner),
        )
        return [row[0] for row in rows]

    @unavailable_when_disconnected
    async def record_retry_failure(
        self, owner: LetterOwner, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        await self._pool.execute(
            "UPDATE dead_letters SET error = $4, attempts = attempts + $5, "
            f"failed_at = $6, retry_requested = false WHERE {_OWNER} AND key = $3",
            *_of(owner),
            key,
            error,
            attempts,
            failed_at,
        )

    @unavailable_when_disconnected
    async def remove(self, letter_ids: Sequence[str]) -> None:
        await self._pool.execute(
            "DELETE FROM dead_letters WHERE id = ANY($1::text[])", list(letter_ids)
        )

    @unavailable_when_disconnected
    async def remove_owner(self, owner: LetterOwner) -> None:
        await self._pool.execute(f"DELETE FROM dead_letters WHERE {_OWNER}", *_of(owner))

    @unavailable_when_disconnected
    async def count(self, follower: str | None = None) -> int:
        if follower is None:
            return int(await self._pool.fetchval("SELECT count(*) FROM dead_letters"))
        return int(
            await self._pool.fetchval(
                "SELECT count(*) FROM dead_letters WHERE follower = $1", follower
            )
        )


def _of(owner: LetterOwner) -> tuple[str, int | None]:
    return owner.follower, owner.version


def _letter(row: Any) -> DeadLetter:
    return from_row(row, row[FAILED_AT])
