"""Projection status: what `orders projections status` prints and `projections` serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from read_model.document_store.port import DocumentStore, ProjectionState, RebuildStatus
from write_model.envelope import LogPosition
from write_model.event_store.port import EventStore


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    position: LogPosition
    head: LogPosition
    lag: int
    state: ProjectionState
    last_error: str | None
    updated_at: datetime | None


async def projection_statuses(
    events: EventStore, documents: DocumentStore
) -> list[ProjectionStatus]:
    head = await events.head_position()
    statuses = []
    for checkpoint in sorted(await documents.list_checkpoints(), key=lambda c: c.name):
        if checkpoint.rebuild in (RebuildStatus.SWITCHED, RebuildStatus.RETIRED):
            continue  # a finished rebuild: its version now serves under the projection's name
        # Positions are handed out densely, so their difference counts the events behind
        # (a rolled-back append leaves a gap, which only ever overstates the lag).
        lag = max(head.position - checkpoint.position.position, 0)
        statuses.append(
            ProjectionStatus(
                checkpoint.name,
                checkpoint.position,
                head,
                lag,
                checkpoint.state,
                checkpoint.last_error,
                checkpoint.updated_at,
            )
        )
    return statuses
