"""Idempotency records stored before keys were scoped by mutation, on the real stores:
`orders migrate` (PostgreSQL) and opening the file (SQLite) move them to the scoped shape,
where they keep their meaning (a retry of the same request replays, other input is still
refused by its fingerprint), and new keys are scoped beside them."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from tests.contracts.test_event_store import new_event
from tests.integration.read_side import own_postgres_database
from write_model.envelope import LogPosition
from write_model.event_store import postgres, sqlite
from write_model.event_store.port import NO_STREAM, EventStore, IdempotencyKey

# The shape of the table before keys were scoped, in both stores.
UNSCOPED_POSTGRES = """
CREATE TABLE idempotency_keys (
    key            text PRIMARY KEY,
    fingerprint    text NOT NULL,
    stream_id      text NOT NULL,
    version        integer NOT NULL,
    transaction_id xid8 NOT NULL,
    position       bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO idempotency_keys (key, fingerprint, stream_id, version, transaction_id, position)
VALUES ('legacy-key', 'fp-legacy', 'Order-o1', 2, '7'::xid8, 9);
"""
UNSCOPED_SQLITE = """
CREATE TABLE idempotency_keys (
    key            TEXT PRIMARY KEY,
    fingerprint    TEXT NOT NULL,
    stream_id      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    transaction_id INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO idempotency_keys (key, fingerprint, stream_id, version, transaction_id, position)
VALUES ('legacy-key', 'fp-legacy', 'Order-o1', 2, 7, 9);
"""


async def check_migrated(store: EventStore) -> None:
    legacy = await store.find_idempotency_record(IdempotencyKey("legacy-key", "createOrder"))
    assert legacy is not None
    assert (legacy.fingerprint, legacy.result.stream_id, legacy.result.version) == (
        "fp-legacy",
        "Order-o1",
        2,
    )
    assert legacy.result.log_position == LogPosition(7, 9)
    # A new key is scoped: the same key on two mutations is two records.
    for scope in ("createOrder", "addProduct"):
        key = IdempotencyKey("new-key", scope)
        await store.append_to_stream(
            f"{scope}-{uuid.uuid4().hex}", "T", NO_STREAM, [new_event()], idempotency=(key, scope)
        )
        record = await store.find_idempotency_record(key)
        assert record is not None and record.fingerprint == scope


@pytest.mark.postgres
async def test_postgres_migrate_keeps_unscoped_records() -> None:
    async with own_postgres_database(f"idem_{uuid.uuid4().hex[:12]}") as dsn:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(UNSCOPED_POSTGRES)
        finally:
            await connection.close()
        pool = await postgres.create_pool(dsn, min_size=1, max_size=2)
        await postgres.migrate(pool)
        await postgres.migrate(pool)  # `orders migrate` runs it every time
        store = postgres.PostgresEventStore(pool)
        try:
            await check_migrated(store)
        finally:
            await store.close()


async def test_sqlite_open_keeps_unscoped_records(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    async with aiosqlite.connect(path) as connection:
        await connection.executescript(UNSCOPED_SQLITE)
        await connection.commit()
    store = await sqlite.SqliteEventStore.open(path)
    try:
        await check_migrated(store)
    finally:
        await store.close()
    reopened = await sqlite.SqliteEventStore.open(path)  # already migrated: nothing to do
    try:
        assert await reopened.find_idempotency_record(IdempotencyKey("legacy-key", "x"))
    finally:
        await reopened.close()
