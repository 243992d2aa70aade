"""The write side's streams: a `Decider` per stream type (write_model/handlers.py has
them), and `Streams`, which loads an entity's state for command handling: folded from its
stream's events, from the latest snapshot on when its decider has snapshots
(write_model/snapshots.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from write_model import stream_ids
from write_model.envelope import RecordedEvent
from write_model.event_store.port import EventStore, StreamFromSnapshot
from write_model.registry import EventTypeRegistry
from write_model.snapshots import SnapshotPolicy, StateSnapshots

log = logging.getLogger(__name__)

C = TypeVar("C")
E = TypeVar("E")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Decider(Generic[C, E, S]):
    stream_type: str
    decide: Callable[[C, S], list[E]]
    evolve: Callable[[S, E], S]
    initial_state: S
    # Loaded from snapshots of its state (write_model/snapshots.py); None: always folded.
    snapshots: StateSnapshots[S] | None = None

    def stream_id(self, entity_id: str) -> str:
        return stream_ids.stream_id(self.stream_type, entity_id)


class Streams:
    """The write side's streams, each folded by its decider, from its snapshot when the
    decider has snapshots (see write_model/snapshots.py)."""

    def __init__(
        self, store: EventStore, registry: EventTypeRegistry, *, snapshot_every: int = 0
    ) -> None:
        self._store = store
        self._registry = registry
        self.snapshots = SnapshotPolicy(store, snapshot_every)

    async def load(self, decider: Decider[C, E, S], entity_id: str) -> tuple[S, int]:
        """The entity's state and its stream's version (0: no stream)."""
        [loaded] = await self.load_many([(decider, entity_id)])
        return loaded

    async def load_many(
        self, targets: Sequence[tuple[Decider[Any, Any, Any], str]]
    ) -> list[tuple[Any, int]]:
        """Several entities' streams in one read of the store, each folded by its decider."""
        ids = [decider.stream_id(entity_id) for decider, entity_id in targets]
        found = await self._store.read_from_snapshots(
            {
                stream_id: decider.snapshots.schema_version if decider.snapshots else None
                for (decider, _), stream_id in zip(targets, ids, strict=True)
            }
        )
        return [
            await self._state(decider, stream_id, found[stream_id])
            for (decider, _), stream_id in zip(targets, ids, strict=True)
        ]

    async def _state(
        self, decider: Decider[C, E, S], stream_id: str, found: StreamFromSnapshot
    ) -> tuple[S, int]:
        state = decider.initial_state
        snapshot, events = found.snapshot, found.events
        if snapshot is not None and decider.snapshots is not None:
            try:
                state = decider.snapshots.from_data(snapshot.data)
            except ValueError:
                # Its schema version says it fits, yet it does not: fold the events instead.
                log.warning(
                    "snapshot of %s at version %d unreadable; folding its events",
                    stream_id,
                    snapshot.version,
                    exc_info=True,
                )
                state, events = decider.initial_state, await self._store.read_stream(stream_id)
        state = self.fold(decider, state, events)
        version = events[-1].version if events else found.version
        if decider.snapshots is not None and self.snapshots.folded_enough(len(events)):
            await self.snapshots.save(stream_id, decider.snapshots, state, version)
        return state, version

    def fold(self, decider: Decider[C, E, S], state: S, events: Sequence[RecordedEvent]) -> S:
        for recorded in events:
            event = self._registry.deserialize(
                recorded.type, recorded.data, recorded.metadata.schema_version
            )
            state = decider.evolve(state, event)
        return state
