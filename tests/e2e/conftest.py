"""End-to-end fixtures: the real server as real processes, driven over HTTP.

`stack` is session-scoped and parametrized, so every e2e test runs once against each stack
and each stack starts once per session:

- `postgres`: `orders migrate`, then `orders api` (one uvicorn worker) and `orders projector`
  as two processes, on a PostgreSQL database of their own and a Mongo database of their own
  on the Mongo-wire server started by tests/services/with-services;
- `embedded`: `orders dev` alone (SQLite event store in a temporary ORDERS_DATA_DIR,
  in-memory read store, projector in the same process), with no service URL in its env.

Tests use fresh random ids, so they stay independent while sharing one stack. When a test
fails, the tail of the stack's process logs is attached to its report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.conftest import service_url
from tests.e2e.client import Api, accepted
from tests.e2e.processes import ServerProcess, Stack, base_env, free_port, run_admin


async def drop_mongo_database(name: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(service_url("MONGO_URL"))
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def postgres_stack(
    logs: Path,
    settings: dict[str, str] | None = None,
    api_settings: dict[str, str] | None = None,
    *,
    api_only: bool = False,
    followers: tuple[str, ...] = ("projector", "saga"),
    follower_settings: dict[str, dict[str, str]] | None = None,
) -> AsyncIterator[Stack]:
    """`settings`: every process's environment; `api_settings`: the API's alone (such as
    its OPS_PORT). `api_only`: no projector and no saga (for tests that write nothing);
    `followers`: the processes that follow the log beside the API (`relay` among them),
    `follower_settings` one's own environment by name."""
    from tests.integration.read_side import own_postgres_database

    tag = uuid.uuid4().hex[:10]
    mongo_db = f"orders_e2e_{tag}"
    async with own_postgres_database(f"orders_e2e_{tag}") as dsn:
        env = {
            **base_env(),
            "DATABASE_URL": dsn,
            "MONGO_URL": service_url("MONGO_URL"),
            "MONGO_DB": mongo_db,
            **(settings or {}),
        }
        await asyncio.to_thread(run_admin, ["migrate"], env, logs / "migrate.log")
        port = free_port()
        stack = Stack("postgres", f"http://127.0.0.1:{port}", event_store=dsn)
        try:
            stack.processes.append(
                ServerProcess(
                    "orders api",
                    ["api", "--host", "127.0.0.1", "--port", str(port)],
                    {**env, **(api_settings or {})},
                    logs / "api.log",
                ).start()
            )
            for name in () if api_only else followers:
                own = {**env, **(follower_settings or {}).get(name, {})}
                stack.processes.append(
                    ServerProcess(f"orders {name}", [name], own, logs / f"{name}.log").start()
                )
            await stack.wait_healthy()
            yield stack
        finally:
            await asyncio.to_thread(stack.stop)
            with contextlib.suppress(Exception):
                await drop_mongo_database(mongo_db)


@contextlib.asynccontextmanager
async def embedded_stack(
    logs: Path, data_dir: Path, settings: dict[str, str] | None = None
) -> AsyncIterator[Stack]:
    env = {**base_env(), "ORDERS_DATA_DIR": str(data_dir), **(settings or {})}
    port = free_port()
    stack = Stack("embedded", f"http://127.0.0.1:{port}", event_store=str(data_dir / "events.db"))
    try:
        stack.processes.append(
            ServerProcess(
                "orders dev",
                ["dev", "--host", "127.0.0.1", "--port", str(port)],
                env,
                logs / "dev.log",
            ).start()
        )
        await stack.wait_healthy()
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


# Every e2e stack fixture runs its tests on both stacks.
STACKS = [pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.mongo]), "embedded"]


def started_stack(
    name: str,
    logs: Path,
    settings: dict[str, str] | None = None,
    api_settings: dict[str, str] | None = None,
) -> contextlib.AbstractAsyncContextManager[Stack]:
    """`api_settings`: the API process's alone (`orders dev` is the API)."""
    if name == "postgres":
        return postgres_stack(logs, settings, api_settings)
    data_dir = logs / "data"
    data_dir.mkdir()
    return embedded_stack(logs, data_dir, {**(settings or {}), **(api_settings or {})})


