from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import service_url
from tests.contracts.harness import (
    StoreHarness,
    memory_harness,
    postgres_harness,
    sqlite_harness,
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[StoreHarness]:
    match request.param:
        case "memory":
            factory = memory_harness()
        case "sqlite":
            factory = sqlite_harness()
        case "postgres":
            factory = postgres_harness(service_url("DATABASE_URL"))
    async with factory as built:
        yield built
