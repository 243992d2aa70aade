"""`orders seed` on PostgreSQL and MongoDB: the demo data goes through the API into the
event store once; a second run appends nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from app.seed import CUSTOMERS, PRODUCTS
from tests.conftest import service_url
from tests.e2e.conftest import drop_mongo_database
from tests.integration.read_side import own_postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]
ROOT = Path(__file__).resolve().parents[2]


def seed(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "seed"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def count_events(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval("SELECT count(*) FROM events")
    finally:
        await connection.close()


async def test_seed_twice_on_postgres_appends_once(unique: str) -> None:
    mongo_db = f"orders_seed_{unique}"
    async with own_postgres_database(f"seed_{unique}") as dsn:
        env = {"DATABASE_URL": dsn, "MONGO_URL": service_url("MONGO_URL"), "MONGO_DB": mongo_db}
        try:
            first = await asyncio.to_thread(seed, env)
            assert first.returncode == 0, first.stderr
            assert first.stdout.startswith("seed: the demo catalog (5 products)")
            seeded = await count_events(dsn)
            assert seeded >= len(PRODUCTS) + len(CUSTOMERS)

            second = await asyncio.to_thread(seed, env)
            assert second.returncode == 0, second.stderr
            assert await count_events(dsn) == seeded
        finally:
            await drop_mongo_database(mongo_db)