@pytest.fixture(scope="session", params=STACKS)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One running server stack for the whole session (per parameter). pytest does not
    cache a failed setup, so a stack that failed to start fails its other tests at once
    instead of waiting for it again."""
    name = request.param
    if name in _START_FAILURES:
        pytest.fail(
            f"{name} stack failed to start earlier:\n{_START_FAILURES[name]}", pytrace=False
        )
    factory = started_stack(name, tmp_path_factory.mktemp(f"e2e-{name}"))
    try:
        running = await factory.__aenter__()
    except BaseException as error:
        _START_FAILURES[name] = str(error)[-4000:]
        raise
    try:
        yield running
    finally:
        await factory.__aexit__(None, None, None)


_START_FAILURES: dict[str, str] = {}


# ------------------------------------------------ a stack with authentication on

SECRET = f"e2e-secret-{uuid.uuid4().hex}"
ISSUER, AUDIENCE = "https://issuer.orders.test", "orders-e2e"
ALLOWED_ORIGIN = "http://frontend.orders.test:5173"
SECURED = {
    "JWT_SECRET": SECRET,
    "JWT_ISSUER": ISSUER,
    "JWT_AUDIENCE": AUDIENCE,
    "JWT_LEEWAY_SECONDS": "0",
    "CORS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    "MUTATION_RATE_LIMIT": "25",  # a minute, per principal; `orders dev` ignores it
    "MAX_STREAMS_PER_PRINCIPAL": "4",  # websockets and HTTP streams together
    # Each fulfillment step its own write of the order, so subscribers see every version.
    "GATEWAY_LATENCY_SECONDS": "0.5",
    "STREAM_HEARTBEAT_SECONDS": "1",  # SSE and multipart keep-alives
    "OPS_TOKEN": f"ops-{uuid.uuid4().hex}",
}


def token(subject: str, *, staff: bool = False, ttl: float = 600, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": subject,
        "iat": now,
        "exp": now + ttl,
        "iss": ISSUER,
        "aud": AUDIENCE,
        **({"roles": ["staff"]} if staff else {}),
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, "HS256")


@pytest.fixture(scope="session", params=STACKS)
async def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A stack with authentication on (and one allowed CORS origin). The postgres stack's
    API serves its ops endpoints on an OPS_PORT of its own; `orders dev` on its one port."""
    logs = tmp_path_factory.mktemp(f"e2e-secured-{request.param}")
    ops_port = free_port() if request.param == "postgres" else None
    api_only = {"OPS_PORT": str(ops_port)} if ops_port else {}
    async with started_stack(request.param, logs, SECURED, api_only) as running:
        running.ops_url = f"http://127.0.0.1:{ops_port}" if ops_port else None
        yield running


@dataclass
class Shop:
    stack: Stack
    staff: Api
    a: Api
    b: Api
    a_id: str
    b_id: str
    a_order: str
    b_order: str
    sku: str


@pytest.fixture
async def shop(secured: Stack) -> AsyncIterator[Shop]:
    """Two customers, each registered with its own token and owning one order (of a
    product staff added), with a client per principal."""
    secured.check_running()
    uid = uuid.uuid4().hex[:8]
    a_id, b_id, sku = f"cust-a-{uid}", f"cust-b-{uid}", f"sku-{uid}"
    async with contextlib.AsyncExitStack() as exits:
        staff, a, b = [
            await exits.enter_async_context(Api.connect(secured.graphql_url, credential))
            for credential in (token(f"ops-{uid}", staff=True), token(a_id), token(b_id))
        ]
        accepted(
            await staff.mutate(
                "addProduct", {"productId": sku, "name": "Tea", "price": "4.00", "initialStock": 50}
            )
        )
        for client, customer_id in ((a, a_id), (b, b_id)):
            registered = await client.mutate(
                "registerCustomer",
                {
                    "customerId": customer_id,
                    "name": customer_id,
                    "email": f"{customer_id}@example.com",
                },
            )
            accepted(registered, "CustomerAccepted")
        orders = []
        for client, customer_id in ((a, a_id), (b, b_id)):
            created = accepted(
                await client.mutate(
                    "createOrder",
                    {"customerId": customer_id, "items": [{"productId": sku, "quantity": 1}]},
                    extra="order { id }",
                ),
                "OrderAccepted",
            )
            assert created["order"] is not None  # read back by its own customer
            orders.append(created["orderId"])
        yield Shop(secured, staff, a, b, a_id, b_id, orders[0], orders[1], sku)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    """A GraphQL client (gql over aiohttp) and a raw HTTP client for the running stack."""
    stack.check_running()
    async with Api.connect(stack.graphql_url) as client:
        yield client


@pytest.fixture
def uid() -> str:
    """A fresh id fragment: every test names its own customers, products and orders."""
    return uuid.uuid4().hex[:10]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        running = funcargs.get("stack") or funcargs.get("secured")
        if isinstance(running, Stack):
            report.sections.append((f"{running.name} stack logs (tail)", running.log_tail()))
    return report
