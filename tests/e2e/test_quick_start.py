"""The quick start as a newcomer runs it (what `make dev` does): `orders seed`, then
`orders dev`, which says where GraphiQL is and serves the demo data, also after a restart;
seeding again adds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from app.seed import CUSTOMERS, PRODUCTS
from tests.e2e.conftest import ROOT, ServerProcess, Stack, _base_env, free_port

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


async def dev_serves_the_demo_data(env: dict[str, str], logs: Path) -> None:
    port = free_port()
    stack = Stack("dev", f"http://127.0.0.1:{port}")
    stack.processes.append(
        ServerProcess("orders dev", ["dev", "--port", str(port)], env, logs).start()
    )
    try:
        await stack.wait_healthy()
        assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in stack.log_tail().splitlines()
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
    finally:
        stack.stop()


async def test_seed_then_dev_serves_demo_data_across_restarts(tmp_path: Path) -> None:
    env = {**_base_env(), "ORDERS_DATA_DIR": str(tmp_path / "data")}
    first = orders(["seed"], env)
    assert first.startswith("seed: demo data added: 5 products and 3 customers")
    second = orders(["seed"], env)
    assert second == "seed: demo data already there (8 items): nothing added\n"

    await dev_serves_the_demo_data(env, tmp_path / "dev-1.log")
    # Data lives in ORDERS_DATA_DIR: a second start serves it again, and seeding again
    # after a run still adds nothing.
    assert "nothing added" in orders(["seed"], env)
    await dev_serves_the_demo_data(env, tmp_path / "dev-2.log")
