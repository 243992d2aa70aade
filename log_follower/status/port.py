"""The StatusBoard port: each follower's leader reports on it when it starts leading and at
least every heartbeat; readers compute lag and staleness from the reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from log_follower.checkpoint.port import FollowerState
from log_follower.consumer import FollowerKind
from write_model.envelope import LogPosition


@dataclass(frozen=True, slots=True)
class FollowerReport:
    follower: str
    kind: FollowerKind
    leader: str  # which process leads: "<host>:<pid>"
    leader_since: datetime
    heartbeat_at: datetime
    position: LogPosition
    state: FollowerState
    last_error: str | None = None
    # False once the leader stopped leading cleanly (a stop, lost leadership).
    leading: bool = True


class StatusBoard(Protocol):
    async def report(self, report: FollowerReport) -> None:
        """Replace the follower's report."""
        ...

    async def reports(self) -> list[FollowerReport]:
        """Every follower's last report, by name."""
        ...
