"""The quick start as a newcomer runs it (what `make dev` does): `orders seed`, then
`orders dev`, which says where GraphiQL is and serves the demo data, also after a restart;
seeding again appends nothing to the event log."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from app.seed import CUSTOMERS, PRODUCTS
from tests.e2e.processes import ROOT, ServerProcess, Stack, base_env, free_port

DEMO_QUERY = """{
  products(first: 50) { totalCount edges { node { id name price { amount } stockAvailable } } }
  customers(first: 50) { totalCount edges { node { id name email } } }
}"""


def orders(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.asynccontextmanager
async def running_dev(env: dict[str, str], log: Path) -> AsyncIterator[Stack]:
    """`orders dev` on a free port, as `make dev` starts it."""
    port = free_port()
    stack = Stack("dev", f"http://127.0.0.1:{port}")
    stack.processes.append(
        ServerProcess("orders dev", ["dev", "--port", str(port)], env, log).start()
    )
    try:
        await stack.wait_healthy()
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


async def dev_serves_the_demo_data(env: dict[str, str], log: Path) -> None:
    async with running_dev(env, log) as stack:
        port = stack.base_url.rsplit(":", 1)[1]
        banner = stack.log_tail().splitlines()
        assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in banner
        assert any(line.startswith("Warning: authentication is not configured") for line in banner)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(stack.graphql_url, json={"query": DEMO_QUERY})
        data = response.json()["data"]
        products = {edge["node"]["id"]: edge["node"] for edge in data["products"]["edges"]}
        assert products == {
            item.product_id: {
                "id": item.product_id,
                "name": item.name,
                "price": {"amount": str(item.price)},
                "stockAvailable": item.stock,
            }
            for item in PRODUCTS
        }
        customers = {edge["node"]["email"] for edge in data["customers"]["edges"]}
        assert customers == {person.email for person in CUSTOMERS}


def events_in_log(data_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "events.db")) as events:
        return events.execute("SELECT count(*) FROM events").fetchone()[0]


async def test_seed_then_dev_serves_demo_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**base_env(), "ORDERS_DATA_DIR": str(data_dir)}
    summary = "seed: the demo catalog (5 products) and 4 customers are in place"
    assert orders(["seed"], env).startswith(summary)
    seeded = events_in_log(data_dir)
    assert seeded >= len(PRODUCTS) + len(CUSTOMERS)
    assert orders(["seed"], env).startswith(summary)
    assert events_in_log(data_dir) == seeded  # the second run appended nothing

    await dev_serves_the_demo_data(env, tmp_path / "dev-1.log")
    # Data lives in ORDERS_DATA_DIR: a second start serves it again, and seeding again
    # after a run still appends nothing.
    orders(["seed"], env)
    assert events_in_log(data_dir) == seeded
    await dev_serves_the_demo_data(env, tmp_path / "dev-2.log")


async def test_a_fresh_dev_lists_every_projection_at_position_zero(tmp_path: Path) -> None:
    env = {**base_env(), "ORDERS_DATA_DIR": str(tmp_path / "data")}
    async with running_dev(env, tmp_path / "dev.log") as stack:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                stack.graphql_url,
                json={"query": "{ projections { name position headPosition lag lastError } }"},
            )
        assert response.json() == {
            "data": {
                "projections": [
                    {
                        "name": name,
                        "position": "0",
                        "headPosition": "0",
                        "lag": 0,
                        "lastError": None,
                    }
                    for name in ("customers", "orders", "products")
                ]
            }
        }
