"""The admin commands as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import asyncpg

from tests.conftest import service_url
from tests.contracts.test_event_store import new_event
from tests.integration.read_side import (
    CONTEXT,
    build_bus,
    catch_up,
    isolated_stack,
    order_workload,
    own_postgres_database,
    postgres_store,
    runners,
)
from write_model import commands
from write_model.event_store.port import NO_STREAM, StreamAppend


def orders(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrate_twice_is_fine(unique: str) -> None:
    async with own_postgres_database(f"migrate_{unique}") as dsn:
        first = orders("migrate", DATABASE_URL=dsn)
        second = orders("migrate", DATABASE_URL=dsn)
        assert first.returncode == 0, first.stderr
        assert second.returncode == 0, second.stderr
        assert "migrated: PostgreSQL event store" in second.stdout
        async with postgres_store(dsn=dsn) as events:
            await build_bus(events).dispatch(
                commands.RegisterCustomer(
                    customer_id=f"c-{unique}", name="Ada", email=f"{unique}@example.com"
                ),
                CONTEXT,
            )


def test_an_unreachable_database_is_a_clear_error() -> None:
    result = orders(
        "migrate",
        DATABASE_URL="postgresql://orders:secret@127.0.0.1:1/none",
        STARTUP_TIMEOUT_SECONDS="0.5",
    )
    assert result.returncode == 2
    assert "cannot reach PostgreSQL at DATABASE_URL" in result.stderr
    assert "secret" not in result.stderr


async def test_projections_status_shows_checkpoint_head_and_lag(unique: str) -> None:
    database = f"status_{unique}"
    async with isolated_stack(database) as (dsn, events, documents):
        bus = build_bus(events)
        await order_workload(bus, unique, orders=2)
        await catch_up(runners(events, documents))
        head = (await events.head_position()).position
        rename = commands.RenameCustomer(customer_id=f"c-{unique}", name="Later")
        await bus.dispatch(rename, CONTEXT)  # one event behind

        result = orders(
            "projections",
            "status",
            DATABASE_URL=dsn,
            MONGO_URL=service_url("MONGO_URL"),
            MONGO_DB=database,
            COLUMNS="200",
        )

        assert result.returncode == 0, result.stderr
        rows = {
            line.split("│")[1].strip(): line
            for line in result.stdout.splitlines()
            if line.count("│") > 3 and "name" not in line
        }
        assert set(rows) == {"orders", "customers", "products"}
        cells = [c.strip() for c in rows["orders"].split("│")[1:-1]]
        assert cells[1:5] == [str(head), str(head + 1), "1", "RUNNING"]


async def test_migrate_brings_a_store_of_the_previous_release_to_multi_stream_appends(
    unique: str,
) -> None:
    """A store whose schema has only the one-stream append function, with events in it:
    `orders migrate` (twice) adds the multi-stream append, keeps the events, and a process
    of the previous release still appending through the old function is served by it."""
    async with own_postgres_database(f"multi_{unique}") as dsn:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(PREVIOUS_RELEASE_SCHEMA)
            await connection.execute(
                "INSERT INTO streams VALUES ('Old-1', 'Old', 1);"
                "INSERT INTO events (stream_id, version, event_id, type, data, metadata,"
                " occurred_at) VALUES ('Old-1', 1, gen_random_uuid(), 'ThingHappened',"
                """ '{}', '{"correlationId": "c"}', now())"""
            )
            for _ in range(2):
                migrated = orders("migrate", DATABASE_URL=dsn)
                assert migrated.returncode == 0, migrated.stderr
            # The previous release's call: one stream at version 1, two events.
            row = await connection.fetchrow(
                "SELECT * FROM append_to_stream('Old-1', 'Old', 1, $1, $2, $3, $4, $5,"
                " NULL, NULL, NULL, NULL)",
                [uuid.uuid4(), uuid.uuid4()],
                ["ThingHappened"] * 2,
                ['{"n": 1}', '{"n": 2}'],
                ['{"correlationId": "c"}'] * 2,
                [datetime.now(UTC)] * 2,
            )
            assert (row["ok"], row["stream_version"]) == (True, 3)
        finally:
            await connection.close()
        async with postgres_store(dsn=dsn) as events:
            results = await events.append_to_streams(
                [
                    StreamAppend("Old-1", "Old", 3, [new_event(3)]),
                    StreamAppend("New-1", "New", NO_STREAM, [new_event(4)]),
                ]
            )
            assert [r.version for r in results] == [4, 1]
            assert [e.version for e in await events.read_stream("Old-1")] == [1, 2, 3, 4]


# The tables and the one-stream append function as the release before multi-stream
# appends created them (its function's body stands in: only its signature matters here).
PREVIOUS_RELEASE_SCHEMA = """
CREATE TABLE streams (stream_id text PRIMARY KEY, type text NOT NULL, version integer NOT NULL);
CREATE TABLE events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id text NOT NULL, version integer NOT NULL, event_id uuid NOT NULL,
    type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);
CREATE FUNCTION append_to_stream(
    p_stream_id text, p_stream_type text, p_expected integer, p_event_ids uuid[],
    p_types text[], p_data jsonb[], p_metadata jsonb[], p_occurred_at timestamptz[],
    p_idempotency_key text, p_idempotency_scope text, p_idempotency_principal text,
    p_fingerprint text
) RETURNS TABLE (ok boolean, stream_version integer, transaction_id xid8, log_position bigint)
LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT false, 0, NULL::xid8, NULL::bigint; END; $$;
"""
