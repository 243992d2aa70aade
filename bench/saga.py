"""Fulfillment saga benchmark (orchestration, choreography) on PostgreSQL, in one process,
on a database of its own, with zero-latency simulated gateways and the PostgreSQL ledger.

1. Throughput: `--orders` orders are submitted first, then the saga loop (leader lock,
   gap-free reading, checkpoint) runs them all: sagas completed per second.
2. Latency: orders submitted at `--rate` per second for `--seconds` while the saga loop runs,
   woken by each append: time from the OrderSubmitted append to the OrderConfirmed append
   (p50, p99), taken from the events' own timestamps (one clock, this process); and from
   the submitOrder command's answer to the order's read document showing CONFIRMED, with
   the orders projection running in this process too (in-memory documents, woken by each
   append, watched through its change feed). The first `--warm-up` seconds of submits are
   not counted: they pay for the pool's connections opening and first-call costs (without
   it, the first orders of the run alone make the p99).

    python -m bench.saga [--orders 1000] [--rate 50] [--seconds 10] [--warm-up 2] [--mode both]

`--mode choreography` runs the three participants (each its own loop and checkpoint)
instead of the orchestrator; `both` (the default) prints one mode's figures after the
other's.

Run under `make bench-saga` (tests/services/with-services provides DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from app.settings import Settings
from app.wiring import SagaMode, build_command_bus, saga_reactions, simulated_gateways
from bench.common import own_postgres_database, p50_p99_ms, run_main, say
from log_follower import storage as follower_storage
from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.checkpoint.memory import InMemoryCheckpoint
from log_follower.consumer import PerKeyConsumer
from log_follower.dead_letters.memory import InMemoryDeadLetters
from log_follower.follower import Follower, FollowerParts, FollowerSettings
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from log_follower.source.shared import SharedReader
from read_model.change_feed.in_process import InProcessChangeFeed
from read_model.change_feed.port import FeedGap
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.projections import OrdersProjection
from read_model.projector_process import ProjectorDependencies, active_version, run_projection
from read_model.runner import physical_collection
from sagas import storage
from write_model import commands
from write_model.command_context import CommandContext
from write_model.domain.order import Address
from write_model.event_store import postgres
from write_model.event_store.announcing import AnnouncingEventStore
from write_model.event_types import build_registry

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
PRODUCTS = 50  # orders spread over many products: stock contention is not what is measured
CONTEXT = CommandContext(correlation_id="bench-saga")


def utc_now() -> datetime:
    return datetime.now(UTC)


class RoundTrips:
    """The pool, counting the statements sent through it (an append on an acquired
    connection counts as its acquire): what one saga costs in round trips."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.count = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._pool, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute", "acquire"):
            self.count += 1
        return found


