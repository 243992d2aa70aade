"""Websocket subscribers: `subscribers` graphql-transport-ws connections, each watching one
of the seeded orders with `orderUpdated`, while `addOrderItem` mutations run concurrently
(each sent on schedule, not after the previous one's answer) at `rate` per second across
those orders.

The subscribers live in processes of their own (bench/subscriber_client.py, at most
`PER_CLIENT_PROCESS` each), apart from this one, which sends the mutations: each side's CPU
share and event-loop lag are reported beside the figures, to show the clients kept up.

Measured: the server's resident memory per connection (RSS of the server process before the
connections and once all have their first document), push latency from each mutation's
response to each subscriber's receipt of that version (p50, p99; negative when the push
arrived before the response), and how many subscribers missed their order's final version.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import p50_p99_ms, percentile
from bench.http.seeding import ADD_ITEM

PER_CLIENT_PROCESS = 2_500
READY_SECONDS = 600  # for every subscriber's first document
LAST_PUSH_SECONDS = 10  # for the last pushes after the last mutation's answer


@dataclass(frozen=True)
class Pushed:
    subscribers: int
    kib_per_connection: float
    mutations: int
    p50_ms: float
    p99_ms: float
    missed: int
    clients: str  # how busy the benchmark's own processes were


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class ClientProcess:
    """`python -m bench.subscriber_client`: some of the subscribers, in a process of their
    own; JSON lines over its stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @staticmethod
    async def start(url: str) -> ClientProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.subscriber_client",
            url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**28,  # the receipts come back as one line
        )
        return ClientProcess(process)

    async def send(self, value: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(value).encode() + b"\n")
        await self.process.stdin.drain()

    async def receive(self) -> Any:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            await self.process.wait()
            raise RuntimeError(f"a subscriber process exited with {self.process.returncode}")
        return json.loads(line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def loop_lag(lags: list[float], period: float = 0.01) -> None:
    """How late this event loop runs a `period` timer, sample by sample."""
    while True:
        due = time.monotonic() + period
        await asyncio.sleep(period)
        lags.append(time.monotonic() - due)


async def push_benchmark(
    base_url: str,
    server_pid: int,
    order_ids: list[str],
    skus: list[str],
    subscribers: int,
    rate: float,
    seconds: float,
) -> Pushed:
    url = base_url.replace("http://", "ws://") + "/graphql"
    watched = [order_ids[n % len(order_ids)] for n in range(subscribers)]
    count = math.ceil(subscribers / PER_CLIENT_PROCESS)
    before = resident_kib(server_pid)
    clients = list(await asyncio.gather(*(ClientProcess.start(url) for _ in range(count))))
    try:
        for n, client in enumerate(clients):
            await client.send({"orders": watched[n::count]})
        async with asyncio.timeout(READY_SECONDS):
            await asyncio.gather(*(client.receive() for client in clients))
        await asyncio.sleep(1)  # the server settles (buffers, first-call allocations)
        per_connection = (resident_kib(server_pid) - before) / subscribers

        answered: dict[tuple[str, int], float] = {}
        answer_seconds: list[float] = []
        sku = itertools.cycle(skus)
        lags: list[float] = []
        ticking = asyncio.create_task(loop_lag(lags))
        cpu, wall = time.process_time(), time.monotonic()
        # Idle connections are let go before uvicorn's 5 s keep-alive ends them, so that no
        # mutation is sent on a connection the server is closing (a ReadError).
        limits = httpx.Limits(
            max_connections=200, max_keepalive_connections=200, keepalive_expiry=2.0
        )
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:

            async def mutate(order_id: str, product_id: str) -> None:
                variables = {"input": {"orderId": order_id, "productId": product_id, "quantity": 1}}
                sent = time.monotonic()
                response = await http.post(
                    f"{base_url}/graphql", json={"query": ADD_ITEM, "variables": variables}
                )
                at = time.monotonic()
                result = response.json()["data"]["addOrderItem"]
                if result["__typename"] != "OrderAccepted":
                    raise RuntimeError(f"addOrderItem refused: {result}")
                answered[order_id, result["version"]] = at
                answer_seconds.append(at - sent)

            total = max(1, int(rate * seconds))
            begin = time.monotonic()
            sending = []
            for n in range(total):
                await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
                order_id = order_ids[n % len(order_ids)]
                sending.append(asyncio.create_task(mutate(order_id, next(sku))))
            await asyncio.gather(*sending)
        driver_cpu = (time.process_time() - cpu) / (time.monotonic() - wall)
        ticking.cancel()
        latest: dict[str, int] = {}
        for order_id, version in answered:
            latest[order_id] = max(version, latest.get(order_id, 0))
        for client in clients:
            await client.send({"latest": latest, "wait_seconds": LAST_PUSH_SECONDS})
        reports = await asyncio.gather(*(client.receive() for client in clients))
    finally:
        await asyncio.gather(*(client.stop() for client in clients))

    failed = [error for report in reports for error in report["failed"]]
    if failed:
        raise RuntimeError(f"{len(failed)} subscribers failed, the first: {failed[0]}")
    by_order: dict[str, list[dict[int, float]]] = defaultdict(list)
    for report in reports:
        for order_id, received in report["received"]:
            by_order[order_id].append({version: at for version, at in received})
    latencies = []
    for (order_id, version), at in answered.items():
        for versions in by_order[order_id]:
            # A later version stands for the ones folded into it (the feed may coalesce).
            seen = [t for v, t in versions.items() if v >= version]
            if seen:
                latencies.append(min(seen) - at)
    missed = sum(
        1
        for order_id, watchers in by_order.items()
        for versions in watchers
        if order_id in latest and latest[order_id] not in versions
    )
    p50, p99 = p50_p99_ms(latencies) if len(latencies) > 1 else (float("nan"),) * 2
    busiest = max(report["cpu_seconds"] / report["wall_seconds"] for report in reports)
    worst_lag = max(report["lag_p99_ms"] for report in reports)
    own_lag = percentile(sorted(lags), 0.99) * 1000
    answer_p99 = p50_p99_ms(answer_seconds)[1] if len(answer_seconds) > 1 else float("nan")
    described = (
        f"bench: {count} subscriber processes, busiest {busiest:.0%} CPU, loop lag p99 "
        f"{worst_lag:.0f} ms; mutation sender {driver_cpu:.0%} CPU, lag p99 {own_lag:.0f} ms; "
        f"mutation answer p99 {answer_p99:.0f} ms"
    )
    return Pushed(subscribers, per_connection, total, p50, p99, missed, described)
