"""HTTP benchmark: the GraphQL API as deployed, one uvicorn worker of `orders api` beside
`orders projector`, on PostgreSQL and the Mongo-wire server.

Two measurements, each about `--seconds` long after a short warm-up:

1. `order(id)` with its items (and each item's live product) and its customer, over many
   seeded orders, at `--query-connections` connections (target >= 1,500 req/s);
2. `addOrderItem` mutations at `--mutation-connections` connections (target >= 1,000
   mutations/s): each adds one of the seeded products to one of many seeded draft orders,
   round robin, without `expectedVersion` (the server retries a rare conflict itself).

The load generator is `wrk` (Debian's package) with a Lua script for the POST bodies when
it is installed, else an async Python client (aiohttp) with as many connections. Prints
requests/s and latency p50/p99 for each. Run it under the test services:

    tests/services/with-services .venv/bin/python -m bench.http [--seconds 10]

It creates a PostgreSQL database and a Mongo database of its own and drops them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]

ORDER_QUERY = (
    "query Order($id: ID!) { order(id: $id) { id status version customerName"
    " customer { id name email }"
    " items { productId productName quantity unitPrice { amount currency }"
    " lineTotal { amount currency } product { id name stockAvailable } }"
    " subtotal { amount currency } tax { amount currency } total { amount currency } } }"
)
ADD_ITEM = (
    "mutation Add($input: AddOrderItemInput!) { addOrderItem(input: $input) {"
    " __typename ... on OrderAccepted { orderId version consistencyToken }"
    " ... on UserError { code message } } }"
)
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}


@dataclass(frozen=True)
class Figures:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int  # transport errors, non-2xx answers, or bodies that are not the success

    def line(self, target: float, unit: str) -> str:
        rate = self.requests / self.seconds
        verdict = "meets" if rate >= target else "BELOW"
        return (
            f"{self.name:<44} {rate:8,.0f} {unit}/s   p50 {self.p50_ms:7.2f} ms   "
            f"p99 {self.p99_ms:7.2f} ms   failed {self.failed}   "
            f"({verdict} target {target:,.0f})"
        )


# ------------------------------------------------------------------ server processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "app", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextlib.asynccontextmanager
async def server_stack(workdir: Path) -> AsyncIterator[str]:
    """`orders migrate`, then `orders api` (one worker) + `orders projector` on a database
    of their own; yields the base URL."""
    import asyncpg

    base_dsn = os.environ.get("DATABASE_URL")
    mongo_url = os.environ.get("MONGO_URL")
    if not base_dsn or not mongo_url:
        raise SystemExit(
            "DATABASE_URL and MONGO_URL must be set: run under tests/services/with-services"
        )
    tag = uuid.uuid4().hex[:10]
    database = f"bench_http_{tag}"
    admin = await asyncpg.connect(base_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(urlsplit(base_dsn)._replace(path=f"/{database}")),
        "MONGO_URL": mongo_url,
        "MONGO_DB": database,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    processes: list[Process] = []
    try:
        migrate = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app", "migrate"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if migrate.returncode != 0:
            raise SystemExit(f"orders migrate failed:\n{migrate.stdout}{migrate.stderr}")
        port = free_port()
        processes.append(
            Process(
                "orders api",
                ["api", "--host", "127.0.0.1", "--port", str(port)],
                env,
                workdir / "api.log",
            )
        )
        processes.append(Process("orders projector", ["projector"], env, workdir / "projector.log"))
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, processes)
        yield base_url
    finally:
        for process in processes:
            process.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        with contextlib.suppress(Exception):
            from pymongo import AsyncMongoClient

            client: AsyncMongoClient = AsyncMongoClient(mongo_url)
            await client.drop_database(database)
            await client.close()


async def wait_healthy(base_url: str, processes: Sequence[Process]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            for process in processes:
                if process.popen.poll() is not None:
                    raise SystemExit(f"{process.name} exited:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base_url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise SystemExit(f"/healthz did not answer 200 within 30 s\n{tails}")


# ----------------------------------------------------------------------- seeding


class GraphQL:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(self.url, json={"query": query, "variables": variables})
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise SystemExit(f"seeding failed: {response.status_code} {body}")
        return body["data"]

    async def mutate(self, field: str, input_type: str, accepted: str, input: dict) -> dict:
        data = await self(
            f"mutation M($input: {input_type}!) {{ r: {field}(input: $input) {{ __typename"
            f" ... on {accepted} {{ version consistencyToken }}"
            " ... on UserError { code message } } }",
            {"input": input},
        )
        result = data["r"]
        if result["__typename"] != accepted:
            raise SystemExit(f"seeding {field} failed: {result}")
        return result


async def bounded(jobs: Sequence[Any], concurrency: int = 16) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


@dataclass(frozen=True)
class Seeded:
    tag: str
    customers: list[str]
    skus: list[str]
    orders: list[str]


async def seed_orders(base_url: str, orders: int, products: int) -> Seeded:
    """20 customers, `products` products with ample stock, and `orders` orders of 3 items
    each; returns once the projections have caught up and an order reads back whole."""
    tag = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=60) as http:
        api = GraphQL(http, f"{base_url}/graphql")
        customers = [f"bench-c{n}-{tag}" for n in range(20)]
        await bounded(
            [
                api.mutate(
                    "registerCustomer",
                    "RegisterCustomerInput",
                    "CustomerAccepted",
                    {"customerId": c, "name": f"Customer {c}", "email": f"{c}@example.com"},
                )
                for c in customers
            ]
        )
        skus = [f"bench-p{n}-{tag}" for n in range(products)]
        await bounded(
            [
                api.mutate(
                    "addProduct",
                    "AddProductInput",
                    "ProductAccepted",
                    {
                        "productId": sku,
                        "name": f"Product {n}",
                        "price": f"{n % 50 + 1}.{n % 100:02d}",
                        "initialStock": 1_000_000,
                    },
                )
                for n, sku in enumerate(skus)
            ]
        )
        order_ids = [f"bench-q{n}-{tag}" for n in range(orders)]
        await bounded(
            [
                api.mutate(
                    "createOrder",
                    "CreateOrderInput",
                    "OrderAccepted",
                    {
                        "orderId": order_id,
                        "customerId": customers[n % len(customers)],
                        "items": [
                            {"productId": skus[(n + k) % len(skus)], "quantity": k + 1}
                            for k in range(3)
                        ],
                        "shippingAddress": ADDRESS,
                    },
                )
                for n, order_id in enumerate(order_ids)
            ]
        )
        await caught_up(api)
        sample = await api(ORDER_QUERY, {"id": order_ids[0]})
        order = sample["order"]
        if not order or len(order["items"]) != 3 or not order["customer"]:
            raise SystemExit(f"a seeded order reads back wrong: {sample}")
    return Seeded(tag, customers, skus, order_ids)


async def seed_drafts(base_url: str, seeded: Seeded, drafts: int) -> list[str]:
    """`drafts` empty draft orders for the mutations to grow (made after the query run, so
    that the query reads the same small orders collection whatever `--drafts` is)."""
    async with httpx.AsyncClient(timeout=60) as http:
        api = GraphQL(http, f"{base_url}/graphql")
        order_ids = [f"bench-d{n}-{seeded.tag}" for n in range(drafts)]
        await bounded(
            [
                api.mutate(
                    "createOrder",
                    "CreateOrderInput",
                    "OrderAccepted",
                    {"orderId": order_id, "customerId": seeded.customers[n % 20]},
                )
                for n, order_id in enumerate(order_ids)
            ]
        )
        await caught_up(api)
    return order_ids


async def caught_up(api: GraphQL, limit_seconds: float = 300) -> float:
    """Wait until every projection has applied the whole log; the seconds it took."""
    started = time.monotonic()
    while True:
        data = await api("{ projections { name lag } }")
        if data["projections"] and all(p["lag"] == 0 for p in data["projections"]):
            return time.monotonic() - started
        if time.monotonic() - started > limit_seconds:
            raise SystemExit(f"projections did not catch up in {limit_seconds:.0f} s: {data}")
        await asyncio.sleep(0.2)


# ------------------------------------------------------------------ wrk driver

WRK_SCRIPT = r"""
-- generated by bench/http.py
local ids = { __IDS__ }
local skus = { __SKUS__ }
local parts = { __PARTS__ }
local expect = [==[__EXPECT__]==]
local threads = {}
local counter = 0
bad = 0

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  counter = offset or 0
end

