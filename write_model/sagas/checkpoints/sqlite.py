"""SQLite checkpoints in the embedded event store's file."""

from __future__ import annotations

import aiosqlite

from write_model.envelope import LogPosition

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber_checkpoints (
    subscriber TEXT PRIMARY KEY,
    transaction_id INTEGER NOT NULL,
    position INTEGER NOT NULL
);
"""


class SqliteCheckpoints:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def load(self, subscriber: str) -> LogPosition | None:
        async with self._connection.execute(
            "SELECT transaction_id, position FROM subscriber_checkpoints WHERE subscriber = ?",
            (subscriber,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else LogPosition(int(row[0]), int(row[1]))

    async def save(self, subscriber: str, position: LogPosition) -> None:
        await self._connection.execute(
            "INSERT INTO subscriber_checkpoints (subscriber, transaction_id, position) "
            "VALUES (?, ?, ?) ON CONFLICT (subscriber) DO UPDATE SET "
            "transaction_id = excluded.transaction_id, position = excluded.position",
            (subscriber, position.transaction_id, position.position),
        )
