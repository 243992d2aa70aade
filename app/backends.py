"""The composition root's backends: every adapter a process runs on, as ports.

- `shared_backend`: PostgreSQL (event store, LISTEN/NOTIFY, advisory locks, the followers'
  checkpoints, dead letters and status, the saga's ledger) and MongoDB, shared by the
  `api` and `projector` processes; `shared_log_backend`: the PostgreSQL part alone (a
  `LogBackend`), for the `saga` process, which writes no read documents;
- `embedded_backend`: `orders dev`, everything in one process: the SQLite event store and
  an in-memory read store unless URLs are set, and in-process signals, feed and locks.

Also `migrate` (`orders migrate`) and the followers a deployment runs and their status
(`expected_followers`, `follower_statuses_of`), as `processes`, /readyz and /metrics read
them. Everything is built inside a lifespan or a command's run, never at import.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.settings import Settings
from app.stores import (
    document_store,
    event_store,
    postgres_pool,
    postgres_unreachable,
    redacted,
    require_services,
    retrying_start,
)
from app.wiring import utc_now
from log_follower.consumer import FollowerKind
from log_follower.source.port import Source
from log_follower.status.view import FollowerStatus
from log_follower.storage import FollowerStores
from read_model.change_feed.port import ChangeFeed
from read_model.document_cache import CachedDocumentStore
from read_model.document_store.port import DocumentStore
from read_model.projections import ALL_PROJECTIONS
from sagas import storage as saga_storage
from sagas.ledger.port import GatewayLedger
from write_model.event_store.port import EventStore
from write_model.event_types import build_registry
from write_model.registry import EventTypeRegistry


@dataclass(frozen=True, kw_only=True)
class LogBackend:
    """The adapters of a process that follows or appends to the log and writes no read
    documents (`orders saga`), as ports."""

    events: EventStore
    registry: EventTypeRegistry
    # The log as the process's followers read it: one shared reader, with the leader lock
    # and the append signal.
    source: Source
    followers: FollowerStores  # checkpoints, dead letters, status, in the event store's db
    ledger: GatewayLedger  # the simulated gateways'
    # Whether the process's PostgreSQL LISTEN connection is up (None: it has none).
    listener_healthy: Callable[[], bool] | None = None


@dataclass(frozen=True, kw_only=True)
class Backend(LogBackend):
    """Every adapter a process of one deployment mode runs on, as ports."""

    documents: DocumentStore
    feed: ChangeFeed
    # The read cache `documents` is, in an API process (READ_CACHE_DOCUMENTS), else None.
    read_cache: CachedDocumentStore | None = None


_LOG_BACKEND_FIELDS = tuple(field.name for field in dataclasses.fields(LogBackend))


@dataclass(frozen=True)
class _PostgresSide:
    backend: LogBackend
    pool: Any
    listener: Any  # log_follower.postgres_listener.PostgresListener


@contextlib.asynccontextmanager
async def _postgres_side(
    settings: Settings, *, follows_log: bool, migrates: bool
) -> AsyncIterator[_PostgresSide]:
    assert settings.database_url is not None
    from log_follower import storage as follower_storage
    from log_follower.append_signal.postgres import APPENDED_CHANNEL, PostgresAppendSignal
    from log_follower.postgres_listener import PostgresListener
    from log_follower.source.log import LogSource
    from log_follower.source.shared import SharedReader
    from write_model.event_store import postgres

    async with postgres_pool(settings) as pool, contextlib.AsyncExitStack() as running:
        if migrates:
            # Idempotent; concurrent starts are serialized by an advisory lock.
            await postgres.migrate(pool)
            await _migrate_postgres_side(pool)
        events = postgres.PostgresEventStore(pool, notify_channel=APPENDED_CHANNEL)
        running.push_async_callback(events.close)  # its NOTIFY task goes before the pool does
        listener = PostgresListener(settings.database_url)
        await retrying_start(
            settings,
            f"PostgreSQL at DATABASE_URL ({redacted(settings.database_url)}) to LISTEN",
            listener.start,
            postgres_unreachable(),
        )
        running.push_async_callback(listener.close)
        signal = PostgresAppendSignal(listener)
        if follows_log:
            await signal.start()
            running.push_async_callback(signal.close)
        backend = LogBackend(
            events=events,
            registry=build_registry(),
            source=SharedReader(LogSource(events, _lock(settings.database_url), signal)),
            followers=follower_storage.postgres_stores(pool),
            ledger=saga_storage.postgres_ledger(pool),
            listener_healthy=lambda: listener.healthy,
        )
        yield _PostgresSide(backend, pool, listener)


def _lock(database_url: str) -> Any:
    """Leaders per event store: the namespace is its database, so two deployments sharing
    a PostgreSQL server never take each other's locks."""
    from log_follower.leader_lock.postgres import PostgresLeaderLock

    database = urlsplit(database_url).path.lstrip("/")
    return PostgresLeaderLock(database_url, namespace=database)


