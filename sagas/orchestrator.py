"""The fulfillment orchestrator: reacts to OrderSubmitted and OrderCancelled, and drives each
order's saga (write_model/domain/fulfillment.py) until it waits or is over.

Driving a saga: load its stream, ask `next_action`, run the action (step commands through
the CommandBus with the action's idempotency keys, gateway calls with theirs), record the
outcome on the saga stream, again. Every effect is keyed, every saga event gets an id
derived from its stream and version, and recording is idempotent, so a process killed
anywhere and driving the same saga again does nothing twice. Events the saga causes carry
the trigger's correlation id and the trigger's event id as causation.

Following the log (leader lock, checkpoint, batches, retries and dead letters) is the one
follower's (log_follower/); this is a `KeyHandler` (keyed by order) that `PerKeyConsumer`
makes its consumer, each order's events in log order, orders at once. The saga stream's
reading and recording: sagas/saga_stream.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import assert_never

from log_follower.consumer import FollowerKind
from sagas.effects import Gateways, StepEffects
from sagas.saga_stream import FULFILLMENT, Loaded, SagaStream, decided_state
from write_model import commands, stream_ids
from write_model.bus import CommandBus
from write_model.command_context import CommandContext, Principal
from write_model.domain import fulfillment, order
from write_model.domain.fulfillment import (
    CancelFulfillment,
    Compensate,
    ConfirmTheOrder,
    Fulfillment,
    FulfillmentCommand,
    RecordOrderConfirmed,
    RecordOrderRejected,
    RecordStepCompensated,
    RejectTheOrder,
    RunStep,
    StartFulfillment,
)
from write_model.envelope import RecordedEvent
from write_model.event_store.port import EventStore
from write_model.handlers import ORDER
from write_model.registry import EventTypeRegistry
from write_model.streams import Streams

log = logging.getLogger(__name__)

PRINCIPAL = Principal.system("fulfillment-saga")
SUBSCRIBER = "saga:fulfillment"
TRIGGERS = frozenset({"OrderSubmitted", "OrderCancelled"})


class FulfillmentOrchestrator:
    def __init__(
        self,
        store: EventStore,
        registry: EventTypeRegistry,
        bus: CommandBus,
        gateways: Gateways,
        *,
        retry_seconds: float = 0.2,
    ) -> None:
        self._store = store
        self._streams = Streams(store, registry)
        self._saga = SagaStream(bus.decide_and_append, self._streams)
        self._effects = StepEffects(bus, gateways, retry_seconds=retry_seconds)

    name = SUBSCRIBER
    kind = FollowerKind.SAGA

    def key_of(self, event: RecordedEvent) -> str | None:
        if event.type not in TRIGGERS:
            return None
        return stream_ids.entity_id(event.stream_id, order.STREAM_TYPE)

    async def handle_key(self, key: str, events: Sequence[RecordedEvent]) -> None:
        """Drive the order's saga on its triggers, in log order."""
        for trigger in events:
            context = CommandContext(
                correlation_id=trigger.metadata.correlation_id,
                causation_id=str(trigger.event_id),
                principal=PRINCIPAL,
            )
            if trigger.type == "OrderSubmitted":
                seen = _OrderSeen()
                loaded, start = await self._start(key, seen)
                await self.drive(key, context, loaded, start, seen)
            else:
                loaded = await self._saga.record(key, (CancelFulfillment(),), context)
                await self.drive(key, context, loaded)

    async def _start(
        self, order_id: str, seen: _OrderSeen
    ) -> tuple[Loaded, tuple[FulfillmentCommand, ...]]:
        """The saga as stored, read with its order, and the command that starts it (none
        when it has started: a trigger handled again after a crash)."""
        (placed, order_version), loaded = await self._streams.load_many(
            [(ORDER, order_id), (FULFILLMENT, order_id)]
        )
        if placed is not None and placed.status is not order.OrderStatus.CANCELLED:
            seen.version = order_version
        if loaded[0] is not None:
            return loaded, ()
        if placed is None or placed.shipping_address is None:
            raise ValueError(f"order {order_id} was submitted without items or an address")
        start = StartFulfillment(
            order_id,
            placed.customer_id,
            tuple(fulfillment.Line(line.product_id, line.quantity) for line in placed.lines),
            placed.totals().total,
            placed.shipping_address,
        )
        return loaded, (start,)

    async def drive(
        self,
        order_id: str,
        context: CommandContext,
        loaded: Loaded | None = None,
        unrecorded: tuple[FulfillmentCommand, ...] = (),
        seen: _OrderSeen | None = None,
    ) -> None:
        """Run the saga's next actions until it waits or is over. `loaded`: the saga's
        state and version as just recorded (else it is read). `unrecorded`: commands
        decided on it but not stored yet (the start), recorded with the first outcome, in
        one append: every action is keyed, so one run again after a crash before that
        append has no further effect, and readers see no difference (a started step shows
        as pending)."""
        if loaded is None:
            loaded = await self._saga.load(order_id)
        seen = seen or _OrderSeen()
        while True:
            saga = decided_state(loaded[0], unrecorded)
            action = fulfillment.next_action(saga)
            outcome = None
            if action is not None and saga is not None:
                outcome = await self._run(action, saga, context, seen)
            if outcome is None:
                # Over, or waits: e.g. the order was cancelled and its event is on the way.
                if unrecorded:
                    await self._saga.record(order_id, unrecorded, context, loaded=loaded)
                return
            loaded = await self._saga.record(
                order_id, (*unrecorded, outcome), context, loaded=loaded
            )
            unrecorded = ()

    # -------------------------------------------------------------- actions

    async def _run(
        self,
        action: fulfillment.Action,
        saga: Fulfillment,
        context: CommandContext,
        seen: _OrderSeen,
    ) -> FulfillmentCommand | None:
        match action:
            case RunStep(step, run):
                # No charge or shipment for a cancelled order (a reservation is cheap to
                # undo: the order read at the start serves the first step).
                if step is not fulfillment.Step.RESERVE_INVENTORY and await self._cancelled(
                    saga.order_id, seen
                ):
                    return CancelFulfillment()
                return await self._effects.run_step(step, run, context)
            case Compensate(step, undo):
                await self._effects.undo(undo, context)
                return RecordStepCompensated(step)
            case ConfirmTheOrder(order_id, key):
                confirm = commands.ConfirmOrder(order_id=order_id)
                if not await self._effects.dispatch_or_refused(confirm, key, context):
                    return None  # cancelled meanwhile: OrderCancelled will compensate
                return RecordOrderConfirmed()
            case RejectTheOrder(order_id, reason, key, reject):
                if reject:
                    refuse = commands.RejectOrder(order_id=order_id, reason=reason)
                    if not await self._effects.dispatch_or_refused(refuse, key, context):
                        return None
                return RecordOrderRejected()
            case _:
                assert_never(action)

    async def _cancelled(self, order_id: str, seen: _OrderSeen) -> bool:
        """Whether the order is cancelled now. An order whose stream has not moved since it
        was read, not cancelled, still is not: its version alone tells (cheaper than
        reading and folding it)."""
        if seen.version is not None:
            if await self._store.stream_version(ORDER.stream_id(order_id)) == seen.version:
                return False
        placed, version = await self._streams.load(ORDER, order_id)
        cancelled = placed is not None and placed.status is order.OrderStatus.CANCELLED
        seen.version = None if cancelled else version
        return cancelled


@dataclass
class _OrderSeen:
    """The version of the order when one drive last read it not cancelled (None: not read
    yet, or read cancelled)."""

    version: int | None = None
