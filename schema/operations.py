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


@strawberry.type(
    description="One projection of the event log into the read model, and how far behind it is."
)
class ProjectionStatus:
    name: str = strawberry.field(description="Which projection: customers, orders or products.")
    position: str = strawberry.field(description="last global position applied")
    head_position: str = strawberry.field(description="newest global position in the log")
    lag: int = strawberry.field(description="events not yet applied")
    state: str = strawberry.field(
        description="RUNNING | CATCHING_UP | REBUILDING | STOPPED | FAILED"
    )
    last_error: str | None = strawberry.field(
        description="The last error it met, if any (its dead letters say more)."
    )
    updated_at: datetime | None = strawberry.field(
        description="When its leader last saved its checkpoint (UTC)."
    )

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
    name: str = strawberry.field(
        description="Which follower: a projection, a saga subscriber, a participant or the relay."
    )
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
    last_error: str | None = strawberry.field(
        description="The last error it met, if any (its dead letters say more)."
    )

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


@strawberry.type(
    description="An event a projection or the saga failed to handle after its retries: parked, "
    "with its stream's later events, until retryDeadLetter."
)
class DeadLetter:
    id: strawberry.ID = strawberry.field(description="Id to pass to retryDeadLetter.")
    subscriber: str = strawberry.field(description="projection or saga that failed")
    event_id: strawberry.ID = strawberry.field(description="Id of the parked event.")
    stream_id: str = strawberry.field(description="Stream of the parked event.")
    position: str = strawberry.field(
        description="Global log position of the parked event (64-bit, as a string)."
    )
    error: str = strawberry.field(description="The error of its last attempt.")
    attempts: int = strawberry.field(description="How many times it was tried.")
    failed_at: datetime = strawberry.field(description="When it was parked (UTC).")
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
