"""Every follower as operators see it (the `processes` query, /readyz, /metrics): the
followers a deployment is expected to run, and any other that reported, each with whether
one leads and since when, its position against the head, lag, the age of its oldest
unhandled event, parked letters and last heartbeat.

A follower leads while its leader's last report says so and is younger than
`stale_seconds` (a leader reports at least every heartbeat); one that never reported has
no leader and is at the start of the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from log_follower.checkpoint.port import FollowerState
from log_follower.consumer import FollowerKind
from log_follower.dead_letters.port import DeadLetters
from log_follower.source.port import Source
from log_follower.status.port import FollowerReport, StatusBoard
from write_model.envelope import LogPosition


@dataclass(frozen=True, slots=True)
class FollowerStatus:
    name: str
    kind: FollowerKind
    leading: bool
    leader: str | None  # "<host>:<pid>" of the last leader
    leader_since: datetime | None
    position: LogPosition
    head: LogPosition
    lag: int  # events after its position
    oldest_unhandled_seconds: float | None  # age of the first of them; None: none waits
    parked: int  # its dead letters
    heartbeat_at: datetime | None
    state: FollowerState | None
    last_error: str | None

    def warning(self, stale_seconds: float) -> str | None:
        """Why an operator should look (None: nothing to say): nobody leads it, or its
        oldest unhandled event has waited longer than `stale_seconds`."""
        if not self.leading:
            waiting = f"; {self.lag} events wait" if self.lag else ""
            return f"no process leads {self.kind.value} {self.name}{waiting}"
        waited = self.oldest_unhandled_seconds
        if waited is not None and waited > stale_seconds:
            return (
                f"{self.kind.value} {self.name} has not caught up for {waited:.0f} s "
                f"({self.lag} events wait)"
            )
        return None


async def follower_statuses(
    expected: Sequence[tuple[str, FollowerKind]],
    board: StatusBoard,
    letters: DeadLetters,
    source: Source,
    *,
    stale_seconds: float,
    now: datetime,
) -> list[FollowerStatus]:
    reports = {report.follower: report for report in await board.reports()}
    kinds = dict(expected)
    for name, report in reports.items():
        kinds.setdefault(name, report.kind)
    head = await source.head()
    return [
        await _status(name, kind, reports.get(name), head, letters, source, stale_seconds, now)
        for name, kind in sorted(kinds.items())
    ]


async def _status(
    name: str,
    kind: FollowerKind,
    report: FollowerReport | None,
    head: LogPosition,
    letters: DeadLetters,
    source: Source,
    stale_seconds: float,
    now: datetime,
) -> FollowerStatus:
    position = report.position if report is not None else LogPosition.start()
    # Counted, not computed from positions: the log is ordered by (transaction id,
    # position), so a position difference can hide events behind the checkpoint.
    lag = await source.count_after(position)
    oldest = None
    if lag:
        first = await source.read(position, 1)
        if first:
            oldest = max(0.0, (now - first[0].occurred_at).total_seconds())
    leading = (
        report is not None
        and report.leading
        and (now - report.heartbeat_at).total_seconds() <= stale_seconds
    )
    return FollowerStatus(
        name=name,
        kind=kind,
        leading=leading,
        leader=report.leader if report is not None else None,
        leader_since=report.leader_since if report is not None and leading else None,
        position=position,
        head=head,
        lag=lag,
        oldest_unhandled_seconds=oldest,
        parked=await letters.count(name),
        heartbeat_at=report.heartbeat_at if report is not None else None,
        state=report.state if report is not None else None,
        last_error=report.last_error if report is not None else None,
    )
