"""The command bus: the one way in for every command (write_model/commands.py).

`CommandBus.dispatch(command, context, idempotency)` runs the same pipeline for each:

0. The access rule (write_model/access.py): what the principal may not send at all is
   Forbidden; handlers refuse someone else's order or customer as NotFound.
1. A known idempotency key returns the first result and appends nothing; the same key with
   other input (another fingerprint) is an `IdempotencyKeyReused`.
2. The command's handler (write_model/handlers.py) looks up what the domain needs and
   returns a `Decision`: which decider decides which domain command on which stream.
3. Load the stream, decide, append at the loaded version. Without an `expected_version`, a
   conflicting concurrent append makes the bus reload and decide again, a bounded number of
   times, after a jittered backoff; with one, a stale version is the sender's to resolve
   and is reported at once. The idempotency key is stored with the events, in the same
   append. Keys are each principal's own: the same key sent by another principal is
   another key (naming other entities), so nobody replays someone else's result. Events of
   a command with a key get ids derived from it (principal, scope, key, stream, index), so
   sending it again after a crash appends nothing twice even where the key's record cannot
   answer (a repeated append returns its first result).
4. Streams (write_model/streams.py) whose decider has snapshots are loaded from the latest
   one (write_model/snapshots.py), and snapshotted every `snapshot_every` events.

Domain errors from handlers and deciders propagate unchanged; nothing is appended then.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from write_model import access
from write_model.command_context import CommandContext, Principal
from write_model.commands import Command
from write_model.domain.errors import DomainError
from write_model.domain.validation import require_idempotency_key
from write_model.envelope import AppendResult, EventMetadata, NewEvent
from write_model.event_store.port import (
    NO_STREAM,
    EventStore,
    ExpectedVersion,
    IdempotencyKey,
    IdempotencyKeyConflict,
    WrongExpectedVersion,
)
from write_model.registry import EventTypeRegistry
from write_model.streams import Decider, Streams

C = TypeVar("C")
E = TypeVar("E")
S = TypeVar("S")


_ID_NAMESPACE = uuid.UUID("6f1c7f2e-4d3b-4a59-9a67-0c5d2f8e1b10")
_EVENT_ID_NAMESPACE = uuid.UUID("0b6f3d52-8e1a-4c7d-a2f9-5d4e3c2b1a07")
MAX_RETRY_BACKOFF_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Decision:
    """What a handler asks of the bus: `decider` decides `command` on the entity's stream."""

    decider: Decider[Any, Any, Any]
    entity_id: str
    command: Any  # the domain command that `decider.decide` takes
    _: KW_ONLY
    expected_version: int | None = None
    # The (state, version) the handler already read with its lookups: serves the first try.
    loaded: tuple[Any, int] | None = None
    # Decided and appended first, without the idempotency key (e.g. reserving an email).
    before: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: str
    fingerprint: str  # of the sender's input, so other input under the same key is caught
    scope: str = ""  # the mutation it came with: keys of different mutations never collide
    principal: str = ""  # who sent it, once there is authentication
    # The sender expects the key to be new (a reaction's effect, almost always sent once):
    # the bus decides first and asks for the key's record only when deciding or appending
    # fails, which answers as the lookup first would (deciding has no effects), one round
    # trip cheaper.
    expect_new: bool = False

    def __post_init__(self) -> None:
        require_idempotency_key(self.key)

    @property
    def stored_key(self) -> IdempotencyKey:
        return IdempotencyKey(self.key, self.scope, self.principal)


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
    """The stream moved past the version the command was decided on: the sender's
    `expectedVersion` is stale, or (`tries` set: no expectedVersion was given) other
    writers kept moving it through every try of the bus."""

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


class IdempotencyKeyReused(Exception):
    """The idempotency key was first used with other input."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used with different input")
        self.key = key


class UnknownCommand(TypeError):
    """No handler is registered for the command's type."""


