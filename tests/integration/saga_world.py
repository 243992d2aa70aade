"""The fulfillment saga on real PostgreSQL for the integration tests: the event store,
the command bus, the PostgreSQL ledger, and an orchestrator on simulated gateways with the
rules a test asks for. `fulfil` hands the orchestrator an order's triggers from the log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from tests.integration.read_side import postgres_store
from tests.integration.write_side import build_bus
from write_model import commands
from write_model.bus import CommandBus, Streams
from write_model.command_context import CommandContext
from write_model.domain import fulfillment
from write_model.domain.order import Address, OrderState
from write_model.domain.product import ProductState
from write_model.event_store.postgres import PostgresEventStore
from write_model.event_types import build_registry
from write_model.handlers import ORDER, PRODUCT
from write_model.sagas import storage
from write_model.sagas.gateways.port import PaymentGateway, ShippingGateway
from write_model.sagas.gateways.resilience import CallPolicy, ResilientPayments, ResilientShipping
from write_model.sagas.gateways.simulated import (
    Behaviour,
    PaymentRules,
    ShippingRules,
    SimulatedPayments,
    SimulatedShipping,
)
from write_model.sagas.ledger.port import GatewayLedger, LedgerEntry
from write_model.sagas.orchestrator import FULFILLMENT, FulfillmentOrchestrator, Gateways
from write_model.sagas.process import react_to

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
ANY_PAYMENT = PaymentRules()
ANY_SHIPMENT = ShippingRules()
WELL_BEHAVED = Behaviour()
FAST = CallPolicy(timeout_seconds=1.0, max_attempts=3, backoff_seconds=0.001)


@dataclass
class SagaWorld:
    events: PostgresEventStore
    bus: CommandBus
    ledger: GatewayLedger
    streams: Streams = field(init=False)

    def __post_init__(self) -> None:
        self.streams = Streams(self.events, build_registry())

    def orchestrator(
        self,
        *,
        payment_rules: PaymentRules = ANY_PAYMENT,
        shipping_rules: ShippingRules = ANY_SHIPMENT,
        payment_behaviour: Behaviour = WELL_BEHAVED,
        shipping_behaviour: Behaviour = WELL_BEHAVED,
        policy: CallPolicy = FAST,
        payments: PaymentGateway | None = None,
        shipping: ShippingGateway | None = None,
    ) -> FulfillmentOrchestrator:
        payments = payments or SimulatedPayments(self.ledger, payment_rules, payment_behaviour)
        shipping = shipping or SimulatedShipping(self.ledger, shipping_rules, shipping_behaviour)
        gateways = Gateways(
            ResilientPayments(payments, policy), ResilientShipping(shipping, policy)
        )
        return FulfillmentOrchestrator(
            self.events, build_registry(), self.bus, gateways, clock=lambda: datetime.now(UTC)
        )

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

    async def fulfil(self, orchestrator: FulfillmentOrchestrator, *order_ids: str) -> None:
        """Hand the orchestrator these orders' streams (their triggers), as the log would."""
        found = await self.events.read_streams([ORDER.stream_id(o) for o in order_ids])
        events = [event for stream in found.values() for event in stream]
        await react_to(orchestrator, events, asyncio.Semaphore(32))

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


@contextlib.asynccontextmanager
async def saga_world(dsn: str | None = None) -> AsyncIterator[SagaWorld]:
    async with postgres_store(max_size=30, dsn=dsn) as events:
        await storage.migrate_postgres(events.pool)
        yield SagaWorld(events, build_bus(events), storage.postgres_storage(events.pool).ledger)
