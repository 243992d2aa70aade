"""GraphQL over HTTP (bench/http: its seeding, documents and load drivers), on `orders dev`
and on `orders api` + `orders projector` + `orders saga` (PostgreSQL, Mongo-wire server),
each beside the bare strawberry + Starlette peer (bench/peers/bare_graphql.py):

- `order(id)` with items, products and customer at each connection count, against the
  peer answering the same selection from a dict (the very documents `orders dev` answered);
- `addOrderItem` at 16 connections, against the peer's mutation appending one event row with
  aiosqlite (for `orders dev`) and with asyncpg on the same PostgreSQL (for `orders api`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import own_postgres_database, say
from bench.figures import Curve, Figure, Run, suite
from bench.http.drivers import Figures, Load, measure
from bench.http.seeding import ADD_ITEM, ORDER_QUERY, Seeded, seed_drafts, seed_orders
from bench.http.stack import dev_stack, peer_stack, server_stack

MUTATION_CONNECTIONS = 16
# Targets of the issue "Speed": ratios to the bare peer.
QUERY_TARGET = {"dev": 0.9, "api": 0.75}
MUTATION_TARGET = 0.6


def query_load(ids: list[str], connections: int) -> Load:
    return Load(
        f"order(id) {connections} conn",
        {"query": ORDER_QUERY, "variables": {"id": "__ID__"}},
        ids,
        '"productName"',
    )


def mutation_load(ids: list[str], skus: list[str]) -> Load:
    return Load(
        f"addOrderItem {MUTATION_CONNECTIONS} conn",
        {
            "query": ADD_ITEM,
            "variables": {"input": {"orderId": "__ID__", "productId": "__SKU__", "quantity": 1}},
        },
        ids,
        '"OrderAccepted"',
        skus,
    )


def detail(measured: Figures) -> str:
    failed = f", {measured.failed} failed" if measured.failed else ""
    return f"p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms{failed}"


class Http:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.workdir = run.workdir

    async def measure(self, load: Load, base_url: str, connections: int) -> Figures:
        scale = self.run.scale
        return await measure(load, base_url, self.workdir, connections, scale.seconds, scale.warmup)

    async def queries(
        self, key: str, series: str, base_url: str, ids: list[str], peer: bool
    ) -> dict[int, Figure]:
        found = {}
        for connections in self.run.scale.clients:
            measured = await self.measure(query_load(ids, connections), base_url, connections)
            found[connections] = self.run.figure(
                f"http.query.{key}.c{connections}",
                f"bare strawberry + Starlette, same answer from a dict, {connections} conn"
                if peer
                else f"`order(id)` with items, products and customer, {connections} conn, {series}",
                measured.requests / measured.seconds,
                "req/s",
                detail(measured),
                peer=peer,
                curve="http_query",
                series=series,
                x=connections,
            )
        return found

    async def mutations(
        self, key: str, label: str, base_url: str, ids: list[str], skus: list[str], peer: bool
    ) -> Figure:
        measured = await self.measure(mutation_load(ids, skus), base_url, MUTATION_CONNECTIONS)
        return self.run.figure(
            f"http.mutation.{key}",
            label,
            measured.requests / measured.seconds,
            "mutations/s",
            detail(measured),
            peer=peer,
        )


async def seeded_stack(base_url: str, run: Run) -> tuple[Seeded, list[str]]:
    seeded = await seed_orders(base_url, run.scale.pick(50, 10), run.scale.pick(20, 5))
    drafts = await seed_drafts(base_url, seeded, run.scale.pick(200, 20))
    return seeded, drafts


async def documents(base_url: str, ids: list[str]) -> list[dict[str, Any]]:
    """The order documents as Orders answers them: what the peer answers from its dict."""
    async with httpx.AsyncClient(timeout=30) as http:
        answers = []
        for order_id in ids:
            response = await http.post(
                f"{base_url}/graphql", json={"query": ORDER_QUERY, "variables": {"id": order_id}}
            )
            answers.append(response.json()["data"]["order"])
    return answers


@suite("http", order=20, title="HTTP", needs=("postgres", "mongo"))
async def http(run: Run) -> None:
    driver = "wrk" if shutil.which("wrk") else "an aiohttp client (wrk not installed)"
    say(f"  load from {driver}, one uvicorn worker per server")
    run.curve(
        Curve(
            "http_query",
            "order(id) with items, products and customer over HTTP",
            "connections",
            "requests/s",
        )
    )
    bench = Http(run)
    workdir: Path = run.workdir

    async with dev_stack(workdir) as base_url:
        seeded, drafts = await seeded_stack(base_url, run)
        dev_queries = await bench.queries("dev", "orders dev", base_url, seeded.orders, False)
        dev_mutation = await bench.mutations(
            "dev",
            f"`addOrderItem`, {MUTATION_CONNECTIONS} connections, `orders dev`",
            base_url,
            drafts,
            seeded.skus,
            False,
        )
        orders_file = workdir / "orders.json"
        orders_file.write_text(json.dumps(await documents(base_url, seeded.orders)))

    sqlite_path = workdir / "bare.db"
    bare_args = ["--orders", str(orders_file), "--store", "aiosqlite", "--path", str(sqlite_path)]
    async with peer_stack(workdir, "bare strawberry (aiosqlite)", bare_args) as base_url:
        bare_queries = await bench.queries(
            "bare", "bare strawberry, dict", base_url, seeded.orders, True
        )
        bare_sqlite = await bench.mutations(
            "bare_aiosqlite",
            "bare strawberry mutation appending one row with aiosqlite",
            base_url,
            drafts,
            seeded.skus,
            True,
        )
    for connections, figure in dev_queries.items():
        run.bound(figure, bare_queries[connections], "ceiling", QUERY_TARGET["dev"])
    run.bound(dev_mutation, bare_sqlite, "ceiling", MUTATION_TARGET)

    async with server_stack(workdir, saga=True) as base_url:
        seeded, drafts = await seeded_stack(base_url, run)
        api_queries = await bench.queries(
            "api", "orders api + projector + saga", base_url, seeded.orders, False
        )
        api_mutation = await bench.mutations(
            "api",
            f"`addOrderItem`, {MUTATION_CONNECTIONS} connections, `orders api` + projector + saga",
            base_url,
            drafts,
            seeded.skus,
            False,
        )
    for connections, figure in api_queries.items():
        run.bound(figure, bare_queries[connections], "ceiling", QUERY_TARGET["api"])

    admin = os.environ["DATABASE_URL"]
    async with own_postgres_database(admin, f"bench_bare_{uuid.uuid4().hex[:8]}") as dsn:
        async with peer_stack(
            workdir, "bare strawberry (asyncpg)", ["--store", "asyncpg", "--dsn", dsn]
        ) as base_url:
            bare_postgres = await bench.mutations(
                "bare_asyncpg",
                "bare strawberry mutation appending one row with asyncpg, same PostgreSQL",
                base_url,
                drafts,
                seeded.skus,
                True,
            )
    run.bound(api_mutation, bare_postgres, "ceiling", MUTATION_TARGET)
