"""A report as a row of the SQL adapters' `follower_status` table (sqlite, postgres)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from log_follower.checkpoint.port import FollowerState
from log_follower.consumer import FollowerKind
from log_follower.status.port import FollowerReport
from write_model.envelope import LogPosition

COLUMNS = (
    "follower, kind, leader, leader_since, heartbeat_at, transaction_id, position, state, "
    "last_error, is_leading"
)


def as_row(report: FollowerReport) -> tuple[Any, ...]:
    return (
        report.follower,
        report.kind.value,
        report.leader,
        report.leader_since,
        report.heartbeat_at,
        report.position.transaction_id,
        report.position.position,
        report.state.value,
        report.last_error,
        report.leading,
    )


def from_row(row: Any, moment: Callable[[Any], datetime]) -> FollowerReport:
    return FollowerReport(
        follower=row[0],
        kind=FollowerKind(row[1]),
        leader=row[2],
        leader_since=moment(row[3]),
        heartbeat_at=moment(row[4]),
        position=LogPosition(int(row[5]), int(row[6])),
        state=FollowerState(row[7]),
        last_error=row[8],
        leading=bool(row[9]),
    )