async def _migrate_postgres_side(pool: Any) -> None:
    """The followers' and the saga's tables beside the event store."""
    from log_follower import storage as follower_storage

    await follower_storage.migrate_postgres(pool)
    await saga_storage.migrate_postgres(pool)


async def migrate(settings: Settings) -> str:
    """Create or update the event store schema; returns what was migrated."""
    if not settings.database_url:
        # The embedded SQLite store creates its schema when it opens.
        async with event_store(settings):
            return f"SQLite event store at {settings.orders_data_dir / 'events.db'}"

    from write_model.event_store import postgres

    async with postgres_pool(settings) as pool:
        await postgres.migrate(pool)
        await _migrate_postgres_side(pool)
        done = f"PostgreSQL event store at {redacted(settings.database_url)}"
        if settings.mongo_url:
            moved = await _move_projection_letters(settings, pool)
            done += f"; {moved} projection dead letters moved beside it from MongoDB"
    return done


async def _move_projection_letters(settings: Settings, pool: Any) -> int:
    """The projections' letters parked in MongoDB before every follower's letters shared one
    store, moved into it (read_model/legacy_letters.py)."""
    from log_follower import storage as follower_storage
    from read_model.legacy_letters import move_projection_letters

    async with document_store(settings) as documents:
        return await move_projection_letters(
            documents, follower_storage.postgres_stores(pool).dead_letters
        )


@contextlib.asynccontextmanager
async def shared_log_backend(
    settings: Settings, *, follows_log: bool, migrates: bool = False
) -> AsyncIterator[LogBackend]:
    """PostgreSQL alone, shared with the other processes (`orders saga`): MONGO_URL is
    not needed. `follows_log` and `migrates` as for `shared_backend`."""
    require_services(settings, "this process", read_store=False)
    async with _postgres_side(settings, follows_log=follows_log, migrates=migrates) as side:
        yield side.backend


@contextlib.asynccontextmanager
async def shared_backend(
    settings: Settings,
    *,
    follows_log: bool,
    migrates: bool = False,
    mongo_event_listeners: Sequence[Any] = (),
    read_cache: bool = False,
) -> AsyncIterator[Backend]:
    """PostgreSQL and MongoDB, shared between processes. `follows_log`: the process reads
    the log as it grows (projector, saga), so it listens for append notifications.
    `migrates`: apply the event store schema first (`orders api`, MIGRATE_ON_START).
    `read_cache`: reads by id answered from memory where they can be (READ_CACHE_DOCUMENTS;
    the API's), kept current by the change feed."""
    require_services(settings, "this process")
    from read_model.change_feed.postgres import PostgresChangeFeed

    async with (
        _postgres_side(settings, follows_log=follows_log, migrates=migrates) as side,
        document_store(settings, mongo_event_listeners) as documents,
        contextlib.AsyncExitStack() as running,
    ):
        feed = PostgresChangeFeed(side.pool, side.listener)
        cache = None
        if read_cache and settings.read_cache_documents:
            cache = await running.enter_async_context(
                CachedDocumentStore.watching(documents, feed, settings.read_cache_documents)
            )
        yield Backend(
            **{name: getattr(side.backend, name) for name in _LOG_BACKEND_FIELDS},
            documents=cache or documents,
            feed=feed,
            read_cache=cache,
        )


