"""Steady-state lag under --lag-rate appended events/s for --lag-seconds, on a small log of
its own (--lag-seed-events). First with `python -m app projector` as a process on the
Mongo-wire server (change feed: PostgreSQL NOTIFY), then with the projector in this process
on the memory store (the projector's own overhead, apart from the server's); between the
two (--no-breakdown: not) the projector in this process on the Mongo-wire server, its store
calls timed.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from bench.common import own_postgres_database, say
from bench.read_model.paced import paced_lag_run, report_lag
from bench.read_model.seeding import seed, seed_plan
from bench.read_model.services import (
    caught_up,
    event_store,
    in_process_projector,
    mongo_database,
    projector_process,
    rebuild_dependencies,
)
from bench.read_model.timing import Timings, report_timings, timings_from_now
from log_follower.append_signal.postgres import APPENDED_CHANNEL
from log_follower.postgres_listener import PostgresListener
from read_model.change_feed.postgres import PostgresChangeFeed
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.projections import ALL_PROJECTIONS
from read_model.projector_process import rebuild_projection
from write_model.event_types import build_registry


async def lag_benchmark(
    admin_dsn: str, mongo_url: str | None, tag: str, args: argparse.Namespace, figures: list[str]
) -> None:
    registry = build_registry()
    database = f"bench_{tag}_lag"
    async with contextlib.AsyncExitStack() as stack:
        dsn = await stack.enter_async_context(own_postgres_database(admin_dsn, database))
        store = await stack.enter_async_context(
            event_store(dsn, max_size=20, notify_channel=APPENDED_CHANNEL)
        )
        # The API's side of the change feed: one LISTEN connection, as `orders api` has.
        listener = PostgresListener(dsn)
        await listener.start()
        stack.push_async_callback(listener.close)
        plan = seed_plan(args.lag_seed_events, registry, seed=11)
        await seed(store, plan, args.seed_concurrency)
        say(
            f"lag log: {plan.events:,} seeded events ({plan.orders:,} orders), then "
            f"{args.lag_rate:,.0f} events/s for {args.lag_seconds:g} s per run: orders of 5 "
            "events in 4 appends 50 ms apart; appends NOTIFY "
            f"{APPENDED_CHANNEL!r} after they commit"
        )
        paced = {
            "rate": args.lag_rate,
            "seconds": args.lag_seconds,
            "drain_seconds": args.drain_seconds,
        }

        if mongo_url and not args.skip_mongo:
            documents = await stack.enter_async_context(mongo_database(mongo_url, database))
            async with projector_process(
                dsn, mongo_url, database, args.projector_batch_size
            ) as projector:
                try:
                    head = (await store.head_position()).position
                    started = time.perf_counter()
                    await caught_up(store, documents, 600, projector)
                    seconds = time.perf_counter() - started
                    say(
                        f"`python -m app projector` (PROJECTOR_BATCH_SIZE "
                        f"{args.projector_batch_size}) caught up with the {head:,} seeded events "
                        f"in {seconds:.1f} s = {head / seconds:,.0f} events/s (guarded puts, no "
                        "rebuild)"
                    )
                    figures.append(
                        "projector process catch-up into Mongo-wire "
                        f"{head / seconds:10,.0f} events/s  (no target; {head:,} events)"
                    )
                    say(
                        "lag, `python -m app projector` process -> Mongo-wire server, change feed "
                        "by PostgreSQL NOTIFY 'orders_documents':"
                    )
                    result = await paced_lag_run(
                        store,
                        PostgresChangeFeed(store.pool, listener),
                        documents,
                        plan.catalog,
                        registry,
                        run="lagproc",
                        check=projector,
                        **paced,
                    )
                    report_lag("projector process -> Mongo-wire", result, figures)
                except BaseException:
                    say(f"projector log tail:\n{projector.tail()}")
                    raise

            if args.breakdown:
                # The same projector in this process, its store calls timed: where the time
                # goes. A fresh database, filled by rebuild (inserts), then tailed.
                name = f"{database}_breakdown"
                documents = await stack.enter_async_context(mongo_database(mongo_url, name))
                deps = rebuild_dependencies(store, documents, registry, args.batch_size)
                for projection in ALL_PROJECTIONS:
                    await rebuild_projection(deps, projection)
                timings: Timings = {}
                async with in_process_projector(
                    store, documents, registry, dsn, args.projector_batch_size, timings
                ) as feed:
                    await caught_up(store, documents, 600)
                    timings_from_now(timings)
                    say(
                        "lag, projector in this process -> Mongo-wire server (filled by "
                        "rebuild first), store calls timed:"
                    )
                    started = time.perf_counter()
                    result = await paced_lag_run(
                        store, feed, documents, plan.catalog, registry, run="lagbreak", **paced
                    )
                    wall = time.perf_counter() - started
                    report_lag("in-process projector -> Mongo-wire", result, figures)
                    say(f"  where each projection's time went over the {wall:.1f} s run:")
                    report_timings(timings, wall)

        # The projector in this process on the memory store: its own overhead, apart from
        # the Mongo-wire server's.
        reader = await stack.enter_async_context(event_store(dsn, max_size=4))
        memory = InMemoryDocumentStore()
        async with in_process_projector(
            reader, memory, registry, dsn, args.projector_batch_size
        ) as feed:
            started = time.perf_counter()
            await caught_up(store, memory, 600)
            say(
                "in-process projector on the memory store caught up with the log in "
                f"{time.perf_counter() - started:.1f} s"
            )
            say(
                "lag, projector in this process -> memory store, in-process change feed "
                "(woken by PostgreSQL NOTIFY):"
            )
            result = await paced_lag_run(
                store, feed, memory, plan.catalog, registry, run="laginproc", **paced
            )
            report_lag("in-process projector -> memory", result, figures)
