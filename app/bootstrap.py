"""The composition root: the one place that builds adapters from settings, and the
long-running tasks of each process (longer than 400 lines: every deployment mode's wiring is
kept in this one place on purpose).

A `Backend` is every adapter a process runs on, as ports:
- `shared_backend`: PostgreSQL (event store, LISTEN/NOTIFY, advisory locks, the followers'
  checkpoints, dead letters and status, the saga's ledger) and MongoDB, shared by the
  `api` and `projector` processes; `shared_log_backend`: the PostgreSQL part alone (a
  `LogBackend`), for the
  `saga` process, which writes no read documents;
- `embedded_backend`: `orders dev`, everything in one process: the SQLite event store and
  an in-memory read store unless URLs are set, and in-process signals, feed and locks.

On a backend: `command_bus` (command handling), `follower_parts` (what every follower of the
log in the process shares: one reader, the stores), `projector_dependencies` (the projector's
followers), `saga_consumers` (the fulfillment saga's consumers and gateways), and for the API
`api_runtime` (what GraphQL resolvers use, plus the projector and saga tasks in embedded
mode). Everything is built inside a lifespan or a command's run, never at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from app.auth import Authenticator
from app.settings import Settings
from app.wiring import build_command_bus, saga_reactions, simulated_gateways, utc_now
from log_follower.consumer import Consumer, FollowerKind, PerKeyConsumer
from log_follower.decoded import DecodedEvents
from log_follower.follower import Follower, FollowerParts, FollowerSettings
from log_follower.source.port import Source
from log_follower.status.view import FollowerStatus
from log_follower.storage import FollowerStores
from read_model.change_feed.port import ChangeFeed
from read_model.document_store.port import DocumentStore
from read_model.projections import ALL_PROJECTIONS
from read_model.projector_process import ProjectorDependencies, run_projection
from read_model.service import ReadModel
from sagas import storage as saga_storage
from sagas.ledger.port import GatewayLedger
from schema.context import CommandObserver, NoObserver, Services
from schema.order_updates import LiveOrders
from schema.rate_limit import RateLimiter
from write_model.bus import CommandBus
from write_model.domain.choreography import Participant
from write_model.event_store.port import EventStore
from write_model.event_types import build_registry
from write_model.registry import EventTypeRegistry

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


# ------------------------------------------------------------------ stores


async def _retrying_start(
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
async def _postgres_pool(settings: Settings) -> AsyncIterator[Any]:
    from write_model.event_store import postgres

    assert settings.database_url is not None
    pool = await _retrying_start(
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
async def _event_store(settings: Settings) -> AsyncIterator[EventStore]:
    """PostgreSQL when DATABASE_URL is set, else the SQLite file in ORDERS_DATA_DIR."""
    if settings.database_url:
        from log_follower.append_signal.postgres import APPENDED_CHANNEL
        from write_model.event_store import postgres

        async with _postgres_pool(settings) as pool:
            if settings.migrate_on_start:
                await postgres.migrate(pool)
            # Appends NOTIFY after they commit, so followers of the log wake without polling.
            store: EventStore = postgres.PostgresEventStore(pool, notify_channel=APPENDED_CHANNEL)
            yield store
        return
    from write_model.event_store import sqlite

    store = await sqlite.SqliteEventStore.open(str(settings.orders_data_dir / "events.db"))
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _document_store(
    settings: Settings, mongo_event_listeners: Sequence[Any] = ()
) -> AsyncIterator[DocumentStore]:
    """MongoDB when MONGO_URL is set, else an in-memory store (filled from the log by the
    in-process projector). `mongo_event_listeners`: pymongo monitoring listeners."""
    if settings.mongo_url:
        from read_model.document_store.mongo import MongoDocumentStore, MongoUnavailableError

        url = settings.mongo_url
        store: DocumentStore = await _retrying_start(
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


async def migrate(settings: Settings) -> str:
    """Create or update the event store schema; returns what was migrated."""
    if not settings.database_url:
        # The embedded SQLite store creates its schema when it opens.
        async with _event_store(settings):
            return f"SQLite event store at {settings.orders_data_dir / 'events.db'}"

    from write_model.event_store import postgres

    async with _postgres_pool(settings) as pool:
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

    async with _document_store(settings) as documents:
        return await move_projection_letters(
            documents, follower_storage.postgres_stores(pool).dead_letters
        )


# ---------------------------------------------------------------- backends


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

    async with _postgres_pool(settings) as pool, contextlib.AsyncExitStack() as running:
        if migrates:
            # Idempotent; concurrent starts are serialized by an advisory lock.
            await postgres.migrate(pool)
            await _migrate_postgres_side(pool)
        events = postgres.PostgresEventStore(pool, notify_channel=APPENDED_CHANNEL)
        listener = PostgresListener(settings.database_url)
        await _retrying_start(
            settings,
            f"PostgreSQL at DATABASE_URL ({redacted(settings.database_url)}) to LISTEN",
            listener.start,
            (OSError, TimeoutError, postgres.asyncpg.PostgresError),
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
) -> AsyncIterator[Backend]:
    """PostgreSQL and MongoDB, shared between processes. `follows_log`: the process reads
    the log as it grows (projector, saga), so it listens for append notifications.
    `migrates`: apply the event store schema first (`orders api`, MIGRATE_ON_START)."""
    require_services(settings, "this process")
    from read_model.change_feed.postgres import PostgresChangeFeed

    async with (
        _postgres_side(settings, follows_log=follows_log, migrates=migrates) as side,
        _document_store(settings, mongo_event_listeners) as documents,
    ):
        yield Backend(
            **{name: getattr(side.backend, name) for name in _LOG_BACKEND_FIELDS},
            documents=documents,
            feed=PostgresChangeFeed(side.pool, side.listener),
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
        _event_store(settings) as store,
        _document_store(settings) as documents,
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


# ------------------------------------------------------------ on a backend


def command_bus(settings: Settings, backend: LogBackend) -> CommandBus:
    """The one way in for every command (GraphQL mutations, the CLI, the saga)."""
    return build_command_bus(
        backend.events,
        backend.registry,
        tax_rate=settings.tax_rate,
        max_attempts=settings.command_max_attempts,
        snapshot_every=settings.snapshot_every,
    )


def expected_followers(settings: Settings) -> tuple[tuple[str, FollowerKind], ...]:
    """The followers a deployment runs in SAGA_MODE: the projections and the saga's
    (the orchestrator, or the three participants), by name."""
    from sagas.choreography.participant import PARTICIPANTS, subscriber_of
    from sagas.orchestrator import SUBSCRIBER

    sagas = (
        ((SUBSCRIBER, FollowerKind.SAGA),)
        if settings.saga_mode == "orchestration"
        else tuple((subscriber_of(p), FollowerKind.PARTICIPANT) for p in PARTICIPANTS)
    )
    projections = tuple((p.name, FollowerKind.PROJECTION) for p in ALL_PROJECTIONS)
    return projections + sagas


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
            _own_reader(backend.source),
            stale_seconds=settings.projection_stale_seconds,
            now=utc_now(),
        )

    return statuses


def follower_settings(settings: Settings) -> FollowerSettings:
    return FollowerSettings(
        batch_size=settings.follower_batch_size,
        poll_seconds=settings.follower_poll_seconds,
        heartbeat_seconds=settings.follower_heartbeat_seconds,
        max_attempts=settings.follower_max_attempts,
        backoff_seconds=settings.follower_backoff_seconds,
        concurrency=settings.follower_concurrency,
    )


def follower_parts(settings: Settings, backend: LogBackend) -> FollowerParts:
    """What the followers of the process share: the backend's one reader and stores."""
    return FollowerParts(
        source=backend.source,
        checkpoint=backend.followers.checkpoint,
        dead_letters=backend.followers.dead_letters,
        status=backend.followers.status,
        settings=follower_settings(settings),
    )


