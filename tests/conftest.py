"""Shared fixtures. Storage tests need the services that tests/services/with-services starts
(`make test` runs the suite under it); outside it they fail and say so."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest


def service_url(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        pytest.fail(
            f"{name} is not set: run the suite with `make test` "
            "(tests/services/with-services starts PostgreSQL and the Mongo-wire server)"
        )
    return url


@pytest.fixture
def unique() -> str:
    """A fresh id fragment, so tests never share streams or documents."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(params=["memory", "sqlite", "announcing", "postgres"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """Each EventStore adapter in turn, with a way to hold one append open."""
    from tests.contracts.harness import (
        announcing_harness,
        memory_harness,
        postgres_harness,
        sqlite_harness,
    )

    match request.param:
        case "memory":
            factory = memory_harness()
        case "sqlite":
            factory = sqlite_harness()
        case "announcing":
            factory = announcing_harness()
        case "postgres":
            factory = postgres_harness(service_url("DATABASE_URL"))
    async with factory as built:
        yield built