request = function()
  counter = counter + 1
  local body
  if #parts == 1 then
    body = parts[1]
  elseif #parts == 2 then
    body = parts[1] .. ids[(counter % #ids) + 1] .. parts[2]
  else
    local sku = skus[(math.floor(counter / #ids) + counter) % #skus + 1]
    body = parts[1] .. ids[(counter % #ids) + 1] .. parts[2] .. sku .. parts[3]
  end
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then
    bad = bad + 1
  end
end

done = function(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p99_us\": %d, "
    .. "\"bad\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    failed, e.connect + e.read + e.write + e.timeout))
end
"""


def lua_list(values: Sequence[str]) -> str:
    return ", ".join(f"[==[{value}]==]" for value in values)


def wrk_script(workdir: Path, name: str, body: dict, ids: list[str], skus: list[str], expect: str):
    text = json.dumps(body, separators=(",", ":"))
    parts = text.replace("__SKU__", "\0").replace("__ID__", "\0").split("\0")
    script = (
        WRK_SCRIPT.replace("__IDS__", lua_list(ids))
        .replace("__SKUS__", lua_list(skus))
        .replace("__PARTS__", lua_list(parts))
        .replace("__EXPECT__", expect)
    )
    path = workdir / f"{name}.lua"
    path.write_text(script)
    return path


def run_wrk(name: str, base_url: str, script: Path, connections: int, seconds: float) -> Figures:
    threads = max(1, min(2, connections))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"{base_url}/graphql",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKRESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(line.removeprefix("WRKRESULT "))
    return Figures(
        name,
        result["requests"],
        result["duration_us"] / 1e6,
        result["p50_us"] / 1000,
        result["p99_us"] / 1000,
        result["bad"] + result["socket_errors"],
    )


# ---------------------------------------------------------- Python fallback driver


async def run_python(
    name: str,
    base_url: str,
    body: dict,
    ids: list[str],
    skus: list[str],
    expect: str,
    connections: int,
    seconds: float,
) -> Figures:
    import aiohttp

    text = json.dumps(body, separators=(",", ":"))
    latencies: list[float] = []
    failed = 0
    counter = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client(offset: int) -> None:
            nonlocal failed, counter
            while time.perf_counter() < deadline:
                counter += 1
                n = counter + offset
                payload = text.replace("__ID__", ids[n % len(ids)]).replace(
                    "__SKU__", skus[(n // len(ids) + n) % len(skus)] if skus else ""
                )
                started = time.perf_counter()
                try:
                    async with session.post(
                        f"{base_url}/graphql",
                        data=payload,
                        headers={"Content-Type": "application/json"},
                    ) as response:
                        answer = await response.text()
                        ok = response.status == 200 and expect in answer
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                failed += not ok

        started = time.perf_counter()
        await asyncio.gather(*(client(c * 7919) for c in range(connections)))
        elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return Figures(
        name, len(latencies), elapsed, quantiles[49] * 1000, quantiles[98] * 1000, failed
    )


# --------------------------------------------------------------------------- main


async def measure(
    name: str,
    base_url: str,
    workdir: Path,
    body: dict,
    ids: list[str],
    skus: list[str],
    expect: str,
    connections: int,
    seconds: float,
    warmup: float,
) -> Figures:
    if shutil.which("wrk"):
        script = wrk_script(workdir, name.split()[0], body, ids, skus, expect)
        if warmup:
            await asyncio.to_thread(run_wrk, name, base_url, script, connections, warmup)
        return await asyncio.to_thread(run_wrk, name, base_url, script, connections, seconds)
    if warmup:
        await run_python(name, base_url, body, ids, skus, expect, connections, warmup)
    return await run_python(name, base_url, body, ids, skus, expect, connections, seconds)


async def projector_lag(base_url: str) -> str:
    """How far the projector is behind right after the mutations (it catches up later)."""
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{base_url}/graphql", json={"query": "{ projections { name lag } }"}
            )
        statuses = response.json()["data"]["projections"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as error:
        return (
            f"projector lag: the projections query failed after "
            f"{time.monotonic() - started:.1f} s ({error!r})"
        )
    lags = ", ".join(f"{p['name']} {p['lag']}" for p in statuses)
    return f"projector lag right after the mutations (events): {lags}"


async def main_async(args: argparse.Namespace) -> None:
    driver = "wrk" if shutil.which("wrk") else "async Python client (aiohttp); wrk not found"
    print(f"HTTP benchmark: one uvicorn worker of `orders api` + `orders projector`, {driver}")
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        workdir = Path(tmp)
        async with server_stack(workdir) as base_url:
            started = time.monotonic()
            seeded = await seed_orders(base_url, args.orders, args.products)
            print(
                f"seeded {len(seeded.orders)} orders of 3 items, {len(seeded.customers)} "
                f"customers, {len(seeded.skus)} products "
                f"({time.monotonic() - started:.1f} s, projections caught up)"
            )
            query = await measure(
                f"order(id) + items + customer, {args.query_connections} conn",
                base_url,
                workdir,
                {"query": ORDER_QUERY, "variables": {"id": "__ID__"}},
                seeded.orders,
                [],
                '"productName"',
                args.query_connections,
                args.seconds,
                args.warmup,
            )
            print(query.line(1500, "req"))
            if args.baseline:
                # The same stack answering without touching storage: the HTTP + GraphQL ceiling.
                baseline = await measure(
                    f"{{ __typename }} (no storage), {args.query_connections} conn",
                    base_url,
                    workdir,
                    {"query": "query Ping { __typename }"},
                    seeded.orders,
                    [],
                    '"Query"',
                    args.query_connections,
                    args.seconds,
                    args.warmup,
                )
                print(baseline.line(1500, "req"))
            started = time.monotonic()
            drafts = await seed_drafts(base_url, seeded, args.drafts)
            print(
                f"seeded {len(drafts)} draft orders for the mutations "
                f"({time.monotonic() - started:.1f} s)"
            )
            mutations = await measure(
                f"addOrderItem, {args.mutation_connections} conn",
                base_url,
                workdir,
                {
                    "query": ADD_ITEM,
                    "variables": {
                        "input": {"orderId": "__ID__", "productId": "__SKU__", "quantity": 1}
                    },
                },
                drafts,
                seeded.skus,
                '"OrderAccepted"',
                args.mutation_connections,
                args.seconds,
                args.warmup,
            )
            print(mutations.line(1000, "mut"))
            print(await projector_lag(base_url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each")
    parser.add_argument("--query-connections", type=int, default=32)
    parser.add_argument("--mutation-connections", type=int, default=16)
    parser.add_argument("--orders", type=int, default=50, help="orders the query reads")
    parser.add_argument("--drafts", type=int, default=200, help="orders the mutations grow")
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument(
        "--baseline", action="store_true", help="also measure `{ __typename }` (no storage)"
    )
    args = parser.parse_args()
    import uvloop

    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
