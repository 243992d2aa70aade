"""SQLite EventStore on aiosqlite: the embedded default, one database file.

SQLite lets one connection write at a time (appends take the write lock with BEGIN
IMMEDIATE and wait up to the busy timeout for it), so commits are serialized: positions
handed out under that lock grow in commit order, and a reader can never pass an event that
is still to commit. Each batch takes the position of its first event as transaction id,
which keeps (transaction_id, position) order equal to position order, as the port requires.

Longer than 400 lines on purpose: the whole port (appends, idempotency records, snapshots,
repeated appends, reads) shares one connection and its write lock, kept in one file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import aiosqlite

from write_model.envelope import (
    AppendResult,
    EventMetadata,
    LogPosition,
    NewEvent,
    RecordedEvent,
)
from write_model.event_store.port import (
    NO_STREAM,
    AppendsThroughStreams,
    DuplicateEventError,
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

R = TypeVar("R")

# How long an append waits for another connection (or process) to release the write lock.
_BUSY_TIMEOUT_SECONDS = 10.0

IDEMPOTENCY_KEYS_TABLE = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            TEXT NOT NULL,
    -- The mutation and the principal the key was sent with; '' on records stored before
    -- keys were scoped (see _migrate_idempotency_keys).
    scope          TEXT NOT NULL DEFAULT '',
    principal      TEXT NOT NULL DEFAULT '',
    fingerprint    TEXT NOT NULL,
    stream_id      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    transaction_id INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (principal, scope, key)
);
"""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT PRIMARY KEY,
    type      TEXT NOT NULL,
    version   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    -- The rowid. append_on hands positions out itself (last + 1) under the write lock,
    -- so that a batch knows its first position (its transaction id) before inserting.
    -- The log is append-only, so no position is ever reused.
    position       INTEGER PRIMARY KEY,
    transaction_id INTEGER NOT NULL,
    stream_id      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    event_id       TEXT NOT NULL UNIQUE,
    type           TEXT NOT NULL,
    data           TEXT NOT NULL,        -- JSON
    metadata       TEXT NOT NULL,        -- JSON, EventMetadata.to_json()
    occurred_at    TEXT NOT NULL,        -- ISO 8601 in UTC, with its offset
    UNIQUE (stream_id, version)
);

CREATE INDEX IF NOT EXISTS events_log_order ON events (transaction_id, position);

-- One snapshot per stream, the newest (see write_model/snapshots.py).
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id      TEXT PRIMARY KEY,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT NOT NULL         -- JSON
);

"""
    + IDEMPOTENCY_KEYS_TABLE
)

# Keys were one global namespace (`key` the primary key). SQLite cannot change a primary
# key in place: the records move to a table of the new shape, unscoped ('', '').
_MIGRATE_IDEMPOTENCY_KEYS = (
    """
ALTER TABLE idempotency_keys RENAME TO idempotency_keys_unscoped;
"""
    + IDEMPOTENCY_KEYS_TABLE
    + """
INSERT INTO idempotency_keys
    (key, fingerprint, stream_id, version, transaction_id, position, created_at)
