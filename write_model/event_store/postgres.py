"""PostgreSQL EventStore on an asyncpg pool. Schema and append function: postgres_schema.sql.

Longer than 400 lines on purpose: the whole port (appends, idempotency records, snapshots,
repeated appends, gap-free reads) shares one pool and one outage translation, kept in one
file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import asyncpg
import orjson

from write_model.envelope import (
    AppendResult,
    EventMetadata,
    LogPosition,
    NewEvent,
    RecordedEvent,
)
from write_model.event_store.port import (
    ANY,
    NO_STREAM,
    AppendsThroughStreams,
    DuplicateEventError,
    EventStoreUnavailable,
    ExpectedVersion,
    IdempotencyKey,
    IdempotencyKeyConflict,
    IdempotencyRecord,
    Snapshot,
    StreamAppend,
    StreamFromSnapshot,
    WrongExpectedVersion,
    check_appends,
)

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 7_351_001  # advisory lock id: concurrent `orders migrate` runs take turns

_APPEND = """
SELECT stream_id, ok, stream_version, transaction_id, log_position
FROM append_to_streams($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""

# Nearly every append is to one stream: the function append_to_streams calls per part,
# called directly (no per-part bookkeeping, no array slices).
_APPEND_ONE = """
SELECT $1::text AS stream_id, ok, stream_version, transaction_id, log_position
FROM append_to_stream($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""

# What append_to_streams raises on a conflict after it wrote an earlier part.
_CONFLICT_AFTER_WRITING = "EV409"

_COLUMNS = (
    "position, transaction_id, stream_id, version, event_id, type, data, metadata, occurred_at"
)

# Only events of transactions older than every running one: those can no longer be
# overtaken by a commit with a lower position. Ordered as checkpointed.
_READ_ALL = f"""
SELECT {_COLUMNS} FROM events
WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY transaction_id, position
LIMIT $3
"""

_REPEATED = """
SELECT r.*, EXISTS (
    SELECT 1 FROM idempotency_keys k WHERE k.principal = $5 AND k.scope = $4 AND k.key = $3
) AS key_taken
FROM repeated_append($1, $2) r
"""

_STREAM_HEAD = """
SELECT s.version, e.transaction_id, e.position
FROM streams s
LEFT JOIN LATERAL (
    SELECT transaction_id, position FROM events e
    WHERE e.stream_id = s.stream_id ORDER BY e.version DESC LIMIT 1
) e ON true
WHERE s.stream_id = $1
"""

# Each stream from its usable snapshot: see read_from_snapshots in postgres_schema.sql.
_FROM_SNAPSHOTS = "SELECT * FROM read_from_snapshots($1, $2)"

_SAVE_SNAPSHOT = """
INSERT INTO snapshots AS s (stream_id, version, schema_version, data) VALUES ($1, $2, $3, $4)
ON CONFLICT (stream_id) DO UPDATE
SET version = excluded.version, schema_version = excluded.schema_version, data = excluded.data
WHERE s.version <= excluded.version
"""

_COUNT_AFTER = """
SELECT count(*) FROM events
WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
"""

_HEAD = """
SELECT transaction_id, position FROM events
WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY transaction_id DESC, position DESC
LIMIT 1
"""


def schema_sql() -> str:
    return resources.files(__package__).joinpath("postgres_schema.sql").read_text()


async def init_connection(connection: asyncpg.Connection) -> None:
    """Codecs every connection of the pool needs: jsonb as Python values, xid8 as int."""
    await connection.set_type_codec(
        "jsonb", encoder=_json_text, decoder=orjson.loads, schema="pg_catalog"
    )
    await connection.set_type_codec(
        "xid8", encoder=str, decoder=int, schema="pg_catalog", format="text"
    )


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool connections hold no session state (no SET, LISTEN or session locks: those take
    connections of their own), so the reset query asyncpg runs on every release, a round
    trip per query, is skipped."""


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, connect_timeout: float = 10.0
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        init=init_connection,
        reset=_keep_session,
    )


