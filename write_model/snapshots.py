"""Aggregate snapshots for command handling: a stream that grows with every command (a
product reserved by every order) is loaded from its latest snapshot plus the events after
it, so a load folds fewer than `every` events however long the stream is (what is left to
pay grows only with the state itself).

A decider that snapshots declares its state's schema version and (de)serialisers
(`StateSnapshots`, built from the state's frozen dataclass by pydantic: Decimal money as
strings, tuples as lists, enums as their values). Raise `schema_version` whenever the
state's shape changes: snapshots of another schema version are then ignored, the state is
folded from the events, and a snapshot of the new shape replaces the old one.

When a snapshot is saved (`SnapshotPolicy`): after an append that takes the stream across
a multiple of `every` events, and after a load that had to fold `every` or more events
(no snapshot yet, one of another schema, or one that could not be saved earlier). Saving
is an optimisation: a failure is logged with its stream and never fails the command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from write_model.event_store.port import EventStore, Snapshot

log = logging.getLogger(__name__)

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class StateSnapshots(Generic[S]):
    """How a decider's (present, not None) state is kept in a snapshot."""

    schema_version: int
    to_data: Callable[[S], dict[str, Any]]
    from_data: Callable[[dict[str, Any]], S]


def dataclass_snapshots(state_type: type[Any], schema_version: int) -> StateSnapshots[Any]:
    """Snapshots of a frozen dataclass state, through pydantic (JSON-ready both ways)."""
    adapter: TypeAdapter[Any] = TypeAdapter(state_type)

    def to_data(state: Any) -> dict[str, Any]:
        data: dict[str, Any] = adapter.dump_python(state, mode="json")
        return data

    return StateSnapshots(schema_version, to_data, adapter.validate_python)


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """`every`: events between snapshots of a stream; 0 saves none (snapshots already
    stored are still read)."""

    store: EventStore
    every: int

    def crossed(self, version_before: int, version_after: int) -> bool:
        """An append from `version_before` to `version_after` passed a multiple of `every`."""
        return self.every > 0 and version_before // self.every < version_after // self.every

    def folded_enough(self, events_folded: int) -> bool:
        return self.every > 0 and events_folded >= self.every

    async def save(
        self, stream_id: str, snapshots: StateSnapshots[Any], state: Any, version: int
    ) -> None:
        """Save the state at `version`; a failure is logged, never raised: the command it
        follows has succeeded (or the load has its state) either way."""
        if state is None or version <= 0:
            return
        try:
            data = snapshots.to_data(state)
            await self.store.save_snapshot(
                stream_id, Snapshot(version, snapshots.schema_version, data)
            )
        except Exception:
            log.warning(
                "snapshot of %s at version %d (state schema %d) not saved; the stream is "
                "folded from its events until one is",
                stream_id,
                version,
                snapshots.schema_version,
                exc_info=True,
            )
