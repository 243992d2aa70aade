"""Conformance suite of the StatusBoard port (log_follower/status/), run against every
adapter (memory, SQLite, PostgreSQL): a follower's report replaces its last one, every
follower's is listed by name, and a report round-trips whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from log_follower.checkpoint.port import FollowerState
from log_follower.consumer import FollowerKind
from log_follower.status.port import FollowerReport
from tests.contracts.conftest import Stores
from write_model.envelope import LogPosition

SINCE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def report(follower: str, **changes: object) -> FollowerReport:
    return replace(
        FollowerReport(
            follower=follower,
            kind=FollowerKind.PARTICIPANT,
            leader="host-a:41",
            leader_since=SINCE,
            heartbeat_at=SINCE + timedelta(seconds=2),
            position=LogPosition(12, 340),
            state=FollowerState.RUNNING,
        ),
        **changes,
    )


async def test_a_report_round_trips_and_replaces_the_last(
    saga_storage: Stores, unique: str
) -> None:
    board = saga_storage.followers.status
    first = report(f"{unique}-b")
    later = report(
        f"{unique}-b",
        leader="host-b:7",
        heartbeat_at=SINCE + timedelta(minutes=5),
        position=LogPosition(13, 400),
        state=FollowerState.FAILED,
        last_error="ConnectionError: reset",
        leading=False,
    )
    other = report(f"{unique}-a", kind=FollowerKind.RELAY)

    await board.report(first)
    await board.report(other)
    await board.report(later)

    mine = [r for r in await board.reports() if r.follower.startswith(unique)]
    assert mine == [other, later]
