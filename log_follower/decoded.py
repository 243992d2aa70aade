"""Read and decode once per process: the followers of a process are handed the same batch
by the shared reader (source/shared.py); those that decode payloads into domain events
(the projections) decode through one `DecodedEvents`, so each event is decoded once
however many of them handle it, and however often one looks at it in a batch."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import UUID

from write_model.envelope import RecordedEvent
from write_model.registry import EventTypeRegistry


class DecodedEvents:
    """The registry's decoding (upcasting included), remembered for the last `keep`
    events. Domain events are frozen dataclasses, so one decoded event is safely shared.
    A payload that cannot be decoded raises every time (nothing is remembered)."""

    def __init__(self, registry: EventTypeRegistry, keep: int = 20_000) -> None:
        self._registry = registry
        self._keep = keep
        self._decoded: OrderedDict[UUID, Any] = OrderedDict()

    def decode(self, event: RecordedEvent) -> Any:
        found = self._decoded.get(event.event_id)
        if found is None:
            found = self._registry.deserialize(
                event.type, event.data, event.metadata.schema_version
            )
            self._decoded[event.event_id] = found
            if len(self._decoded) > self._keep:
                self._decoded.popitem(last=False)
        return found
