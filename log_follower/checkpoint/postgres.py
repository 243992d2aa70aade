"""PostgreSQL checkpoints, a table beside the event store's."""

from __future__ import annotations

import asyncpg

from log_follower.checkpoint.port import Progress
from write_model.envelope import LogPosition

# The table lives in the event store's database: its outages are the event store's, so a
# follower waits them out instead of parking what it was doing as a dead letter.
from write_model.event_store.postgres import (
    _unavailable_when_disconnected as unavailable_when_disconnected,
)

# The table's name is the one the saga's checkpoints had: databases of earlier versions
# keep their places.
SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber_checkpoints (
    subscriber text PRIMARY KEY,
    transaction_id bigint NOT NULL,
    position bigint NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
"""


class PostgresCheckpoint:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @unavailable_when_disconnected
    async def load(self, follower: str) -> LogPosition | None:
        row = await self._pool.fetchrow(
            "SELECT transaction_id, position FROM subscriber_checkpoints WHERE subscriber = $1",
            follower,
        )
        return None if row is None else LogPosition(row[0], row[1])

    @unavailable_when_disconnected
    async def save(self, follower: str, progress: Progress) -> None:
        await self._pool.execute(
            "INSERT INTO subscriber_checkpoints (subscriber, transaction_id, position) "
            "VALUES ($1, $2, $3) ON CONFLICT (subscriber) DO UPDATE SET "
            "transaction_id = excluded.transaction_id, position = excluded.position, "
            "saved_at = now()",
            follower,
            progress.position.transaction_id,
            progress.position.position,
        )