def projector_dependencies(settings: Settings, backend: Backend) -> ProjectorDependencies:
    parts = follower_parts(settings, backend)
    return ProjectorDependencies(
        events=backend.events,
        documents=backend.documents,
        registry=backend.registry,
        feed=backend.feed,
        parts=parts,
        # A rebuild reads the log on its own, not through the live followers' reader.
        rebuild_parts=dataclasses.replace(parts, source=_own_reader(backend.source)),
        decoded=DecodedEvents(backend.registry),
    )


def _own_reader(source: Source) -> Source:
    from log_follower.source.shared import SharedReader

    return source.inner if isinstance(source, SharedReader) else source


def saga_consumers(
    settings: Settings, backend: LogBackend, only: Participant | None = None
) -> list[Consumer]:
    """The saga's followers in SAGA_MODE: the orchestrator, or the choreography's three
    participants (`only`: that one, for `orders participant`), each with a checkpoint and
    leader lock of its own; on the simulated gateways (configured by settings), each behind
    its timeout, retries and circuit breaker."""
    from sagas.gateways.resilience import CallPolicy
    from sagas.gateways.simulated import Behaviour, PaymentRules, ShippingRules

    hanging = settings.listed(settings.gateway_hang)

    def behaviour(gateway: str, seed_offset: int) -> Behaviour:
        seed = settings.gateway_seed
        return Behaviour(
            failure_rate=settings.gateway_failure_rate,
            seed=None if seed is None else seed + seed_offset,
            latency_seconds=settings.gateway_latency_seconds,
            hang=gateway in hanging,
        )

    gateways = simulated_gateways(
        backend.ledger,
        payment_rules=PaymentRules(
            decline_above=settings.payment_decline_above,
            decline_customers=settings.listed(settings.payment_decline_customers),
        ),
        shipping_rules=ShippingRules(
            fail_countries=settings.listed(settings.shipping_fail_countries)
        ),
        payment_behaviour=behaviour("payment", 0),
        shipping_behaviour=behaviour("shipping", 1),
        policy=CallPolicy(
            timeout_seconds=settings.gateway_timeout_seconds,
            max_attempts=settings.gateway_max_attempts,
            backoff_seconds=settings.gateway_backoff_seconds,
            breaker_failures=settings.gateway_breaker_failures,
            breaker_cooldown_seconds=settings.gateway_breaker_cooldown_seconds,
        ),
    )
    reactions = saga_reactions(
        settings.saga_mode,
        backend.events,
        backend.registry,
        command_bus(settings, backend),
        gateways,
        only=only,
    )
    return [PerKeyConsumer(reaction, settings.follower_concurrency) for reaction in reactions]


