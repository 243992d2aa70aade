"""The factories of the composition root that take plain values, not `Settings`: the
command bus, the simulated gateways and the saga's reactions. Every process
(app/bootstrap.py reads the settings and calls these), test and benchmark builds its
parts here, so a part is constructed in one place and wired the same way everywhere."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from log_follower.consumer import KeyHandler
from sagas.choreography.participant import PARTICIPANTS, participants
from sagas.effects import Gateways
from sagas.gateways.port import PaymentGateway, ShippingGateway
from sagas.gateways.resilience import CallPolicy, ResilientPayments, ResilientShipping
from sagas.gateways.simulated import (
    Behaviour,
    PaymentRules,
    ShippingRules,
    SimulatedPayments,
    SimulatedShipping,
)
from sagas.ledger.port import GatewayLedger
from sagas.orchestrator import FulfillmentOrchestrator
from write_model.bus import CommandBus
from write_model.domain.choreography import Participant
from write_model.event_store.port import EventStore
from write_model.handlers import command_handlers
from write_model.registry import EventTypeRegistry

SagaMode = Literal["orchestration", "choreography"]
# The simulated providers' defaults: every charge and shipment accepted, no failures.
ANY_PAYMENT, ANY_SHIPMENT, WELL_BEHAVED = PaymentRules(), ShippingRules(), Behaviour()
DEFAULT_POLICY = CallPolicy()


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_command_bus(
    store: EventStore,
    registry: EventTypeRegistry,
    *,
    tax_rate: Decimal,
    max_attempts: int = 10,
    snapshot_every: int = 0,
) -> CommandBus:
    """The one way in for every command (GraphQL mutations, the CLI, the saga)."""
    return CommandBus(
        store,
        registry,
        command_handlers(tax_rate=tax_rate),
        clock=utc_now,
        new_event_id=uuid.uuid4,
        new_entity_id=lambda: str(uuid.uuid4()),
        max_attempts=max_attempts,
        snapshot_every=snapshot_every,
    )


def simulated_gateways(
    ledger: GatewayLedger,
    *,
    payment_rules: PaymentRules = ANY_PAYMENT,
    shipping_rules: ShippingRules = ANY_SHIPMENT,
    payment_behaviour: Behaviour = WELL_BEHAVED,
    shipping_behaviour: Behaviour = WELL_BEHAVED,
    policy: CallPolicy = DEFAULT_POLICY,
    payments: PaymentGateway | None = None,
    shipping: ShippingGateway | None = None,
) -> Gateways:
    """The simulated providers on `ledger` (or the `payments`/`shipping` given in their
    place), each behind its timeout, retries and circuit breaker (`policy`)."""
    payments = payments or SimulatedPayments(ledger, payment_rules, payment_behaviour)
    shipping = shipping or SimulatedShipping(ledger, shipping_rules, shipping_behaviour)
    return Gateways(ResilientPayments(payments, policy), ResilientShipping(shipping, policy))


def saga_reactions(
    mode: SagaMode,
    store: EventStore,
    registry: EventTypeRegistry,
    bus: CommandBus,
    gateways: Gateways,
    *,
    only: Participant | None = None,
) -> list[KeyHandler]:
    """The saga's reactions to the log in `mode`: the orchestrator, or the choreography's
    three participants (`only`: that one participant, in either mode)."""
    if mode == "orchestration" and only is None:
        return [FulfillmentOrchestrator(store, registry, bus, gateways)]
    chosen = PARTICIPANTS if only is None else (only,)
    return [*participants(store, registry, bus, gateways, only=chosen)]
