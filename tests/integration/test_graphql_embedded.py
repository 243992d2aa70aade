"""`orders dev`: the API with the embedded defaults (SQLite event store in ORDERS_DATA_DIR,
in-memory read store rebuilt from the log at start, projector in the same process)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from app.server import create_app
from app.settings import Settings

OPS_TOKEN = "ops-token-of-the-embedded-tests"


def embedded_settings(data_dir: Path) -> Settings:
    # Explicit None: the test services' URLs in the environment must not apply here.
    return Settings(
        database_url=None, mongo_url=None, orders_data_dir=data_dir, ops_token=OPS_TOKEN
    )


@contextlib.asynccontextmanager
async def dev_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, embedded=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dev") as client,
    ):
        yield client


OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


async def graphql(client: httpx.AsyncClient, query: str) -> dict:
    response = await client.post("/graphql", json={"query": query})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


async def test_dev_mode_serves_writes_and_reads_and_replays_the_log_at_start(
    tmp_path: Path,
) -> None:
    settings = embedded_settings(tmp_path)
    async with dev_client(settings) as client:
        ready = await client.get("/readyz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        body = ready.json()
        assert {key: body[key] for key in ("status", "checks")} == {
            "status": "ready",
            "checks": {"sqlite": "ok", "memory": "ok", "projections": "ok", "projector": "ok"},
        }
        followers = {"orders", "customers", "products", "saga:fulfillment"}
        assert set(body["followers"]) == followers
        # Every follower runs in this process: each is led once its task has started.
        deadline = time.monotonic() + 15
        while set((await client.get("/readyz", headers=OPS)).json()["followers"].values()) != {
            "ok"
        }:
            assert time.monotonic() < deadline, (await client.get("/readyz", headers=OPS)).text
            await asyncio.sleep(0.05)
        data = await graphql(
            client,
            """mutation {
              registerCustomer(input: {customerId: "ada", name: "Ada", email: "ada@example.com"})
                { __typename }
              addProduct(input: {productId: "pen", name: "Pen", price: "1.25", initialStock: 9})
                { __typename }
              createOrder(input: {orderId: "o1", customerId: "ada",
                                  items: [{productId: "pen", quantity: 2}]}) {
                ... on OrderAccepted { order { total { amount } customer { name }
                                               items { product { stockAvailable } } } }
              }
            }""",
        )
        assert data["createOrder"]["order"] == {
            "total": {"amount": "2.75"},
            "customer": {"name": "Ada"},
            "items": [{"product": {"stockAvailable": 9}}],
        }
    assert (tmp_path / "events.db").is_file()

    # A new process: the memory store starts empty and is rebuilt from the SQLite log.
    async with dev_client(settings) as client:
        data = await graphql(
            client,
            """mutation { submitOrder(input: {orderId: "o1"}) {
                 ... on InvalidStateError { message } } }""",
        )
        assert data["submitOrder"] == {"message": "order o1 has no shipping address"}
        data = await graphql(
            client,
            """mutation { cancelOrder(input: {orderId: "o1"}) {
                 ... on OrderAccepted { order { status version customerName } } } }""",
        )
        assert data["cancelOrder"]["order"] == {
            "status": "CANCELLED",
            "version": 3,
            "customerName": "Ada",
        }
