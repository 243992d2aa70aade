"""Websocket subscribers (bench/subscribers.py) on `orders dev` and on `orders api` +
`orders projector`: server memory per connection and push latency with 1,000 and 10,000
subscribers (BENCH_SUBSCRIBERS=a,b,... for others) watching 500 orders while 50 mutations/s
run concurrently across them; a fresh server per count, so that each count's memory is its
own."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from bench.common import AppProcess, say
from bench.figures import Curve, Run, suite
from bench.http.seeding import seed_orders
from bench.http.stack import dev_stack, server_stack
from bench.subscriber_client import raise_open_files_limit
from bench.subscribers import push_benchmark

# Targets of the issue "Speed", at 10,000 subscribers and 50 mutations/s.
TARGET_SUBSCRIBERS = 10_000
P99_TARGET_MS = 50.0
KIB_TARGET = 40.0

Stack = Callable[[Path, list[AppProcess]], AbstractAsyncContextManager[str]]


def api_stack(workdir: Path, started: list[AppProcess]) -> AbstractAsyncContextManager[str]:
    return server_stack(workdir, started=started)


STACKS: dict[str, tuple[str, Stack]] = {
    "dev": ("orders dev", dev_stack),
    "api": ("orders api + projector", api_stack),
}


@suite("subscribers", order=45, title="Websocket subscribers", needs=("postgres", "mongo"))
async def subscribers(run: Run) -> None:
    run.curve(
        Curve(
            "subscribers_memory",
            "Server memory per websocket subscriber",
            "subscribers",
            "KiB per connection",
        )
    )
    run.curve(
        Curve(
            "subscribers_push",
            "Push latency p99, mutation answered -> subscriber received",
            "subscribers",
            "ms",
        )
    )
    raise_open_files_limit()  # for the servers started below: a socket per subscriber
    orders = run.scale.pick(500, 20)
    rate, seconds = run.scale.pick((50.0, 20.0), (20.0, 1.0))
    counts = run.scale.sizes("subscribers", (1_000, TARGET_SUBSCRIBERS), (50,))
    # A smoke run proves the benchmark on one stack (the HTTP benchmark starts both).
    stacks = run.scale.pick(list(STACKS.items()), list(STACKS.items())[:1])
    for key, (name, stack) in stacks:
        for count in counts:
            started: list[AppProcess] = []
            async with stack(run.workdir, started) as base_url:
                seeded = await seed_orders(base_url, orders, 20)
                pushed = await push_benchmark(
                    base_url, started[0].popen.pid, seeded.orders, seeded.skus, count, rate, seconds
                )
            say(f"  {name}, {count:,} subscribers: {pushed.mutations} mutations; {pushed.clients}")
            memory = run.figure(
                f"subscribers.{key}.memory.n{count}",
                f"server memory per subscriber, {count:,} subscribers, {name}",
                pushed.kib_per_connection,
                "KiB",
                lower_is_better=True,
                curve="subscribers_memory",
                series=name,
                x=count,
            )
            push = run.figure(
                f"subscribers.{key}.push.n{count}",
                f"push p99, {count:,} subscribers on {orders} orders, {rate:g} mutations/s, {name}",
                pushed.p99_ms,
                "ms",
                f"p50 {pushed.p50_ms:.1f} ms; {pushed.missed} missed the final version; "
                f"{pushed.clients}",
                lower_is_better=True,
                curve="subscribers_push",
                series=name,
                x=count,
            )
            missed = run.figure(
                f"subscribers.{key}.missed.n{count}",
                f"subscribers that missed their order's final version, {count:,}, {name}",
                pushed.missed,
                "subscribers",
                lower_is_better=True,
            )
            run.target(missed, at_most=0)
            if count == TARGET_SUBSCRIBERS:
                run.target(memory, at_most=KIB_TARGET)
                run.target(push, at_most=P99_TARGET_MS)
