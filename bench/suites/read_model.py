"""Projector rebuild (bench/read_model: its seeded log and rebuild paths) at 10k, 100k and
1M events: all three projections at once from position zero into the memory store (what
`orders dev` does at start), and into the Mongo-wire server (`orders projections rebuild`'s
path) up to 100k; each size on a database of its own."""

from __future__ import annotations

import gc
import os
import time
import uuid

from bench.common import own_postgres_database, say
from bench.figures import Curve, Run, suite
from bench.read_model.rebuild import projection_sets, rebuild_into_memory, rebuild_into_mongo
from bench.read_model.seeding import seed, seed_plan
from bench.read_model.services import event_store, mongo_database
from write_model.event_types import build_registry

BATCH = 1000
MONGO_UP_TO = 100_000  # events: larger logs take minutes into the Mongo-wire server here
MEMORY_TARGET = 20_000.0  # events/s, all three projections (the issue "Speed")


@suite("read_model", order=30, title="Projector rebuild", needs=("postgres", "mongo"))
async def read_model(run: Run) -> None:
    admin, mongo_url = os.environ["DATABASE_URL"], os.environ["MONGO_URL"]
    run.curve(
        Curve(
            "rebuild",
            "Rebuild of all three projections from position zero",
            "events in the log",
            "events/s",
        )
    )
    registry = build_registry()
    _, projections = projection_sets()[-1]  # all three
    for size in run.scale.sizes("rebuild_events", (10_000, 100_000, 1_000_000), (2_000,)):
        tag = uuid.uuid4().hex[:8]
        async with (
            own_postgres_database(admin, f"bench_rebuild_{tag}") as dsn,
            event_store(dsn, max_size=16) as store,
        ):
            started = time.perf_counter()
            plan = seed_plan(size, registry)
            await seed(store, plan, 16)
            del plan
            gc.collect()
            events = await store.pool.fetchval("SELECT count(*) FROM events")
            say(f"  seeded {events:,} events in {time.perf_counter() - started:.0f} s")
            seconds, _, documents = await rebuild_into_memory(store, registry, projections, BATCH)
            del documents
            gc.collect()
            figure = run.figure(
                f"read_model.rebuild.memory.e{size}",
                f"all three projections into memory, {events:,} events",
                events / seconds,
                "events/s",
                f"{seconds:.1f} s",
                curve="rebuild",
                series="into memory",
                x=size,
            )
            if size == 100_000:
                run.target(figure, at_least=MEMORY_TARGET)
            if size <= MONGO_UP_TO:
                async with mongo_database(mongo_url, f"bench_rebuild_{tag}") as mongo:
                    seconds, _ = await rebuild_into_mongo(
                        store, mongo, registry, projections, BATCH
                    )
                run.figure(
                    f"read_model.rebuild.mongo.e{size}",
                    f"all three projections into the Mongo-wire server, {events:,} events",
                    events / seconds,
                    "events/s",
                    f"{seconds:.1f} s",
                    curve="rebuild",
                    series="into the Mongo-wire server",
                    x=size,
                )
