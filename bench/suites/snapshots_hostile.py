"""Two in-process benchmarks without peers: snapshots (bench/snapshots.py: ReserveStock
after 10 and 10,000 earlier reservations, with and without snapshots, PostgreSQL) and
hostile queries (bench/hostile.py: CPU per request of refused and worst accepted documents,
embedded stores)."""

from __future__ import annotations

import os

from bench import hostile, snapshots
from bench.figures import Curve, Run, suite

SNAPSHOT_EVERY = 100
REFUSED_TARGET_MS = hostile.REFUSED_TARGET_MS
ACCEPTED_TARGET_MS = 50.0  # CPU of any accepted query (the issue "Speed": a cost limit)


@suite("snapshots", order=50, title="Snapshots", needs=("postgres",))
async def snapshot_suite(run: Run) -> None:
    run.curve(
        Curve(
            "snapshots",
            "ReserveStock p50 by earlier reservations on the product",
            "earlier reservations",
            "ms",
            log_y=True,
        )
    )
    found = await snapshots.measure_all(
        os.environ["DATABASE_URL"], run.scale.pick(30, 3), SNAPSHOT_EVERY
    )
    for (history, every), (p50, p99, folded) in found.items():
        mode = f"snapshots every {every}" if every else "no snapshots"
        run.figure(
            f"snapshots.h{history}.every{every}",
            f"ReserveStock after {history:,} reservations, {mode}",
            p50,
            "ms p50",
            f"p99 {p99:.1f} ms, at most {folded:,} events folded per load",
            lower_is_better=True,
            curve="snapshots",
            series=mode,
            x=history,
        )


@suite("hostile", order=60, title="Hostile queries")
async def hostile_suite(run: Run) -> None:
    found = await hostile.main(run.scale.pick(100, 10), run.scale.pick(5, 1))
    for kind, documents in found.items():
        for n, (name, (cpu, wall)) in enumerate(documents.items()):
            figure = run.figure(
                f"hostile.{kind}.{n}",
                f"{kind}: {name}",
                cpu,
                "ms CPU",
                f"wall {wall:.1f} ms",
                lower_is_better=True,
            )
            run.target(
                figure, at_most=REFUSED_TARGET_MS if kind == "refused" else ACCEPTED_TARGET_MS
            )
