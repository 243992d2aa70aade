"""The command bus: the one way in for every command (write_model/commands.py).

`CommandBus.dispatch(command, context, idempotency)` runs the same pipeline for each:

0. The access rule (write_model/access.py): what the principal may not send at all is
   Forbidden; handlers refuse someone else's order or customer as NotFound.
1. A known idempotency key returns the first result and appends nothing; the same key with
   other input (another fingerprint) is an `IdempotencyKeyReused`.
2. The command's handler (write_model/handlers.py) looks up what the domain needs and
   returns a `Decision`: which decider decides which domain command on which stream.
3. The Decision goes through the one decide-and-append (write_model/decide_and_append.py):
   load (from a snapshot), decide, append at the loaded version; without an
   `expected_version`, a conflicting concurrent append makes it reload and decide again, a
   bounded number of times (COMMAND_MAX_ATTEMPTS), after a jittered backoff; with one, a
   stale version is the sender's to resolve and is reported at once. The idempotency key
   is stored with the events, in the same append. Keys are each principal's own: the same
   key sent by another principal is another key (naming other entities), so nobody replays
   someone else's result. Events of a command with a key get ids derived from it
   (principal, scope, key, stream, index), so sending it again after a crash appends
   nothing twice even where the key's record cannot answer (a repeated append returns its
   first result).

Domain errors from handlers and deciders propagate unchanged; nothing is appended then.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from write_model import access
from write_model.command_context import CommandContext, Principal
from write_model.commands import Command
from write_model.decide_and_append import ConcurrencyConflict, DecideAndAppend, Decision
from write_model.domain.errors import DomainError
from write_model.domain.validation import require_idempotency_key
from write_model.envelope import AppendResult
from write_model.event_store.port import EventStore, IdempotencyKey, IdempotencyKeyConflict
from write_model.registry import EventTypeRegistry
from write_model.streams import Decider, Streams

C = TypeVar("C")
E = TypeVar("E")
S = TypeVar("S")


_ID_NAMESPACE = uuid.UUID("6f1c7f2e-4d3b-4a59-9a67-0c5d2f8e1b10")


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


def _event_id_key(idempotency: Idempotency | None) -> str | None:
    """What the ids of a command's events derive from: its key in its scope (the same when
    the command is sent again after a crash, so the store adds its events only once)."""
    if idempotency is None:
        return None
    scoped = idempotency.stored_key
    return f"{scoped.principal}\n{scoped.scope}\n{scoped.key}"


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
        """`max_attempts`: tries of a command without an expectedVersion whose stream keeps
        changing; `snapshot_every`: events between snapshots of a stream whose decider has
        them (0: save none)."""
        self._store = store
        self._registry = registry
        self._handlers = dict(handlers)
        self._new_entity_id = new_entity_id
        self._snapshot_every = snapshot_every
        self.decide_and_append = DecideAndAppend(
            store,
            registry,
            clock=clock,
            new_event_id=new_event_id,
            max_attempts=max_attempts,
            first_backoff_seconds=retry_backoff_seconds,
            snapshot_every=snapshot_every,
        )

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
        try:
            decided = await self.decide_and_append.one(
                decision,
                context,
                key=_event_id_key(idempotency),
                idempotency=(
                    (idempotency.stored_key, idempotency.fingerprint) if idempotency else None
                ),
            )
        except IdempotencyKeyConflict:
            # A concurrent request with the same key won the race; answer as it did.
            replayed = await self._replay(idempotency)
            if replayed is None:
                raise
            return replayed
        assert decided.result is not None, "the bus appends even when nothing is decided"
        return CommandOutcome.of(decided.result, decided.events)

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
