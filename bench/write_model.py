"""Write-model benchmark: the 5-command order workload against the PostgreSQL event store.

Each order is create (with a shipping address), add 3 items, submit: five commands, each its
own dispatch on the command bus (load -> decide -> append) (adding an item also loads the
product for its catalog price). Run with DATABASE_URL set, e.g. under `make bench`.

    python -m bench.write_model [--seconds 10] [--clients 1,8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from decimal import Decimal

import uvloop

from app.wiring import build_command_bus
from bench.common import p50_p99_ms
from write_model import commands
from write_model.command_context import CommandContext
from write_model.domain.order import Address
from write_model.event_store import postgres
from write_model.event_types import build_registry

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


async def run(dsn: str, clients: int, seconds: float) -> None:
    pool = await postgres.create_pool(dsn, min_size=clients, max_size=clients)
    await postgres.migrate(pool)
    bus = build_command_bus(
        postgres.PostgresEventStore(pool), build_registry(), tax_rate=Decimal("0.10")
    )
    run_id = uuid.uuid4().hex[:8]
    context = CommandContext(correlation_id=f"bench-{run_id}")
    customer = f"bench-{run_id}"
    await bus.dispatch(
        commands.RegisterCustomer(
            customer_id=customer, name="Bench", email=f"bench-{run_id}@example.com"
        ),
        context,
    )
    skus = [f"bench-{run_id}-{n}" for n in range(3)]
    for sku in skus:
        await bus.dispatch(
            commands.AddProduct(
                product_id=sku,
                name=sku,
                price=Decimal("9.99"),
                initial_stock=1_000_000,
            ),
            context,
        )

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def timed(coro) -> None:
        started = time.perf_counter()
        await coro
        latencies.append(time.perf_counter() - started)

    async def client() -> None:
        while time.perf_counter() < deadline:
            order_id = uuid.uuid4().hex
            await timed(
                bus.dispatch(
                    commands.CreateOrder(
                        order_id=order_id, customer_id=customer, shipping_address=ADDRESS
                    ),
                    context,
                )
            )
            for sku in skus:
                await timed(
                    bus.dispatch(
                        commands.AddOrderItem(order_id=order_id, product_id=sku, quantity=1),
                        context,
                    )
                )
            await timed(bus.dispatch(commands.SubmitOrder(order_id=order_id), context))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await pool.close()

    p50_ms, p99_ms = p50_p99_ms(latencies)
    print(
        f"clients={clients:<3} commands={len(latencies):<7} "
        f"commands/s={len(latencies) / elapsed:8.0f}  "
        f"p50={p50_ms:6.2f} ms  p99={p99_ms:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", default="1,8")
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit("DATABASE_URL is not set: run `make bench`")
    print("write model: create + 3 x add item + submit per order, PostgreSQL event store")
    for clients in (int(c) for c in args.clients.split(",")):
        # uvloop, as under uvicorn in the servers
        uvloop.run(run(dsn, clients, args.seconds))


if __name__ == "__main__":
    main()