async def migrate(pool: asyncpg.Pool) -> None:
    """Create or update the event store schema; safe to run any number of times at once."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(schema_sql())


def _expected_code(expected: ExpectedVersion) -> int:
    if expected is ANY:
        return -1
    if expected is NO_STREAM:
        return 0
    assert isinstance(expected, int)
    if expected < 1:
        raise ValueError(f"an exact expected version is >= 1, got {expected}")
    return expected


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        event_id=row["event_id"],
        stream_id=row["stream_id"],
        type=row["type"],
        version=row["version"],
        position=row["position"],
        transaction_id=row["transaction_id"],
        occurred_at=row["occurred_at"],
        data=row["data"],
        metadata=EventMetadata.from_json(row["metadata"]),
    )


class AppendNotifier:
    """Sends NOTIFY on a channel after appends commit, outside their transactions (a NOTIFY
    inside would take PostgreSQL's global notify lock at every commit). Bursts coalesce:
    at most one NOTIFY in flight, then a short pause."""

    def __init__(self, pool: asyncpg.Pool, channel: str, pause_seconds: float = 0.002) -> None:
        self._pool = pool
        self._channel = channel
        self._pause = pause_seconds
        self._pending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._pending.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="append-notifier")

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            try:
                await self._pool.execute("SELECT pg_notify($1, '')", self._channel)
            except (asyncpg.PostgresError, OSError):
                # Readers fall back to polling; the appended events are safe either way.
                log.exception("append notification on %s failed", self._channel)
            await asyncio.sleep(self._pause)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# What a lost or refused connection raises: the server restarting, shutting down, not
# accepting connections yet, or the network between.
_DISCONNECTED = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
)

P = ParamSpec("P")
R = TypeVar("R")


def _unavailable_when_disconnected(
    method: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """The port's EventStoreUnavailable for a connection that failed, whatever the driver
    calls it, so callers can tell an outage (retryable) from a bug."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except _DISCONNECTED as error:
            raise EventStoreUnavailable(
                f"PostgreSQL is unavailable: {type(error).__name__}: {error}"
            ) from error

    return translated


class PostgresEventStore(AppendsThroughStreams):
    def __init__(self, pool: asyncpg.Pool, notify_channel: str | None = None) -> None:
        self._pool = pool
        self._notifier = AppendNotifier(pool, notify_channel) if notify_channel else None

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @_unavailable_when_disconnected
    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        async with self._pool.acquire() as connection:
            return await self.append_streams_on(connection, appends, idempotency)

    async def append_on(
        self,
        connection: asyncpg.Connection,
        stream_id: str,
        stream_type: str,
        expected_version: ExpectedVersion,
        events: Sequence[NewEvent],
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> AppendResult:
        """`append_streams_on` with one stream."""
        part = StreamAppend(stream_id, stream_type, expected_version, events)
        [result] = await self.append_streams_on(connection, [part], idempotency)
        return result

    async def append_streams_on(
        self,
        connection: asyncpg.Connection,
        appends: Sequence[StreamAppend],
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        """Append on a given connection, inside whatever transaction it has open (where
        a repeated append is refused instead of answered: see `_repeated`)."""
        check_appends(appends)
        key, fingerprint = idempotency if idempotency else (None, None)
        scope = (key.key, key.scope, key.principal) if key else (None, None, None)
        # Streams locked in one order by every append: two never wait on each other.
        ordered = sorted(appends, key=lambda part: part.stream_id)
        events = [event for part in ordered for event in part.events]
        columns = (
            [e.event_id for e in events],
            [e.type for e in events],
            [e.data for e in events],
            [e.metadata.to_json() for e in events],
            [e.occurred_at for e in events],
        )
        try:
            if len(ordered) == 1:
                [part] = ordered
                rows = await connection.fetch(
                    _APPEND_ONE,
                    part.stream_id,
                    part.stream_type,
                    _expected_code(part.expected_version),
                    *columns,
                    *scope,
                    fingerprint,
                )
            else:
                rows = await connection.fetch(
                    _APPEND,
                    [part.stream_id for part in ordered],
                    [part.stream_type for part in ordered],
                    [_expected_code(part.expected_version) for part in ordered],
                    [len(part.events) for part in ordered],
                    *columns,
                    appends[0].stream_id,
                    *scope,
                    fingerprint,
                )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "idempotency_keys_scoped_key" and key is not None:
                raise IdempotencyKeyConflict(key.key) from error
            if error.constraint_name == "events_event_id_key":
                repeated = await self._repeated(connection, appends, key)
                if repeated is not None:
                    return repeated
                raise DuplicateEventError(str(error)) from error
            raise
        except asyncpg.PostgresError as error:
            if error.sqlstate != _CONFLICT_AFTER_WRITING:
                raise
            stream_id, actual = error.detail, int(error.hint)
            return await self._conflict(connection, appends, key, stream_id, actual)
        if not rows[0]["ok"]:
            return await self._conflict(
                connection, appends, key, rows[0]["stream_id"], rows[0]["stream_version"]
            )
        if self._notifier is not None and events and not connection.is_in_transaction():
            self._notifier.poke()
        found = {
            row["stream_id"]: AppendResult(
                row["stream_id"],
                row["stream_version"],
                LogPosition(row["transaction_id"], row["log_position"]),
            )
            for row in rows
        }
        return [found[part.stream_id] for part in appends]

    async def _conflict(
        self,
        connection: asyncpg.Connection,
        appends: Sequence[StreamAppend],
        key: IdempotencyKey | None,
        stream_id: str,
        actual: int,
    ) -> list[AppendResult]:
        """A stream was not at its expected version: perhaps a repeat of an append that
        has landed (its writer lost the answer), else WrongExpectedVersion."""
        repeated = await self._repeated(connection, appends, key)
        if repeated is not None:
            return repeated
        [expected] = [part.expected_version for part in appends if part.stream_id == stream_id]
        raise WrongExpectedVersion(stream_id, expected, actual)

    async def _repeated(
        self,
        connection: asyncpg.Connection,
        appends: Sequence[StreamAppend],
        key: IdempotencyKey | None,
    ) -> list[AppendResult] | None:
        """After a stored event id or a version conflict: the first results when the parts
        repeat one earlier append (see the port), after IdempotencyKeyConflict for a taken
        key. Appends that succeed never ask. Not inside a caller's transaction (the error
        aborted it): there a repeat is refused as a DuplicateEventError or a conflict."""
        if connection.is_in_transaction():
            return None
        repeats: dict[str, asyncpg.Record] = {}
        for index, part in enumerate(appends):
            asks_key = index == 0 and key is not None
            if not (part.events or asks_key):
                continue
            row = await connection.fetchrow(
                _REPEATED,
                part.stream_id,
                [e.event_id for e in part.events],
                *((key.key, key.scope, key.principal) if key and asks_key else (None,) * 3),
            )
            if key is not None and asks_key and row["key_taken"]:
                raise IdempotencyKeyConflict(key.key)
            if part.events:
                if row["outcome"] != "repeat":
                    return None
                repeats[part.stream_id] = row
        if not repeats or len({row["transaction_id"] for row in repeats.values()}) != 1:
            return None
        results = []
        for part in appends:
            row = repeats.get(part.stream_id) or await self._head_of(connection, part.stream_id)
            position = LogPosition(row["transaction_id"], row["log_position"])
            results.append(AppendResult(part.stream_id, row["stream_version"], position))
        return results

    @staticmethod
    async def _head_of(connection: asyncpg.Connection, stream_id: str) -> dict[str, Any]:
        """A stream's version and last event as `_repeated` answers them for a part
        without events."""
        row = await connection.fetchrow(_STREAM_HEAD, stream_id)
        if row is None or row["transaction_id"] is None:
            return {
                "stream_version": row["version"] if row else 0,
                "transaction_id": 0,
                "log_position": 0,
            }
        return {
            "stream_version": row["version"],
            "transaction_id": row["transaction_id"],
            "log_position": row["position"],
        }

    @_unavailable_when_disconnected
    async def read_from_snapshots(
        self, schema_versions: Mapping[str, int | None]
    ) -> dict[str, StreamFromSnapshot]:
        rows = await self._pool.fetch(
            _FROM_SNAPSHOTS, list(schema_versions), list(schema_versions.values())
        )
        snapshots: dict[str, Snapshot] = {}
        events: dict[str, list[RecordedEvent]] = {stream_id: [] for stream_id in schema_versions}
        for row in rows:
            stream_id = row["wanted"]
            if row["snapshot_data"] is not None:
                snapshots[stream_id] = Snapshot(
                    row["snapshot_version"], row["snapshot_schema_version"], row["snapshot_data"]
                )
            if row["event_id"] is not None:
                events[stream_id].append(_recorded(row))
        return {
            stream_id: StreamFromSnapshot(snapshots.get(stream_id), found)
            for stream_id, found in events.items()
        }

    @_unavailable_when_disconnected
    async def save_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        await self._pool.execute(
            _SAVE_SNAPSHOT, stream_id, snapshot.version, snapshot.schema_version, snapshot.data
        )

    @_unavailable_when_disconnected
    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        row = await self._pool.fetchrow(
            "SELECT version, schema_version, data FROM snapshots WHERE stream_id = $1", stream_id
        )
        if row is None:
            return None
        return Snapshot(row["version"], row["schema_version"], row["data"])

    @_unavailable_when_disconnected
    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2"
            " AND ($3::integer IS NULL OR version <= $3) ORDER BY version",
            stream_id,
            from_version,
            to_version,
        )
        return [_recorded(row) for row in rows]

    @_unavailable_when_disconnected
    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = ANY($1::text[])"
            " ORDER BY stream_id, version",
            list(stream_ids),
        )
        streams: dict[str, list[RecordedEvent]] = {stream_id: [] for stream_id in stream_ids}
        for row in rows:
            streams[row["stream_id"]].append(_recorded(row))
        return streams

    @_unavailable_when_disconnected
    async def stream_version(self, stream_id: str) -> int:
        version = await self._pool.fetchval(
            "SELECT version FROM streams WHERE stream_id = $1", stream_id
        )
        return version or 0

    @_unavailable_when_disconnected
    async def read_all(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._pool.fetch(_READ_ALL, after.transaction_id, after.position, limit)
        return [_recorded(row) for row in rows]

    @_unavailable_when_disconnected
    async def count_after(self, after: LogPosition) -> int:
        return int(await self._pool.fetchval(_COUNT_AFTER, after.transaction_id, after.position))

    @_unavailable_when_disconnected
    async def head_position(self) -> LogPosition:
        row = await self._pool.fetchrow(_HEAD)
        if row is None:
            return LogPosition.start()
        return LogPosition(row["transaction_id"], row["position"])

    @_unavailable_when_disconnected
    async def find_idempotency_record(self, key: IdempotencyKey) -> IdempotencyRecord | None:
        # The scoped record first ('' sorts last), else the unscoped one of before.
        row: Any = await self._pool.fetchrow(
            "SELECT key, fingerprint, stream_id, version, transaction_id, position"
            " FROM idempotency_keys WHERE key = $1"
            " AND ((principal = $2 AND scope = $3) OR (principal = '' AND scope = ''))"
            " ORDER BY scope DESC LIMIT 1",
            key.key,
            key.principal,
            key.scope,
        )
        if row is None:
            return None
        result = AppendResult(
            row["stream_id"], row["version"], LogPosition(row["transaction_id"], row["position"])
        )
        return IdempotencyRecord(row["key"], row["fingerprint"], result)

    async def close(self) -> None:
        if self._notifier is not None:
            await self._notifier.close()
        await self._pool.close()
