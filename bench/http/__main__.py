"""HTTP benchmark: the GraphQL API as deployed (see the package's docstring).

tests/services/with-services .venv/bin/python -m bench.http [--seconds 10]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import run_main
from bench.http.drivers import Load, measure
from bench.http.seeding import ADD_ITEM, ORDER_QUERY, seed_drafts, seed_orders
from bench.http.stack import server_stack


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
                Load(
                    f"order(id) + items + customer, {args.query_connections} conn",
                    {"query": ORDER_QUERY, "variables": {"id": "__ID__"}},
                    seeded.orders,
                    '"productName"',
                ),
                base_url,
                workdir,
                args.query_connections,
                args.seconds,
                args.warmup,
            )
            print(query.line(1500, "req"))
            if args.baseline:
                # The same stack answering without touching storage: the HTTP + GraphQL ceiling.
                baseline = await measure(
                    Load(
                        f"{{ __typename }} (no storage), {args.query_connections} conn",
                        {"query": "query Ping { __typename }"},
                        seeded.orders,
                        '"Query"',
                    ),
                    base_url,
                    workdir,
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
                Load(
                    f"addOrderItem, {args.mutation_connections} conn",
                    {
                        "query": ADD_ITEM,
                        "variables": {
                            "input": {"orderId": "__ID__", "productId": "__SKU__", "quantity": 1}
                        },
                    },
                    drafts,
                    '"OrderAccepted"',
                    seeded.skus,
                ),
                base_url,
                workdir,
                args.mutation_connections,
                args.seconds,
                args.warmup,
            )
            print(mutations.line(1000, "mut"))
            print(await projector_lag(base_url))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http", description=__doc__.splitlines()[0]
    )
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
    run_main(lambda: main_async(args))


if __name__ == "__main__":
    main()
