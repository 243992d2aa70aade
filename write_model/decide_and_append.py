"""The one way a stream is written: load, decide, append at the loaded version, retry a
conflict (Emmett's command handler, in Python).

`DecideAndAppend.one(decision, context)`:

1. Load the entity's state and its stream's version, from the latest snapshot when its
   decider has snapshots (write_model/streams.py), or take the (state, version) the caller
   already read (`Decision.loaded`, first try only).
2. `decider.decide(command, state)`: domain errors propagate; nothing is appended.
3. Append the events at the loaded version (no stream: NO_STREAM).
4. A conflicting concurrent append (WrongExpectedVersion): load again and decide again,
   `max_attempts` tries in all, waiting the one jittered backoff (write_model/backoff.py)
   between tries. Past the bound, a `ConcurrencyConflict` (a failure of this command, which
   its sender may send again; a follower retries then parks it: never an outage). With
   `Decision.expected_version` (the sender's), a stale version is the sender's to resolve:
   one try, and a mismatch at load is reported at once.
5. Save a snapshot when the append took the stream across a multiple of `snapshot_every`.

Event ids: derived from the caller's `key` when it gives one (an idempotency key, a
trigger's id): uuid5 of (key, stream, index), so a caller repeating itself after a crash
gets the same ids and the store adds nothing twice (a repeated append answers with its
first result); random otherwise.

`together(decisions, context)` does the same for decisions on several streams, appended in
one multi-stream append (all or nothing), loaded in one read and retried together.
`Decision.before` are decisions appended first, each on its own (e.g. reserving an email
before registering the customer that holds it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any

from write_model.backoff import pause
from write_model.command_context import CommandContext
from write_model.envelope import AppendResult, EventMetadata, NewEvent
from write_model.event_store.port import (
    NO_STREAM,
    EventStore,
    IdempotencyKey,
    StreamAppend,
    WrongExpectedVersion,
)
from write_model.registry import EventTypeRegistry
from write_model.streams import Decider, Streams

_EVENT_ID_NAMESPACE = uuid.UUID("0b6f3d52-8e1a-4c7d-a2f9-5d4e3c2b1a07")
FIRST_RETRY_BACKOFF_SECONDS = 0.005
MAX_RETRY_BACKOFF_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Decision:
    """`decider` decides `command` on the entity's stream."""

    decider: Decider[Any, Any, Any]
    entity_id: str
    command: Any  # the domain command that `decider.decide` takes
    _: KW_ONLY
    # The sender's: appended only at this version, never retried.
    expected_version: int | None = None
    # The (state, version) the caller already read: serves the first try.
    loaded: tuple[Any, int] | None = None
    # Decided and appended first, each on its own, without the idempotency key.
    before: tuple[Decision, ...] = ()

    @property
    def stream_id(self) -> str:
        return self.decider.stream_id(self.entity_id)


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision as appended: the stream's version after it, the domain events appended
    (() when none), and the store's answer (None when nothing was appended)."""

    stream_id: str
    version: int
    events: tuple[Any, ...]
    result: AppendResult | None
    decider: Decider[Any, Any, Any]
    decided_on: Any  # the state the events were decided on

    def state(self) -> Any:
        """The stream's state after the decision (folded when asked: a caller that does
        not need it does not pay for it)."""
        state = self.decided_on
        for event in self.events:
            state = self.decider.evolve(state, event)
        return state


class ConcurrencyConflict(Exception):
    """The stream moved past the version the command was decided on: the sender's
    `expectedVersion` is stale, or (`tries` set: no expectedVersion was given) other
    writers kept moving it through every try."""

    def __init__(
        self, stream_id: str, expected: int, actual: int, *, tries: int | None = None
    ) -> None:
        if tries is not None:
            message = (
                f"{stream_id} kept changing while this command was tried {tries} times; "
                f"it is at version {actual} now: send the command again"
            )
        else:
            message = f"{stream_id} is at version {actual}, the command expected version {expected}"
        super().__init__(message)
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        self.tries = tries


def new_events(
    registry: EventTypeRegistry,
    events: Sequence[Any],
    context: CommandContext,
    now: datetime,
    event_id: Callable[[int], uuid.UUID],
) -> list[NewEvent]:
    """Domain events as they are appended for a command in `context`: serialized, with the
    context's correlation, causation and user, and `event_id(index)` (0-based) as ids."""
    appended = []
    for index, event in enumerate(events):
        type_name, data, schema_version = registry.serialize(event)
        metadata = EventMetadata(
            correlation_id=context.correlation_id,
            causation_id=context.causation_id,
            user_id=context.principal.user_id,
            schema_version=schema_version,
        )
        appended.append(NewEvent(event_id(index), type_name, data, metadata, now))
    return appended


def derived_event_id(key: str, stream_id: str, index: int) -> uuid.UUID:
    """The id of the `index`th (0-based) event appended under `key` to `stream_id`: the
    same whenever the caller repeats itself."""
    return uuid.uuid5(_EVENT_ID_NAMESPACE, f"{key}\n{stream_id}\n{index}")


