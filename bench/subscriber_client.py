"""One process of websocket subscribers for bench/subscribers.py, so that the benchmark's
own side is not what limits the push figures: the subscribers are spread over processes of
their own, apart from the process that sends the mutations.

    python -m bench.subscriber_client WS_URL

It talks JSON lines with the parent (stdin -> stdout):

    <- {"orders": [order id of each subscriber]}
    -> {"ready": n}              every subscriber has its order's first document
    <- {"latest": {order id: version}, "wait_seconds": s}
    -> {"received": [[order id, [[version, at], ...]], ...], "failed": [error, ...],
        "cpu_seconds": c, "wall_seconds": w, "lag_p99_ms": l}

`at` is `time.monotonic()` at receipt (CLOCK_MONOTONIC, the same clock in every process on
Linux); `cpu_seconds` and `wall_seconds` span "ready" to the end, and `lag_p99_ms` is how
late this process's event loop ran a 10 ms timer over that span: together they show
whether the clients kept up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from typing import Any

import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.common import percentile

SUBSCRIPTION = "subscription($id: ID!) { orderUpdated(id: $id, afterVersion: 0) { id version } }"
HANDSHAKES_AT_ONCE = 32


class Subscriber:
    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.versions: dict[int, float] = {}  # version -> time.monotonic() at receipt
        self.ready = asyncio.Event()
        self.received = asyncio.Event()  # set at each receipt
        self.socket: ClientConnection | None = None

    async def run(self, url: str, opened: asyncio.Semaphore) -> None:
        async with opened:
            self.socket = await connect(
                url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                max_size=2**20,
                open_timeout=120,
                # As graphql-ws in a browser: no websocket-level pings and no compression
                # from the client (the server pings, and offers no compression).
                ping_interval=None,
                compression=None,
            )
            await self.socket.send(orjson.dumps({"type": "connection_init"}).decode())
            ack = orjson.loads(await self.socket.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            variables = {"id": self.order_id}
            subscribe = {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": variables},
            }
            await self.socket.send(orjson.dumps(subscribe).decode())
        async for raw in self.socket:
            at = time.monotonic()
            message = orjson.loads(raw)
            if message.get("type") != "next":
                raise RuntimeError(f"subscription of {self.order_id} ended: {message}")
            version = message["payload"]["data"]["orderUpdated"]["version"]
            self.versions.setdefault(version, at)
            self.ready.set()
            self.received.set()

    async def until(self, version: int) -> None:
        while version not in self.versions:
            self.received.clear()
            await self.received.wait()


async def loop_lag(lags: list[float], period: float = 0.01) -> None:
    """How late the event loop runs a `period` timer, sample by sample."""
    while True:
        due = time.monotonic() + period
        await asyncio.sleep(period)
        lags.append(time.monotonic() - due)


async def read_line(reader: asyncio.StreamReader) -> Any:
    line = await reader.readline()
    if not line:
        raise SystemExit("the parent closed stdin")
    return json.loads(line)


def write_line(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main(url: str) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=2**26)  # the order ids come as one line
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    order_ids: list[str] = (await read_line(stdin))["orders"]
    watching = [Subscriber(order_id) for order_id in order_ids]
    opened = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    tasks = [asyncio.create_task(s.run(url, opened)) for s in watching]
    try:
        ready: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(s.ready.wait() for s in watching))
        )
        first: list[asyncio.Future[Any]] = [ready, *tasks]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                task.result()  # a subscriber that failed: its error
        await ready
        lags: list[float] = []
        ticking = asyncio.create_task(loop_lag(lags))
        cpu, wall = time.process_time(), time.monotonic()
        write_line({"ready": len(watching)})

        finish = await read_line(stdin)
        latest: dict[str, int] = finish["latest"]
        with contextlib.suppress(TimeoutError):  # those still waiting missed theirs
            async with asyncio.timeout(finish["wait_seconds"]):
                await asyncio.gather(
                    *(s.until(latest[s.order_id]) for s in watching if s.order_id in latest)
                )
        ticking.cancel()
        write_line(
            {
                "received": [[s.order_id, list(s.versions.items())] for s in watching],
                "failed": [repr(t.exception()) for t in tasks if t.done() and t.exception()],
                "cpu_seconds": time.process_time() - cpu,
                "wall_seconds": time.monotonic() - wall,
                "lag_p99_ms": percentile(sorted(lags), 0.99) * 1000,
            }
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sockets = [s.socket for s in watching if s.socket is not None]
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)


def raise_open_files_limit() -> None:
    """As many sockets as the hard limit allows (each subscriber holds one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    raise_open_files_limit()
    uvloop.run(main(sys.argv[1]))