SELECT key, fingerprint, stream_id, version, transaction_id, position, created_at
FROM idempotency_keys_unscoped;
DROP TABLE idempotency_keys_unscoped;
"""
)


async def _migrate_idempotency_keys(connection: aiosqlite.Connection) -> None:
    columns = await connection.execute_fetchall("PRAGMA table_info(idempotency_keys)")
    if "scope" not in {column[1] for column in columns}:
        await connection.executescript(f"BEGIN IMMEDIATE;{_MIGRATE_IDEMPOTENCY_KEYS}COMMIT;")


_COLUMNS = (
    "position, transaction_id, stream_id, version, event_id, type, data, metadata, occurred_at"
)

_INSERT_EVENT = f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

_READ_ALL = f"""
SELECT {_COLUMNS} FROM events
WHERE (transaction_id, position) > (?, ?)
ORDER BY transaction_id, position
LIMIT ?
"""

_HEAD = """
SELECT transaction_id, position FROM events
ORDER BY transaction_id DESC, position DESC
LIMIT 1
"""


async def connect(path: str) -> aiosqlite.Connection:
    """A connection in autocommit mode (callers BEGIN IMMEDIATE themselves to append), on a
    WAL database so reads never wait for a writer, with the schema in place."""
    connection = await aiosqlite.connect(
        path,
        isolation_level=None,
        timeout=_BUSY_TIMEOUT_SECONDS,  # sqlite3's busy_timeout
        # aiosqlite only uses the connection from its own thread; this lets append_on
        # read `in_transaction` from the event loop's thread.
        check_same_thread=False,
    )
    try:
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.executescript(_SCHEMA)
        await _migrate_idempotency_keys(connection)
    except BaseException:
        await connection.close()
        raise
    return connection


async def append_on(
    connection: aiosqlite.Connection,
    stream_id: str,
    stream_type: str,
    expected_version: ExpectedVersion,
    events: Sequence[NewEvent],
    idempotency: tuple[IdempotencyKey, str] | None = None,
) -> AppendResult:
    """`append_streams_on` with one stream."""
    part = StreamAppend(stream_id, stream_type, expected_version, events)
    [result] = await append_streams_on(connection, [part], idempotency)
    return result


async def append_streams_on(
    connection: aiosqlite.Connection,
    appends: Sequence[StreamAppend],
    idempotency: tuple[IdempotencyKey, str] | None = None,
) -> list[AppendResult]:
    """Append on a connection inside the transaction its caller opened with BEGIN IMMEDIATE
    (so that it holds the write lock); neither begins nor commits. Every check runs before
    the first write, so an error leaves the transaction as it was."""
    if not connection.in_transaction:
        raise RuntimeError("append_on needs a transaction opened with BEGIN IMMEDIATE")
    check_appends(appends)
    return await _on_thread(connection, _append_in_transaction, appends, idempotency)


async def _on_thread(
    connection: aiosqlite.Connection, work: Callable[..., R], *arguments: Any
) -> R:
    """`work(database, *arguments)` on the connection's own thread, in one hop: each of
    aiosqlite's calls is a trip through its queue, a future and a wake-up of the event
    loop, which cost an append of eight statements more CPU than the statements. aiosqlite
    has no public call for this; `_execute` is what each of its public calls runs through,
    and the EventStore contract suite on this adapter covers its use here."""
    database = connection._conn
    result: R = await connection._execute(work, database, *arguments)  # type: ignore[no-untyped-call]  # aiosqlite's _execute is unannotated
    return result


Queued = tuple[Sequence[StreamAppend], tuple[IdempotencyKey, str] | None]


def _append_group(
    database: sqlite3.Connection, queued: Sequence[Queued]
) -> list[list[AppendResult] | Exception]:
    """The appends queued meanwhile, in one transaction (BEGIN IMMEDIATE to COMMIT: one
    commit, so one WAL sync, for all of them), each under a savepoint of its own, so that
    each is all or nothing alone: a refused one (a conflict, a taken key) is rolled back
    to its savepoint and its error is its answer, the others commit. Each sees those
    before it, as if it had committed on its own. On the connection's thread at once, so
    a caller cancelled meanwhile never leaves the writer inside a transaction."""
    database.execute("BEGIN IMMEDIATE")
    try:
        answers: list[list[AppendResult] | Exception] = []
        for appends, idempotency in queued:
            database.execute("SAVEPOINT append")
            try:
                answers.append(_append_in_transaction(database, appends, idempotency))
            except Exception as refused:  # the caller's answer, raised to it
                database.execute("ROLLBACK TO append")
                answers.append(refused)
            database.execute("RELEASE append")
        database.commit()
    except BaseException:
        database.rollback()
        raise
    return answers


def _append_in_transaction(
    database: sqlite3.Connection,
    appends: Sequence[StreamAppend],
    idempotency: tuple[IdempotencyKey, str] | None,
) -> list[AppendResult]:
    if idempotency is not None and _scalar(
        database,
        "SELECT 1 FROM idempotency_keys WHERE principal = ? AND scope = ? AND key = ?",
        _scoped(idempotency[0]),
    ):
        raise IdempotencyKeyConflict(idempotency[0].key)
    repeated = _repeated_append(database, appends)
    if repeated is not None:
        return repeated

    versions = _versions(database, [part.stream_id for part in appends])
    for part in appends:
        actual, expected = versions.get(part.stream_id, 0), part.expected_version
        if (expected is NO_STREAM and actual != 0) or (
            isinstance(expected, int) and expected != actual
        ):
            raise WrongExpectedVersion(part.stream_id, expected, actual)

    first = _scalar(database, "SELECT max(position) FROM events", default=0) + 1
    position = first
    results = []
    for part in appends:
        actual = versions.get(part.stream_id, 0)
        if not part.events:
            results.append(AppendResult(part.stream_id, actual, _last_of(database, part.stream_id)))
            continue
        version = actual + len(part.events)
        rows = [
            _row(position, first, part.stream_id, actual, offset, event)
            for offset, event in enumerate(part.events)
        ]
        position += len(part.events)
        database.execute(
            "INSERT INTO streams (stream_id, type, version) VALUES (?, ?, ?)"
            " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
            (part.stream_id, part.stream_type, version),
        )
        database.executemany(_INSERT_EVENT, rows)
        results.append(AppendResult(part.stream_id, version, LogPosition(first, position - 1)))

    if idempotency is not None:
        key, fingerprint = idempotency
        result = results[0]
        database.execute(
            "INSERT INTO idempotency_keys (principal, scope, key,"
            " fingerprint, stream_id, version, transaction_id, position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *_scoped(key),
                fingerprint,
                result.stream_id,
                result.version,
                result.log_position.transaction_id,
                result.log_position.position,
            ),
        )
    return results


def _versions(database: sqlite3.Connection, stream_ids: Sequence[str]) -> dict[str, int]:
    """The versions of those of the streams that exist."""
    rows = database.execute(
        "SELECT stream_id, version FROM streams"
        " WHERE stream_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(stream_ids)),),
    )
    return {stream_id: version for stream_id, version in rows}


def _last_of(database: sqlite3.Connection, stream_id: str) -> LogPosition:
    """The position of the stream's last event; the start for a stream with none."""
    found = database.execute(
        "SELECT transaction_id, position FROM events WHERE stream_id = ?"
        " ORDER BY version DESC LIMIT 1",
        (stream_id,),
    ).fetchone()
    return LogPosition(*(found or (0, 0)))


