"""The saga's durable storage (gateway ledger, checkpoints, dead letters) per event
store: opened and migrated here, built by the composition root (app/bootstrap.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from write_model.sagas.checkpoints.port import SubscriberCheckpoints
from write_model.sagas.dead_letters.port import SagaDeadLetters
from write_model.sagas.ledger.port import GatewayLedger

_MIGRATION_LOCK = 7_351_009  # advisory lock id: concurrent starts take turns


@dataclass(frozen=True)
class SagaStorage:
    ledger: GatewayLedger
    checkpoints: SubscriberCheckpoints
    dead_letters: SagaDeadLetters  # of every subscriber, beside their checkpoints


async def migrate_postgres(pool: Any) -> None:
    """Create the ledger, checkpoint and dead-letter tables; safe to run any number of
    times at once."""
    from write_model.sagas.checkpoints import postgres as checkpoints
    from write_model.sagas.dead_letters import postgres as dead_letters
    from write_model.sagas.ledger import postgres as ledger

    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(ledger.SCHEMA + checkpoints.SCHEMA + dead_letters.SCHEMA)


def postgres_storage(pool: Any) -> SagaStorage:
    from write_model.sagas.checkpoints.postgres import PostgresCheckpoints
    from write_model.sagas.dead_letters.postgres import PostgresSagaDeadLetters
    from write_model.sagas.ledger.postgres import PostgresLedger

    return SagaStorage(
        PostgresLedger(pool), PostgresCheckpoints(pool), PostgresSagaDeadLetters(pool)
    )


@contextlib.asynccontextmanager
async def sqlite_storage(path: Path) -> AsyncIterator[SagaStorage]:
    """In the embedded event store's file (a connection of its own, WAL), schema in place."""
    import aiosqlite

    from write_model.sagas.checkpoints import sqlite as checkpoints
    from write_model.sagas.checkpoints.sqlite import SqliteCheckpoints
    from write_model.sagas.dead_letters import sqlite as dead_letters
    from write_model.sagas.dead_letters.sqlite import SqliteSagaDeadLetters
    from write_model.sagas.ledger import sqlite as ledger
    from write_model.sagas.ledger.sqlite import SqliteLedger

    path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, isolation_level=None, timeout=30.0)
    try:
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.executescript(ledger.SCHEMA + checkpoints.SCHEMA + dead_letters.SCHEMA)
        yield SagaStorage(
            SqliteLedger(connection),
            SqliteCheckpoints(connection),
            SqliteSagaDeadLetters(connection),
        )
    finally:
        await connection.close()


def memory_storage() -> SagaStorage:
    from write_model.sagas.checkpoints.memory import InMemoryCheckpoints
    from write_model.sagas.dead_letters.memory import InMemorySagaDeadLetters
    from write_model.sagas.ledger.memory import InMemoryLedger

    return SagaStorage(InMemoryLedger(), InMemoryCheckpoints(), InMemorySagaDeadLetters())
