"""The composition root's stores: the event store and the read documents' store built
from settings (PostgreSQL or SQLite; MongoDB or in memory), each connected with retries
for up to STARTUP_TIMEOUT_SECONDS; a configured service that cannot be reached is a
`ServiceUnavailable`, never silently replaced by a default."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from app.settings import Settings
from read_model.document_store.port import DocumentStore
from write_model.event_store.port import EventStore

log = logging.getLogger(__name__)


T = TypeVar("T")


class ServiceUnavailable(RuntimeError):
    """A configured service that cannot be reached: never silently replaced by a default."""


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def require_services(settings: Settings, what: str, *, read_store: bool = True) -> None:
    """`read_store`: the process reads or writes the read documents (MongoDB) too."""
    urls = [("DATABASE_URL", settings.database_url)]
    if read_store:
        urls.append(("MONGO_URL", settings.mongo_url))
    missing = [name for name, url in urls if not url]
    if missing:
        shared = "PostgreSQL and MongoDB" if read_store else "PostgreSQL"
        raise ServiceUnavailable(
            f"{what} needs {' and '.join(missing)}: it shares {shared} with "
            "the other processes. For everything in one process on the embedded defaults, "
            "run `orders dev`."
        )


async def retrying_start(
    settings: Settings, what: str, connect: Callable[[], Awaitable[T]], errors: tuple[type, ...]
) -> T:
    """`connect()`, retried with backoff for up to STARTUP_TIMEOUT_SECONDS (a database that
    starts with the process, or a blip); then ServiceUnavailable naming `what`."""
    deadline = time.monotonic() + settings.startup_timeout_seconds
    delay = 0.25
    while True:
        try:
            return await connect()
        except errors as error:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServiceUnavailable(f"cannot reach {what}: {error}") from error
            log.warning("cannot reach %s yet (%s); retrying for %.0f s more", what, error, left)
            await asyncio.sleep(min(delay * random.uniform(0.5, 1.5), left))
            delay = min(delay * 2, 5.0)


@contextlib.asynccontextmanager
async def postgres_pool(settings: Settings) -> AsyncIterator[Any]:
    from write_model.event_store import postgres

    assert settings.database_url is not None
    pool = await retrying_start(
        settings,
        f"PostgreSQL at DATABASE_URL ({redacted(settings.database_url)})",
        lambda: postgres.create_pool(
            settings.database_url,  # type: ignore[arg-type]
            min_size=settings.pg_pool_min_size,
            max_size=settings.pg_pool_max_size,
            connect_timeout=settings.connect_timeout_seconds,
        ),
        (OSError, TimeoutError, postgres.asyncpg.PostgresError),
    )
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def event_store(settings: Settings) -> AsyncIterator[EventStore]:
    """PostgreSQL when DATABASE_URL is set, else the SQLite file in ORDERS_DATA_DIR."""
    if settings.database_url:
        from log_follower.append_signal.postgres import APPENDED_CHANNEL
        from write_model.event_store import postgres

        async with postgres_pool(settings) as pool:
            if settings.migrate_on_start:
                await postgres.migrate(pool)
            # Appends NOTIFY after they commit, so followers of the log wake without polling.
            store: EventStore = postgres.PostgresEventStore(pool, notify_channel=APPENDED_CHANNEL)
            try:
                yield store
            finally:
                await store.close()  # its NOTIFY task goes before the pool does
        return
    from write_model.event_store import sqlite

    store = await sqlite.SqliteEventStore.open(str(settings.orders_data_dir / "events.db"))
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def document_store(
    settings: Settings, mongo_event_listeners: Sequence[Any] = ()
) -> AsyncIterator[DocumentStore]:
    """MongoDB when MONGO_URL is set, else an in-memory store (filled from the log by the
    in-process projector). `mongo_event_listeners`: pymongo monitoring listeners."""
    if settings.mongo_url:
        from read_model.document_store.mongo import MongoDocumentStore, MongoUnavailableError

        url = settings.mongo_url
        store: DocumentStore = await retrying_start(
            settings,
            f"MongoDB at MONGO_URL ({redacted(url)})",
            lambda: MongoDocumentStore.connect(
                url,
                settings.mongo_db,
                timeout_ms=int(settings.connect_timeout_seconds * 1000),
                event_listeners=mongo_event_listeners,
            ),
            (MongoUnavailableError,),
        )
    else:
        from read_model.document_store.memory import InMemoryDocumentStore

        store = InMemoryDocumentStore()
    try:
        yield store
    finally:
        await store.close()