async def run_followers(
    consumers: Sequence[Consumer], parts: FollowerParts, stop: asyncio.Event
) -> None:
    """Followers side by side until `stop`, each leading (or standing by) on its own."""
    async with asyncio.TaskGroup() as tasks:
        for consumer in consumers:
            tasks.create_task(Follower(consumer, parts).run(stop), name=consumer.name)


async def run_saga_process(
    settings: Settings, stop: asyncio.Event, participant: Participant | None = None
) -> None:
    """`orders saga`: lead (or stand by for) the fulfillment saga until `stop` (in
    choreography, its three participants); `orders participant <name>`: that participant
    alone. With the ops endpoints on OPS_PORT when it is set. PostgreSQL and the gateways
    are all it needs (its dead letters live beside its checkpoint), not MongoDB."""
    from app.ops_server import ops_server

    async with (
        shared_log_backend(
            settings, follows_log=True, migrates=settings.migrate_on_start
        ) as backend,
        ops_server(settings, backend, None),
    ):
        consumers = saga_consumers(settings, backend, participant)
        await run_followers(consumers, follower_parts(settings, backend), stop)


async def run_projections(deps: ProjectorDependencies, stop: asyncio.Event) -> None:
    async with asyncio.TaskGroup() as tasks:
        for projection in ALL_PROJECTIONS:
            tasks.create_task(run_projection(deps, projection, stop), name=projection.name)


def build_read_model(settings: Settings, backend: Backend) -> ReadModel:
    return ReadModel(
        backend.documents,
        backend.events,
        letters=backend.followers.dead_letters,
        followers=follower_statuses_of(settings, backend),
        wait_seconds=settings.consistency_wait_seconds,
        poll_seconds=settings.consistency_poll_seconds,
        version_ttl_seconds=settings.read_model_version_ttl_seconds,
        stale_seconds=settings.projection_stale_seconds,
    )