class Lookup(Protocol):
    """What a handler may use: the streams, ids for the entities a command creates, and who
    asks (for the access rule on what the handler loads)."""

    principal: Principal

    async def load(self, decider: Decider[C, E, S], entity_id: str) -> tuple[S, int]: ...

    async def load_many(
        self, targets: Sequence[tuple[Decider[Any, Any, Any], str]]
    ) -> list[tuple[Any, int]]: ...

    def new_entity_id(self) -> str: ...


Handler = Callable[[Any, Lookup], Awaitable[Decision]]


class _DispatchLookup(Streams):
    def __init__(
        self,
        store: EventStore,
        registry: EventTypeRegistry,
        idempotency: Idempotency | None,
        new_id: Callable[[], str],
        principal: Principal,
        snapshot_every: int,
    ) -> None:
        super().__init__(store, registry, snapshot_every=snapshot_every)
        self.principal = principal
        self._idempotency = idempotency
        self._new_id = new_id

    def new_entity_id(self) -> str:
        # A retry under the same idempotency key must name the same entity.
        if self._idempotency is not None:
            # Ids of anonymous keys are as they were before keys had principals.
            principal = self._idempotency.principal
            name = f"{principal}\n{self._idempotency.key}" if principal else self._idempotency.key
            return str(uuid.uuid5(_ID_NAMESPACE, name))
        return self._new_id()


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


def _derived_event_id(idempotency: Idempotency, stream_id: str, index: int) -> uuid.UUID:
    """The id of the `index`th event a command with this key appends to `stream_id`: the
    same when the command is sent again after a crash, so the store adds it only once
    (a repeated append returns its first result)."""
    scoped = idempotency.stored_key
    name = f"{scoped.principal}\n{scoped.scope}\n{scoped.key}\n{stream_id}\n{index}"
    return uuid.uuid5(_EVENT_ID_NAMESPACE, name)


def _scoped(idempotency: Idempotency | None, context: CommandContext) -> Idempotency | None:
    """The key within the principal's own key space (anonymous: the key as sent), whoever
    dispatches: no principal can replay another's result."""
    user = context.principal.user_id
    if idempotency is None or user is None or idempotency.principal == user:
        return idempotency
    return dataclasses.replace(idempotency, principal=user)


