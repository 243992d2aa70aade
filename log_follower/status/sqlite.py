"""The status board in the embedded event store's SQLite file (`orders dev`)."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from log_follower.status.port import FollowerReport
from log_follower.status.rows import COLUMNS, as_row, from_row

SCHEMA = """
CREATE TABLE IF NOT EXISTS follower_status (
    follower TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    leader TEXT NOT NULL,
    leader_since TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    transaction_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,
    last_error TEXT,
    is_leading INTEGER NOT NULL
);
"""


class SqliteStatusBoard:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def report(self, report: FollowerReport) -> None:
        row = as_row(report)
        await self._connection.execute(
            f"INSERT OR REPLACE INTO follower_status ({COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*row[:3], row[3].isoformat(), row[4].isoformat(), *row[5:9], int(row[9])),
        )

    async def reports(self) -> list[FollowerReport]:
        async with self._connection.execute(
            f"SELECT {COLUMNS} FROM follower_status ORDER BY follower"
        ) as cursor:
            rows = list(await cursor.fetchall())
        return [from_row(row, datetime.fromisoformat) for row in rows]