@contextlib.asynccontextmanager
async def embedded_backend(settings: Settings) -> AsyncIterator[Backend]:
    """`orders dev`: an unset MONGO_URL means an in-memory read store, filled by replaying
    the whole log when the projector starts, then tailing it; appends wake the projector
    in-process (every append of this process, whoever makes it, through
    AnnouncingEventStore). A set URL is used (and must be reachable) as anywhere else."""
    from log_follower.append_signal.in_process import InProcessAppendSignal
    from log_follower.leader_lock.in_process import InProcessLeaderLock
    from log_follower.source.log import LogSource
    from log_follower.source.shared import SharedReader
    from read_model.change_feed.in_process import InProcessChangeFeed
    from write_model.event_store.announcing import AnnouncingEventStore

    signal = InProcessAppendSignal()
    async with (
        event_store(settings) as store,
        document_store(settings) as documents,
        _embedded_stores(settings, store) as (followers, ledger),
    ):
        events = AnnouncingEventStore(store, [lambda _: signal.notify()])
        yield Backend(
            events=events,
            documents=documents,
            registry=build_registry(),
            feed=InProcessChangeFeed(),
            source=SharedReader(LogSource(events, InProcessLeaderLock(), signal)),
            followers=followers,
            ledger=ledger,
        )


@contextlib.asynccontextmanager
async def _embedded_stores(
    settings: Settings, events: EventStore
) -> AsyncIterator[tuple[FollowerStores, GatewayLedger]]:
    """Beside the event store, so checkpoints, letters and the ledger survive a restart."""
    from log_follower import storage as follower_storage
    from write_model.event_store.postgres import PostgresEventStore

    if isinstance(events, PostgresEventStore):
        if settings.migrate_on_start:
            await _migrate_postgres_side(events.pool)
        yield (
            follower_storage.postgres_stores(events.pool),
            saga_storage.postgres_ledger(events.pool),
        )
        return
    path = settings.orders_data_dir / "events.db"
    async with follower_storage.sqlite_connection(path) as connection:
        await follower_storage.migrate_sqlite(connection)
        await saga_storage.migrate_sqlite(connection)
        yield follower_storage.sqlite_stores(connection), saga_storage.sqlite_ledger(connection)


def expected_followers(settings: Settings) -> tuple[tuple[str, FollowerKind], ...]:
    """The followers a deployment runs in SAGA_MODE: the projections and the saga's
    (the orchestrator, or the three participants), by name; with Kafka configured
    (KAFKA_BOOTSTRAP_SERVERS), the relay too."""
    from app.kafka_setup import consumer_group, consumes_kafka
    from messaging.relay import RELAY
    from sagas.choreography.participant import PARTICIPANTS, subscriber_of
    from sagas.orchestrator import SUBSCRIBER

    sagas = (
        ((SUBSCRIBER, FollowerKind.SAGA),)
        if settings.saga_mode == "orchestration"
        else tuple(
            # Over Kafka, each participant's follower goes by its consumer group.
            (
                consumer_group(settings, p) if consumes_kafka(settings) else subscriber_of(p),
                FollowerKind.PARTICIPANT,
            )
            for p in PARTICIPANTS
        )
    )
    projections = tuple((p.name, FollowerKind.PROJECTION) for p in ALL_PROJECTIONS)
    relay = ((RELAY, FollowerKind.RELAY),) if settings.kafka_bootstrap_servers else ()
    return projections + sagas + relay


def follower_statuses_of(
    settings: Settings, backend: LogBackend
) -> Callable[[], Awaitable[list[FollowerStatus]]]:
    """Every follower's status as `processes`, /readyz and /metrics read it."""
    from log_follower.status.view import follower_statuses

    expected = expected_followers(settings)

    async def statuses() -> list[FollowerStatus]:
        return await follower_statuses(
            expected,
            backend.followers.status,
            backend.followers.dead_letters,
            own_reader(backend.source),
            stale_seconds=settings.projection_stale_seconds,
            now=utc_now(),
        )

    return statuses


def own_reader(source: Source) -> Source:
    from log_follower.source.shared import SharedReader

    return source.inner if isinstance(source, SharedReader) else source
