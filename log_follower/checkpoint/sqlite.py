"""SQLite checkpoints in the embedded event store's file (`orders dev`)."""

from __future__ import annotations

import aiosqlite

from log_follower.checkpoint.port import Progress
from write_model.envelope import LogPosition

# The table's name is the one the saga's checkpoints had: files of earlier versions keep
# their places.
SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber_checkpoints (
    subscriber TEXT PRIMARY KEY,
    transaction_id INTEGER NOT NULL,
    position INTEGER NOT NULL
);
"""


class SqliteCheckpoint:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def load(self, follower: str) -> LogPosition | None:
        async with self._connection.execute(
            "SELECT transaction_id, position FROM subscriber_checkpoints WHERE subscriber = ?",
            (follower,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else LogPosition(int(row[0]), int(row[1]))

    async def save(self, follower: str, progress: Progress) -> None:
        position = progress.position
        await self._connection.execute(
            "INSERT INTO subscriber_checkpoints (subscriber, transaction_id, position) "
            "VALUES (?, ?, ?) ON CONFLICT (subscriber) DO UPDATE SET "
            "transaction_id = excluded.transaction_id, position = excluded.position",
            (follower, position.transaction_id, position.position),
        )
