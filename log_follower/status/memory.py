"""In-memory status board: one process's followers (tests, `orders dev` on memory stores)."""

from __future__ import annotations

from log_follower.status.port import FollowerReport


class InMemoryStatusBoard:
    def __init__(self) -> None:
        self._reports: dict[str, FollowerReport] = {}

    async def report(self, report: FollowerReport) -> None:
        self._reports[report.follower] = report

    async def reports(self) -> list[FollowerReport]:
        return [self._reports[name] for name in sorted(self._reports)]
