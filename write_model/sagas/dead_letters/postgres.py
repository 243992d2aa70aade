"""PostgreSQL saga dead letters, a table beside the subscriber checkpoints. Ids and sort
keys compare bytewise (COLLATE "C"), as the document store and Python compare them, so a
merged list of both kinds of letters is in one order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

# The table lives in the event store's database: its outages are the event store's, so the
# saga process retries them instead of parking what it was doing as a dead letter.
from write_model.event_store.postgres import (
    _unavailable_when_disconnected as unavailable_when_disconnected,
)
from write_model.sagas.dead_letters.port import SagaLetter
from write_model.sagas.dead_letters.rows import COLUMNS, IN_ORDER, SELECT, as_row, from_row

SCHEMA = """
CREATE TABLE IF NOT EXISTS saga_dead_letters (
    id text COLLATE "C" PRIMARY KEY,
    sort_key text COLLATE "C" NOT NULL,
    subscriber text NOT NULL,
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
CREATE INDEX IF NOT EXISTS saga_dead_letters_by_key
    ON saga_dead_letters (subscriber, key, sort_key);
CREATE INDEX IF NOT EXISTS saga_dead_letters_in_order ON saga_dead_letters (sort_key, id);
"""


class PostgresSagaDeadLetters:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @unavailable_when_disconnected
    async def park(self, letters: Sequence[SagaLetter]) -> None:
        await self._pool.executemany(
            f"INSERT INTO saga_dead_letters ({COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            "ON CONFLICT (id) DO NOTHING",
            [_row(letter) for letter in letters],
        )

    @unavailable_when_disconnected
    async def parked_keys(self, subscriber: str) -> set[str]:
        rows = await self._pool.fetch(
            "SELECT DISTINCT key FROM saga_dead_letters WHERE subscriber = $1", subscriber
        )
        return {row[0] for row in rows}

    @unavailable_when_disconnected
    async def of_key(self, subscriber: str, key: str) -> list[SagaLetter]:
        rows = await self._pool.fetch(
            f"{SELECT} WHERE subscriber = $1 AND key = $2 {IN_ORDER}", subscriber, key
        )
        return [_letter(row) for row in rows]

    @unavailable_when_disconnected
    async def get(self, letter_id: str) -> SagaLetter | None:
        row = await self._pool.fetchrow(f"{SELECT} WHERE id = $1", letter_id)
        return None if row is None else _letter(row)

    @unavailable_when_disconnected
    async def page(self, limit: int, after: tuple[str, str] | None = None) -> list[SagaLetter]:
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
            "WITH letter AS (SELECT subscriber, key FROM saga_dead_letters WHERE id = $1), "
            "marked AS (UPDATE saga_dead_letters SET retry_requested = true "
            "FROM letter WHERE saga_dead_letters.subscriber = letter.subscriber "
            "AND saga_dead_letters.key = letter.key RETURNING 1) "
            "SELECT count(*) FROM letter",
            letter_id,
        )
        return bool(marked)

    @unavailable_when_disconnected
    async def retry_requested(self, subscriber: str) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT DISTINCT key FROM saga_dead_letters "
            "WHERE subscriber = $1 AND retry_requested ORDER BY key",
            subscriber,
        )
        return [row[0] for row in rows]

    @unavailable_when_disconnected
    async def record_retry_failure(
        self, subscriber: str, key: str, error: str, attempts: int, failed_at: datetime
    ) -> None:
        await self._pool.execute(
            "UPDATE saga_dead_letters SET error = $3, attempts = attempts + $4, "
            "failed_at = $5, retry_requested = false WHERE subscriber = $1 AND key = $2",
            subscriber,
            key,
            error,
            attempts,
            failed_at,
        )

    @unavailable_when_disconnected
    async def remove(self, letter_ids: Sequence[str]) -> None:
        await self._pool.execute(
            "DELETE FROM saga_dead_letters WHERE id = ANY($1::text[])", list(letter_ids)
        )

    @unavailable_when_disconnected
    async def count(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM saga_dead_letters"))


def _row(letter: SagaLetter) -> tuple[Any, ...]:
    return as_row(letter)


def _letter(row: Any) -> SagaLetter:
    return from_row(row, row[12])
