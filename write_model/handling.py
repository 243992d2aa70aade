"""Command handling: load the stream, decide, append with the loaded version.

Without a client `expectedVersion`, a conflicting concurrent append makes the handler reload
and decide again, a bounded number of times. With one, a stale version is the client's to
resolve, so it is reported at once. An idempotency key is stored with the events in the
same append; the same key again returns the first result and appends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from write_model import stream_ids
from write_model.envelope import AppendResult, EventMetadata, NewEvent, RecordedEvent
from write_model.event_store.port import (
    NO_STREAM,
    EventStore,
    ExpectedVersion,
    IdempotencyKeyConflict,
    WrongExpectedVersion,
)
from write_model.registry import EventTypeRegistry

C = TypeVar("C")
E = TypeVar("E")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Decider(Generic[C, E, S]):
    stream_type: str
    decide: Callable[[C, S], list[E]]
    evolve: Callable[[S, E], S]
    initial_state: S

    def stream_id(self, entity_id: str) -> str:
        return stream_ids.stream_id(self.stream_type, entity_id)


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who asked and why: carried into every event's metadata."""

    correlation_id: str
    causation_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: str
    fingerprint: str  # of the client's input, so other input under the same key is caught


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    stream_id: str
    version: int
    consistency_token: str
    events: tuple[Any, ...]  # the domain events appended; () when replayed or a no-op
    replayed: bool = False  # the result of an earlier command with the same idempotency key

    @staticmethod
    def of(result: AppendResult, events: tuple[Any, ...], replayed: bool = False) -> CommandOutcome:
        return CommandOutcome(
            result.stream_id, result.version, result.consistency_token, events, replayed
        )


class ConcurrencyConflict(Exception):
    """The stream moved past the version the command was decided on."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{stream_id} is at version {actual}, the command expected version {expected}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReused(Exception):
    """The idempotency key was first used with other input."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used with different input")
        self.key = key


class CommandHandler:
    def __init__(
        self,
        store: EventStore,
        registry: EventTypeRegistry,
        *,
        clock: Callable[[], datetime],
        new_event_id: Callable[[], UUID],
        max_attempts: int = 5,
        after_append: Sequence[Callable[[AppendResult], None]] = (),
    ) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock
        self._new_event_id = new_event_id
        self._max_attempts = max_attempts
        self._after_append = tuple(after_append)  # e.g. wake an in-process projector

    @property
    def store(self) -> EventStore:
        return self._store

    async def load(self, decider: Decider[C, E, S], stream_id: str) -> tuple[S, int]:
        """The state folded from the stream, and the stream's version (0: no stream)."""
        events = await self._store.read_stream(stream_id)
        return self.fold(decider, decider.initial_state, events), len(events)

    async def load_many(
        self, streams: Sequence[tuple[Decider[Any, Any, Any], str]]
    ) -> list[tuple[Any, int]]:
        """Several streams in one read of the store, each folded with its decider."""
        found = await self._store.read_streams([stream_id for _, stream_id in streams])
        return [
            (self.fold(decider, decider.initial_state, found[stream_id]), len(found[stream_id]))
            for decider, stream_id in streams
        ]

    def fold(self, decider: Decider[C, E, S], state: S, events: list[RecordedEvent]) -> S:
        for recorded in events:
            state = decider.evolve(state, self.domain_event(recorded))
        return state

    def domain_event(self, recorded: RecordedEvent) -> Any:
        return self._registry.deserialize(
            recorded.type, recorded.data, recorded.metadata.schema_version
        )

    async def replay(self, idempotency: Idempotency | None) -> CommandOutcome | None:
        """The first result for this key, or None when the key is new."""
        if idempotency is None:
            return None
        record = await self._store.find_idempotency_record(idempotency.key)
        if record is None:
            return None
        if record.fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReused(idempotency.key)
        return CommandOutcome.of(record.result, (), replayed=True)

    async def handle(
        self,
        decider: Decider[C, E, S],
        stream_id: str,
        command: C,
        context: CommandContext,
        *,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
        loaded: tuple[S, int] | None = None,
    ) -> CommandOutcome:
        """Decide `command` on the stream's current state and append what it decided.
        `loaded` is the (state, version) the caller already read with other streams; it
        serves the first attempt. Domain errors from `decide` propagate unchanged; nothing
        is appended then."""
        replayed = await self.replay(idempotency)
        if replayed is not None:
            return replayed
        attempts = 1 if expected_version is not None else self._max_attempts
        for attempt in range(1, attempts + 1):
            if attempt == 1 and loaded is not None:
                state, version = loaded
            else:
                state, version = await self.load(decider, stream_id)
            if expected_version is not None and expected_version != version:
                raise ConcurrencyConflict(stream_id, expected_version, version)
            events = decider.decide(command, state)
            try:
                result = await self._append(
                    decider.stream_type, stream_id, version, events, context, idempotency
                )
            except WrongExpectedVersion as conflict:
                if attempt == attempts:
                    raise ConcurrencyConflict(stream_id, version, conflict.actual) from conflict
                continue
            except IdempotencyKeyConflict:
                # A concurrent request with the same key won the race; answer as it did.
                replayed = await self.replay(idempotency)
                if replayed is None:
                    raise
                return replayed
            if events:
                for listener in self._after_append:
                    listener(result)
            return CommandOutcome.of(result, tuple(events))
        raise AssertionError("unreachable: the loop returns or raises")

    async def _append(
        self,
        stream_type: str,
        stream_id: str,
        version: int,
        events: list[Any],
        context: CommandContext,
        idempotency: Idempotency | None,
    ) -> AppendResult:
        now = self._clock()
        new_events = []
        for event in events:
            type_name, data, schema_version = self._registry.serialize(event)
            metadata = EventMetadata(
                correlation_id=context.correlation_id,
                causation_id=context.causation_id,
                user_id=context.user_id,
                schema_version=schema_version,
            )
            new_events.append(NewEvent(self._new_event_id(), type_name, data, metadata, now))
        expected: ExpectedVersion = version if version > 0 else NO_STREAM
        return await self._store.append_to_stream(
            stream_id,
            stream_type,
            expected,
            new_events,
            idempotency=(idempotency.key, idempotency.fingerprint) if idempotency else None,
        )
