"""PostgreSQL checkpoints, a table beside the event store's."""

from __future__ import annotations

import asyncpg

from write_model.envelope import LogPosition

# The table lives in the event store's database: its outages are the event store's, so the
# saga process retries them instead of parking what it was doing as a dead letter.
from write_model.event_store.postgres import (
    _unavailable_when_disconnected as unavailable_when_disconnected,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber_checkpoints (
    subscriber text PRIMARY KEY,
    transaction_id bigint NOT NULL,
    position bigint NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
"""


class PostgresCheckpoints:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @unavailable_when_disconnected
    async def load(self, subscriber: str) -> LogPosition | None:
        row = await self._pool.fetchrow(
            "SELECT transaction_id, position FROM subscriber_checkpoints WHERE subscriber = $1",
            subscriber,
        )
        return None if row is None else LogPosition(row[0], row[1])

    @unavailable_when_disconnected
    async def save(self, subscriber: str, position: LogPosition) -> None:
        await self._pool.execute(
            "INSERT INTO subscriber_checkpoints (subscriber, transaction_id, position) "
            "VALUES ($1, $2, $3) ON CONFLICT (subscriber) DO UPDATE SET "
            "transaction_id = excluded.transaction_id, position = excluded.position, "
            "saved_at = now()",
            subscriber,
            position.transaction_id,
            position.position,
        )
