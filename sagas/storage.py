"""The saga's own storage, the simulated gateways' ledger, per event store: opened and
migrated here, built by the composition root (app/bootstrap.py). The saga's checkpoints,
dead letters and status are the follower layer's (log_follower/storage.py)."""

from __future__ import annotations

from typing import Any

from sagas.ledger.port import GatewayLedger

_MIGRATION_LOCK = 7_351_009  # advisory lock id: concurrent starts take turns


async def migrate_postgres(pool: Any) -> None:
    """Create the ledger's table; safe to run any number of times at once."""
    from sagas.ledger import postgres as ledger

    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(ledger.SCHEMA)


def postgres_ledger(pool: Any) -> GatewayLedger:
    from sagas.ledger.postgres import PostgresLedger

    return PostgresLedger(pool)


async def migrate_sqlite(connection: Any) -> None:
    """On a connection of the embedded event store's file."""
    from sagas.ledger import sqlite as ledger

    await connection.executescript(ledger.SCHEMA)


def sqlite_ledger(connection: Any) -> GatewayLedger:
    from sagas.ledger.sqlite import SqliteLedger

    return SqliteLedger(connection)


def memory_ledger() -> GatewayLedger:
    from sagas.ledger.memory import InMemoryLedger

    return InMemoryLedger()
