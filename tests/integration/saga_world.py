"""The fulfillment saga on real PostgreSQL for the integration tests: the event store,
the command bus, the PostgreSQL ledger, and the saga in either mode on simulated gateways
with the rules a test asks for: `driver` builds the orchestrator (orchestration) or the
three participants (choreography); `fulfil` hands it the orders' events from the log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.wiring import SagaMode, saga_reactions, simulated_gateways
from log_follower.consumer import Batch, KeyHandler, PerKeyConsumer
from log_follower.follower import FollowerSettings
from sagas import storage
from sagas.choreography.participant import FulfillmentParticipant
from sagas.gateways.resilience import CallPolicy
from sagas.ledger.port import GatewayLedger, LedgerEntry
from sagas.orchestrator import FULFILLMENT, FulfillmentOrchestrator
from tests.integration.read_side import postgres_store
from tests.integration.write_side import build_bus
from write_model import commands
from write_model.bus import CommandBus, Streams
from write_model.command_context import CommandContext
from write_model.decide_and_append import ConcurrencyConflict
from write_model.domain import fulfillment
from write_model.domain.order import Address, OrderState
from write_model.domain.product import ProductState
from write_model.envelope import LogPosition, RecordedEvent
from write_model.event_store.postgres import PostgresEventStore
from write_model.event_types import build_registry
from write_model.handlers import ORDER, PRODUCT

MODES = ("orchestration", "choreography")
# What drives the sagas in a mode: the orchestrator, or the participants.
Driver = FulfillmentOrchestrator | list[FulfillmentParticipant]

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
FAST = CallPolicy(timeout_seconds=1.0, max_attempts=3, backoff_seconds=0.001)


@dataclass
class SagaWorld:
    events: PostgresEventStore
    bus: CommandBus
    ledger: GatewayLedger
    mode: SagaMode = "orchestration"
    streams: Streams = field(init=False)

    def __post_init__(self) -> None:
        self.streams = Streams(self.events, build_registry())

    def driver(self, *, policy: CallPolicy = FAST, **options: Any) -> Driver:
        """The saga in this world's mode; `options`: `simulated_gateways`' rules and
        behaviours, or the providers themselves."""
        gateways = simulated_gateways(self.ledger, policy=policy, **options)
        reactions = saga_reactions(self.mode, self.events, build_registry(), self.bus, gateways)
        if self.mode == "choreography":
            return [r for r in reactions if isinstance(r, FulfillmentParticipant)]
        [orchestrator] = reactions
        assert isinstance(orchestrator, FulfillmentOrchestrator)
        return orchestrator

    async def product(self, product_id: str, stock: int, price: str = "10.00") -> None:
        add = commands.AddProduct(
            product_id=product_id, name="Ink", price=Decimal(price), initial_stock=stock
        )
        await self.bus.dispatch(add, CommandContext(correlation_id="setup"))

    async def customer(self, customer_id: str) -> None:
        register = commands.RegisterCustomer(
            customer_id=customer_id, name="Ada", email=f"{customer_id}@example.com"
        )
        await self.bus.dispatch(register, CommandContext(correlation_id="setup"))

    async def submitted_order(
        self,
        order_id: str,
        customer_id: str,
        items: Sequence[tuple[str, int]],
        address: Address = ADDRESS,
        correlation_id: str = "submit-request",
    ) -> None:
        context = CommandContext(correlation_id=correlation_id)
        create = commands.CreateOrder(
            order_id=order_id,
            customer_id=customer_id,
            items=tuple(commands.OrderItem(p, q) for p, q in items),
            shipping_address=address,
        )
        await self.bus.dispatch(create, context)
        await self.bus.dispatch(commands.SubmitOrder(order_id=order_id), context)

    async def cancel(self, order_id: str) -> None:
        cancel = commands.CancelOrder(order_id=order_id, reason="changed my mind")
        await self.bus.dispatch(cancel, CommandContext(correlation_id="cancel-request"))

    async def fulfil(self, driver: Driver, *order_ids: str) -> None:
        """Hand the driver these orders' events, as the log would: the orchestrator their
        order streams; each participant, at once, what it has not seen of the order and
        participant streams, in log order, until none has anything new."""
        if isinstance(driver, FulfillmentOrchestrator):
            found = await self.events.read_streams([ORDER.stream_id(o) for o in order_ids])
            events = [event for stream in found.values() for event in stream]
            await react_to(driver, events)
            return
        kinds = [ORDER.stream_type, *(p.participant.value for p in driver)]
        stream_ids = [f"{kind}-{order_id}" for kind in kinds for order_id in order_ids]
        seen: set[tuple[str, object]] = set()
        while True:
            found = await self.events.read_streams(stream_ids)
            log = sorted((e for stream in found.values() for e in stream), key=_position)
            rounds = []
            for participant in driver:
                new = [e for e in log if (participant.name, e.event_id) not in seen]
                seen.update((participant.name, e.event_id) for e in new)
                if any(participant.key_of(e) is not None for e in new):
                    rounds.append(react_to(participant, new))
            if not rounds:
                return
            await asyncio.gather(*rounds)

    async def order(self, order_id: str) -> OrderState:
        return (await self.streams.load(ORDER, order_id))[0]

    async def saga(self, order_id: str) -> fulfillment.Fulfillment:
        saga, _ = await self.streams.load(FULFILLMENT, order_id)
        assert saga is not None, f"no saga for {order_id}"
        return saga

    async def stock(self, product_id: str) -> tuple[int, int]:
        state: ProductState = (await self.streams.load(PRODUCT, product_id))[0]
        assert state is not None
        return state.stock_on_hand, state.stock_reserved

    async def ledger_of(self, order_id: str) -> list[tuple[str, str, bool]]:
        """(gateway, operation, succeeded) of every entry under this order's saga keys."""
        prefix = fulfillment.saga_id(order_id) + ":"
        entries: list[LedgerEntry] = [
            *await self.ledger.entries("payment"),
            *await self.ledger.entries("shipping"),
        ]
        return [(e.gateway, e.operation, e.succeeded) for e in entries if e.key.startswith(prefix)]


def _position(event: RecordedEvent) -> LogPosition:
    return event.log_position


@contextlib.asynccontextmanager
async def saga_world(
    dsn: str | None = None, mode: SagaMode = "orchestration"
) -> AsyncIterator[SagaWorld]:
    async with postgres_store(max_size=30, dsn=dsn) as events:
        await storage.migrate_postgres(events.pool)
        ledger = storage.postgres_ledger(events.pool)
        yield SagaWorld(events, build_bus(events), ledger, mode)


async def react_to(handler: KeyHandler, events: Sequence[RecordedEvent]) -> None:
    """Hand events to a saga's handler as its follower does (each key's events in log order,
    keys at once); a key that fails fails the call, except that a key whose writes kept
    conflicting (a ConcurrencyConflict: contention, not a fault) is tried again from its
    failing event, up to the follower's tries, waiting as the follower does."""
    settings = FollowerSettings()
    tries = settings.max_attempts
    for attempt in range(1, tries + 1):
        if not events:
            return
        batch = Batch(events, max(event.log_position for event in events))
        failures = await PerKeyConsumer(handler).handle(batch)
        if not failures:
            return
        contended = all(isinstance(f.error, ConcurrencyConflict) for f in failures)
        if not contended or attempt == tries:
            raise failures[0].error
        # Each failing key again, from its failing event on.
        resume = {f.key: f.event.log_position for f in failures}
        events = [
            e
            for e in events
            if (key := handler.key_of(e)) in resume and e.log_position >= resume[key]
        ]
        await asyncio.sleep(settings.key_retry_delay(attempt))
