"""A tiny decider for the tests of write_model/decide_and_append.py: a tally whose events
carry the total they leave, so an event decided on a stale state shows."""

from __future__ import annotations

from dataclasses import dataclass

from write_model.registry import EventTypeRegistry
from write_model.snapshots import StateSnapshots
from write_model.streams import Decider


@dataclass(frozen=True, slots=True)
class Add:
    amount: int


@dataclass(frozen=True, slots=True)
class Added:
    amount: int
    total: int  # the tally after it


def decide(command: Add, total: int) -> list[Added]:
    if command.amount == 0:
        return []
    return [Added(command.amount, total + command.amount)]


def evolve(total: int, event: Added) -> int:
    return event.total


TALLY = Decider("Tally", decide, evolve, 0)
SNAPSHOTTED_TALLY = Decider(
    "Tally", decide, evolve, 0, StateSnapshots(1, lambda t: {"total": t}, lambda d: d["total"])
)


def tally_registry() -> EventTypeRegistry:
    registry = EventTypeRegistry()
    registry.register(Added)
    return registry
