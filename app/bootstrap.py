"""The composition root: the one place that builds adapters from settings."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from app.settings import Settings
from write_model.application import OrdersApplication
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
        store: EventStore = postgres.PostgresEventStore(pool)
    else:
        from write_model.event_store import sqlite

        store = await sqlite.SqliteEventStore.open(str(settings.orders_data_dir / "events.db"))
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def write_side(settings: Settings) -> AsyncIterator[WriteSide]:
    async with event_store(settings) as store:
        registry = build_registry()
        handler = CommandHandler(
            store,
            registry,
            clock=utc_now,
            new_event_id=uuid.uuid4,
            max_attempts=settings.command_max_attempts,
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
