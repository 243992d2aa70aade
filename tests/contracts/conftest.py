"""Fixtures of the conformance suites (the EventStore `harness` lives in tests/conftest.py):
the DocumentStore adapters, and the stores beside the event store (the follower layer's
checkpoints, dead letters and status; the saga's ledger)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from log_follower import storage as follower_storage
from log_follower.storage import FollowerStores
from sagas import storage
from sagas.ledger.port import GatewayLedger
from tests.conftest import service_url
from tests.contracts.document_store_harness import (
    DocumentStoreHarness,
    cached_memory_document_store,
    cached_mongo_document_store,
    memory_document_store,
    mongo_document_store,
)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("mongo", marks=pytest.mark.mongo),
        "cached-memory",
        pytest.param("cached-mongo", marks=[pytest.mark.mongo, pytest.mark.postgres]),
    ]
)
async def doc_harness(request: pytest.FixtureRequest) -> AsyncIterator[DocumentStoreHarness]:
    """Each DocumentStore adapter in turn, handing out fresh collection names: the read
    cache in front of each store, watching a real change feed, too."""
    match request.param:
        case "memory":
            factory = memory_document_store()
        case "mongo":
            factory = mongo_document_store(service_url("MONGO_URL"))
        case "cached-memory":
            factory = cached_memory_document_store()
        case "cached-mongo":
            factory = cached_mongo_document_store(
                service_url("MONGO_URL"), service_url("DATABASE_URL")
            )
    async with factory as built:
        yield built


@dataclass(frozen=True)
class Stores:
    """What the event store's database holds beside the events: the follower layer's
    stores and the saga's ledger."""

    followers: FollowerStores
    ledger: GatewayLedger


@contextlib.asynccontextmanager
async def _postgres() -> AsyncIterator[Stores]:
    from write_model.event_store import postgres

    pool = await postgres.create_pool(service_url("DATABASE_URL"), min_size=1, max_size=10)
    try:
        await follower_storage.migrate_postgres(pool)
        await storage.migrate_postgres(pool)
        yield Stores(follower_storage.postgres_stores(pool), storage.postgres_ledger(pool))
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _sqlite() -> AsyncIterator[Stores]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "events.db"
        async with follower_storage.sqlite_connection(path) as connection:
            await follower_storage.migrate_sqlite(connection)
            await storage.migrate_sqlite(connection)
            yield Stores(
                follower_storage.sqlite_stores(connection), storage.sqlite_ledger(connection)
            )


@contextlib.asynccontextmanager
async def _memory() -> AsyncIterator[Stores]:
    yield Stores(follower_storage.memory_stores(), storage.memory_ledger())


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def saga_storage(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    factories = {"memory": _memory, "sqlite": _sqlite, "postgres": _postgres}
    async with factories[request.param]() as opened:
        yield opened
