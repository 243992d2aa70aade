"""The follower layer's stores in the event store's database (checkpoints, dead letters,
the status board), opened and migrated here, built by the composition root
(app/bootstrap.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiosqlite

from log_follower.checkpoint.port import Checkpoint
from log_follower.dead_letters.port import DeadLetters
from log_follower.status.port import StatusBoard

_MIGRATION_LOCK = 7_351_011  # advisory lock id: concurrent starts take turns


@dataclass(frozen=True)
class FollowerStores:
    checkpoint: Checkpoint
    dead_letters: DeadLetters
    status: StatusBoard


async def migrate_postgres(pool: Any) -> None:
    """Create the tables (and move the saga's old letters into the one store); safe to run
    any number of times at once."""
    from log_follower.checkpoint import postgres as checkpoint
    from log_follower.dead_letters import postgres as dead_letters
    from log_follower.status import postgres as status

    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(checkpoint.SCHEMA + dead_letters.SCHEMA + status.SCHEMA)


def postgres_stores(pool: Any) -> FollowerStores:
    from log_follower.checkpoint.postgres import PostgresCheckpoint
    from log_follower.dead_letters.postgres import PostgresDeadLetters
    from log_follower.status.postgres import PostgresStatusBoard

    return FollowerStores(
        PostgresCheckpoint(pool), PostgresDeadLetters(pool), PostgresStatusBoard(pool)
    )


async def migrate_sqlite(connection: aiosqlite.Connection) -> None:
    from log_follower.checkpoint import sqlite as checkpoint
    from log_follower.dead_letters import sqlite as dead_letters
    from log_follower.status import sqlite as status

    await connection.executescript(checkpoint.SCHEMA + status.SCHEMA)
    await dead_letters.migrate(connection)


def sqlite_stores(connection: aiosqlite.Connection) -> FollowerStores:
    """On a connection of the embedded event store's file (autocommit, WAL), migrated."""
    from log_follower.checkpoint.sqlite import SqliteCheckpoint
    from log_follower.dead_letters.sqlite import SqliteDeadLetters
    from log_follower.status.sqlite import SqliteStatusBoard

    return FollowerStores(
        SqliteCheckpoint(connection), SqliteDeadLetters(connection), SqliteStatusBoard(connection)
    )


def memory_stores() -> FollowerStores:
    from log_follower.checkpoint.memory import InMemoryCheckpoint
    from log_follower.dead_letters.memory import InMemoryDeadLetters
    from log_follower.status.memory import InMemoryStatusBoard

    return FollowerStores(InMemoryCheckpoint(), InMemoryDeadLetters(), InMemoryStatusBoard())


@contextlib.asynccontextmanager
async def sqlite_connection(path: Any) -> AsyncIterator[aiosqlite.Connection]:
    """A connection of its own to the embedded event store's file (WAL, autocommit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, isolation_level=None, timeout=30.0)
    try:
        await connection.execute("PRAGMA journal_mode = WAL")
        yield connection
    finally:
        await connection.close()
