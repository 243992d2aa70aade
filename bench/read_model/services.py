"""The stores and projectors the read-model bench runs: its PostgreSQL event store and
Mongo-wire database, `python -m app projector` as a process, the projector in this process,
and waiting for the projections to reach the head of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.common import AppProcess, drop_mongo_database
from bench.read_model.timing import Timed, Timings
from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.append_signal.postgres import PostgresAppendSignal
from log_follower.checkpoint.memory import InMemoryCheckpoint
from log_follower.dead_letters.memory import InMemoryDeadLetters
from log_follower.decoded import DecodedEvents
from log_follower.follower import FollowerParts, FollowerSettings
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.postgres_listener import PostgresListener
from log_follower.source.log import LogSource
from log_follower.source.port import Source
from log_follower.source.shared import SharedReader
from read_model.change_feed.in_process import InProcessChangeFeed
from read_model.document_store.mongo import MongoDocumentStore
from read_model.document_store.port import DocumentStore
from read_model.projections import ALL_PROJECTIONS
from read_model.projector_process import ProjectorDependencies, run_projection
from write_model.event_store import postgres
from write_model.registry import EventTypeRegistry


@contextlib.asynccontextmanager
async def event_store(
    dsn: str, max_size: int, notify_channel: str | None = None
) -> AsyncIterator[postgres.PostgresEventStore]:
    pool = await postgres.create_pool(dsn, min_size=1, max_size=max_size)
    store = postgres.PostgresEventStore(pool, notify_channel=notify_channel)
    try:
        await postgres.migrate(pool)
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def mongo_database(url: str, name: str) -> AsyncIterator[MongoDocumentStore]:
    documents = await MongoDocumentStore.connect(url, name, timeout_ms=10_000)
    try:
        yield documents
    finally:
        await drop_mongo_database(url, name)
        await documents.close()


@contextlib.asynccontextmanager
async def projector_process(
    dsn: str, mongo_url: str, mongo_db: str, batch_size: int
) -> AsyncIterator[AppProcess]:
    """`python -m app projector` on the bench's databases, its output in a file that is
    deleted once it has stopped."""
    log_path = Path(tempfile.mkstemp(prefix="bench-projector-", suffix=".log")[1])
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "MONGO_URL": mongo_url,
        "MONGO_DB": mongo_db,
        "PROJECTOR_BATCH_SIZE": str(batch_size),
        "LOG_LEVEL": "WARNING",
    }
    process = AppProcess("the projector process", ["projector"], env, log_path)
    try:
        yield process
    finally:
        await process.stop()
        await asyncio.to_thread(log_path.unlink, missing_ok=True)


def rebuild_dependencies(
    events: postgres.PostgresEventStore,
    documents: DocumentStore,
    registry: EventTypeRegistry,
    batch_size: int,
) -> ProjectorDependencies:
    """What rebuild_projection needs: no change feed; an in-process signal and lock; the
    log read on its own (a rebuild is far behind any live follower)."""
    return ProjectorDependencies(
        events=events,
        documents=documents,
        registry=registry,
        feed=None,
        parts=memory_parts(
            LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()), batch_size
        ),
    )


def memory_parts(source: Source, batch_size: int) -> FollowerParts:
    """Followers' parts on `source` with in-memory checkpoint and dead letters."""
    return FollowerParts(
        source=source,
        checkpoint=InMemoryCheckpoint(),
        dead_letters=InMemoryDeadLetters(),
        settings=FollowerSettings(batch_size=batch_size),
    )


async def caught_up(
    events: postgres.PostgresEventStore,
    documents: DocumentStore,
    seconds: float,
    check: AppProcess | None = None,
    *,
    fail: bool = True,
) -> float | None:
    """Wait until every projection's checkpoint reaches the head; the seconds it took, or
    None (fail=False) when it did not within `seconds`."""
    started = time.perf_counter()
    head = await events.head_position()
    while True:
        checkpoints = {c.name: c.position for c in await documents.list_checkpoints()}
        if all(p.name in checkpoints and checkpoints[p.name] >= head for p in ALL_PROJECTIONS):
            return time.perf_counter() - started
        if check is not None:
            check.check_running()
        if time.perf_counter() - started > seconds:
            if not fail:
                return None
            raise TimeoutError(
                f"projections did not reach {head} within {seconds:.0f} s: {checkpoints}"
            )
        await asyncio.sleep(0.02)


async def lag_in_events(
    events: postgres.PostgresEventStore, documents: DocumentStore
) -> dict[str, int]:
    head = await events.head_position()
    checkpoints = {c.name: c.position for c in await documents.list_checkpoints()}
    return {
        p.name: max(0, head.position - checkpoints[p.name].position)
        if p.name in checkpoints
        else head.position
        for p in ALL_PROJECTIONS
    }


@contextlib.asynccontextmanager
async def in_process_projector(
    events: postgres.PostgresEventStore,
    documents: DocumentStore,
    registry: EventTypeRegistry,
    dsn: str,
    batch_size: int,
    timings: Timings | None = None,
) -> AsyncIterator[InProcessChangeFeed]:
    """run_projection for each projection in this process, woken by PostgreSQL NOTIFY,
    publishing on an in-process change feed; with `timings`, each projection's store calls
    are timed apart."""
    listener = PostgresListener(dsn)
    await listener.start()
    signal_ = PostgresAppendSignal(listener)
    await signal_.start()
    feed = InProcessChangeFeed()
    stop = asyncio.Event()
    tasks = []
    # One reader for the process's three projections, as `orders projector` has.
    parts = memory_parts(
        SharedReader(LogSource(events, InProcessLeaderLock(), signal_)), batch_size
    )
    decoded = DecodedEvents(registry)  # and one decoding, as `orders projector` has
    try:
        for projection in ALL_PROJECTIONS:
            totals = timings.setdefault(projection.name, {}) if timings is not None else None
            deps = ProjectorDependencies(
                events=Timed(events, totals) if totals is not None else events,
                documents=Timed(documents, totals) if totals is not None else documents,
                registry=registry,
                feed=feed,
                parts=parts,
                decoded=decoded,
            )
            tasks.append(
                asyncio.create_task(run_projection(deps, projection, stop), name=projection.name)
            )
        yield feed
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await signal_.close()
        await listener.close()
