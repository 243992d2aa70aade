"""One choreography participant (write_model/domain/choreography.py) as a `KeyHandler` of
the one log follower (log_follower/, made a consumer by `PerKeyConsumer`): inventory,
payment or shipping.

On a trigger the participant runs, undoes or cancels its own step with the same effects as
the orchestrator (sagas/effects.py, the same idempotency keys), then records
what it did on its own stream `<Participant>-<orderId>` (what the next participant follows).

Read side: it also records its step on the saga stream `Fulfillment-<orderId>` with the
orchestration's saga decider, so the orders projection, `orderHistory` and everything that
reads a saga read one shape in both modes, and `Order.fulfillment` is the same by
construction rather than by a second fold that could drift. That stream then has several
writers: every record there goes through the one decide-and-append
(write_model/decide_and_append.py), decided on the stream as last read and appended at its
version; a writer that loses the race reads again and decides again. Whoever finds the saga
with nothing left to run or undo finishes it (ConfirmOrder or RejectOrder): shipping after
it shipped, the last participant to undo after a failure or cancel.

Order of the writes: effects, then confirming or rejecting the order when the saga is
finished by them, then the saga's record (the start or the cancel this trigger decided,
what the step came to, the finish) and the participant's own event in ONE append to both
streams (all or nothing). So the next participant, which follows the own event, always
finds the step recorded, and a participant killed before that append handles the trigger
again in full (its own event is what says the trigger was handled: with it there, the
trigger is passed over; the effects are keyed, so running them again does nothing twice).
A failed step is recorded before it is undone, so the failure shows while its undo waits
on a provider.

Exactly once: effects carry the saga's keys; every event appended gets an id derived from
its trigger's event id and its purpose, and every recording is idempotent on the stream's
state, so a participant killed anywhere and handling the trigger again adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, assert_never

from log_follower.consumer import FollowerKind
from sagas.effects import Gateways, StepEffects
from sagas.saga_stream import FULFILLMENT, decided_state, recording
from write_model import commands, stream_ids
from write_model.bus import CommandBus
from write_model.command_context import CommandContext, Principal
from write_model.decide_and_append import Decision
from write_model.domain import choreography, fulfillment, order
from write_model.domain.choreography import Participant, Response
from write_model.domain.errors import DomainError
from write_model.domain.fulfillment import (
    CancelFulfillment,
    ConfirmTheOrder,
    Fulfillment,
    FulfillmentState,
    RecordOrderConfirmed,
    RecordOrderRejected,
    RecordStepCompensated,
    RecordStepFailed,
    RecordStepSucceeded,
    RejectTheOrder,
    StartFulfillment,
    StepStatus,
)
from write_model.envelope import RecordedEvent
from write_model.event_store.port import EventStore
from write_model.handlers import ORDER
from write_model.registry import EventTypeRegistry
from write_model.streams import Decider, Streams

log = logging.getLogger(__name__)

PARTICIPANTS: tuple[Participant, ...] = tuple(Participant)


def subscriber_of(participant: Participant) -> str:
    """Its checkpoint and leader lock, e.g. "saga:inventory"."""
    return f"saga:{participant.value.lower()}"


def participant_decider(participant: Participant) -> Decider[Any, Any, Any]:
    return Decider(
        participant.value,
        partial(choreography.decide, participant),
        choreography.evolve,
        choreography.initial_state,
    )


@dataclass
class _Turn:
    """Handling one trigger: for whom, in whose name, what derives the event ids, and the
    streams as last read or written in it (stream id -> state, version): a record decides
    on them first and reads again only when another writer got there before it."""

    order_id: str
    context: CommandContext
    trigger_id: str
    known: dict[str, tuple[Any, int]] = field(default_factory=dict)


class FulfillmentParticipant:
    def __init__(
        self,
        participant: Participant,
        store: EventStore,
        registry: EventTypeRegistry,
        bus: CommandBus,
        gateways: Gateways,
        *,
        retry_seconds: float = 0.2,
    ) -> None:
        self.participant = participant
        self.name = subscriber_of(participant)
        self.kind = FollowerKind.PARTICIPANT
        self._step = choreography.STEP_OF[participant]
        self._own = participant_decider(participant)
        self._principal = Principal.system(f"fulfillment-{participant.value.lower()}")
        self._streams = Streams(store, registry)
        self._decide_and_append = bus.decide_and_append
        self._effects = StepEffects(bus, gateways, retry_seconds=retry_seconds)

    def key_of(self, event: RecordedEvent) -> str | None:
        if event.type not in choreography.TRIGGERS[self.participant]:
            return None
        return stream_ids.entity_id(event.stream_id)

    async def handle_key(self, key: str, events: Sequence[RecordedEvent]) -> None:
        for trigger in events:
            # The three streams a response may need, in one read of the store.
            (own, version), (saga, saga_version), (placed, _) = await self._streams.load_many(
                [(self._own, key), (FULFILLMENT, key), (ORDER, key)]
            )
            response = choreography.respond(self.participant, trigger.type, own)
            if response is None:
                continue
            context = CommandContext(
                correlation_id=trigger.metadata.correlation_id,
                causation_id=str(trigger.event_id),
                principal=self._principal,
            )
            turn = _Turn(key, context, str(trigger.event_id))
            turn.known[self._own.stream_id(key)] = (own, version)
            turn.known[FULFILLMENT.stream_id(key)] = (saga, saga_version)
            match response:
                case Response.ACT:
                    await self._act(turn, saga, placed)
                case Response.UNDO:
                    await self._undo(turn, saga)
                case Response.CANCEL:
                    await self._cancel(turn, saga)
                case _:
                    assert_never(response)

    # ------------------------------------------------------------ responses

    async def _act(self, turn: _Turn, found: Fulfillment | None, placed: order.OrderState) -> None:
        step = self._step
        # Decided in this turn and recorded with what follows (the start, with the first
        # step's outcome and my own event).
        pending: tuple[fulfillment.FulfillmentCommand, ...] = ()
        if step is fulfillment.Step.RESERVE_INVENTORY:
            if found is None:
                pending = (self._start(turn, placed),)
        elif found is None or _cancelled(placed):
            # No charge or shipment for a cancelled order (as in orchestration).
            return await self._cancel(turn, found)
        saga = decided(found, pending)
        status = saga.record(step).status
        recorded: tuple[fulfillment.FulfillmentCommand, ...] = ()
        if status is StepStatus.STARTED and saga.state is FulfillmentState.RUNNING:
            try:
                outcome = await self._effects.run_step(
                    step, fulfillment.run_of(saga, step), turn.context
                )
            except DomainError:
                # Shipping found its reserved stock released: a cancel got there first.
                if _cancelled((await self._streams.load(ORDER, turn.order_id))[0]):
                    return await self._cancel(turn, found, pending)
                raise
            recorded = (outcome,)
        elif status is StepStatus.DONE:  # recorded before a crash; its own event was not
            outcome = RecordStepSucceeded(step, saga.record(step).detail)
        elif status is StepStatus.FAILED:
            outcome = RecordStepFailed(step, saga.record(step).detail or f"{step} failed")
        else:
            return await self._settle(turn, found)  # the saga moved on (a cancel) without it
        own: choreography.ParticipantCommand
        match outcome:
            case RecordStepSucceeded(_, detail):
                own = choreography.RecordDone(turn.order_id, detail)
            case RecordStepFailed(_, reason):
                # The failure shows before its undo, which may wait long on a provider.
                found = saga = await self._record_saga(turn, (*pending, *recorded))
                pending = ()
                recorded = await self._undo_effects(turn, saga)
                own = choreography.RecordFailed(turn.order_id, reason)
        await self._conclude(turn, found, (*pending, *recorded), own)

    async def _undo(self, turn: _Turn, saga: Fulfillment | None) -> None:
        """A later step failed and was cleaned up: undo mine, and say so."""
        if saga is None:
            raise ValueError(f"{self.participant} asked to undo order {turn.order_id} with no saga")
        undone = await self._undo_effects(turn, saga)
        await self._conclude(turn, saga, undone, choreography.RecordUndone(turn.order_id))

    async def _cancel(
        self,
        turn: _Turn,
        saga: Fulfillment | None,
        pending: Sequence[fulfillment.FulfillmentCommand] = (),
    ) -> None:
        """The order was cancelled: undo whatever my step began. `pending`: decided on
        `saga` in this turn, not recorded yet (a start)."""
        if saga is None and not pending:
            return  # not started (a draft cancelled, or inventory will start and see it)
        await self._settle(turn, saga, (*pending, CancelFulfillment()))

    async def _settle(
        self,
        turn: _Turn,
        saga: fulfillment.FulfillmentSagaState,
        pending: Sequence[fulfillment.FulfillmentCommand] = (),
    ) -> None:
        """Undo what my step began if the saga is being undone; finish it if I am last.
        `pending` (a cancel) is recorded with what the undo records and, when my step is
        undone, my own event: in one append."""
        after = decided(saga, pending)
        undone = await self._undo_effects(turn, after)
        own = None
        if decided(after, undone).record(self._step).status is StepStatus.COMPENSATED:
            own = choreography.RecordUndone(turn.order_id)
        await self._conclude(turn, saga, (*pending, *undone), own)

    async def _undo_effects(
        self, turn: _Turn, saga: Fulfillment
    ) -> tuple[fulfillment.FulfillmentCommand, ...]:
        """Undo what my step did if the saga is being undone; what to record then."""
        if saga.state is not FulfillmentState.COMPENSATING:
            return ()
        if not fulfillment.needs_undo(saga, self._step):
            return ()
        await self._effects.undo(fulfillment.undo_of(saga, self._step), turn.context)
        return (RecordStepCompensated(self._step),)

    async def _finish(self, turn: _Turn, saga: Fulfillment) -> None:
        """Confirm or reject the order when nothing is left to run or undo."""
        finish = await self._finishing(turn, saga)
        if finish is not None:
            await self._record_saga(turn, (finish,))

    async def _finishing(
        self, turn: _Turn, saga: fulfillment.FulfillmentSagaState
    ) -> RecordOrderConfirmed | RecordOrderRejected | None:
        """Confirm or reject the order when nothing is left to run or undo (keyed: done
        once however often asked); what the saga records then (None: not finished)."""
        action = fulfillment.next_action(saga)
        match action:
            case ConfirmTheOrder(order_id, key):
                confirm = commands.ConfirmOrder(order_id=order_id)
                if await self._effects.dispatch_or_refused(confirm, key, turn.context):
                    return RecordOrderConfirmed()
            case RejectTheOrder(order_id, reason, key, reject):
                if reject:
                    refuse = commands.RejectOrder(order_id=order_id, reason=reason)
                    if not await self._effects.dispatch_or_refused(refuse, key, turn.context):
                        return None  # cancelled meanwhile: OrderCancelled finishes it
                return RecordOrderRejected()
            case _:
                pass  # another participant's step to run or undo
        return None

    # ---------------------------------------------------------------- reads

    def _start(self, turn: _Turn, placed: order.OrderState) -> StartFulfillment:
        if placed is None or placed.shipping_address is None:
            raise ValueError(f"order {turn.order_id} was submitted without items or an address")
        return StartFulfillment(
            turn.order_id,
            placed.customer_id,
            tuple(fulfillment.Line(line.product_id, line.quantity) for line in placed.lines),
            placed.totals().total,
            placed.shipping_address,
        )

    # ------------------------------------------------------------ recording

    async def _record_saga(
        self, turn: _Turn, recorded: Sequence[fulfillment.FulfillmentCommand]
    ) -> Fulfillment:
        """Decide `recorded` in turn on the saga stream as last known in this turn and
        append them in one append (another writer got there first: read again, decide
        again). Ids: trigger + participant + what is recorded."""
        saga_id = FULFILLMENT.stream_id(turn.order_id)
        names = "+".join(type(command).__name__ for command in recorded)
        decided_saga = await self._decide_and_append.one(
            recording(turn.order_id, recorded, loaded=turn.known.pop(saga_id, None)),
            turn.context,
            key=f"{turn.trigger_id}:{self.participant}:{names}",
            append_empty=False,
        )
        saga: Fulfillment | None = decided_saga.state()
        assert saga is not None, "a recorded saga exists"
        turn.known[saga_id] = (saga, decided_saga.version)
        return saga

    async def _conclude(
        self,
        turn: _Turn,
        saga: fulfillment.FulfillmentSagaState,
        recorded: Sequence[fulfillment.FulfillmentCommand],
        own: choreography.ParticipantCommand | None,
    ) -> None:
        """Record `recorded` on the saga stream (after `saga`, as last known in this turn),
        finishing the saga when nothing is left after it (confirm or reject the order
        first: keyed, so idempotent), and my own event (None: none): in one append. My own
        event is what the next participant follows and what says the trigger was handled,
        so it and the saga's record are there together or not at all."""
        finish = await self._finishing(turn, decided_state(saga, recorded))
        if finish is not None:
            recorded = (*recorded, finish)
        saga_id, own_id = FULFILLMENT.stream_id(turn.order_id), self._own.stream_id(turn.order_id)
        decisions = [recording(turn.order_id, recorded, loaded=turn.known.pop(saga_id, None))]
        if own is not None:
            loaded = turn.known.pop(own_id, None)
            decisions.append(Decision(self._own, turn.order_id, own, loaded=loaded))
        decided_saga, *_ = await self._decide_and_append.together(
            decisions,
            turn.context,
            key=f"{turn.trigger_id}:{self.participant}:concluded",
            append_empty=False,
        )
        # Another writer's record got there first and decided otherwise: perhaps the
        # saga is finished by me after all (e.g. the last two undoing at once).
        now = decided_saga.state()
        turn.known[saga_id] = (now, decided_saga.version)
        if now is not None:
            await self._finish(turn, now)


def decided(
    saga: fulfillment.FulfillmentSagaState, recorded: Sequence[fulfillment.FulfillmentCommand]
) -> Fulfillment:
    """The saga once `recorded` is recorded (a started saga stays started; a saga not
    started yet is started by `recorded`)."""
    after = decided_state(saga, recorded)
    assert after is not None, "a started saga stays started"
    return after


def _cancelled(placed: order.OrderState) -> bool:
    return placed is not None and placed.status is order.OrderStatus.CANCELLED


def participants(
    store: EventStore,
    registry: EventTypeRegistry,
    bus: CommandBus,
    gateways: Gateways,
    *,
    only: Sequence[Participant] = PARTICIPANTS,
) -> list[FulfillmentParticipant]:
    return [FulfillmentParticipant(p, store, registry, bus, gateways) for p in only]
