"""Store calls timed, to say where a projector's time goes (a diagnosis aid)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import say

# Per projection, per store method: [calls, seconds, documents, in flight].
Timings = dict[str, dict[str, list[float]]]


class Timed:
    """A store whose async methods add their wall time to `totals` (a diagnosis aid).

    Per method: [calls, seconds, documents, in flight]. A call in flight has its start
    subtracted from `seconds`, so `seconds + in_flight * now` is the time spent so far."""

    def __init__(self, inner: object, totals: dict[str, list[float]]) -> None:
        self._inner = inner
        self._totals = totals

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attribute):
            return attribute

        async def timed(*args: Any, **kwargs: Any) -> Any:
            entry = self._totals.setdefault(name, [0, 0.0, 0, 0])
            entry[0] += 1
            entry[2] += _documents_in(name, args, kwargs)
            entry[3] += 1
            entry[1] -= time.perf_counter()
            try:
                return await attribute(*args, **kwargs)
            finally:
                entry[1] += time.perf_counter()
                entry[3] -= 1

        return timed


def _documents_in(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    position, keyword = {
        "bulk_write": (0, "puts"),
        "get_many": (1, "ids"),
    }.get(method, (None, ""))
    if position is None:
        return 0
    return len(args[position]) if len(args) > position else len(kwargs.get(keyword, ()))


def timings_from_now(timings: Timings) -> None:
    """Forget what was timed so far; calls in flight count from now on."""
    now = time.perf_counter()
    for totals in timings.values():
        for entry in totals.values():
            entry[:] = [0, -entry[3] * now, 0, entry[3]]


def timed_seconds(entry: list[float]) -> float:
    return entry[1] + entry[3] * time.perf_counter()


def report_timings(timings: Timings, wall: float) -> None:
    for name, totals in timings.items():
        parts = []
        for call, entry in sorted(
            totals.items(), key=lambda kv: timed_seconds(kv[1]), reverse=True
        ):
            calls, documents, in_flight = entry[0], entry[2], entry[3]
            seconds = timed_seconds(entry)
            if seconds < 0.05 * wall and call not in ("bulk_write", "get_many"):
                continue
            per = f", {seconds * 1000 / documents:.1f} ms per document" if documents else ""
            flying = f", {in_flight:.0f} still running" if in_flight else ""
            parts.append(
                f"{call} {calls:,.0f} calls{flying} {seconds:.1f} s ({seconds / wall:.0%} of "
                f"the run{per})"
            )
        say(f"    {name}: " + "; ".join(parts))
