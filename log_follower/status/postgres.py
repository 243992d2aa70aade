"""The status board in PostgreSQL, beside the event store: every process's followers."""

from __future__ import annotations

import asyncpg

from log_follower.status.port import FollowerReport
from log_follower.status.rows import COLUMNS, as_row, from_row
from write_model.event_store.postgres import (
    _unavailable_when_disconnected as unavailable_when_disconnected,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS follower_status (
    follower text PRIMARY KEY,
    kind text NOT NULL,
    leader text NOT NULL,
    leader_since timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    transaction_id bigint NOT NULL,
    position bigint NOT NULL,
    state text NOT NULL,
    last_error text,
    is_leading boolean NOT NULL
);
"""


class PostgresStatusBoard:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @unavailable_when_disconnected
    async def report(self, report: FollowerReport) -> None:
        await self._pool.execute(
            f"INSERT INTO follower_status ({COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (follower) DO UPDATE SET "
            "kind = excluded.kind, leader = excluded.leader, "
            "leader_since = excluded.leader_since, heartbeat_at = excluded.heartbeat_at, "
            "transaction_id = excluded.transaction_id, position = excluded.position, "
            "state = excluded.state, last_error = excluded.last_error, "
            "is_leading = excluded.is_leading",
            *as_row(report),
        )

    @unavailable_when_disconnected
    async def reports(self) -> list[FollowerReport]:
        rows = await self._pool.fetch(f"SELECT {COLUMNS} FROM follower_status ORDER BY follower")
        return [from_row(row, lambda value: value) for row in rows]