async def run_projector(settings: Settings, stop: asyncio.Event) -> None:
    """`orders projector`: lead (or stand by for) every projection until `stop`, with the
    ops endpoints on OPS_PORT when it is set."""
    from app.ops_server import ops_server

    async with (
        # Its checkpoints, letters and status are tables beside the event store's.
        shared_backend(settings, follows_log=True, migrates=settings.migrate_on_start) as backend,
        ops_server(settings, backend, build_read_model(settings, backend)),
    ):
        await run_projections(projector_dependencies(settings, backend), stop)


@contextlib.asynccontextmanager
async def projector_tools(settings: Settings) -> AsyncIterator[ProjectorDependencies]:
    """`orders projections status|rebuild`: the projector's dependencies, no loop."""
    async with shared_backend(settings, follows_log=False) as backend:
        yield projector_dependencies(settings, backend)


# ------------------------------------------------------------------ the API


def authenticator(settings: Settings) -> Authenticator:
    """Who asks, from a bearer token; open (everyone anonymous) when no key is set."""
    return Authenticator(settings)


def cors_origins(settings: Settings, *, embedded: bool) -> list[str]:
    """Browser origins other than the API's own that may call it (HTTP and websockets):
    CORS_ALLOWED_ORIGINS; unset: none (same origin only), or any in `orders dev`."""
    if settings.cors_allowed_origins is None:
        return ["*"] if embedded else []
    return [origin.strip() for origin in settings.cors_allowed_origins.split(",") if origin.strip()]


@dataclass
class ApiRuntime:
    """What the API process runs on once started. `projector`: the in-process projections
    task of embedded mode (`orders dev`); None where the projector is a process of its
    own."""

    settings: Settings
    backend: Backend
    services: Services
    projector: asyncio.Task[None] | None = None
    saga: asyncio.Task[None] | None = None


@contextlib.asynccontextmanager
async def api_runtime(
    settings: Settings,
    *,
    embedded: bool,
    observer: CommandObserver | None = None,
    mongo_event_listeners: Sequence[Any] = (),
) -> AsyncIterator[ApiRuntime]:
    backend_context = (
        embedded_backend(settings)
        if embedded
        else shared_backend(
            settings,
            follows_log=False,
            migrates=settings.migrate_on_start,
            mongo_event_listeners=mongo_event_listeners,
        )
    )
    async with backend_context as backend, contextlib.AsyncExitStack() as running:
        reader = build_read_model(settings, backend)
        live = LiveOrders(backend.feed, reader)
        # Subscribed to the change feed before serving, so no later change is missed.
        await running.enter_async_context(live.running())
        services = Services(
            commands=command_bus(settings, backend),
            events=backend.events,
            registry=backend.registry,
            read_model=reader,
            observer=observer or NoObserver(),
            live=live,
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            # Off in `orders dev`: one developer, often scripting against it.
            mutation_limiter=RateLimiter(None if embedded else settings.mutation_rate_limit),
        )
        runtime = ApiRuntime(settings, backend, services)
        if embedded:
            deps = projector_dependencies(settings, backend)
            runtime.projector = await running.enter_async_context(_projections_running(deps))
            sagas = saga_consumers(settings, backend)
            parts = follower_parts(settings, backend)
            runtime.saga = await running.enter_async_context(
                _task_running("saga", lambda stop: run_followers(sagas, parts, stop))
            )
        yield runtime


def _projections_running(
    deps: ProjectorDependencies,
) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    return _task_running("projector", lambda stop: run_projections(deps, stop))


@contextlib.asynccontextmanager
async def _task_running(
    name: str, loop: Callable[[asyncio.Event], Awaitable[None]]
) -> AsyncIterator[asyncio.Task[None]]:
    """A loop (the projections, the saga) as a task of this process, stopped (not
    cancelled) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop(stop), name=name)
    task.add_done_callback(_report_end)
    try:
        yield task
    finally:
        stop.set()
        await task


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error(
            "the in-process %s stopped: %s",
            task.get_name(),
            error,
            exc_info=(type(error), error, error.__traceback__),
        )
