"""The composition root: the one place that builds adapters from settings."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.settings import Settings
from read_model.change_feed import ChangeFeed, InProcessChangeFeed
from read_model.document_store.port import DocumentStore
from read_model.live import ProjectorDependencies
from read_model.projector import RunnerSettings
from write_model.application import OrdersApplication
from write_model.envelope import AppendResult
from write_model.event_store.port import EventStore
from write_model.events import build_registry
from write_model.handling import CommandHandler
from write_model.registry import EventTypeRegistry


class ServiceUnavailable(RuntimeError):
    """A configured service that cannot be reached: never silently replaced by a default."""


@dataclass(frozen=True)
class WriteSide:
    store: EventStore
    registry: EventTypeRegistry
    handler: CommandHandler
    application: OrdersApplication


def utc_now() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def event_store(settings: Settings) -> AsyncIterator[EventStore]:
    if settings.database_url:
        from write_model.event_store import postgres

        try:
            pool = await postgres.create_pool(
                settings.database_url,
                min_size=settings.pg_pool_min_size,
                max_size=settings.pg_pool_max_size,
                connect_timeout=settings.connect_timeout_seconds,
            )
        except (OSError, TimeoutError, postgres.asyncpg.PostgresError) as error:
            raise ServiceUnavailable(
                f"cannot reach PostgreSQL at DATABASE_URL ({_redacted(settings.database_url)}): "
                f"{error}"
            ) from error
        from read_model.signals import APPENDED_CHANNEL

        # Appends NOTIFY the projector after they commit, so it wakes without polling.
        store: EventStore = postgres.PostgresEventStore(pool, notify_channel=APPENDED_CHANNEL)
    else:
        from write_model.event_store import sqlite

        store = await sqlite.SqliteEventStore.open(str(settings.orders_data_dir / "events.db"))
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def write_side(
    settings: Settings, after_append: Sequence[Callable[[AppendResult], None]] = ()
) -> AsyncIterator[WriteSide]:
    async with event_store(settings) as store:
        registry = build_registry()
        handler = CommandHandler(
            store,
            registry,
            clock=utc_now,
            new_event_id=uuid.uuid4,
            max_attempts=settings.command_max_attempts,
            after_append=after_append,
        )
        application = OrdersApplication(
            handler, tax_rate=settings.tax_rate, new_id=lambda: str(uuid.uuid4())
        )
        yield WriteSide(store, registry, handler, application)


async def migrate(settings: Settings) -> str:
    """Create or update the event store schema; returns what was migrated."""
    if not settings.database_url:
        # The embedded SQLite store creates its schema when it opens.
        async with event_store(settings):
            return f"SQLite event store at {settings.orders_data_dir / 'events.db'}"
    from write_model.event_store import postgres

    async with event_store(settings) as store:
        assert isinstance(store, postgres.PostgresEventStore)
        await postgres.migrate(store.pool)
    return f"PostgreSQL event store at {_redacted(settings.database_url)}"


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@contextlib.asynccontextmanager
async def document_store(
    settings: Settings, *, mongo_event_listeners: Sequence[Any] = ()
) -> AsyncIterator[DocumentStore]:
    """`mongo_event_listeners`: pymongo monitoring listeners for the Mongo client."""
    if settings.mongo_url:
        from read_model.document_store.mongo import MongoDocumentStore

        try:
            store: DocumentStore = await MongoDocumentStore.connect(
                settings.mongo_url,
                settings.mongo_db,
                timeout_ms=int(settings.connect_timeout_seconds * 1000),
                event_listeners=mongo_event_listeners,
            )
        except Exception as error:
            raise ServiceUnavailable(
                f"cannot reach MongoDB at MONGO_URL ({_redacted(settings.mongo_url)}): {error}"
            ) from error
    else:
        from read_model.document_store.memory import InMemoryDocumentStore

        store = InMemoryDocumentStore()
    try:
        yield store
    finally:
        await store.close()


def require_services(settings: Settings, what: str) -> None:
    urls = (("DATABASE_URL", settings.database_url), ("MONGO_URL", settings.mongo_url))
    missing = [name for name, url in urls if not url]
    if missing:
        raise ServiceUnavailable(
            f"{what} needs {' and '.join(missing)}: it shares PostgreSQL and MongoDB with "
            "the other processes. For everything in one process on the embedded defaults, "
            "run `orders dev`."
        )


@contextlib.asynccontextmanager
async def projector_side(
    settings: Settings, command: str = "orders projector"
) -> AsyncIterator[ProjectorDependencies]:
    """What `orders projector` and `orders projections ...` run on: PostgreSQL + MongoDB.
    `command`: the one named when a setting is missing."""
    require_services(settings, command)
    assert settings.database_url is not None
    from read_model.change_feed import PostgresChangeFeed
    from read_model.signals import PostgresAppendSignal, PostgresLeaderLock
    from write_model.event_store.postgres import PostgresEventStore

    async with event_store(settings) as events, document_store(settings) as documents:
        assert isinstance(events, PostgresEventStore)
        signal = PostgresAppendSignal(settings.database_url)
        await signal.start()
        try:
            yield ProjectorDependencies(
                events=events,
                documents=documents,
                registry=build_registry(),
                feed=PostgresChangeFeed(events.pool, settings.database_url),
                signal=signal,
                lock=PostgresLeaderLock(settings.database_url, namespace=settings.mongo_db),
                settings=RunnerSettings(batch_size=settings.projector_batch_size),
                poll_seconds=settings.projector_poll_seconds,
            )
        finally:
            await signal.close()


async def run_projector(settings: Settings, stop: asyncio.Event) -> None:
    async with projector_side(settings) as deps:
        await run_projections(deps, stop)


@dataclass(frozen=True)
class EmbeddedSide:
    """`orders dev`: write side, read store and projector in one process."""

    write: WriteSide
    documents: DocumentStore
    feed: InProcessChangeFeed
    projector: ProjectorDependencies


@contextlib.asynccontextmanager
async def embedded_side(settings: Settings) -> AsyncIterator[EmbeddedSide]:
    """The embedded defaults: an unset MONGO_URL means an in-memory read store, filled by
    replaying the whole log when the projector starts, then tailing it; appends wake the
    projector in-process. A set URL is used (and must be reachable) as anywhere else."""
    from read_model.change_feed import InProcessChangeFeed
    from read_model.signals import InProcessAppendSignal, InProcessLeaderLock

    signal = InProcessAppendSignal()
    feed = InProcessChangeFeed()
    async with (
        write_side(settings, after_append=[lambda _: signal.notify()]) as write,
        document_store(settings) as documents,
    ):
        projector = ProjectorDependencies(
            events=write.store,
            documents=documents,
            registry=write.registry,
            feed=feed,
            signal=signal,
            lock=InProcessLeaderLock(),
            settings=RunnerSettings(batch_size=settings.projector_batch_size),
            poll_seconds=settings.projector_poll_seconds,
        )
        yield EmbeddedSide(write, documents, feed, projector)


async def run_projections(deps: ProjectorDependencies, stop: asyncio.Event) -> None:
    from read_model.live import run_projection
    from read_model.projections import ALL_PROJECTIONS

    async with asyncio.TaskGroup() as tasks:
        for projection in ALL_PROJECTIONS:
            tasks.create_task(run_projection(deps, projection, stop), name=projection.name)


# ------------------------------------------------------------------ the API


@dataclass(frozen=True)
class ApiSide:
    """What the GraphQL API serves from. `projector` is set in embedded mode (`orders
    dev`), where the API process also runs the projections; otherwise the projector is a
    process of its own (`orders projector`). `feed`: where the projector publishes the
    documents it wrote (live updates for subscriptions)."""

    write: WriteSide
    documents: DocumentStore
    feed: ChangeFeed | None = None
    projector: ProjectorDependencies | None = None


@contextlib.asynccontextmanager
async def api_side(
    settings: Settings, *, mongo_event_listeners: Sequence[Any] = ()
) -> AsyncIterator[ApiSide]:
    """`orders api`: PostgreSQL and MongoDB, shared with the projector and saga processes."""
    require_services(settings, "orders api")
    async with (
        write_side(settings) as write,
        document_store(settings, mongo_event_listeners=mongo_event_listeners) as documents,
    ):
        await _prepare_event_store(settings, write.store)
        from read_model.change_feed import PostgresChangeFeed
        from write_model.event_store.postgres import PostgresEventStore

        assert isinstance(write.store, PostgresEventStore) and settings.database_url
        feed = PostgresChangeFeed(write.store.pool, settings.database_url)
        yield ApiSide(write, documents, feed)


@contextlib.asynccontextmanager
async def embedded_api_side(settings: Settings) -> AsyncIterator[ApiSide]:
    """`orders dev`: the embedded defaults, with the projections run by the API process."""
    async with embedded_side(settings) as side:
        await _prepare_event_store(settings, side.write.store)
        yield ApiSide(side.write, side.documents, side.feed, side.projector)


async def _prepare_event_store(settings: Settings, store: EventStore) -> None:
    """Apply the PostgreSQL schema when asked to (idempotent; concurrent starts are
    serialized by an advisory lock). The SQLite store creates its schema when it opens."""
    from write_model.event_store import postgres

    if settings.migrate_on_start and isinstance(store, postgres.PostgresEventStore):
        await postgres.migrate(store.pool)
