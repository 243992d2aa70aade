"""The EventStore port. Adapters: memory, sqlite (embedded default), postgres.

Every adapter passes the whole suite in tests/contracts/test_event_store.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from write_model.envelope import AppendResult, LogPosition, NewEvent, RecordedEvent


class _StreamState(Enum):
    ANY = "any"
    NO_STREAM = "no-stream"


ANY = _StreamState.ANY
"""Append whatever the stream's version."""
NO_STREAM = _StreamState.NO_STREAM
"""Append only when the stream does not exist yet."""

ExpectedVersion = int | _StreamState
"""ANY, NO_STREAM, or the exact version (>= 1) the stream must be at."""


class WrongExpectedVersion(Exception):
    """The stream was not at the expected version; nothing was appended."""

    def __init__(self, stream_id: str, expected: ExpectedVersion, actual: int) -> None:
        shown = expected.value if isinstance(expected, _StreamState) else expected
        super().__init__(f"stream {stream_id}: expected version {shown}, actual {actual}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual  # 0 when the stream does not exist


class EventStoreUnavailable(ConnectionError):
    """The event store cannot be reached right now (a restart, a network cut): retryable.
    A write that failed this way may or may not have been applied."""


class DuplicateEventError(Exception):
    """An event id of the append is stored already, and the append is not a repeat of the
    append that stored it (see `EventStore.append_to_stream`); nothing was appended."""


class IdempotencyKeyConflict(Exception):
    """Another append already claimed this idempotency key; nothing was appended."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} is already used")
        self.key = key


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's idempotency key in its scope: the same key sent with another mutation,
    or (once authentication exists) by another principal, is another key."""

    key: str
    scope: str  # the mutation, e.g. "createOrder"
    principal: str = ""  # who sent it; "" for every client while there is no authentication

    def legacy(self) -> IdempotencyKey:
        """How a record stored before keys were scoped names this key: one global
        namespace. Its fingerprint covers the mutation name, so replaying it still
        refuses other input (another mutation included)."""
        return IdempotencyKey(self.key, "", "")


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What an idempotent command returned the first time, stored with its events."""

    key: str
    fingerprint: str  # of the command's input: the same key with other input is an error
    result: AppendResult


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stream's state folded up to `version`, as its decider serialises it. A reader
    whose state schema is not `schema_version` ignores it and folds the events instead."""

    version: int
    schema_version: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StreamFromSnapshot:
    """A stream as `read_from_snapshots` finds it: the usable snapshot (None: there is
    none), and the events after it (after version 0 without one), in version order."""

    snapshot: Snapshot | None
    events: list[RecordedEvent]

    @property
    def version(self) -> int:
        if self.events:
            return self.events[-1].version
        return self.snapshot.version if self.snapshot is not None else 0


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """One stream's part of an append to several streams (`EventStore.append_to_streams`):
    its events, appended only if the stream is at `expected_version`."""

    stream_id: str
    stream_type: str
    expected_version: ExpectedVersion
    events: Sequence[NewEvent]


def check_appends(appends: Sequence[StreamAppend]) -> None:
    """What every adapter refuses before touching storage: no stream at all, a stream
    twice, an exact expected version below 1."""
    if not appends:
        raise ValueError("an append names at least one stream")
    stream_ids = [append.stream_id for append in appends]
    if len(set(stream_ids)) != len(stream_ids):
        raise ValueError(f"a stream occurs twice in one append: {stream_ids}")
    for append in appends:
        expected = append.expected_version
        if isinstance(expected, int) and expected < 1:
            raise ValueError(f"an exact expected version is >= 1, got {expected}")


def last_of(results: Sequence[AppendResult]) -> AppendResult:
    """The result of a multi-stream append whose position covers every part of it (its
    consistency token waits for all of them)."""
    return max(results, key=lambda result: result.log_position)


class AppendsThroughStreams:
    """For adapters: `append_to_stream` as `append_to_streams` with one part."""

    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        raise NotImplementedError

    async def append_to_stream(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: ExpectedVersion,
        events: Sequence[NewEvent],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> AppendResult:
        part = StreamAppend(stream_id, stream_type, expected_version, events)
        [result] = await self.append_to_streams([part], idempotency=idempotency)
        return result


class EventStore(Protocol):
    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        """Append to several streams in one transaction, all or nothing: each part only if
        its stream is at its expected version. A conflict on any stream raises
        WrongExpectedVersion naming that stream and appends nothing. Returns one result per
        part, in the order given; every event of the append is in one transaction, so
        `last_of(results)` names a position at or after all of them. A part without events
        checks its stream's version only (its result names the stream's last event).
        `idempotency` is stored with the append as in `append_to_stream` and answers with
        the first part's result.

        A repeat: every event id stored already, each part's events being all the events of
        one earlier append to that stream in the same order, and every part's in the same
        transaction (a writer retrying after a crash or a lost answer). It returns those
        results again (a part without events: its stream as it is now) and appends
        nothing, whatever the expected versions say. Any other stored id raises
        DuplicateEventError and appends nothing; a taken idempotency key is refused first
        (IdempotencyKeyConflict). A stream named twice, or an exact version below 1, is a
        ValueError."""
        ...

    async def append_to_stream(
        self,
        stream_id: str,
        stream_type: str,
        expected_version: ExpectedVersion,
        events: Sequence[NewEvent],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> AppendResult:
        """Append atomically. `idempotency` is (key, fingerprint): stored in the same
        transaction; raises IdempotencyKeyConflict when the key is taken in its scope (then
        nothing is appended). An empty `events` checks the expected version and records
        the key.

        Event ids are unique in the store. An append whose every event id is stored
        already, as all the events of one earlier append to this stream in the same order,
        is a repeat (a writer retrying after a crash or a lost answer): it returns that
        append's result (version, log position) again and appends nothing, whatever
        `expected_version` says. Any other stored id (some of the batch only, another
        stream's, another order or grouping, or an id twice in the batch) raises
        DuplicateEventError and appends nothing. A taken idempotency key is refused before
        that (IdempotencyKeyConflict): its record holds the answer.

        The same as `append_to_streams` with this one stream."""
        ...

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        """Events of one stream in version order; [] for an unknown stream."""
        ...

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        """Several whole streams in one read: every id is a key, [] for an unknown stream."""
        ...

    async def read_from_snapshots(
        self, schema_versions: Mapping[str, int | None]
    ) -> dict[str, StreamFromSnapshot]:
        """Several streams in one read, each from its snapshot: stream id -> the state
        schema version the reader can use (None: it uses no snapshot). A stored snapshot
        of another schema version counts as none. Every id is a key."""
        ...

    async def save_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        """Keep `snapshot` as the stream's one snapshot, unless the stored one is of a
        later version (then the save is ignored)."""
        ...

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The stream's snapshot, whatever its schema version; None when it has none."""
        ...

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 when it does not exist."""
        ...

    async def read_all(self, after: LogPosition, limit: int = 1000) -> list[RecordedEvent]:
        """The global log after `after`, in (transaction_id, position) order. Never returns
        an event while an event that sorts before it may still commit."""
        ...

    async def count_after(self, after: LogPosition) -> int:
        """How many events `read_all(after)` would still return: a follower's lag."""
        ...

    async def head_position(self) -> LogPosition:
        """The last position that `read_all` can currently reach (start when empty)."""
        ...

    async def find_idempotency_record(self, key: IdempotencyKey) -> IdempotencyRecord | None:
        """The record of this key in its scope, else a record stored under `key.legacy()`
        before keys were scoped, else None."""
        ...

    async def close(self) -> None: ...
