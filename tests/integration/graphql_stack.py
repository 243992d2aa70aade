"""The API in-process for GraphQL integration tests: the real Starlette app (lifespan and
all) on real PostgreSQL and the real Mongo-wire server, driven over httpx's ASGI
transport, with the projector running in-process on its own connections.

Each stack has a PostgreSQL database and a Mongo database of its own, so the projector's
whole-log reads and the checkpoints see only that stack's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pymongo import AsyncMongoClient, monitoring
from starlette.applications import Starlette

from app.api_runtime import ApiRuntime
from app.bootstrap import run_projector
from app.server import create_app
from app.settings import Settings
from schema.context import Services
from tests.conftest import service_url
from tests.integration.read_side import own_postgres_database
from write_model.domain.money import Money
from write_model.domain.order import OrderItemAdded
from write_model.envelope import AppendResult, EventMetadata, NewEvent
from write_model.event_store.port import ANY


@dataclass
class MongoCommands(monitoring.CommandListener):
    """Every command the API's Mongo client sends (a real pymongo monitoring listener)."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        self.seen.append((event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    def reset(self) -> None:
        self.seen.clear()


class Projector:
    """The projector process's loop (`orders projector`), run as a task that tests can
    stop and start again."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        assert self._task is None, "the projector is running already"
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(run_projector(self._settings, self._stop))

    async def stop(self) -> None:
        assert self._task is not None, "the projector is not running"
        self._stop.set()
        await self._task
        self._task = None


@dataclass
class ApiStack:
    app: Starlette
    client: httpx.AsyncClient
    settings: Settings
    mongo: MongoCommands
    projector: Projector

    @property
    def runtime(self) -> ApiRuntime:
        return self.app.state.runtime

    @property
    def services(self) -> Services:
        return self.runtime.services

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql", json=body, headers=headers)

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The `data` of a request that must succeed without GraphQL errors."""
        response = await self.post(query, variables, headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def ghost_order_item(self, order_id: str) -> AppendResult:
        """An item for an order that was never created: the orders projection parks it
        as a dead letter."""
        registry = self.runtime.backend.registry
        type_name, data, schema_version = registry.serialize(
            OrderItemAdded("pen", "Pen", 1, Money(Decimal("1.25"), "USD"))
        )
        metadata = EventMetadata("ghost-item", schema_version=schema_version)
        return await self.runtime.backend.events.append_to_stream(
            f"Order-{order_id}",
            "Order",
            ANY,
            [NewEvent(uuid.uuid4(), type_name, data, metadata, datetime.now(UTC))],
        )

    async def caught_up(self, seconds: float = 10.0) -> None:
        """Wait until every projection has applied the whole log."""
        deadline = time.monotonic() + seconds
        while True:
            data = await self.gql("{ projections { name position headPosition } }")
            statuses = data["projections"]
            names = {s["name"] for s in statuses}
            if {"orders", "customers", "products"} <= names and all(
                s["position"] == s["headPosition"] for s in statuses
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"projections did not catch up: {statuses}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_app(
    settings: Settings, mongo: MongoCommands | None = None
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app with its lifespan entered, and a client that talks to it in-process."""
    app = create_app(settings, mongo_event_listeners=[mongo] if mongo is not None else ())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as client,
    ):
        yield app, client


async def drop_mongo_database(name: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(service_url("MONGO_URL"))
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def api_stack(**overrides: Any) -> AsyncIterator[ApiStack]:
    name = f"gql_{uuid.uuid4().hex[:16]}"
    async with own_postgres_database(name) as dsn:
        settings = Settings(
            database_url=dsn,
            mongo_url=service_url("MONGO_URL"),
            mongo_db=name,
            pg_pool_min_size=1,
            pg_pool_max_size=5,
            **overrides,
        )
        mongo = MongoCommands()
        try:
            async with running_app(settings, mongo) as (app, client):
                # A process of its own in production, with its own OPS_PORT if any.
                projector = Projector(settings.model_copy(update={"ops_port": None}))
                projector.start()
                try:
                    yield ApiStack(app, client, settings, mongo, projector)
                finally:
                    if projector.running:
                        await projector.stop()
        finally:
            await drop_mongo_database(name)
