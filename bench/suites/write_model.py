"""Write model: the 5-command order workload (bench/write_model.py) at each client count,
beside the `eventsourcing` library on the same workload and PostgreSQL (peer) and pgbench's
one-row insert at the same client count (ceiling), each on a database of its own in the same
cluster, interleaved per client count so that the machine's load falls on all three."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

from bench.common import ROOT, own_postgres_database, say
from bench.figures import Curve, Run, suite
from bench.peers.pgbench import insert_tps
from bench.write_model import run as orders_workload


async def eventsourcing_workload(dsn: str, clients: int, seconds: float) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.peers.eventsourcing_orders",
        dsn,
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output = (await process.communicate())[0].decode()
    if process.returncode != 0:
        raise RuntimeError(f"the eventsourcing peer failed ({process.returncode}): {output}")
    workload: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return workload


@suite("write_model", order=10, title="Write model", needs=("postgres",))
async def write_model(run: Run) -> None:
    admin = os.environ["DATABASE_URL"]
    seconds = run.scale.seconds
    run.curve(
        Curve(
            "write_model",
            "Write model: 5-command order workload, PostgreSQL",
            "clients",
            "commands/s (pgbench: inserts/s)",
            log_y=True,
        )
    )
    say("  create + 3 x add item + submit per order; each command load -> decide -> append")
    tag = uuid.uuid4().hex[:8]
    # The targets name 1 and 8 clients: 8 joins the curve's points (1, 4, 16, 64), so that
    # `make bench` prints the ratio at 8 instead of leaving it unmeasured.
    targets = {1: 4.0, 8: 8.0}
    points = run.scale.clients if run.scale.smoke else sorted({*run.scale.clients, *targets})
    for clients in points:
        async with own_postgres_database(admin, f"bench_wm_{tag}_{clients}") as dsn:
            measured = await orders_workload(dsn, clients, seconds)
        orders = run.figure(
            f"write_model.orders.c{clients}",
            f"5-command order workload, {clients} clients",
            measured.rate,
            "commands/s",
            f"p50 {measured.p50_ms:.2f} ms, p99 {measured.p99_ms:.2f} ms",
            curve="write_model",
            series="Orders",
            x=clients,
        )
        async with own_postgres_database(admin, f"bench_es_{tag}_{clients}") as dsn:
            peer = await eventsourcing_workload(dsn, clients, seconds)
        eventsourcing = run.figure(
            f"write_model.eventsourcing.c{clients}",
            "`eventsourcing` 9.5.6, same workload",
            peer["commands"] / peer["seconds"],
            "commands/s",
            f"p50 {peer['p50_ms']:.2f} ms, p99 {peer['p99_ms']:.2f} ms",
            peer=True,
            curve="write_model",
            series="eventsourcing 9.5.6 (peer)",
            x=clients,
        )
        async with own_postgres_database(admin, f"bench_pgb_{tag}_{clients}") as dsn:
            tps = await insert_tps(dsn, clients, seconds)
        pgbench = run.figure(
            f"write_model.pgbench.c{clients}",
            "pgbench one-row insert",
            tps,
            "tps",
            peer=True,
            curve="write_model",
            series="pgbench one-row insert (ceiling)",
            x=clients,
        )
        # Targets of the issue "Speed": 8x the library at 8 clients, 4x at 1.
        run.bound(orders, eventsourcing, "peer", at_least=targets.get(clients))
        run.bound(orders, pgbench, "ceiling")
