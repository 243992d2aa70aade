"""Fixtures of the conformance suites (the EventStore `harness` lives in tests/conftest.py):
the DocumentStore adapters, and the saga's storage (ledger, checkpoints, dead letters)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sagas import storage
from sagas.storage import SagaStorage
from tests.conftest import service_url
from tests.contracts.document_store_harness import (
    DocumentStoreHarness,
    memory_document_store,
    mongo_document_store,
)


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.mongo)])
async def doc_harness(request: pytest.FixtureRequest) -> AsyncIterator[DocumentStoreHarness]:
    """Each DocumentStore adapter in turn, handing out fresh collection names."""
    match request.param:
        case "memory":
            factory = memory_document_store()
        case "mongo":
            factory = mongo_document_store(service_url("MONGO_URL"))
    async with factory as built:
        yield built


@contextlib.asynccontextmanager
async def _postgres() -> AsyncIterator[SagaStorage]:
    from write_model.event_store import postgres

    pool = await postgres.create_pool(service_url("DATABASE_URL"), min_size=1, max_size=10)
    try:
        await storage.migrate_postgres(pool)
        yield storage.postgres_storage(pool)
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _sqlite() -> AsyncIterator[SagaStorage]:
    with tempfile.TemporaryDirectory() as directory:
        async with storage.sqlite_storage(Path(directory) / "events.db") as opened:
            yield opened


@contextlib.asynccontextmanager
async def _memory() -> AsyncIterator[SagaStorage]:
    yield storage.memory_storage()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def saga_storage(request: pytest.FixtureRequest) -> AsyncIterator[SagaStorage]:
    factories = {"memory": _memory, "sqlite": _sqlite, "postgres": _postgres}
    async with factories[request.param]() as opened:
        yield opened
