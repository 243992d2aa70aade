"""Write-model benchmark: the 5-command order workload against the PostgreSQL event store.

Each order is create (with a shipping address), add 3 items, submit: five commands, each its
own dispatch on the command bus (load -> decide -> append) (adding an item also loads the
product for its catalog price). Run with DATABASE_URL set, e.g. under `make bench-write`.

    python -m bench.write_model [--seconds 10] [--clients 1,8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal

import uvloop

from app.backends import shared_log_backend
from app.bootstrap import command_bus
from app.settings import Settings
from bench.common import p50_p99_ms
from write_model import commands
from write_model.bus import CommandBus
from write_model.command_context import CommandContext
from write_model.domain.order import Address

ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


@dataclass(frozen=True)
class Measured:
    clients: int
    commands: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.commands / self.seconds

    def line(self) -> str:
        return (
            f"clients={self.clients:<3} commands={self.commands:<7} "
            f"commands/s={self.rate:8.0f}  p50={self.p50_ms:6.2f} ms  p99={self.p99_ms:6.2f} ms"
        )


async def run(dsn: str, clients: int, seconds: float) -> Measured:
    """The workload for `seconds` at `clients` concurrent clients, on the command bus and
    PostgreSQL event store the composition root builds for the API (a pool of `clients`)."""
    settings = Settings(
        database_url=dsn, pg_pool_min_size=clients, pg_pool_max_size=max(clients, 2)
    )
    async with shared_log_backend(settings, follows_log=False, migrates=True) as backend:
        bus = command_bus(settings, backend)
        return await workload(bus, clients, seconds)


async def workload(bus: CommandBus, clients: int, seconds: float) -> Measured:
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

    async def timed(coro: Awaitable[object]) -> None:
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
    p50_ms, p99_ms = p50_p99_ms(latencies)
    return Measured(clients, len(latencies), elapsed, p50_ms, p99_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", default="1,8")
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit("DATABASE_URL is not set: run `make bench-write`")
    print("write model: create + 3 x add item + submit per order, PostgreSQL event store")
    for clients in (int(c) for c in args.clients.split(",")):
        # uvloop, as under uvicorn in the servers
        print(uvloop.run(run(dsn, clients, args.seconds)).line())


if __name__ == "__main__":
    main()
