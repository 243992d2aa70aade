"""The fulfillment orchestrator: reacts to OrderSubmitted and OrderCancelled, and drives each
order's saga (write_model/domain/fulfillment.py) until it waits or is over.

Driving a saga: load its stream, ask `next_action`, run the action (step commands through
the CommandBus with the action's idempotency keys, gateway calls with theirs), record the
outcome on the saga stream, again. Every effect is keyed, every saga event gets an id
derived from its stream and version, and recording is idempotent, so a process killed
anywhere and driving the same saga again does nothing twice. Events the saga causes carry
the trigger's correlation id and the trigger's event id as causation.

The process loop (leader lock, checkpoint, batches, a key's events in order, keys at once)
is write_model/sagas/process.py; this is its `Reaction`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import assert_never

from write_model import commands, stream_ids
from write_model.bus import (
    CommandBus,
    Decider,
    Streams,
)
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
from write_model.envelope import AppendResult, EventMetadata, NewEvent, RecordedEvent
from write_model.event_store.port import NO_STREAM, EventStore, WrongExpectedVersion
from write_model.handlers import ORDER
from write_model.registry import EventTypeRegistry
from write_model.sagas.effects import Gateways, StepEffects

log = logging.getLogger(__name__)

PRINCIPAL = Principal.system("fulfillment-saga")
_Loaded = tuple[fulfillment.FulfillmentSagaState, int]
FULFILLMENT = Decider(
    fulfillment.STREAM_TYPE, fulfillment.decide, fulfillment.evolve, fulfillment.initial_state
)
SUBSCRIBER = "saga:fulfillment"
TRIGGERS = frozenset({"OrderSubmitted", "OrderCancelled"})
_EVENT_IDS = uuid.UUID("a3c1d7e0-5b2f-4e8a-9c41-7d2e0f6b3a95")


class FulfillmentOrchestrator:
    def __init__(
        self,
        store: EventStore,
        registry: EventTypeRegistry,
        bus: CommandBus,
        gateways: Gateways,
        *,
        clock: Callable[[], datetime],
        retry_seconds: float = 0.2,
        after_append: Sequence[Callable[[AppendResult], None]] = (),
    ) -> None:
        self._store = store
        self._registry = registry
        self._streams = Streams(store, registry)
        self._effects = StepEffects(bus, gateways, retry_seconds=retry_seconds)
        self._clock = clock
        self._after_append = tuple(after_append)  # e.g. wake an in-process projector

    subscriber = SUBSCRIBER

    def key_of(self, event: RecordedEvent) -> str | None:
        if event.type not in TRIGGERS:
            return None
        return stream_ids.entity_id(event.stream_id, order.STREAM_TYPE)

    async def react(self, key: str, events: Sequence[RecordedEvent]) -> None:
        """Drive the order's saga on its triggers, in log order."""
        for trigger in events:
            context = CommandContext(
                correlation_id=trigger.metadata.correlation_id,
                causation_id=str(trigger.event_id),
                principal=PRINCIPAL,
            )
            if trigger.type == "OrderSubmitted":
                loaded = await self._start(key, context)
            else:
                loaded = await self._record(key, CancelFulfillment(), context)
            await self.drive(key, context, loaded)

    async def _start(self, order_id: str, context: CommandContext) -> _Loaded:
        placed, _ = await self._load_order(order_id)
        if placed is None or placed.shipping_address is None:
            raise ValueError(f"order {order_id} was submitted without items or an address")
        start = StartFulfillment(
            order_id,
            placed.customer_id,
            tuple(fulfillment.Line(line.product_id, line.quantity) for line in placed.lines),
            placed.totals().total,
            placed.shipping_address,
        )
        return await self._record(order_id, start, context)

    async def drive(
        self, order_id: str, context: CommandContext, loaded: _Loaded | None = None
    ) -> None:
        """Run the saga's next actions until it waits or is over. `loaded`: the saga's
        state and version as just recorded (else it is read)."""
        if loaded is None:
            loaded = await self._load(order_id)
        while True:
            saga, _ = loaded
            action = fulfillment.next_action(saga)
            if action is None or saga is None:
                return
            outcome = await self._run(action, saga, context)
            if outcome is None:
                return  # waits: e.g. the order was cancelled and its event is on the way
            loaded = await self._record(order_id, outcome, context, loaded=loaded)

    # -------------------------------------------------------------- actions

    async def _run(
        self, action: fulfillment.Action, saga: Fulfillment, context: CommandContext
    ) -> FulfillmentCommand | None:
        match action:
            case RunStep(step, run):
                # No charge or shipment for a cancelled order (a reservation is cheap to
                # undo: the order read at the start serves the first step).
                if step is not fulfillment.Step.RESERVE_INVENTORY:
                    placed, _ = await self._load_order(saga.order_id)
                    if placed is not None and placed.status is order.OrderStatus.CANCELLED:
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

    async def _load_order(self, order_id: str) -> tuple[order.OrderState, int]:
        return await self._streams.load(ORDER, order_id)

    # ---------------------------------------------------------- saga stream

    async def _load(self, order_id: str) -> tuple[fulfillment.FulfillmentSagaState, int]:
        return await self._streams.load(FULFILLMENT, order_id)

    async def _record(
        self,
        order_id: str,
        command: FulfillmentCommand,
        context: CommandContext,
        *,
        loaded: _Loaded | None = None,
    ) -> _Loaded:
        """Decide `command` on the saga stream and append its events in one append, each
        with an id derived from the stream and its version (the same after a crash).
        Returns the saga's state and version after it."""
        stream_id = FULFILLMENT.stream_id(order_id)
        while True:
            saga, version = loaded if loaded is not None else await self._load(order_id)
            loaded = None
            if saga is None and isinstance(command, CancelFulfillment):
                return saga, version  # e.g. a draft cancelled: no saga ever started
            events = fulfillment.decide(command, saga)
            if not events:
                return saga, version
            now = self._clock()
            new_events = []
            for offset, event in enumerate(events, start=1):
                type_name, data, schema_version = self._registry.serialize(event)
                metadata = EventMetadata(
                    correlation_id=context.correlation_id,
                    causation_id=context.causation_id,
                    user_id=context.principal.user_id,
                    schema_version=schema_version,
                )
                event_id = uuid.uuid5(_EVENT_IDS, f"{stream_id}:{version + offset}")
                new_events.append(NewEvent(event_id, type_name, data, metadata, now))
            try:
                appended = await self._store.append_to_stream(
                    stream_id,
                    fulfillment.STREAM_TYPE,
                    version if version > 0 else NO_STREAM,
                    new_events,
                )
            except WrongExpectedVersion:
                continue  # another driver (a standby taking over) moved it: decide again
            for listener in self._after_append:
                listener(appended)
            for event in events:
                saga = fulfillment.evolve(saga, event)
            return saga, appended.version
