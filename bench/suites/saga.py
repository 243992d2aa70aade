"""Fulfillment saga (bench/saga.py), orchestration and choreography, on PostgreSQL: sagas
per second with 100, 1,000 and 10,000 orders queued before the saga starts, and submit ->
OrderConfirmed latency at 50 submits/s; each on a database of its own."""

from __future__ import annotations

import os
import uuid

from app.wiring import SagaMode
from bench.common import own_postgres_database
from bench.figures import Curve, Run, suite
from bench.saga import latency, throughput

MODES: tuple[SagaMode, ...] = ("orchestration", "choreography")
# Targets of the issue "Speed" (sagas/s with 1,000 queued; p99 at 50 submits/s).
THROUGHPUT_TARGET = {"orchestration": 300.0, "choreography": 200.0}
LATENCY_TARGET_MS = {"choreography": 250.0}


@suite("saga", order=40, title="Saga", needs=("postgres",))
async def saga(run: Run) -> None:
    admin = os.environ["DATABASE_URL"]
    run.curve(
        Curve("saga", "Fulfillment saga: sagas/s by orders queued", "orders queued", "sagas/s")
    )
    queued = run.scale.sizes("saga_queued", (100, 1_000, 10_000), (20,))
    rate = run.scale.pick(50.0, 20.0)
    seconds = run.scale.pick(8.0, 1.0)
    warm_up = run.scale.pick(2.0, 0.0)
    for mode in MODES:
        for orders in queued:
            async with own_postgres_database(admin, f"bench_saga_{uuid.uuid4().hex[:8]}") as dsn:
                measured = await throughput(dsn, orders, mode)
            figure = run.figure(
                f"saga.{mode}.q{orders}",
                f"{mode}, {orders:,} orders queued",
                measured.sagas_per_second,
                "sagas/s",
                f"{measured.statements_per_saga:.1f} statements, "
                f"{measured.cpu_ms_per_saga:.2f} ms CPU + "
                f"{measured.server_cpu_ms_per_saga:.2f} ms PostgreSQL CPU per saga",
                curve="saga",
                series=mode,
                x=orders,
            )
            if orders == 1_000:
                run.target(figure, at_least=THROUGHPUT_TARGET[mode])
        async with own_postgres_database(admin, f"bench_saga_{uuid.uuid4().hex[:8]}") as dsn:
            measured_latency = await latency(dsn, rate, seconds, warm_up, mode)
        figure = run.figure(
            f"saga.{mode}.latency",
            f"{mode}, submitted -> OrderConfirmed p99 at {rate:g} submits/s",
            measured_latency.to_confirmed_p99_ms,
            "ms",
            f"p50 {measured_latency.to_confirmed_p50_ms:.1f} ms; submitOrder answered -> "
            f"CONFIRMED in the read document p50 {measured_latency.to_document_p50_ms:.1f} ms, "
            f"p99 {measured_latency.to_document_p99_ms:.1f} ms",
            lower_is_better=True,
        )
        if mode in LATENCY_TARGET_MS:
            run.target(figure, at_most=LATENCY_TARGET_MS[mode])
