"""The operators' side of the contract: projection statuses and dead letters; and every
follower of the log (`processes`)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from log_follower.status.view import FollowerStatus
from read_model.document_store.port import Document
from read_model.service import LETTER_ORDERING
from read_model.status import ProjectionStatus as Status
from schema.pagination import Ordering


@strawberry.type
class ProjectionStatus:
    name: str
    position: str = strawberry.field(description="last global position applied")
    head_position: str = strawberry.field(description="newest global position in the log")
    lag: int = strawberry.field(description="events not yet applied")
    state: str = strawberry.field(
        description="RUNNING | CATCHING_UP | REBUILDING | STOPPED | FAILED"
    )
    last_error: str | None
    updated_at: datetime | None

    @staticmethod
    def of(status: Status) -> ProjectionStatus:
        return ProjectionStatus(
            name=status.name,
            position=str(status.position.position),
            head_position=str(status.head.position),
            lag=status.lag,
            state=status.state,
            last_error=status.last_error,
            updated_at=status.updated_at,
        )


@strawberry.type(description="A follower of the event log and the processes that run it")
class ProcessStatus:
    name: str
    kind: str = strawberry.field(description="PROJECTION | SAGA | PARTICIPANT | RELAY")
    leading: bool = strawberry.field(description="a process leads it now")
    leader: str | None = strawberry.field(description="the last leading process: host:pid")
    leader_since: datetime | None = strawberry.field(description="since when it leads")
    position: str = strawberry.field(description="last global position handled")
    head_position: str = strawberry.field(description="newest global position in the log")
    lag: int = strawberry.field(description="events in the log after its position")
    oldest_unhandled_seconds: float | None = strawberry.field(
        description="age of the oldest event it has not handled; null when none waits"
    )
    parked_letters: int = strawberry.field(description="its dead letters")
    last_heartbeat: datetime | None = strawberry.field(
        description="when its leader last reported; null when none ever did"
    )
    state: str | None = strawberry.field(description="RUNNING | CATCHING_UP | FAILED")
    last_error: str | None

    @staticmethod
    def of(status: FollowerStatus) -> ProcessStatus:
        return ProcessStatus(
            name=status.name,
            kind=status.kind.value.upper(),
            leading=status.leading,
            leader=status.leader,
            leader_since=status.leader_since,
            position=str(status.position.position),
            head_position=str(status.head.position),
            lag=status.lag,
            oldest_unhandled_seconds=status.oldest_unhandled_seconds,
            parked_letters=status.parked,
            last_heartbeat=status.heartbeat_at,
            state=None if status.state is None else status.state.value,
            last_error=status.last_error,
        )


DEAD_LETTER_ORDERING = Ordering("deadLetters", LETTER_ORDERING)


@strawberry.type
class DeadLetter:
    id: strawberry.ID
    subscriber: str = strawberry.field(description="projection or saga that failed")
    event_id: strawberry.ID
    stream_id: str
    position: str
    error: str
    attempts: int
    failed_at: datetime
    cursor: str = strawberry.field(
        description="pass as `after` to `deadLetters` for the letters that follow this one"
    )

    @staticmethod
    def of(doc: Document) -> DeadLetter:
        return DeadLetter(
            id=strawberry.ID(doc["_id"]),
            subscriber=doc["subscriber"],
            event_id=strawberry.ID(doc["eventId"]),
            stream_id=doc["streamId"],
            position=str(doc["position"]),
            error=doc["error"],
            attempts=doc["attempts"],
            failed_at=doc["failedAt"],
            cursor=DEAD_LETTER_ORDERING.cursor(doc),
        )
