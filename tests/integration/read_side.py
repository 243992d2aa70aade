"""Builders for read-side integration tests: real PostgreSQL event store, real Mongo-wire
document store, the real projections and runner."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from log_follower.follower import Follower
from read_model.document_store.mongo import MongoDocumentStore
from read_model.document_store.port import DocumentStore
from read_model.projections import ALL_PROJECTIONS
from read_model.runner import physical_collection
from tests.conftest import service_url
from tests.integration import write_side
from tests.projecting import projection_runner
from write_model import commands
from write_model.bus import CommandBus
from write_model.command_context import CommandContext
from write_model.domain.order import Address
from write_model.envelope import AppendResult
from write_model.event_store import postgres
from write_model.event_store.port import (
    AppendsThroughStreams,
    EventStore,
    IdempotencyKey,
    StreamAppend,
)
from write_model.event_types import build_registry

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
CONTEXT = CommandContext(correlation_id="read-side-test")


def build_bus(store: EventStore) -> CommandBus:
    return write_side.build_bus(store, max_attempts=50)


@contextlib.asynccontextmanager
async def own_postgres_database(name: str) -> AsyncIterator[str]:
    """A database of its own, so a whole-log reader sees only this test's events."""
    base = service_url("DATABASE_URL")
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def postgres_store(
    max_size: int = 20, dsn: str | None = None
) -> AsyncIterator[postgres.PostgresEventStore]:
    pool = await postgres.create_pool(
        dsn or service_url("DATABASE_URL"), min_size=1, max_size=max_size
    )
    await postgres.migrate(pool)
    store = postgres.PostgresEventStore(pool)
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def mongo_documents(database: str) -> AsyncIterator[MongoDocumentStore]:
    """A read store on a database of its own, dropped afterwards."""
    store = await MongoDocumentStore.connect(service_url("MONGO_URL"), database)
    try:
        yield store
    finally:
        await store.database.client.drop_database(database)
        await store.close()


@contextlib.asynccontextmanager
async def isolated_stack(
    name: str, max_size: int = 20
) -> AsyncIterator[tuple[str, postgres.PostgresEventStore, MongoDocumentStore]]:
    """A PostgreSQL database and a Mongo database of their own, so whole-log readers (a
    projector process, a rebuild) see only this test's events: (dsn, events, documents)."""
    async with (
        own_postgres_database(name) as dsn,
        postgres_store(max_size=max_size, dsn=dsn) as events,
        mongo_documents(name) as documents,
    ):
        yield dsn, events, documents


def runners(events, documents: DocumentStore, **kwargs) -> list[Follower]:
    return [
        projection_runner(p, events, documents, build_registry(), **kwargs) for p in ALL_PROJECTIONS
    ]


async def catch_up(runners_: Sequence[Follower]) -> None:
    for runner in runners_:
        while (await runner.step()).events_read:
            pass


async def all_documents(documents: DocumentStore, version: int = 1) -> dict[str, dict[str, dict]]:
    """Every document of every projection collection, by collection and id."""
    found: dict[str, dict[str, dict]] = {}
    for projection in ALL_PROJECTIONS:
        for logical in projection.collections:
            page = await documents.find(
                physical_collection(logical, version), {}, [], limit=1_000_000
            )
            found[logical] = {doc["_id"]: doc for doc in page.documents}
    return found


@dataclass
class HeldOpenStore(AppendsThroughStreams):
    """The PostgreSQL adapter, with every append kept uncommitted for a random while, so
    that later appends commit before earlier positions do."""

    inner: postgres.PostgresEventStore
    max_hold_seconds: float = 0.05

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        connection: asyncpg.Connection
        async with self.inner.pool.acquire() as connection, connection.transaction():
            results = await self.inner.append_streams_on(connection, appends, idempotency)
            await asyncio.sleep(random.uniform(0, self.max_hold_seconds))
        return results


async def order_workload(bus: CommandBus, tag: str, orders: int) -> list[str]:
    """Customers, products and `orders` orders through their whole draft life."""
    customer = f"c-{tag}"
    await bus.dispatch(
        commands.RegisterCustomer(
            customer_id=customer, name=f"Customer {tag}", email=f"{tag}@example.com"
        ),
        CONTEXT,
    )
    skus = [f"p{n}-{tag}" for n in range(3)]
    for n, sku in enumerate(skus):
        await bus.dispatch(
            commands.AddProduct(
                product_id=sku,
                name=f"Product {n}",
                price=Decimal("1.25") * (n + 1),
                initial_stock=10_000,
            ),
            CONTEXT,
        )
    order_ids = []
    for n in range(orders):
        order_id = f"o{n}-{tag}"
        await bus.dispatch(
            commands.CreateOrder(
                order_id=order_id, customer_id=customer, items=(commands.OrderItem(skus[0], 1),)
            ),
            CONTEXT,
        )
        await bus.dispatch(
            commands.AddOrderItem(order_id=order_id, product_id=skus[n % 3], quantity=2), CONTEXT
        )
        await bus.dispatch(commands.SetShippingAddress(order_id=order_id, address=ADDRESS), CONTEXT)
        if n % 2 == 0:
            await bus.dispatch(commands.SubmitOrder(order_id=order_id), CONTEXT)
        order_ids.append(order_id)
    return order_ids
