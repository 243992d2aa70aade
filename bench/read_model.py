"""Read-model benchmark: projector rebuild rate and steady-state lag.

Runs on PostgreSQL databases and Mongo-wire databases of its own (created here, dropped at
the end, also on errors and SIGTERM), so the log holds only the bench's events. Needs
DATABASE_URL and MONGO_URL: run it as `make bench-read` (tests/services/with-services).

1. seeds --events realistic domain events (customers with their email reservations,
   products, orders created / 3 items / shipping address / submitted, half confirmed, a few
   customer and product renames in between) with concurrent appends, one per order stream;
2. rebuild rate into the memory store: a ProjectionRunner per projection, run_batch until
   idle, for the orders projection alone and for all three at once (one process);
3. rebuild rate into the Mongo-wire server: read_model.live.rebuild_projection, which
   writes the fresh collection version batch by batch with guarded bulk writes;
4. steady-state lag under --lag-rate appended events/s for --lag-seconds, on a small log of
   its own (--lag-seed-events): for every append, its commit (when append_to_stream
   returns) -> the first change feed notice of its order document at that version or later.
   First with `python -m app projector` as a process on the Mongo-wire server (change feed:
   PostgreSQL NOTIFY), then with the projector in this process on the memory store (the
   projector's own overhead, apart from the server's); between the two (--no-breakdown: not)
   the projector in this process on the Mongo-wire server, its store calls timed.

    python -m bench.read_model [--events 100000] [--lag-seconds 10] [--skip-mongo] ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import math
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import uvloop

from read_model.change_feed import ChangeFeed, InProcessChangeFeed, PostgresChangeFeed
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.mongo import MongoDocumentStore
from read_model.document_store.port import DocumentStore
from read_model.live import (
    ProjectorDependencies,
    active_version,
    rebuild_projection,
    run_projection,
)
from read_model.projections import ALL_PROJECTIONS, OrdersProjection
from read_model.projections.base import Projection
from read_model.projector import ProjectionRunner, RunnerSettings, physical_collection
from read_model.signals import (
    APPENDED_CHANNEL,
    InProcessAppendSignal,
    InProcessLeaderLock,
    PostgresAppendSignal,
)
from write_model.domain import customer, order, product
from write_model.domain.money import Money
from write_model.domain.order import Address, PricedItem
from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store import postgres
from write_model.event_store.port import ANY, NO_STREAM, ExpectedVersion
from write_model.events import build_registry
from write_model.registry import EventTypeRegistry

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
TAX_RATE = Decimal("0.10")

MEMORY_TARGET = 10_000  # events/s
MONGO_TARGET = 5_000  # events/s
MONGO_SERVER_SCRIPT = Path(__file__).resolve().parent.parent / "tests/services/mongo-server"
LAG_P99_TARGET_MS = 100.0


def say(text: str = "") -> None:
    print(text, flush=True)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# ------------------------------------------------------------------ workload


@dataclass
class Append:
    stream_id: str
    stream_type: str
    expected: ExpectedVersion
    events: list[NewEvent]
    order_id: str | None = None  # set on order appends: lag is keyed by (order id, version)


@dataclass
class Catalog:
    customers: list[str]
    products: list[tuple[str, str, Money]]  # id, name, price


class EventFactory:
    """Domain events -> NewEvents, as the command handler serializes them."""

    def __init__(self, registry: EventTypeRegistry, correlation_id: str) -> None:
        self._registry = registry
        self._correlation_id = correlation_id
        self._clock = datetime.now(UTC) - timedelta(days=30)

    def new(self, events: Sequence[object]) -> list[NewEvent]:
        out = []
        for event in events:
            type_name, data, schema_version = self._registry.serialize(event)
            self._clock += timedelta(milliseconds=7)
            out.append(
                NewEvent(
                    uuid.uuid4(),
                    type_name,
                    data,
                    EventMetadata(self._correlation_id, schema_version=schema_version),
                    self._clock,
                )
            )
        return out


def decided(commands: Sequence[object]) -> list[list[object]]:
    """Each order command's events, through the domain's own decide/evolve."""
    state: order.OrderState = None
    per_command = []
    for command in commands:
        events = order.decide(command, state)  # type: ignore[arg-type]
        for event in events:
            state = order.evolve(state, event)
        per_command.append(events)
    return per_command


def catalog_appends(
    factory: EventFactory, customers: int, products: int, rng: random.Random
) -> tuple[Catalog, list[Append]]:
    appends: list[Append] = []
    customer_ids = [f"c{n:05d}" for n in range(customers)]
    for customer_id in customer_ids:
        email = f"{customer_id}@example.com"
        appends.append(
            Append(
                f"{customer.EMAIL_STREAM_TYPE}-{email}",
                customer.EMAIL_STREAM_TYPE,
                NO_STREAM,
                factory.new([customer.CustomerEmailReserved(email, customer_id)]),
            )
        )
        appends.append(
            Append(
                f"{customer.STREAM_TYPE}-{customer_id}",
                customer.STREAM_TYPE,
                NO_STREAM,
                factory.new(
                    [customer.CustomerRegistered(customer_id, f"Customer {customer_id}", email)]
                ),
            )
        )
    entries = []
    for n in range(products):
        product_id = f"p{n:04d}"
        price = Money(Decimal(rng.randrange(100, 10_000)) / 100, "USD")
        entries.append((product_id, f"Product {n}", price))
        appends.append(
            Append(
                f"{product.STREAM_TYPE}-{product_id}",
                product.STREAM_TYPE,
                NO_STREAM,
                factory.new([product.ProductAdded(product_id, f"Product {n}", price, 1_000_000)]),
            )
        )
    return Catalog(customer_ids, entries), appends


def whole_order_append(
    factory: EventFactory, catalog: Catalog, order_id: str, rng: random.Random, confirm: bool
) -> Append:
    """Created, 3 items, shipping address, submitted (and maybe confirmed): one append."""
    items = rng.sample(catalog.products, 3)
    commands: list[object] = [
        order.CreateOrder(order_id, rng.choice(catalog.customers), TAX_RATE),
        *(
            order.AddOrderItem(order_id, PricedItem(pid, name, rng.randint(1, 5), price))
            for pid, name, price in items
        ),
        order.SetShippingAddress(order_id, ADDRESS),
        order.SubmitOrder(order_id),
    ]
    if confirm:
        commands.append(order.ConfirmOrder(order_id))
    events = [e for per_command in decided(commands) for e in per_command]
    return Append(
        f"{order.STREAM_TYPE}-{order_id}", order.STREAM_TYPE, NO_STREAM, factory.new(events)
    )


def paced_order_appends(
    factory: EventFactory, catalog: Catalog, order_id: str, rng: random.Random
) -> list[Append]:
    """5 events in 4 appends: create with a shipping address, then 3 x add item."""
    items = rng.sample(catalog.products, 3)
    per_command = decided(
        [
            order.CreateOrder(
                order_id, rng.choice(catalog.customers), TAX_RATE, shipping_address=ADDRESS
            ),
            *(
                order.AddOrderItem(order_id, PricedItem(pid, name, rng.randint(1, 5), price))
                for pid, name, price in items
            ),
        ]
    )
    stream_id = f"{order.STREAM_TYPE}-{order_id}"
    appends = []
    version = 0
    for events in per_command:
        expected: ExpectedVersion = version if version else NO_STREAM
        appends.append(
            Append(stream_id, order.STREAM_TYPE, expected, factory.new(events), order_id)
        )
        version += len(events)
    return appends


@dataclass
class SeedPlan:
    catalog: Catalog
    catalog_appends: list[Append]
    # Order appends in chunks; after each chunk, the renames that follow it in the log.
    chunks: list[tuple[list[Append], list[Append]]] = field(default_factory=list)
    orders: int = 0
    renames: int = 0

    @property
    def events(self) -> int:
        appends = [*self.catalog_appends]
        for orders, renames in self.chunks:
            appends += orders + renames
        return sum(len(a.events) for a in appends)


def seed_plan(target_events: int, registry: EventTypeRegistry, seed: int = 7) -> SeedPlan:
    rng = random.Random(seed)
    factory = EventFactory(registry, "bench-read-seed")
    customers = max(10, target_events // 100)
    products = max(10, target_events // 500)
    customer_renames = max(2, target_events // 5_000)
    product_renames = max(2, target_events // 10_000)
    catalog, appends = catalog_appends(factory, customers, products, rng)
    remaining = target_events - 2 * customers - products - customer_renames - product_renames
    orders = max(1, round(remaining / 6.5))  # 6 events, 7 when confirmed (half of them)
    plan = SeedPlan(catalog, appends, orders=orders, renames=customer_renames + product_renames)
    chunk_count = max(1, min(20, orders // 50))
    renames: list[Append] = []
    for n in range(customer_renames):
        customer_id = rng.choice(catalog.customers)
        renames.append(
            Append(
                f"{customer.STREAM_TYPE}-{customer_id}",
                customer.STREAM_TYPE,
                ANY,
                factory.new([customer.CustomerRenamed(f"Customer {customer_id} renamed {n}")]),
            )
        )
    for n in range(product_renames):
        product_id, name, _ = rng.choice(catalog.products)
        renames.append(
            Append(
                f"{product.STREAM_TYPE}-{product_id}",
                product.STREAM_TYPE,
                ANY,
                factory.new([product.ProductRenamed(f"{name} renamed {n}")]),
            )
        )
    rng.shuffle(renames)
    per_chunk = math.ceil(orders / chunk_count)
    renames_per_chunk = math.ceil(len(renames) / chunk_count)
    for c in range(chunk_count):
        chunk = [
            whole_order_append(factory, catalog, f"o{n:07d}", rng, confirm=n % 2 == 0)
            for n in range(c * per_chunk, min(orders, (c + 1) * per_chunk))
        ]
        plan.chunks.append((chunk, renames[c * renames_per_chunk : (c + 1) * renames_per_chunk]))
    return plan


async def append_all(
    store: postgres.PostgresEventStore, appends: Sequence[Append], concurrency: int
) -> None:
    pending: Iterator[Append] = iter(appends)

    async def worker() -> None:
        for a in pending:
            await store.append_to_stream(a.stream_id, a.stream_type, a.expected, a.events)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def seed(store: postgres.PostgresEventStore, plan: SeedPlan, concurrency: int) -> None:
    await append_all(store, plan.catalog_appends, concurrency)
    for orders, renames in plan.chunks:
        await append_all(store, orders, concurrency)
        await append_all(store, renames, 1)
    # The planner's statistics, as autovacuum would have them on a log of this size.
    await store.pool.execute("ANALYZE events")


# ------------------------------------------------------------ services, cleanup


@contextlib.asynccontextmanager
async def own_postgres_database(admin_dsn: str, name: str) -> AsyncIterator[str]:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(admin_dsn)._replace(path=f"/{name}"))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


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
        with contextlib.suppress(Exception):
            await documents.database.client.drop_database(name)
        await documents.close()


def _die_with_parent() -> None:
    """In the child: SIGTERM when the bench process dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ProjectorProcess:
    """`python -m app projector` on the bench's databases, its output in a file."""

    def __init__(self, dsn: str, mongo_url: str, mongo_db: str, batch_size: int) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="bench-projector-", suffix=".log")[1])
        self._log = self.log_path.open("ab")
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "MONGO_URL": mongo_url,
            "MONGO_DB": mongo_db,
            "PROJECTOR_BATCH_SIZE": str(batch_size),
            "LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "projector"],
            env=env,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=_die_with_parent,
        )

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the projector process exited with {self.process.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


async def caught_up(
    events: postgres.PostgresEventStore,
    documents: DocumentStore,
    seconds: float,
    check: ProjectorProcess | None = None,
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


# --------------------------------------------------------------------- rebuild


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
    runners = [
        ProjectionRunner(
            p, events, documents, registry, settings=RunnerSettings(batch_size=batch_size)
        )
        for p in projections
    ]

    async def until_idle(runner: ProjectionRunner) -> int:
        read = 0
        while (result := await runner.run_batch()).events_read:
            read += result.events_read
        return read

    started = time.perf_counter()
    read = await asyncio.gather(*(until_idle(r) for r in runners))
    return time.perf_counter() - started, list(read), documents


async def rebuild_into_mongo(
    events: postgres.PostgresEventStore,
    documents: MongoDocumentStore,
    registry: EventTypeRegistry,
    projections: Sequence[Projection],
    batch_size: int,
) -> tuple[float, float, dict[str, int]]:
    """(total seconds, seconds until the last projection had projected in memory, versions)."""
    deps = ProjectorDependencies(
        events=events,
        documents=documents,
        registry=registry,
        feed=None,
        signal=InProcessAppendSignal(),
        lock=InProcessLeaderLock(),
        settings=RunnerSettings(batch_size=batch_size),
    )
    projected_at: dict[str, float] = {}

    def progress(name: str):
        def report(done, head) -> None:
            projected_at[name] = time.perf_counter()

        return report

    started = time.perf_counter()
    versions = await asyncio.gather(
        *(rebuild_projection(deps, p, progress(p.name)) for p in projections)
    )
    elapsed = time.perf_counter() - started
    return (
        elapsed,
        max(projected_at.values()) - started,
        {p.name: v for p, v in zip(projections, versions, strict=True)},
    )


# ------------------------------------------------------------------------- lag


@dataclass
class LagResult:
    appended_events: int
    append_seconds: float
    commits: int
    notifications: int
    lags_ms: list[float]  # sorted, one per append; inf where its change was never seen
    lag_at_end: dict[str, int]
    drain_seconds: float | None  # None: not caught up within the drain window
    drain_window: float
    first_p50: float
    last_p50: float
    orders_documents: tuple[int, int]  # before, after
    gc_pauses: tuple[int, float, float]  # this process: collections, total ms, longest ms

    @property
    def unseen(self) -> int:
        return sum(1 for lag in self.lags_ms if math.isinf(lag))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


def shown_ms(value: float, window: float) -> str:
    return f"> {window * 1000:,.0f} ms (never seen)" if math.isinf(value) else f"{value:,.1f} ms"


async def paced_lag_run(
    store: postgres.PostgresEventStore,
    feed: ChangeFeed,
    documents: DocumentStore,
    catalog: Catalog,
    registry: EventTypeRegistry,
    *,
    rate: float,
    seconds: float,
    drain_seconds: float,
    run: str,
    check: ProjectorProcess | None = None,
) -> LagResult:
    """Append `rate` events/s for `seconds` (orders of 5 events in 4 appends, each order's
    appends 50 ms apart, so many streams are in flight) and time each append's commit to the
    arrival of the change feed notice of its order document at that version or later."""
    rng = random.Random(run)
    factory = EventFactory(registry, f"bench-read-{run}")
    orders_per_second = rate / 5
    order_count = max(1, int(orders_per_second * seconds))
    plans = [
        paced_order_appends(factory, catalog, f"{run}-{n:06d}", rng) for n in range(order_count)
    ]
    spacing = 0.05
    orders_collection = physical_collection("orders", await active_version(documents, "orders"))
    orders_before = await documents.count(orders_collection, {})

    commits: list[tuple[str, int, float]] = []  # order id, version, monotonic commit time
    received: dict[str, list[tuple[int, float]]] = defaultdict(list)
    notifications = 0

    async def consume(changes: AsyncIterator[list]) -> None:
        nonlocal notifications
        async for batch in changes:
            now = time.monotonic()
            for change in batch:
                if change.collection == "orders":
                    notifications += 1
                    received[change.id].append((change.version, now))

    async def sleep_until(moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def place(appends: list[Append], start: float) -> None:
        for n, a in enumerate(appends):
            await sleep_until(start + n * spacing)
            result = await store.append_to_stream(a.stream_id, a.stream_type, a.expected, a.events)
            commits.append((a.order_id or "", result.version, time.monotonic()))

    pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - gc_started[0]) * 1000)

    # The bench's own data (seed, planned appends) is kept out of the collector's way: the
    # pauses measured below are those of what the run allocates.
    gc.collect()
    gc.freeze()
    gc.callbacks.append(on_gc)
    try:
        async with feed.subscribe() as changes:
            consumer = asyncio.create_task(consume(changes))
            await asyncio.sleep(0.2)  # the LISTEN is in place
            tasks: list[asyncio.Task[None]] = []
            t0 = time.monotonic() + 0.05
            try:
                for n, appends in enumerate(plans):
                    start = t0 + n / orders_per_second
                    await sleep_until(start)
                    if check is not None and n % 200 == 0:
                        check.check_running()
                    tasks.append(asyncio.create_task(place(appends, start)))
                await asyncio.gather(*tasks)
                append_seconds = time.monotonic() - t0
                lag_at_end = await lag_in_events(store, documents)
                drained = await caught_up(store, documents, drain_seconds, check, fail=False)
                await asyncio.sleep(0.5)  # the change notices of the last batch
            finally:
                for task in tasks:
                    task.cancel()
                consumer.cancel()
                await asyncio.gather(consumer, *tasks, return_exceptions=True)
    finally:
        gc.callbacks.remove(on_gc)
        gc.unfreeze()
    orders_after = await documents.count(orders_collection, {})

    lags: list[tuple[float, float]] = []  # commit time, lag ms (inf: never seen)
    for order_id, version, committed in commits:
        seen = next((at for v, at in received.get(order_id, ()) if v >= version), None)
        lags.append((committed, math.inf if seen is None else (seen - committed) * 1000))
    lags.sort()
    window = max(1, len(lags) // 5)
    return LagResult(
        appended_events=sum(len(a.events) for appends in plans for a in appends),
        append_seconds=append_seconds,
        commits=len(commits),
        notifications=notifications,
        lags_ms=sorted(lag for _, lag in lags),
        lag_at_end=lag_at_end,
        drain_seconds=drained,
        drain_window=drain_seconds,
        first_p50=percentile(sorted(lag for _, lag in lags[:window]), 0.5),
        last_p50=percentile(sorted(lag for _, lag in lags[-window:]), 0.5),
        orders_documents=(orders_before, orders_after),
        gc_pauses=(len(pauses), sum(pauses), max(pauses, default=0.0)),
    )


def report_lag(label: str, result: LagResult, figures: list[str]) -> None:
    lags, window = result.lags_ms, result.drain_window + 0.5
    p50, p99, worst = percentile(lags, 0.5), percentile(lags, 0.99), lags[-1] if lags else 0.0
    say(
        f"  appended {result.appended_events:,} events in {result.commits:,} appends over "
        f"{result.append_seconds:.1f} s = {result.appended_events / result.append_seconds:,.0f} "
        f"events/s; {result.notifications:,} orders change notices received; orders documents "
        f"{result.orders_documents[0]:,} -> {result.orders_documents[1]:,}"
    )
    say(
        f"  lag append commit -> change notice of its order document: p50 "
        f"{shown_ms(p50, window)}, p99 {shown_ms(p99, window)}, max {shown_ms(worst, window)} "
        f"over {len(lags):,} appends ({result.unseen:,} never seen)"
    )
    say(
        f"  p50 over the first fifth of the appends {shown_ms(result.first_p50, window)}, "
        f"over the last fifth {shown_ms(result.last_p50, window)}; garbage collection in "
        f"this process: {result.gc_pauses[0]:,} runs, {result.gc_pauses[1]:,.0f} ms in all, "
        f"longest {result.gc_pauses[2]:,.1f} ms"
    )
    behind = ", ".join(f"{name} {n:,}" for name, n in result.lag_at_end.items())
    if result.drain_seconds is None:
        drained = f"NOT caught up {result.drain_window:g} s later"
    else:
        drained = f"caught up {result.drain_seconds:.2f} s later"
    kept_up = result.drain_seconds is not None and result.drain_seconds < 1.0
    say(
        f"  events behind the head when appending stopped: {behind}; {drained} -> kept up: "
        f"{'yes' if kept_up else 'NO'}"
    )
    met = p99 < LAG_P99_TARGET_MS and kept_up
    figures.append(
        f"lag p99, {label:<33} {shown_ms(p99, window):>14}  (target < "
        f"{LAG_P99_TARGET_MS:.0f} ms: {verdict(met)}; p50 {shown_ms(p50, window)}; kept up: "
        f"{'yes' if kept_up else 'NO'})"
    )


class Timed:
    """A store whose async methods add their wall time to `totals` (a diagnosis aid).

    Per method: [calls, seconds, documents, in flight]. A call in flight has its start
    subtracted from `seconds`, so `seconds + in_flight * now` is the time spent so far."""

    def __init__(self, inner: object, totals: dict[str, list[float]]) -> None:
        self._inner = inner
        self._totals = totals

    def __getattr__(self, name: str):
        attribute = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attribute):
            return attribute

        async def timed(*args, **kwargs):
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


def _documents_in(method: str, args: tuple, kwargs: dict) -> int:
    position, keyword = {
        "bulk_write": (0, "puts"),
        "get_many": (1, "ids"),
    }.get(method, (None, ""))
    if position is None:
        return 0
    return len(args[position]) if len(args) > position else len(kwargs.get(keyword, ()))


def timings_from_now(timings: dict[str, dict[str, list[float]]]) -> None:
    """Forget what was timed so far; calls in flight count from now on."""
    now = time.perf_counter()
    for totals in timings.values():
        for entry in totals.values():
            entry[:] = [0, -entry[3] * now, 0, entry[3]]


def timed_seconds(entry: list[float]) -> float:
    return entry[1] + entry[3] * time.perf_counter()


@contextlib.asynccontextmanager
async def in_process_projector(
    events: postgres.PostgresEventStore,
    documents: DocumentStore,
    registry: EventTypeRegistry,
    dsn: str,
    batch_size: int,
    timings: dict[str, dict[str, list[float]]] | None = None,
) -> AsyncIterator[InProcessChangeFeed]:
    """run_projection for each projection in this process, woken by PostgreSQL NOTIFY,
    publishing on an in-process change feed; with `timings`, each projection's store calls
    are timed apart."""
    signal_ = PostgresAppendSignal(dsn)
    await signal_.start()
    feed = InProcessChangeFeed()
    stop = asyncio.Event()
    tasks = []
    try:
        for projection in ALL_PROJECTIONS:
            totals = timings.setdefault(projection.name, {}) if timings is not None else None
            deps = ProjectorDependencies(
                events=Timed(events, totals) if totals is not None else events,  # type: ignore[arg-type]
                documents=Timed(documents, totals) if totals is not None else documents,  # type: ignore[arg-type]
                registry=registry,
                feed=feed,
                signal=signal_,
                lock=InProcessLeaderLock(),
                settings=RunnerSettings(batch_size=batch_size),
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


def report_timings(timings: dict[str, dict[str, list[float]]], wall: float) -> None:
    for name, totals in timings.items():
        parts = []
        for call, entry in sorted(
            totals.items(), key=lambda kv: timed_seconds(kv[1]), reverse=True
        ):
            calls, seconds, documents, in_flight = (*entry[:1], timed_seconds(entry), *entry[2:])
            if seconds < 0.05 * wall and call not in ("bulk_write", "get_many"):
                continue
            per = f", {seconds * 1000 / documents:.1f} ms per document" if documents else ""
            flying = f", {in_flight:.0f} still running" if in_flight else ""
            parts.append(
                f"{call} {calls:,.0f} calls{flying} {seconds:.1f} s ({seconds / wall:.0%} of "
                f"the run{per})"
            )
        say(f"    {name}: " + "; ".join(parts))


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
            projector = ProjectorProcess(dsn, mongo_url, database, args.projector_batch_size)
            try:
                head = (await store.head_position()).position
                started = time.perf_counter()
                await caught_up(store, documents, 600, projector)
                seconds = time.perf_counter() - started
                say(
                    f"`python -m app projector` (PROJECTOR_BATCH_SIZE "
                    f"{args.projector_batch_size}) caught up with the {head:,} seeded events in "
                    f"{seconds:.1f} s = {head / seconds:,.0f} events/s (guarded puts, no rebuild)"
                )
                figures.append(
                    f"projector process catch-up into Mongo-wire {head / seconds:10,.0f} events/s"
                    f"  (no target; {head:,} events)"
                )
                say(
                    "lag, `python -m app projector` process -> Mongo-wire server, change feed "
                    "by PostgreSQL NOTIFY 'orders_documents':"
                )
                result = await paced_lag_run(
                    store,
                    PostgresChangeFeed(store.pool, dsn),
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
            finally:
                await projector.stop()

            if args.breakdown:
                # The same projector in this process, its store calls timed: where the time
                # goes. A fresh database, filled by rebuild (inserts), then tailed.
                name = f"{database}_breakdown"
                documents = await stack.enter_async_context(mongo_database(mongo_url, name))
                deps = ProjectorDependencies(
                    events=store,
                    documents=documents,
                    registry=registry,
                    feed=None,
                    signal=InProcessAppendSignal(),
                    lock=InProcessLeaderLock(),
                    settings=RunnerSettings(batch_size=args.batch_size),
                )
                for projection in ALL_PROJECTIONS:
                    await rebuild_projection(deps, projection)
                timings: dict[str, dict[str, list[float]]] = {}
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


# ------------------------------------------------------------------------ main


async def server_description(admin_dsn: str, mongo_url: str | None) -> tuple[str, str]:
    connection = await asyncpg.connect(admin_dsn)
    try:
        pg = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    if not mongo_url:
        return f"PostgreSQL {pg}", "none (MONGO_URL unset)"
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=10_000)
    try:
        info = await client.admin.command("buildInfo")
    finally:
        await client.close()
    done = await asyncio.to_thread(
        subprocess.run,
        [str(MONGO_SERVER_SCRIPT), "--describe"],
        capture_output=True,
        text=True,
        check=False,
    )
    server = done.stdout.strip()
    mongo = f"MongoDB {info.get('version')} wire (tests/services/mongo-server: {server})"
    return f"PostgreSQL {pg}", mongo


def machine_description() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model or platform.processor() or platform.machine()}), "
        f"load average {load} at start, Python {platform.python_version()} + uvloop"
    )


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
                async with mongo_database(mongo_url, name) as documents:
                    totals: dict[str, list[float]] = {}
                    cpu = time.process_time()
                    seconds, _projecting, versions = await rebuild_into_mongo(
                        store,
                        Timed(documents, totals),  # type: ignore[arg-type]
                        registry,
                        projections,
                        args.batch_size,
                    )
                    cpu = time.process_time() - cpu
                    orders = await documents.count(
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


async def run(args: argparse.Namespace) -> None:
    admin_dsn = os.environ["DATABASE_URL"]
    mongo_url = os.environ.get("MONGO_URL")
    if not mongo_url and not args.skip_mongo:
        raise SystemExit("MONGO_URL is not set: run `make bench-read` or pass --skip-mongo")
    pg, mongo = await server_description(admin_dsn, mongo_url)
    say(f"read model bench: {machine_description()}; {pg}; Mongo-wire: {mongo}")
    tag = uuid.uuid4().hex[:8]
    figures: list[str] = []

    if not args.skip_rebuild:
        await rebuild_benchmark(admin_dsn, mongo_url, tag, args, figures)
        gc.collect()  # the seeded events and rebuilt stores go before the lag runs

    if not args.skip_lag:
        await lag_benchmark(admin_dsn, mongo_url, tag, args, figures)

    say("figures:")
    for line in figures:
        say(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the rebuild log")
    parser.add_argument("--batch-size", type=int, default=1000, help="rebuild batch size")
    parser.add_argument("--seed-concurrency", type=int, default=16)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--lag-rate", type=float, default=1000.0, help="appended events/s")
    parser.add_argument("--lag-seed-events", type=int, default=2000)
    parser.add_argument(
        "--projector-batch-size", type=int, default=500, help="PROJECTOR_BATCH_SIZE for lag"
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=20.0, help="wait for catch-up after a lag run"
    )
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the projector in-process on the Mongo-wire server, its calls timed",
    )
    parser.add_argument("--skip-mongo", action="store_true", help="memory store only")
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--skip-lag", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("DATABASE_URL is not set: run `make bench-read`")

    async def guarded() -> None:
        # SIGTERM ends the run like Ctrl-C: through every cleanup (databases, subprocess).
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await run(args)

    try:
        uvloop.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; bench databases dropped")
        sys.exit(130)


if __name__ == "__main__":
    main()