class CommandBus:
    def __init__(
        self,
        store: EventStore,
        registry: EventTypeRegistry,
        handlers: Mapping[type, Handler],
        *,
        clock: Callable[[], datetime],
        new_event_id: Callable[[], uuid.UUID],
        new_entity_id: Callable[[], str],
        max_attempts: int = 10,
        retry_backoff_seconds: float = 0.005,
        snapshot_every: int = 0,
    ) -> None:
        """`snapshot_every`: events between snapshots of a stream whose decider has them
        (0: save none)."""
        self._store = store
        self._registry = registry
        self._handlers = dict(handlers)
        self._clock = clock
        self._new_event_id = new_event_id
        self._new_entity_id = new_entity_id
        self._max_attempts = max_attempts
        self._retry_backoff_seconds = retry_backoff_seconds
        self._snapshot_every = snapshot_every

    async def dispatch(
        self, command: Command, context: CommandContext, idempotency: Idempotency | None = None
    ) -> CommandOutcome:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise UnknownCommand(f"no handler is registered for {type(command).__name__}")
        access.check_command(context.principal, command)
        idempotency = _scoped(idempotency, context)
        if idempotency is not None and idempotency.expect_new:
            try:
                return await self._handle(handler, command, context, idempotency)
            except (DomainError, ConcurrencyConflict):
                # Perhaps refused because it was done already: then its first result.
                replayed = await self._replay(idempotency)
                if replayed is not None:
                    return replayed
                raise
        replayed = await self._replay(idempotency)
        if replayed is not None:
            return replayed
        return await self._handle(handler, command, context, idempotency)

    async def _handle(
        self,
        handler: Handler,
        command: Command,
        context: CommandContext,
        idempotency: Idempotency | None,
    ) -> CommandOutcome:
        lookup = _DispatchLookup(
            self._store,
            self._registry,
            idempotency,
            self._new_entity_id,
            context.principal,
            self._snapshot_every,
        )
        decision = await handler(command, lookup)
        return await self._decide_and_append(decision, lookup, context, idempotency, idempotency)

    async def _replay(self, idempotency: Idempotency | None) -> CommandOutcome | None:
        """The first result for this key, or None when the key is new."""
        if idempotency is None:
            return None
        record = await self._store.find_idempotency_record(idempotency.stored_key)
        if record is None:
            return None
        if record.fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReused(idempotency.key)
        return CommandOutcome.of(record.result, (), replayed=True)

    async def _decide_and_append(
        self,
        decision: Decision,
        streams: Streams,
        context: CommandContext,
        idempotency: Idempotency | None,
        ids_from: Idempotency | None,
    ) -> CommandOutcome:
        """`idempotency`: the key stored with the append; `ids_from`: the key its event ids
        are derived from (the command's, for the steps before it too)."""
        for step in decision.before:
            await self._decide_and_append(step, streams, context, None, ids_from)
        decider, expected_version = decision.decider, decision.expected_version
        stream_id = decider.stream_id(decision.entity_id)
        attempts = 1 if expected_version is not None else self._max_attempts
        for attempt in range(1, attempts + 1):
            if attempt == 1 and decision.loaded is not None:
                state, version = decision.loaded
            else:
                state, version = await streams.load(decider, decision.entity_id)
            if expected_version is not None and expected_version != version:
                raise ConcurrencyConflict(stream_id, expected_version, version)
            events = decider.decide(decision.command, state)
            try:
                result = await self._append(
                    decider.stream_type, stream_id, version, events, context, idempotency, ids_from
                )
            except WrongExpectedVersion as conflict:
                if attempt == attempts:
                    raise ConcurrencyConflict(
                        stream_id, version, conflict.actual, tries=attempts
                    ) from conflict
                # Full jitter: writers that collided spread out instead of colliding again.
                cap = min(self._retry_backoff_seconds * 2**attempt, MAX_RETRY_BACKOFF_SECONDS)
                await asyncio.sleep(random.uniform(0, cap))
                continue
            except IdempotencyKeyConflict:
                # A concurrent request with the same key won the race; answer as it did.
                replayed = await self._replay(idempotency)
                if replayed is None:
                    raise
                return replayed
            if events:
                await self._snapshot(streams, decider, stream_id, state, version, events, result)
            return CommandOutcome.of(result, tuple(events))
        raise AssertionError("unreachable: the loop returns or raises")

    @staticmethod
    async def _snapshot(
        streams: Streams,
        decider: Decider[Any, Any, Any],
        stream_id: str,
        state: Any,
        version: int,
        events: list[Any],
        result: AppendResult,
    ) -> None:
        """A snapshot when this append took the stream across a multiple of the interval
        (and the stream is where this command put it: not a repeat of an earlier append)."""
        if decider.snapshots is None or result.version != version + len(events):
            return
        if streams.snapshots.crossed(version, result.version):
            for event in events:
                state = decider.evolve(state, event)
            await streams.snapshots.save(stream_id, decider.snapshots, state, result.version)

    async def _append(
        self,
        stream_type: str,
        stream_id: str,
        version: int,
        events: list[Any],
        context: CommandContext,
        idempotency: Idempotency | None,
        ids_from: Idempotency | None,
    ) -> AppendResult:
        def event_id(index: int) -> uuid.UUID:
            if ids_from is None:
                return self._new_event_id()
            return _derived_event_id(ids_from, stream_id, index)

        appended = new_events(self._registry, events, context, self._clock(), event_id)
        expected: ExpectedVersion = version if version > 0 else NO_STREAM
        return await self._store.append_to_stream(
            stream_id,
            stream_type,
            expected,
            appended,
            idempotency=(idempotency.stored_key, idempotency.fingerprint) if idempotency else None,
        )
