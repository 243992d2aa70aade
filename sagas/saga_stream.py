"""The saga stream `Fulfillment-<orderId>` as the orchestrator (sagas/orchestrator.py)
and the choreography participants (sagas/choreography/participant.py) read and record it:
a sequence of commands of the saga decider (write_model/domain/fulfillment.py) decided in
turn and appended in one append, through the one decide-and-append
(write_model/decide_and_append.py). Event ids derive from the trigger and what is
recorded, so a driver repeating itself after a crash appends nothing twice."""

from __future__ import annotations

from collections.abc import Sequence

from write_model.command_context import CommandContext
from write_model.decide_and_append import DecideAndAppend, Decided, Decision
from write_model.domain import fulfillment
from write_model.domain.fulfillment import CancelFulfillment, FulfillmentCommand
from write_model.streams import Decider, Streams

FULFILLMENT = Decider(
    fulfillment.STREAM_TYPE, fulfillment.decide, fulfillment.evolve, fulfillment.initial_state
)
Loaded = tuple[fulfillment.FulfillmentSagaState, int]


def decided_events(
    saga: fulfillment.FulfillmentSagaState, recorded: Sequence[FulfillmentCommand]
) -> list[fulfillment.FulfillmentEvent]:
    """The events of the commands decided in turn, each on the state the previous left;
    none for a cancel of a saga that never started (e.g. a draft cancelled)."""
    if saga is None and recorded and isinstance(recorded[0], CancelFulfillment):
        return []
    events = []
    for command in recorded:
        decided = fulfillment.decide(command, saga)
        for event in decided:
            saga = fulfillment.evolve(saga, event)
        events.extend(decided)
    return events


def _decide_sequence(
    recorded: Sequence[FulfillmentCommand], saga: fulfillment.FulfillmentSagaState
) -> list[fulfillment.FulfillmentEvent]:
    return decided_events(saga, recorded)


# The saga decider over a sequence of its commands: what one append records.
SEQUENCE: Decider[
    Sequence[FulfillmentCommand], fulfillment.FulfillmentEvent, fulfillment.FulfillmentSagaState
] = Decider(fulfillment.STREAM_TYPE, _decide_sequence, fulfillment.evolve, None)


def decided_state(
    saga: fulfillment.FulfillmentSagaState, unrecorded: Sequence[FulfillmentCommand]
) -> fulfillment.FulfillmentSagaState:
    """The saga as it will be once `unrecorded` is recorded."""
    for event in decided_events(saga, unrecorded):
        saga = fulfillment.evolve(saga, event)
    return saga


def recording(
    order_id: str, recorded: Sequence[FulfillmentCommand], *, loaded: Loaded | None = None
) -> Decision:
    """The decision that records `recorded` on the order's saga stream (decided on
    `loaded` first when given, else on the stream as read)."""
    return Decision(SEQUENCE, order_id, tuple(recorded), loaded=loaded)


def recorded_key(trigger_id: str, recorded: Sequence[FulfillmentCommand]) -> str:
    """What event ids derive from: the trigger and what is recorded (commands are frozen
    dataclasses; their repr names each with its values), the same after a crash."""
    return f"{trigger_id}:{recorded!r}"


class SagaStream:
    def __init__(self, decide_and_append: DecideAndAppend, streams: Streams) -> None:
        self._decide_and_append = decide_and_append
        self._streams = streams

    async def load(self, order_id: str) -> Loaded:
        return await self._streams.load(FULFILLMENT, order_id)

    async def record(
        self,
        order_id: str,
        recorded: Sequence[FulfillmentCommand],
        context: CommandContext,
        *,
        loaded: Loaded | None = None,
    ) -> Loaded:
        """Decide the commands in turn on the saga stream and append their events in one
        append (another writer got there first: read again, decide again). `loaded`: the
        saga as last read or recorded (else it is read). Returns the saga's state and
        version after it."""
        trigger = context.causation_id
        decided: Decided = await self._decide_and_append.one(
            recording(order_id, recorded, loaded=loaded),
            context,
            key=None if trigger is None else recorded_key(trigger, recorded),
            append_empty=False,
        )
        return decided.state(), decided.version