class DecideAndAppend:
    def __init__(
        self,
        store: EventStore,
        registry: EventTypeRegistry,
        *,
        clock: Callable[[], datetime],
        new_event_id: Callable[[], uuid.UUID] = uuid.uuid4,
        max_attempts: int = 10,
        first_backoff_seconds: float = FIRST_RETRY_BACKOFF_SECONDS,
        max_backoff_seconds: float = MAX_RETRY_BACKOFF_SECONDS,
        snapshot_every: int = 0,
    ) -> None:
        """`max_attempts`: tries of a decision without an expected version;
        `snapshot_every`: events between snapshots of a stream whose decider has them
        (0: save none)."""
        self.store = store
        self.registry = registry
        self.streams = Streams(store, registry, snapshot_every=snapshot_every)
        self._clock = clock
        self._new_event_id = new_event_id
        self._max_attempts = max_attempts
        self._first_backoff_seconds = first_backoff_seconds
        self._max_backoff_seconds = max_backoff_seconds

    async def one(
        self,
        decision: Decision,
        context: CommandContext,
        *,
        key: str | None = None,
        idempotency: tuple[IdempotencyKey, str] | None = None,
        append_empty: bool = True,
    ) -> Decided:
        """Decide and append one decision (after its `before`s). `key`: what the event ids
        derive from (None: random); `idempotency`: the key record stored with the append
        (IdempotencyKeyConflict when taken); `append_empty`: append even when nothing is
        decided (it checks the version, stores the key, answers the stream's position)."""
        for step in decision.before:
            await self.one(step, context, key=key)
        [decided] = await self.together(
            [decision], context, key=key, idempotency=idempotency, append_empty=append_empty
        )
        return decided

    async def together(
        self,
        decisions: Sequence[Decision],
        context: CommandContext,
        *,
        key: str | None = None,
        idempotency: tuple[IdempotencyKey, str] | None = None,
        append_empty: bool = True,
    ) -> list[Decided]:
        """Decide each decision on its stream and append all of them in one append, all or
        nothing; a conflict on any stream decides all of them again. `idempotency`
        answers with the first decision's result. Without `append_empty`, a decision that
        decides nothing is left out of the append (nothing at all: no append)."""
        exact = any(decision.expected_version is not None for decision in decisions)
        attempts = 1 if exact else self._max_attempts
        for attempt in range(1, attempts + 1):
            loaded = await self._load(decisions, first=attempt == 1)
            try:
                return await self._decide_and_append(
                    decisions, loaded, context, key, idempotency, append_empty
                )
            except WrongExpectedVersion as conflict:
                if attempt == attempts:
                    [version] = [
                        version
                        for decision, (_, version) in zip(decisions, loaded, strict=True)
                        if decision.stream_id == conflict.stream_id
                    ]
                    raise ConcurrencyConflict(
                        conflict.stream_id, version, conflict.actual, tries=attempts
                    ) from conflict
                await pause(attempt, self._first_backoff_seconds, self._max_backoff_seconds)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _load(self, decisions: Sequence[Decision], first: bool) -> list[tuple[Any, int]]:
        """Each decision's (state, version): as the caller read it on the first try, else
        from the store (those it must read, in one read); a sender's stale version is a
        ConcurrencyConflict at once."""
        given = [d.loaded if first else None for d in decisions]
        unread = [
            (d.decider, d.entity_id) for d, g in zip(decisions, given, strict=True) if g is None
        ]
        read = iter(await self.streams.load_many(unread) if unread else ())  # no empty read
        loaded = [g if g is not None else next(read) for g in given]
        for decision, (_, version) in zip(decisions, loaded, strict=True):
            expected = decision.expected_version
            if expected is not None and expected != version:
                raise ConcurrencyConflict(decision.stream_id, expected, version)
        return loaded

    async def _decide_and_append(
        self,
        decisions: Sequence[Decision],
        loaded: Sequence[tuple[Any, int]],
        context: CommandContext,
        key: str | None,
        idempotency: tuple[IdempotencyKey, str] | None,
        append_empty: bool,
    ) -> list[Decided]:
        now = self._clock()
        decided, parts = [], []
        for d, (state, version) in zip(decisions, loaded, strict=True):
            stream_id = d.stream_id
            events = d.decider.decide(d.command, state)
            decided.append((stream_id, events))
            if events or append_empty:
                appended = new_events(
                    self.registry, events, context, now, self._event_ids(key, stream_id)
                )
                expected = version if version > 0 else NO_STREAM
                parts.append(StreamAppend(stream_id, d.decider.stream_type, expected, appended))
        results = iter(await self._append(parts, idempotency))
        written = []
        for d, (state, version), (stream_id, events) in zip(
            decisions, loaded, decided, strict=True
        ):
            if not (events or append_empty):
                written.append(Decided(stream_id, version, (), None, d.decider, state))
                continue
            result = next(results)
            done = Decided(stream_id, result.version, tuple(events), result, d.decider, state)
            # Where this append put the stream (not a repeat of an earlier append).
            if (
                d.decider.snapshots is not None
                and events
                and result.version == version + len(events)
            ):
                await self._snapshot(done, version)
            written.append(done)
        return written

    async def _append(
        self, parts: Sequence[StreamAppend], idempotency: tuple[IdempotencyKey, str] | None
    ) -> list[AppendResult]:
        if not parts:
            return []
        if len(parts) == 1:
            # The one-part case of the same append; a store wrapped to watch appends (a
            # test's crash injection, say) sees a single stream's append as it always has.
            [part] = parts
            return [
                await self.store.append_to_stream(
                    part.stream_id,
                    part.stream_type,
                    part.expected_version,
                    part.events,
                    idempotency=idempotency,
                )
            ]
        return await self.store.append_to_streams(parts, idempotency=idempotency)

    def _event_ids(self, key: str | None, stream_id: str) -> Callable[[int], uuid.UUID]:
        if key is None:
            return lambda _: self._new_event_id()
        return lambda index: derived_event_id(key, stream_id, index)

    async def _snapshot(self, decided: Decided, version: int) -> None:
        """A snapshot when this append took the stream across a multiple of the interval."""
        snapshots = decided.decider.snapshots
        if snapshots is not None and self.streams.snapshots.crossed(version, decided.version):
            await self.streams.snapshots.save(
                decided.stream_id, snapshots, decided.state(), decided.version
            )
