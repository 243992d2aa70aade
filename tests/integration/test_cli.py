"""The admin commands as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import service_url
from tests.integration.read_side import (
    CONTEXT,
    build_app,
    catch_up,
    isolated_stack,
    order_workload,
    own_postgres_database,
    postgres_store,
    runners,
)


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
            await build_app(events).register_customer(
                f"c-{unique}", "Ada", f"{unique}@example.com", CONTEXT
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
        app = build_app(events)
        await order_workload(app, unique, orders=2)
        await catch_up(runners(events, documents))
        head = (await events.head_position()).position
        await app.rename_customer(f"c-{unique}", "Later", CONTEXT)  # one event behind

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
