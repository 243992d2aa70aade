"""The composition root's stores: the event store and the read documents' store built
from settings (PostgreSQL or SQLite; MongoDB or in memory), each connected with retries
for up to STARTUP_TIMEOUT_SECONDS; a configured service that cannot be reached is a
`ServiceUnavailable`, never silently replaced by a default."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tenacity import RetryCallState

from app.settings import Settings
from read_model.document_store.port import DocumentStore
from write_model import backoff
from write_model.event_store.port import EventStore

log = logging.getLogger(__name__)


T = TypeVar("T")
# Waits between tries to reach a service at start (the one backoff's bounds).
FIRST_START_RETRY_SECONDS = 0.125
MAX_START_RETRY_SECONDS = 5.0


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
    settings: Settings,
    what: str,
    connect: Callable[[], Awaitable[T]],
    errors: tuple[type[BaseException], ...],
) -> T:
    """`connect()`, retried by the one backoff (write_model/backoff.py) for up to
    STARTUP_TIMEOUT_SECONDS (a database that starts with the process, or a blip); then
    ServiceUnavailable naming `what`."""
    within = settings.startup_timeout_seconds

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        left = within - (state.seconds_since_start or 0.0)
        log.warning("cannot reach %s yet (%s); retrying for %.0f s more", what, error, left)

    try:
        async for attempt in backoff.retrying(
            errors,
            attempts=None,
            within_seconds=within,
            first_seconds=FIRST_START_RETRY_SECONDS,
            max_seconds=MAX_START_RETRY_SECONDS,
            before_sleep=waiting,
        ):
            with attempt:
                return await connect()
    except errors as error:
        raise ServiceUnavailable(f"cannot reach {what}: {error}") from error
    raise AssertionError("unreachable: the last try returns or raises")


def postgres_unreachable() -> tuple[type[BaseException], ...]:
    """What connecting to a PostgreSQL that is not (yet) there raises."""
    import asyncpg

    return (OSError, TimeoutError, asyncpg.PostgresError)


@contextlib.asynccontextmanager
async def postgres_pool(settings: Settings) -> AsyncIterator[Any]:
    from write_model.event_store import postgres

    url = settings.database_url
    assert url is not None
    pool = await retrying_start(
        settings,
        f"PostgreSQL at DATABASE_URL ({redacted(url)})",
        lambda: postgres.create_pool(
            url,
            min_size=settings.pg_pool_min_size,
            max_size=settings.pg_pool_max_size,
            connect_timeout=settings.connect_timeout_seconds,
        ),
        postgres_unreachable(),
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