def _scoped(key: IdempotencyKey) -> tuple[str, str, str]:
    return (key.principal, key.scope, key.key)


class SqliteEventStore(AppendsThroughStreams):
    """Appends go through one writer connection, reads through another: an aiosqlite
    connection runs its calls one at a time on its thread, so appends take turns there,
    while WAL lets reads proceed during an append. Appends that arrive while others are
    written are written together next, in one transaction (see `_append_group`): one
    commit for all of them, each still all or nothing, each answered when it is durable."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._queued: list[tuple[Queued, asyncio.Future[list[AppendResult]]]] = []
        self._writing: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: str) -> SqliteEventStore:
        if path in ("", ":memory:"):
            # Each of the two connections would get a private database of its own.
            raise ValueError("SqliteEventStore needs a file (InMemoryEventStore has no I/O)")
        await asyncio.to_thread(Path(path).parent.mkdir, parents=True, exist_ok=True)
        writer = await connect(path)
        try:
            reader = await connect(path)
        except BaseException:
            await writer.close()
            raise
        return cls(writer, reader)

    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        check_appends(appends)
        answer: asyncio.Future[list[AppendResult]] = asyncio.get_running_loop().create_future()
        self._queued.append(((appends, idempotency), answer))
        if self._writing is None:
            # A task of its own: a caller cancelled while its group is written does not
            # stop the answers to the others of the group.
            self._writing = asyncio.create_task(self._write_queued(), name="sqlite-appends")
        return await answer

    async def _write_queued(self) -> None:
        try:
            while self._queued:
                group, self._queued = self._queued, []
                try:
                    answers = await _on_thread(
                        self._writer, _append_group, [queued for queued, _ in group]
                    )
                except asyncio.CancelledError:  # the loop is shutting down
                    for _, answer in group:
                        answer.cancel()
                    raise
                except Exception as failed:  # BEGIN or COMMIT failed: every append's answer
                    for _, answer in group:
                        if not answer.done():
                            answer.set_exception(failed)
                    continue
                for (_, answer), outcome in zip(group, answers, strict=True):
                    if answer.done():  # its caller was cancelled: the append stands
                        continue
                    if isinstance(outcome, Exception):
                        answer.set_exception(outcome)
                    else:
                        answer.set_result(outcome)
        finally:
            self._writing = None

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        rows = await self._reader.execute_fetchall(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = ?1 AND version >= ?2"
            " AND (?3 IS NULL OR version <= ?3) ORDER BY version",
            (stream_id, from_version, to_version),
        )
        return [_recorded(row) for row in rows]

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        streams: dict[str, list[RecordedEvent]] = {stream_id: [] for stream_id in stream_ids}
        # The ids go in as one JSON array: one statement (so one snapshot) for any number.
        rows = await self._reader.execute_fetchall(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id IN (SELECT value FROM json_each(?))"
            " ORDER BY stream_id, version",
            (json.dumps(list(streams)),),
        )
        for row in rows:
            event = _recorded(row)
            streams[event.stream_id].append(event)
        return streams

    async def read_from_snapshots(
        self, schema_versions: Mapping[str, int | None]
    ) -> dict[str, StreamFromSnapshot]:
        return await _on_thread(self._reader, _from_snapshots, schema_versions)

    async def save_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        await self._writer.execute(
            "INSERT INTO snapshots (stream_id, version, schema_version, data)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET"
            " version = excluded.version, schema_version = excluded.schema_version,"
            " data = excluded.data WHERE snapshots.version <= excluded.version",
            (stream_id, snapshot.version, snapshot.schema_version, json.dumps(snapshot.data)),
        )

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        rows = await self._reader.execute_fetchall(
            "SELECT version, schema_version, data FROM snapshots WHERE stream_id = ?",
            (stream_id,),
        )
        for version, schema_version, data in rows:
            return Snapshot(version, schema_version, json.loads(data))
        return None

    async def stream_version(self, stream_id: str) -> int:
        rows = await self._reader.execute_fetchall(
            "SELECT version FROM streams WHERE stream_id = ?", (stream_id,)
        )
        return int(next(iter(rows), (0,))[0])

    async def read_all(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        # Only committed events are visible, and none can still commit before them.
        rows = await self._reader.execute_fetchall(
            _READ_ALL, (after.transaction_id, after.position, limit)
        )
        return [_recorded(row) for row in rows]

    async def count_after(self, after: LogPosition) -> int:
        rows = await self._reader.execute_fetchall(
            "SELECT count(*) FROM events WHERE (transaction_id, position) > (?, ?)",
            (after.transaction_id, after.position),
        )
        return int(next(iter(rows))[0])

    async def head_position(self) -> LogPosition:
        rows = await self._reader.execute_fetchall(_HEAD)
        return LogPosition(*next(iter(rows), (0, 0)))

    async def find_idempotency_record(self, key: IdempotencyKey) -> IdempotencyRecord | None:
        # The scoped record first ('' sorts last), else the unscoped one of before.
        rows = await self._reader.execute_fetchall(
            "SELECT fingerprint, stream_id, version, transaction_id, position"
            " FROM idempotency_keys WHERE key = ?"
            " AND ((principal = ? AND scope = ?) OR (principal = '' AND scope = ''))"
            " ORDER BY scope DESC LIMIT 1",
            (key.key, key.principal, key.scope),
        )
        for fingerprint, stream_id, version, transaction_id, position in rows:
            result = AppendResult(stream_id, version, LogPosition(transaction_id, position))
            return IdempotencyRecord(key.key, fingerprint, result)
        return None

    async def close(self) -> None:
        if self._writing is not None:  # let the appends queued so far finish
            await asyncio.shield(self._writing)
        await self._writer.close()
        await self._reader.close()


def _scalar(
    database: sqlite3.Connection, sql: str, parameters: Iterable[Any] = (), default: Any = None
) -> Any:
    """The first column of the first row; `default` when there is no row or it is NULL."""
    row = database.execute(sql, tuple(parameters)).fetchone()
    return default if row is None or row[0] is None else row[0]


def _from_snapshots(
    database: sqlite3.Connection, schema_versions: Mapping[str, int | None]
) -> dict[str, StreamFromSnapshot]:
    """Each stream's snapshot of the wanted schema version, if any, and its events after
    it. No transaction needed: the events after a snapshot's version never change."""
    wanted = json.dumps([[stream_id, schema] for stream_id, schema in schema_versions.items()])
    snapshot_rows = database.execute(
        "SELECT s.stream_id, s.version, s.schema_version, s.data FROM snapshots s"
        " JOIN json_each(?) w ON s.stream_id = w.value ->> 0"
        " AND s.schema_version = w.value ->> 1",
        (wanted,),
    )
    snapshots = {
        stream_id: Snapshot(version, schema_version, json.loads(data))
        for stream_id, version, schema_version, data in snapshot_rows
    }
    after = [
        [stream_id, s.version if (s := snapshots.get(stream_id)) else 0]
        for stream_id in schema_versions
    ]
    rows = database.execute(
        f"WITH wanted AS (SELECT value ->> 0 AS stream_id, value ->> 1 AS after"
        f" FROM json_each(?)) SELECT {_COLUMNS} FROM events"
        " JOIN wanted USING (stream_id) WHERE version > wanted.after"
        " ORDER BY stream_id, version",
        (json.dumps(after),),
    )
    events: dict[str, list[RecordedEvent]] = {stream_id: [] for stream_id in schema_versions}
    for row in rows:
        event = _recorded(row)
        events[event.stream_id].append(event)
    return {
        stream_id: StreamFromSnapshot(snapshots.get(stream_id), stream)
        for stream_id, stream in events.items()
    }


