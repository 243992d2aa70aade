"""Rebuild rate: the seeded log projected from scratch, for the orders projection alone and
for all three at once (one process), into the memory store (a projection follower per
projection, stepping until idle, the three reading through one shared reader as the
projector process does) and into the Mongo-wire server
(read_model.projector_process.rebuild_projection, which writes the fresh collection version batch by
batch with guarded bulk writes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import time
from collections.abc import Sequence

from bench.common import own_postgres_database, say, verdict
from bench.read_model.seeding import seed, seed_plan
from bench.read_model.services import (
    event_store,
    memory_parts,
    mongo_database,
    rebuild_dependencies,
)
from bench.read_model.timing import Timed
from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.decoded import DecodedEvents
from log_follower.follower import Follower
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from log_follower.source.shared import SharedReader
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.port import DocumentStore
from read_model.projections import ALL_PROJECTIONS, OrdersProjection
from read_model.projections.base import Projection
from read_model.projector_process import (
    ProjectorDependencies,
    projection_follower,
    rebuild_projection,
)
from read_model.runner import physical_collection
from write_model.event_store import postgres
from write_model.event_types import build_registry
from write_model.registry import EventTypeRegistry

MEMORY_TARGET = 10_000  # events/s
MONGO_TARGET = 5_000  # events/s


def projection_sets() -> list[tuple[str, tuple[Projection, ...]]]:
    orders = next(p for p in ALL_PROJECTIONS if isinstance(p, OrdersProjection))
    return [("orders", (orders,)), ("all 3", ALL_PROJECTIONS)]


async def rebuild_into_memory(
    events: postgres.PostgresEventStore,
    registry: EventTypeRegistry,
    projections: Sequence[Projection],
    batch_size: int,
) -> tuple[float, list[int], InMemoryDocumentStore]:
    documents = InMemoryDocumentStore()
    source = SharedReader(LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()))
    deps = ProjectorDependencies(
        events,
        documents,
        registry,
        None,
        memory_parts(source, batch_size),
        decoded=DecodedEvents(registry),
    )
    runners = [projection_follower(deps, p, 1) for p in projections]

    async def until_idle(runner: Follower) -> int:
        read = 0
        while (result := await runner.step()).events_read:
            read += result.events_read
        return read

    started = time.perf_counter()
    read = await asyncio.gather(*(until_idle(r) for r in runners))
    return time.perf_counter() - started, list(read), documents


async def rebuild_into_mongo(
    events: postgres.PostgresEventStore,
    documents: DocumentStore,
    registry: EventTypeRegistry,
    projections: Sequence[Projection],
    batch_size: int,
) -> tuple[float, dict[str, int]]:
    """(seconds, the collection version each projection was rebuilt into)."""
    deps = rebuild_dependencies(events, documents, registry, batch_size)
    started = time.perf_counter()
    versions = await asyncio.gather(*(rebuild_projection(deps, p) for p in projections))
    elapsed = time.perf_counter() - started
    return elapsed, {p.name: v for p, v in zip(projections, versions, strict=True)}


async def rebuild_benchmark(
    admin_dsn: str, mongo_url: str | None, tag: str, args: argparse.Namespace, figures: list[str]
) -> None:
    registry = build_registry()
    async with contextlib.AsyncExitStack() as stack:
        dsn = await stack.enter_async_context(own_postgres_database(admin_dsn, f"bench_{tag}"))
        store = await stack.enter_async_context(
            event_store(dsn, max_size=max(args.seed_concurrency, 2))
        )
        started = time.perf_counter()
        plan = seed_plan(args.events, registry)
        built = time.perf_counter() - started
        started = time.perf_counter()
        await seed(store, plan, args.seed_concurrency)
        seeded = time.perf_counter() - started
        log_events = await store.pool.fetchval("SELECT count(*) FROM events")
        say(
            f"seeded {log_events:,} events ({plan.orders:,} orders, "
            f"{len(plan.catalog.customers):,} customers, {len(plan.catalog.products):,} "
            f"products, {plan.renames} renames) in {seeded:.1f} s = "
            f"{log_events / seeded:,.0f} events/s with {args.seed_concurrency} concurrent "
            f"appends, one per order stream (events built in {built:.1f} s before)"
        )
        del plan
        gc.collect()

        for label, projections in projection_sets():
            cpu = time.process_time()
            seconds, read, documents = await rebuild_into_memory(
                store, registry, projections, args.batch_size
            )
            cpu = time.process_time() - cpu
            orders = await documents.count(physical_collection("orders", 1), {})
            del documents
            gc.collect()
            rate = log_events / seconds
            say(
                f"rebuild into memory, {label}: {log_events:,} log events in {seconds:.2f} s "
                f"= {rate:,.0f} events/s; this process used {cpu:.2f} s of CPU = "
                f"{log_events / cpu:,.0f} events per CPU-second (batch {args.batch_size}; "
                f"each runner read {', '.join(f'{n:,}' for n in read)}; {orders:,} orders "
                "documents)"
            )
            figures.append(
                f"rebuild into memory, {label:<25} {rate:10,.0f} events/s  "
                f"(target >= {MEMORY_TARGET:,}: {verdict(rate >= MEMORY_TARGET)})"
            )

        if mongo_url and not args.skip_mongo:
            for label, projections in projection_sets():
                name = f"bench_{tag}_{label.replace(' ', '')}"
                async with mongo_database(mongo_url, name) as mongo:
                    totals: dict[str, list[float]] = {}
                    cpu = time.process_time()
                    seconds, versions = await rebuild_into_mongo(
                        store, Timed(mongo, totals), registry, projections, args.batch_size
                    )
                    cpu = time.process_time() - cpu
                    orders = await mongo.count(
                        physical_collection("orders", versions["orders"]), {}
                    )
                gc.collect()
                rate = log_events / seconds
                written = totals.get("bulk_write", [0, 0.0, 0, 0])
                say(
                    f"rebuild into Mongo-wire, {label}: {log_events:,} log events in "
                    f"{seconds:.2f} s = {rate:,.0f} events/s; bulk_write {written[0]:.0f} calls "
                    f"of {written[2]:,.0f} documents took {written[1]:.2f} s; this process used "
                    f"{cpu:.2f} s of CPU; {orders:,} orders documents"
                )
                figures.append(
                    f"rebuild into Mongo-wire, {label:<21} {rate:10,.0f} events/s  "
                    f"(target >= {MONGO_TARGET:,}: {verdict(rate >= MONGO_TARGET)})"
                )
