"""What resolvers see: the process's services and the per-request context.

`Services` is built once by the composition root (app/bootstrap.py via app/server.py) and
shared by every request; `RequestContext` is made per request and holds the request's
correlation id and its DataLoaders (built on first use, so a request that needs none pays
nothing for them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import strawberry

from read_model.scoped import ScopedReadModel
from read_model.service import ReadModel, ReadModelBehind
from schema.errors import BadRequest, ConsistencyTimeout, StaleReadModel
from schema.loaders import Loaders
from schema.order_updates import LiveOrders
from schema.rate_limit import RateLimiter
from write_model.bus import CommandBus
from write_model.command_context import ANONYMOUS, CommandContext, Principal
from write_model.envelope import ConsistencyToken, LogPosition
from write_model.event_store.port import EventStore
from write_model.registry import EventTypeRegistry


def decode_consistency_token(token: str) -> LogPosition:
    try:
        return ConsistencyToken.decode(token)
    except ValueError:
        raise BadRequest(
            f"{token!r} is not a consistency token: pass the `consistencyToken` of a "
            "mutation result exactly as it was returned"
        ) from None


class CommandObserver(Protocol):
    """Told about every command a mutation ran (metrics)."""

    def command_finished(
        self, command: str, outcome: str, seconds: float, stream_type: str, appended: int
    ) -> None: ...


class NoObserver:
    def command_finished(
        self, command: str, outcome: str, seconds: float, stream_type: str, appended: int
    ) -> None:
        return None


@dataclass(frozen=True)
class Services:
    commands: CommandBus
    events: EventStore
    registry: EventTypeRegistry
    read_model: ReadModel
    observer: CommandObserver = field(default_factory=NoObserver)
    # Live updates for subscriptions; None where no change feed runs.
    live: LiveOrders | None = None
    max_subscriptions_per_connection: int = 20
    mutation_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(None))


@dataclass
class Connection:
    """What the operations of one websocket connection share."""

    subscriptions: int = 0  # running now
    connection_params: dict[str, object] | None = None  # the `connection_init` payload
    websocket: Any = None  # the connection itself (app/server.py closes it when its token ends)


@dataclass
class RequestContext:
    """One HTTP request, or one operation of a websocket connection (`for_operation`): its
    DataLoaders cache what this operation read, never longer."""

    services: Services
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    principal: Principal = ANONYMOUS  # who asks (app/auth.py; anonymous when auth is off)
    connection: Connection = field(default_factory=Connection)
    client_address: str | None = None  # the rate limit's key where no principal is known

    @property
    def connection_params(self) -> dict[str, object] | None:
        return self.connection.connection_params

    @connection_params.setter
    def connection_params(self, payload: dict[str, object] | None) -> None:
        # strawberry stores `connection_init`'s payload on the connection's context.
        self.connection.connection_params = payload

    @cached_property
    def reader(self) -> ScopedReadModel:
        """The read model as this request's principal may see it."""
        return ScopedReadModel(self.services.read_model, self.principal)

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders.build(self.reader, self.services.events)

    def for_operation(self) -> RequestContext:
        """A context for one operation of this connection: same services, caller and
        connection, loaders of its own."""
        return RequestContext(
            self.services, self.correlation_id, self.principal, self.connection, self.client_address
        )

    def fresh_loaders(self) -> None:
        """Forget what the loaders cached: each event a subscription pushes is read anew."""
        self.__dict__.pop("loaders", None)

    @property
    def rate_limit_key(self) -> str:
        """Whom the mutation rate limit counts: the principal, else the client's address."""
        user = self.principal.user_id
        return f"user:{user}" if user is not None else f"address:{self.client_address}"

    def command_context(self) -> CommandContext:
        return CommandContext(correlation_id=self.correlation_id, principal=self.principal)

    async def caught_up(self, consistency_token: str, stream_id: str | None = None) -> None:
        """Wait until the read model has applied the write named by `consistency_token`,
        then read past any read cache and forget what this request's loaders cached, which
        may predate it. `stream_id`:
        the stream whose documents the request reads; if the projector parked one of its
        events at or before the write, the wait cannot be satisfied: StaleReadModel."""
        position = decode_consistency_token(consistency_token)
        read_model = self.services.read_model
        try:
            await read_model.wait_for(position)
        except ReadModelBehind as behind:
            raise ConsistencyTimeout(str(behind)) from None
        letter = await read_model.parked_letter(stream_id, position) if stream_id else None
        if letter is not None:
            raise StaleReadModel(
                f"the read model passed this write without applying it to {stream_id}: "
                f"event {letter['eventId']} is parked as dead letter {letter['_id']} "
                f"({letter['error']}); an operator can retry it with retryDeadLetter"
            )
        # Read on past any read cache, which may not have heard of the write yet, with
        # loaders that hold nothing from before the wait.
        self.reader = ScopedReadModel(read_model, self.principal, fresh=True)
        self.fresh_loaders()


Info = strawberry.Info[RequestContext, None]
