"""The saga stream `Fulfillment-<orderId>` as the orchestrator (sagas/
orchestrator.py) reads and records it: commands of the saga decider
(write_model/domain/fulfillment.py) decided in turn and appended in one append, each event
with an id derived from the stream and its version, so a driver repeating itself after a
crash appends nothing twice."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from write_model.bus import new_events
from write_model.command_context import CommandContext
from write_model.domain import fulfillment
from write_model.domain.fulfillment import CancelFulfillment, FulfillmentCommand
from write_model.event_store.port import NO_STREAM, EventStore, WrongExpectedVersion
from write_model.registry import EventTypeRegistry
from write_model.streams import Decider, Streams

FULFILLMENT = Decider(
    fulfillment.STREAM_TYPE, fulfillment.decide, fulfillment.evolve, fulfillment.initial_state
)
Loaded = tuple[fulfillment.FulfillmentSagaState, int]
_EVENT_IDS = uuid.UUID("a3c1d7e0-5b2f-4e8a-9c41-7d2e0f6b3a95")


class SagaStream:
    def __init__(
        self,
        store: EventStore,
        registry: EventTypeRegistry,
        streams: Streams,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._registry = registry
        self._streams = streams
        self._clock = clock

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
        append, each with an id derived from the stream and its version (the same after a
        crash). `loaded`: the saga as last read or recorded (else it is read). Returns the
        saga's state and version after it."""
        stream_id = FULFILLMENT.stream_id(order_id)
        while True:
            saga, version = loaded if loaded is not None else await self.load(order_id)
            loaded = None
            if saga is None and isinstance(recorded[0], CancelFulfillment):
                return saga, version  # e.g. a draft cancelled: no saga ever started
            events = decided_events(saga, recorded)
            if not events:
                return saga, version
            # Ids from the stream and each event's version: the same after a crash.
            appended_events = new_events(
                self._registry,
                events,
                context,
                self._clock(),
                functools.partial(_event_id, stream_id, version),
            )
            try:
                appended = await self._store.append_to_stream(
                    stream_id,
                    fulfillment.STREAM_TYPE,
                    version if version > 0 else NO_STREAM,
                    appended_events,
                )
            except WrongExpectedVersion:
                continue  # another driver (a standby taking over) moved it: decide again
            for event in events:
                saga = fulfillment.evolve(saga, event)
            return saga, appended.version


def _event_id(stream_id: str, version: int, index: int) -> uuid.UUID:
    return uuid.uuid5(_EVENT_IDS, f"{stream_id}:{version + index + 1}")


def decided_events(
    saga: fulfillment.FulfillmentSagaState, recorded: Sequence[FulfillmentCommand]
) -> list[fulfillment.FulfillmentEvent]:
    """The events of the commands decided in turn, each on the state the previous left."""
    events = []
    for command in recorded:
        decided = fulfillment.decide(command, saga)
        for event in decided:
            saga = fulfillment.evolve(saga, event)
        events.extend(decided)
    return events


def decided_state(
    saga: fulfillment.FulfillmentSagaState, unrecorded: Sequence[FulfillmentCommand]
) -> fulfillment.FulfillmentSagaState:
    """The saga as it will be once `unrecorded` is recorded."""
    for event in decided_events(saga, unrecorded):
        saga = fulfillment.evolve(saga, event)
    return saga
