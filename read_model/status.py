"""Projection status: what `orders projections status` prints and `projections` serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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
    events: EventStore, documents: DocumentStore, stale_seconds: float = 10.0
) -> list[ProjectionStatus]:
    """One per checkpoint. A projection whose checkpoint has not been saved for
    `stale_seconds` (its leader saves at least every heartbeat) while events wait for it
    is STOPPED, whatever state its last save recorded."""
    head = await events.head_position()
    now = datetime.now(UTC)
    statuses = []
    for checkpoint in sorted(await documents.list_checkpoints(), key=lambda c: c.name):
        if checkpoint.rebuild in (RebuildStatus.SWITCHED, RebuildStatus.RETIRED):
            continue  # a finished rebuild: its version now serves under the projection's name
        # Positions are handed out densely, so their difference counts the events behind
        # (a rolled-back append leaves a gap, which only ever overstates the lag).
        lag = max(head.position - checkpoint.position.position, 0)
        state = checkpoint.state
        saved = checkpoint.updated_at
        if lag and saved is not None and (now - saved).total_seconds() > stale_seconds:
            state = ProjectionState.STOPPED
        statuses.append(
            ProjectionStatus(
                checkpoint.name,
                checkpoint.position,
                head,
                lag,
                state,
                checkpoint.last_error,
                checkpoint.updated_at,
            )
        )
    return statuses
