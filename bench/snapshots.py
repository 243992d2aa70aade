"""Snapshot benchmark: reserving stock on a product after 10 and after 10,000 earlier
reservations, with and without snapshots, on the PostgreSQL event store.

Each product's history is appended directly (StockReserved events in large batches, as the
bus would have written them); then `--reserves` ReserveStock commands go through the bus
one after another, each a load (from the snapshot, or a fold of the whole stream) ->
decide -> append. Printed: p50 and p99 per command, and the events each load folded.

    python -m bench.snapshots [--reserves 30] [--every 100]

Run under `make bench-snapshots` (tests/services/with-services provides DATABASE_URL).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from app.wiring import build_command_bus
from bench.common import own_postgres_database, p50_p99_ms, run_main, say
from write_model import commands
from write_model.bus import CommandBus
from write_model.command_context import CommandContext
from write_model.domain.money import Money
from write_model.domain.product import ProductAdded, StockReserved
from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store import postgres
from write_model.event_store.port import ANY, StreamFromSnapshot
from write_model.event_types import build_registry

CONTEXT = CommandContext(correlation_id="bench-snapshots")
HISTORIES = (10, 10_000)
REGISTRY = build_registry()


class FoldCounting(postgres.PostgresEventStore):
    """Counts the events each load returned: what the bus had to fold."""

    folded: list[int]

    async def read_from_snapshots(
        self, schema_versions: Mapping[str, int | None]
    ) -> dict[str, StreamFromSnapshot]:
        found = await super().read_from_snapshots(schema_versions)
        self.folded.extend(len(stream.events) for stream in found.values())
        return found


def bus_over(store: postgres.PostgresEventStore, snapshot_every: int) -> CommandBus:
    return build_command_bus(
        store, REGISTRY, tax_rate=Decimal("0.10"), snapshot_every=snapshot_every
    )


def new_event(event: object) -> NewEvent:
    type_name, data, schema_version = REGISTRY.serialize(event)
    metadata = EventMetadata("bench-snapshots", schema_version=schema_version)
    return NewEvent(uuid.uuid4(), type_name, data, metadata, datetime.now(UTC))


async def product_with_history(store: postgres.PostgresEventStore, reservations: int) -> str:
    product_id = f"p-{uuid.uuid4().hex[:8]}"
    history: list[ProductAdded | StockReserved] = [
        ProductAdded(product_id, "Ink", Money(Decimal("9.99"), "USD"), 10_000_000)
    ]
    history += [StockReserved(f"earlier-{n}", 1) for n in range(reservations)]
    stream_id = f"Product-{product_id}"
    for start in range(0, len(history), 1000):
        batch = [new_event(event) for event in history[start : start + 1000]]
        await store.append_to_stream(stream_id, "Product", ANY, batch)
    return product_id


async def reserve_after(
    store: FoldCounting, history: int, snapshot_every: int, reserves: int
) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, most events folded by one load) of `reserves` ReserveStock."""
    product_id = await product_with_history(store, history)
    bus = bus_over(store, snapshot_every)
    if snapshot_every:
        # As the bus would have kept it while the history was written: a recent snapshot.
        warm = commands.ReserveStock(product_id=product_id, order_id="warm-up", quantity=1)
        await bus.dispatch(warm, CONTEXT)
    store.folded = []
    latencies = []
    for n in range(reserves):
        reserve = commands.ReserveStock(product_id=product_id, order_id=f"o-{n}", quantity=1)
        started = time.perf_counter()
        await bus.dispatch(reserve, CONTEXT)
        latencies.append(time.perf_counter() - started)
    p50, p99 = p50_p99_ms(latencies)
    mode = f"snapshots every {snapshot_every:<4}" if snapshot_every else "no snapshots        "
    say(
        f"after {history:>6} reservations, {mode}: reserve p50 {p50:8.2f} ms, "
        f"p99 {p99:8.2f} ms; events folded per load {min(store.folded)}-{max(store.folded)}"
    )
    return p50, p99, max(store.folded)


async def measure_all(
    admin_dsn: str, reserves: int, every: int
) -> dict[tuple[int, int], tuple[float, float, int]]:
    """{(history, snapshot_every): (p50 ms, p99 ms, most events folded)} for every history
    with and without snapshots, on a database of its own."""
    found = {}
    async with own_postgres_database(admin_dsn, f"bench_snap_{uuid.uuid4().hex[:8]}") as dsn:
        pool = await postgres.create_pool(dsn, min_size=2, max_size=4)
        try:
            await postgres.migrate(pool)
            store = FoldCounting(pool)
            for history in HISTORIES:
                for snapshot_every in (0, every):
                    found[history, snapshot_every] = await reserve_after(
                        store, history, snapshot_every, reserves
                    )
        finally:
            await pool.close()
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reserves", type=int, default=30)
    parser.add_argument("--every", type=int, default=100, help="SNAPSHOT_EVERY")
    args = parser.parse_args()
    admin_dsn = os.environ.get("DATABASE_URL")
    if not admin_dsn:
        raise SystemExit("DATABASE_URL is not set: run `make bench-snapshots`")
    say("snapshots: ReserveStock on one product, one command at a time, PostgreSQL")
    await measure_all(admin_dsn, args.reserves, args.every)


if __name__ == "__main__":
    run_main(main)
