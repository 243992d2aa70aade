"""Fixtures of the conformance suites (the EventStore `harness` lives in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

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