class Bench:
    def __init__(self, pool: object, dsn: str, mode: SagaMode) -> None:
        self.dsn = dsn
        self.round_trips = RoundTrips(pool)
        pool = self.round_trips
        self.signal = InProcessAppendSignal()
        # Followers in this process are woken by its appends (as in `orders dev`).
        self.events = AnnouncingEventStore(
            postgres.PostgresEventStore(pool),
            [lambda _: self.signal.notify()],
        )
        registry = build_registry()
        self.bus = build_command_bus(
            self.events,
            registry,
            tax_rate=Decimal("0.10"),
            snapshot_every=Settings().snapshot_every,  # SNAPSHOT_EVERY, as the servers run
        )
        gateways = simulated_gateways(storage.postgres_ledger(pool))
        reactions = saga_reactions(mode, self.events, registry, self.bus, gateways)
        # The followers of this process (the saga's and the projection watching for
        # CONFIRMED) read through one shared reader, as in `orders dev`.
        stores = follower_storage.postgres_stores(pool)
        self.parts = FollowerParts(
            source=SharedReader(LogSource(self.events, InProcessLeaderLock(), self.signal)),
            checkpoint=stores.checkpoint,
            dead_letters=stores.dead_letters,
            status=stores.status,
            settings=FollowerSettings(batch_size=500, poll_seconds=1.0, concurrency=32),
        )
        self.subscribers = [
            Follower(PerKeyConsumer(reaction, 32), self.parts) for reaction in reactions
        ]
        self.run_id = uuid.uuid4().hex[:8]
        self.submitted_at: dict[str, float] = {}  # perf_counter at the submitOrder answer

    async def catalog(self) -> None:
        customer = commands.RegisterCustomer(
            customer_id=f"c-{self.run_id}", name="Bench", email=f"{self.run_id}@example.com"
        )
        await self.bus.dispatch(customer, CONTEXT)
        for n in range(PRODUCTS):
            add = commands.AddProduct(
                product_id=f"p{n}-{self.run_id}",
                name="Ink",
                price=Decimal("9.99"),
                initial_stock=1_000_000,
            )
            await self.bus.dispatch(add, CONTEXT)

    async def submit(self, n: int) -> str:
        order_id = f"o{n}-{self.run_id}"
        item = commands.OrderItem(f"p{n % PRODUCTS}-{self.run_id}", 1)
        create = commands.CreateOrder(
            order_id=order_id,
            customer_id=f"c-{self.run_id}",
            items=(item,),
            shipping_address=ADDRESS,
        )
        await self.bus.dispatch(create, CONTEXT)
        await self.bus.dispatch(commands.SubmitOrder(order_id=order_id), CONTEXT)
        self.submitted_at[order_id] = time.perf_counter()
        return order_id

    async def running(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as loops:
            for follower in self.subscribers:
                loops.create_task(follower.run(stop))

    async def until_confirmed(self, order_ids: list[str], seconds: float = 300) -> None:
        """Watch on a connection of its own (not the pool's, whose server CPU is measured)
        with one cheap count (the database is the run's own): watching must not slow the
        sagas."""
        deadline = time.monotonic() + seconds
        watcher = await asyncpg.connect(self.dsn)
        try:
            while await watcher.fetchval(
                "SELECT count(*) FROM events WHERE type = 'OrderConfirmed' AND stream_id LIKE $1",
                f"Order-%-{self.run_id}",
            ) < len(order_ids):
                if time.monotonic() > deadline:
                    raise RuntimeError("sagas did not finish")
                await asyncio.sleep(0.05)
        finally:
            await watcher.close()


@dataclass(frozen=True)
class Throughput:
    sagas_per_second: float
    statements_per_saga: float
    cpu_ms_per_saga: float
    server_cpu_ms_per_saga: float


@dataclass(frozen=True)
class Latency:
    to_confirmed_p50_ms: float
    to_confirmed_p99_ms: float
    to_document_p50_ms: float
    to_document_p99_ms: float


async def throughput(dsn: str, orders: int, mode: SagaMode) -> Throughput:
    pool = await postgres.create_pool(dsn, min_size=4, max_size=20)
    try:
        await postgres.migrate(pool)
        await storage.migrate_postgres(pool)
        await follower_storage.migrate_postgres(pool)
        bench = Bench(pool, dsn, mode)
        await bench.catalog()
        semaphore = asyncio.Semaphore(16)

        async def placed(n: int) -> str:
            async with semaphore:
                return await bench.submit(n)

        order_ids = list(await asyncio.gather(*(placed(n) for n in range(orders))))
        stop = asyncio.Event()
        round_trips = bench.round_trips.count
        server_cpu = await backend_cpu_seconds(pool)
        cpu = time.process_time()
        started = time.perf_counter()
        loop = asyncio.create_task(bench.running(stop))
        await bench.until_confirmed(order_ids)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        server_cpu_after = await backend_cpu_seconds(pool)
        # The pool's connections opened before the run (it is full by then).
        server = sum(
            server_cpu_after[pid] - seconds
            for pid, seconds in server_cpu.items()
            if pid in server_cpu_after
        )
        stop.set()
        await loop
        round_trips = bench.round_trips.count - round_trips
        say(
            f"{mode} throughput: {orders} sagas in {elapsed:.1f} s = "
            f"{orders / elapsed:.0f} sagas/s "
            f"(target >= 200); per saga {round_trips / orders:.1f} statements to PostgreSQL, "
            f"{cpu / orders * 1000:.2f} ms CPU in this process, "
            f"{server / orders * 1000:.2f} ms CPU in PostgreSQL"
        )
        return Throughput(
            orders / elapsed, round_trips / orders, cpu / orders * 1000, server / orders * 1000
        )
    finally:
        await pool.close()


async def backend_cpu_seconds(pool: Any) -> dict[int, float]:
    """CPU seconds each PostgreSQL backend of this database has used so far, from /proc
    (the benchmark's server runs on this machine): what the sagas cost the server, which
    shares the two cores with them."""
    pids = await pool.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> dict[int, float]:
        used = {}
        for (pid,) in pids:
            with contextlib.suppress(OSError):  # a backend that has just exited
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return used

    return await asyncio.to_thread(read)


class ConfirmedDocuments:
    """The orders projection in this process, and when each order's document first showed
    CONFIRMED (perf_counter), seen through the projection's change feed."""

    def __init__(self, bench: Bench) -> None:
        self.documents = InMemoryDocumentStore()
        self.feed = InProcessChangeFeed()
        self.deps = ProjectorDependencies(
            events=bench.events,
            documents=self.documents,
            registry=build_registry(),
            feed=self.feed,
            parts=replace(
                bench.parts,
                checkpoint=InMemoryCheckpoint(),
                dead_letters=InMemoryDeadLetters(),
                status=None,
            ),
        )
        self.confirmed_at: dict[str, float] = {}
        self.gaps = 0
        self._expected: int | None = None
        self._all_confirmed = asyncio.Event()

    async def until_confirmed(self, orders: int, seconds: float = 60) -> None:
        self._expected = orders
        self._check_all()
        await asyncio.wait_for(self._all_confirmed.wait(), seconds)

    def _check_all(self) -> None:
        if self._expected is not None and len(self.confirmed_at) >= self._expected:
            self._all_confirmed.set()

    async def watch(self, ready: asyncio.Event) -> None:
        projection = OrdersProjection()
        async with self.feed.subscribe() as changes:
            ready.set()
            async for item in changes:
                if isinstance(item, FeedGap):
                    self.gaps += 1  # a watcher that fell behind: its figures would be late
                    continue
                version = await active_version(self.documents, projection.name)
                for change in item:
                    if change.collection != "orders" or change.id in self.confirmed_at:
                        continue
                    collection = physical_collection(change.collection, version)
                    doc = await self.documents.get(collection, change.id)
                    if doc is not None and doc["status"] == "CONFIRMED":
                        self.confirmed_at[change.id] = time.perf_counter()
                        self._check_all()

    def project(self, stop: asyncio.Event) -> asyncio.Task[None]:
        return asyncio.create_task(run_projection(self.deps, OrdersProjection(), stop))


async def latency(dsn: str, rate: float, seconds: float, warm_up: float, mode: SagaMode) -> Latency:
    pool = await postgres.create_pool(dsn, min_size=4, max_size=20)
    try:
        await postgres.migrate(pool)  # idempotent: a database of its own or throughput's
        await storage.migrate_postgres(pool)
        await follower_storage.migrate_postgres(pool)
        bench = Bench(pool, dsn, mode)
        await bench.catalog()
        stop = asyncio.Event()
        read_side = ConfirmedDocuments(bench)
        watching = asyncio.Event()
        watcher = asyncio.create_task(read_side.watch(watching))
        await watching.wait()
        projector = read_side.project(stop)
        loop = asyncio.create_task(bench.running(stop))
        order_ids: list[str] = []
        submits = []
        begin = time.perf_counter()
        warm_ups = int(rate * warm_up)
        for n in range(warm_ups + int(rate * seconds)):
            await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            submits.append(asyncio.create_task(bench.submit(n)))
        order_ids = list(await asyncio.gather(*submits))
        await bench.until_confirmed(order_ids)
        await read_side.until_confirmed(len(order_ids))
        order_ids = order_ids[warm_ups:]
        stop.set()
        await loop
        await projector
        watcher.cancel()
        found = await bench.events.read_streams([f"Order-{o}" for o in order_ids])
        latencies = []
        for events in found.values():
            at = {e.type: e.occurred_at for e in events}
            latencies.append((at["OrderConfirmed"] - at["OrderSubmitted"]).total_seconds())
        log_p50, log_p99 = p50, p99 = p50_p99_ms(latencies)
        say(
            f"{mode} latency at {rate:g} submits/s: submitted -> OrderConfirmed in the log "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 < 250 ms)"
        )
        missing = [o for o in order_ids if o not in read_side.confirmed_at]
        if missing:
            raise RuntimeError(f"{len(missing)} orders never showed CONFIRMED in their document")
        to_document = [read_side.confirmed_at[o] - bench.submitted_at[o] for o in order_ids]
        p50, p99 = p50_p99_ms(to_document)
        gaps = f" ({read_side.gaps} feed gaps: figures late)" if read_side.gaps else ""
        say(
            f"{mode} latency at {rate:g} submits/s: submitOrder answered -> CONFIRMED in the read "
            f"document p50 {p50:.1f} ms, p99 {p99:.1f} ms{gaps}"
        )
        return Latency(log_p50, log_p99, p50, p99)
    finally:
        await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warm-up", type=float, default=2.0, help="seconds of submits not counted")
    parser.add_argument("--mode", choices=["orchestration", "choreography", "both"], default="both")
    args = parser.parse_args()
    admin_dsn = os.environ.get("DATABASE_URL")
    if not admin_dsn:
        raise SystemExit("DATABASE_URL is not set: run `make bench-saga`")
    modes: list[SagaMode] = (
        ["orchestration", "choreography"] if args.mode == "both" else [args.mode]
    )
    say(f"fulfillment saga ({', '.join(modes)}), PostgreSQL event store and ledger, zero latency")
    for mode in modes:
        async with own_postgres_database(admin_dsn, f"bench_saga_{uuid.uuid4().hex[:8]}") as dsn:
            await throughput(dsn, args.orders, mode)
            await latency(dsn, args.rate, args.seconds, args.warm_up, mode)


if __name__ == "__main__":
    run_main(main)