def _repeated_append(
    database: sqlite3.Connection, appends: Sequence[StreamAppend]
) -> list[AppendResult] | None:
    """The first results when `appends` repeat one earlier append exactly; None when no id
    is stored (see the port)."""
    ids = [str(event.event_id) for part in appends for event in part.events]
    if len(set(ids)) != len(ids):
        raise DuplicateEventError("an event id occurs twice in the append")
    if not ids:
        return None
    stored = database.execute(
        "SELECT event_id, stream_id, version, transaction_id, position FROM events"
        " WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY stream_id, version",
        (json.dumps(ids),),
    ).fetchall()
    if not stored:
        return None
    by_stream: dict[str, list[Any]] = {}
    for row in stored:
        by_stream.setdefault(row[1], []).append(row)
    transactions = {row[3] for row in stored}
    results = []
    for part in appends:
        if not part.events:
            version = _scalar(
                database,
                "SELECT version FROM streams WHERE stream_id = ?",
                (part.stream_id,),
                default=0,
            )
            results.append(
                AppendResult(part.stream_id, version, _last_of(database, part.stream_id))
            )
            continue
        rows = by_stream.pop(part.stream_id, [])
        first, last = (rows[0], rows[-1]) if rows else (None, None)
        # The whole of one append: its events in order, none of the same append around them.
        if (
            first is None
            or last is None
            or [row[0] for row in rows] != [str(event.event_id) for event in part.events]
            or len(transactions) != 1
            or _scalar(
                database,
                "SELECT 1 FROM events WHERE stream_id = ? AND version IN (?, ?)"
                " AND transaction_id = ?",
                (part.stream_id, first[2] - 1, last[2] + 1, first[3]),
            )
        ):
            raise DuplicateEventError(f"an event id in the batch for {part.stream_id} is stored")
        results.append(AppendResult(part.stream_id, last[2], LogPosition(last[3], last[4])))
    if by_stream:  # ids stored on streams the append does not name
        raise DuplicateEventError(f"an event id of the append is stored on {sorted(by_stream)}")
    return results


def _row(
    position: int,
    transaction_id: int,
    stream_id: str,
    stream_version: int,
    offset: int,
    event: NewEvent,
) -> tuple[Any, ...]:
    return (
        position + offset,
        transaction_id,  # the position of the append's first event
        stream_id,
        stream_version + offset + 1,
        str(event.event_id),
        event.type,
        json.dumps(event.data),
        json.dumps(event.metadata.to_json()),
        # UTC, as timestamptz does (a naive time counts as local time, as with asyncpg).
        event.occurred_at.astimezone(UTC).isoformat(),
    )


def _recorded(row: Sequence[Any]) -> RecordedEvent:
    position, transaction_id, stream_id, version, event_id, type_, data, metadata, occurred_at = row
    return RecordedEvent(
        event_id=UUID(event_id),
        stream_id=stream_id,
        type=type_,
        version=version,
        position=position,
        transaction_id=transaction_id,
        occurred_at=datetime.fromisoformat(occurred_at),
        data=json.loads(data),
        metadata=EventMetadata.from_json(json.loads(metadata)),
    )
