"""Websocket subscribers: `subscribers` graphql-transport-ws connections, each watching one
of the seeded orders with `orderUpdated`, while `addOrderItem` mutations run one after
another at `rate` per second across those orders.

Measured: the server's resident memory per connection (RSS of the server process before the
connections and once all have their first document), push latency from each mutation's
response to each subscriber's receipt of that version (p50, p99; negative when the push
arrived before the response), and how many subscribers missed their order's final version.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.common import p50_p99_ms
from bench.http.seeding import ADD_ITEM

SUBSCRIPTION = "subscription($id: ID!) { orderUpdated(id: $id, afterVersion: 0) { id version } }"


@dataclass(frozen=True)
class Pushed:
    subscribers: int
    kib_per_connection: float
    mutations: int
    p50_ms: float
    p99_ms: float
    missed: int


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Subscriber:
    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.versions: dict[int, float] = {}  # version -> perf_counter at receipt
        self.ready = asyncio.Event()
        self.socket: ClientConnection | None = None

    async def run(self, url: str, opened: asyncio.Semaphore) -> None:
        async with opened:
            self.socket = await connect(
                url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                max_size=2**20,
                open_timeout=60,
            )
            await self.socket.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(await self.socket.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await self.socket.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": SUBSCRIPTION, "variables": {"id": self.order_id}},
                    }
                )
            )
        async for raw in self.socket:
            message = json.loads(raw)
            if message.get("type") != "next":
                raise RuntimeError(f"subscription of {self.order_id} ended: {message}")
            version = message["payload"]["data"]["orderUpdated"]["version"]
            self.versions.setdefault(version, time.perf_counter())
            self.ready.set()


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
    before = resident_kib(server_pid)
    watching = [Subscriber(order_ids[n % len(order_ids)]) for n in range(subscribers)]
    opened = asyncio.Semaphore(64)  # handshakes at once
    tasks = [asyncio.create_task(s.run(url, opened)) for s in watching]
    try:
        waiting = asyncio.gather(*(s.ready.wait() for s in watching))
        first: list[asyncio.Future[Any]] = [waiting, *tasks]
        await asyncio.wait(
            first,
            timeout=300,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in tasks:
            if task.done():
                task.result()  # a subscriber that failed: its error
        if not all(s.ready.is_set() for s in watching):
            raise RuntimeError("subscribers did not all get their first document in 300 s")
        await asyncio.sleep(1)  # the server settles (buffers, first-call allocations)
        per_connection = (resident_kib(server_pid) - before) / subscribers

        answered: dict[tuple[str, int], float] = {}
        latest: dict[str, int] = {}
        sku = itertools.cycle(skus)
        async with httpx.AsyncClient(timeout=30) as http:
            begin = time.perf_counter()
            total = max(1, int(rate * seconds))
            for n in range(total):
                await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
                order_id = order_ids[n % len(order_ids)]
                variables = {"input": {"orderId": order_id, "productId": next(sku), "quantity": 1}}
                response = await http.post(
                    f"{base_url}/graphql", json={"query": ADD_ITEM, "variables": variables}
                )
                result = response.json()["data"]["addOrderItem"]
                if result["__typename"] != "OrderAccepted":
                    raise RuntimeError(f"addOrderItem refused: {result}")
                answered[order_id, result["version"]] = time.perf_counter()
                latest[order_id] = result["version"]
        for _ in range(100):  # up to 10 s for the last pushes
            if all(s.order_id not in latest or latest[s.order_id] in s.versions for s in watching):
                break
            await asyncio.sleep(0.1)
        latencies = []
        by_order: dict[str, list[Subscriber]] = defaultdict(list)
        for s in watching:
            by_order[s.order_id].append(s)
        for (order_id, version), at in answered.items():
            for s in by_order[order_id]:
                # A later version stands for the ones folded into it (the feed may coalesce).
                seen = [t for v, t in s.versions.items() if v >= version]
                if seen:
                    latencies.append(min(seen) - at)
        missed = sum(
            1 for s in watching if s.order_id in latest and latest[s.order_id] not in s.versions
        )
        p50, p99 = p50_p99_ms(latencies) if len(latencies) > 1 else (float("nan"),) * 2
        return Pushed(subscribers, per_connection, total, p50, p99, missed)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sockets = [s.socket for s in watching if s.socket is not None]
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
