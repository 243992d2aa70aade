"""Projection status: what `orders projections status` prints and `projections` serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from read_model.document_store.port import DocumentStore, ProjectionState, RebuildStatus
from read_model.projections import ALL_PROJECTIONS
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
    """Every projection, sorted by name. A projection whose checkpoint has not been saved
    for `stale_seconds` (its leader saves at least every heartbeat) while events wait for it
    is STOPPED, whatever state its last save recorded. One with no checkpoint yet has
    applied nothing: position 0; RUNNING on an empty log (it is at the head), else
    CATCHING_UP (events wait for its first batch; without a saved checkpoint there is no
    heartbeat to call it stopped by, so a process starting beside its projector stays
    ready)."""
    head = await events.head_position()
    now = datetime.now(UTC)
    statuses = []
    for checkpoint in await documents.list_checkpoints():
        if checkpoint.rebuild in (RebuildStatus.SWITCHED, RebuildStatus.RETIRED):
            continue  # a finished rebuild: its version now serves under the projection's name
        # Counted, not computed from positions: the log is ordered by (transaction id,
        # position), so a position difference can hide events behind the checkpoint.
        lag = await events.count_after(checkpoint.position)
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
    with_checkpoint = {status.name for status in statuses}
    for projection in ALL_PROJECTIONS:
        if projection.name not in with_checkpoint:
            state = ProjectionState.RUNNING if head.position == 0 else ProjectionState.CATCHING_UP
            statuses.append(
                ProjectionStatus(
                    projection.name, LogPosition.start(), head, head.position, state, None, None
                )
            )
    return sorted(statuses, key=lambda status: status.name)
