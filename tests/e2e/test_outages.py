"""Storage outages under write load, end to end: `orders projector` and two `orders api`
processes on a PostgreSQL and a Mongo-wire server of the test's own, one of which is
restarted while a client keeps writing through one API and subscribers listen on the other.

Nothing is restarted by hand: afterwards the read documents equal a clean rebuild from the
log, every subscriber has the final version of what it watches, and every process is still
running. Writes that fail during the outage are retried with the same idempotency key, so
each lands exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from read_model.document_store.mongo import MongoDocumentStore
from tests.e2e.client import Api, accepted, add_product, register_customer
from tests.e2e.processes import ServerProcess, Stack, base_env, free_port, run_admin
from tests.integration.private_services import private_services
from tests.integration.read_side import all_documents, catch_up, postgres_store, runners

ORDERS = 4
WRITES = 60
OUTAGE_AFTER = 20  # writes before the restart
DEADLINE_SECONDS = 90


class Subscription:
    """A subscription over graphql-transport-ws (gql), read in the background."""

    def __init__(self, url: str, query: str, variables: dict[str, Any]) -> None:
        self.results: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._url, self._query, self._variables = url, query, variables
        self._task = asyncio.create_task(self._read())
        self.started = asyncio.Event()

    async def _read(self) -> None:
        transport = WebsocketsTransport(
            url=self._url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
        )
        try:
            async with Client(transport=transport) as session:
                self.started.set()
                request = GraphQLRequest(self._query, variable_values=self._variables)
                async for result in session.subscribe(request):
                    self.results.append(result)
        except Exception as error:
            self.error = error
            self.started.set()

    def last_versions(self, field: str) -> dict[str, int]:
        versions: dict[str, int] = {}
        for result in self.results:
            order = result[field]
            versions[order["id"]] = max(versions.get(order["id"], 0), order["version"])
        return versions

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def projector_with_ops_port(env: dict[str, str], logs: Path) -> Stack:
    """`orders projector`, started, as a stack whose base URL is its ops port."""
    ops = free_port()
    projector = Stack("projector", f"http://127.0.0.1:{ops}")
    projector.processes.append(
        ServerProcess(
            "orders projector", ["projector"], {**env, "OPS_PORT": str(ops)},
            logs / "projector.log",
        ).start()
    )  # fmt: skip
    return projector


@contextlib.asynccontextmanager
async def three_processes(env: dict[str, str], logs: Path) -> AsyncIterator[list[Stack]]:
    """`orders projector` (with its ops port) and two `orders api`, each a stack of one."""
    await asyncio.to_thread(run_admin, ["migrate"], env, logs / "migrate.log")
    stacks: list[Stack] = []
    try:
        projector = projector_with_ops_port(env, logs)
        stacks.append(projector)
        for name in ("a", "b"):
            port = free_port()
            api = Stack(f"api {name}", f"http://127.0.0.1:{port}")
            api.processes.append(
                ServerProcess(
                    f"orders api {name}", ["api", "--port", str(port)], env,
                    logs / f"api-{name}.log",
                ).start()
            )  # fmt: skip
            stacks.append(api)
        for stack in stacks:
            await stack.wait_healthy()
        yield stacks
    finally:
        for stack in stacks:
            await asyncio.to_thread(stack.stop)


async def write_until_accepted(api: Api, name: str, input: dict[str, Any]) -> dict[str, Any]:
    """A client that retries a failed write with the same idempotency key until it lands."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            return accepted(await api.mutate(name, input))
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def until(condition: Any, what: str, seconds: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("restarted", ["postgres", "mongo"])
async def test_a_storage_restart_under_write_load_loses_nothing(
    restarted: str, tmp_path: Path, uid: str
) -> None:
    with private_services(tmp_path) as (postgres, mongo):
        env = {
            **base_env(),
            "DATABASE_URL": postgres.url,
            "MONGO_URL": mongo.url,
            "MONGO_DB": "outage",
            "PROJECTOR_BATCH_SIZE": "50",
            "CONNECT_TIMEOUT_SECONDS": "2",
        }
        async with three_processes(env, tmp_path) as (projector, api_a, api_b):
            async with Api.connect(api_a.graphql_url) as writer:
                customer = (await register_customer(writer, uid))["customerId"]
                sku = f"sku-{uid}"
                await add_product(writer, sku, "Pen", "1.50", stock=10_000)
                order_ids = [f"o{n}-{uid}" for n in range(ORDERS)]
                for order_id in order_ids:
                    await write_until_accepted(
                        writer, "createOrder", {"orderId": order_id, "customerId": customer}
                    )
                watch_one = Subscription(
                    api_b.graphql_url.replace("http", "ws"),
                    "subscription($id: ID!) { orderUpdated(id: $id) { id version } }",
                    {"id": order_ids[0]},
                )
                watch_all = Subscription(
                    api_b.graphql_url.replace("http", "ws"),
                    "subscription($c: ID!) { ordersUpdated(filter: {customerId: $c}) "
                    "{ id version } }",
                    {"c": customer},
                )
                await watch_one.started.wait()
                await watch_all.started.wait()
                await asyncio.sleep(0.5)  # both subscribed on the API's change feed

                for n in range(WRITES):
                    if n == OUTAGE_AFTER:
                        server = postgres if restarted == "postgres" else mongo
                        await asyncio.to_thread(server.restart, 1.0)
                    await write_until_accepted(
                        writer,
                        "addOrderItem",
                        {
                            "orderId": order_ids[n % ORDERS],
                            "productId": sku,
                            "quantity": 1,
                            "idempotencyKey": f"add-{uid}-{n}",
                        },
                    )

                async def projections_caught_up() -> bool:
                    try:
                        data = await writer.execute("{ projections { name lag } }")
                    except Exception:
                        return False
                    statuses = data["projections"]
                    return len(statuses) == 3 and all(s["lag"] == 0 for s in statuses)

                await until(projections_caught_up, "the projections caught up")
                final: dict[str, int] = {}
                for order_id in order_ids:
                    data = await writer.execute(
                        "query($id: ID!) { order(id: $id) { version items { quantity } } }",
                        {"id": order_id},
                    )
                    final[order_id] = data["order"]["version"]
                    assert sum(i["quantity"] for i in data["order"]["items"]) == WRITES // ORDERS

                async def subscribers_have_the_final_versions() -> bool:
                    return (
                        watch_one.last_versions("orderUpdated").get(order_ids[0])
                        == final[order_ids[0]]
                        and watch_all.last_versions("ordersUpdated") == final
                    )

                try:
                    await until(subscribers_have_the_final_versions, "subscribers caught up", 30)
                finally:
                    await watch_one.close()
                    await watch_all.close()
                assert watch_one.error is None and watch_all.error is None

            for stack in (projector, api_a, api_b):
                stack.check_running()
            # The projector's ops port: ready again, its lag and listener on /metrics.
            async with httpx.AsyncClient(base_url=projector.base_url, timeout=10) as ops:

                async def ready_again() -> bool:
                    return (await ops.get("/readyz")).status_code == 200

                # Its LISTEN connection may still be backing off when the APIs' are back.
                await until(ready_again, "the projector is ready again", 30)
                assert (await ops.get("/readyz")).json()["checks"]["listener"] == "ok"
                metrics = (await ops.get("/metrics")).text
                assert 'orders_projection_lag_events{projection="orders"} 0.0' in metrics
                assert "orders_postgres_listener_connected 1.0" in metrics

        # The documents equal a clean rebuild of the same log.
        async with postgres_store(dsn=postgres.url) as events:
            served = await MongoDocumentStore.connect(mongo.url, "outage")
            clean = await MongoDocumentStore.connect(mongo.url, "outage_clean")
            try:
                await catch_up(runners(events, clean))
                assert await all_documents(served) == await all_documents(clean)
            finally:
                await served.close()
                await clean.close()


async def test_requests_during_an_outage_get_a_retryable_unavailable_error(
    tmp_path: Path, uid: str
) -> None:
    with private_services(tmp_path) as (postgres, mongo):
        env = {
            **base_env(),
            "DATABASE_URL": postgres.url,
            "MONGO_URL": mongo.url,
            "MONGO_DB": "unavailable",
            "CONNECT_TIMEOUT_SECONDS": "1",
        }
        await asyncio.to_thread(run_admin, ["migrate"], env, tmp_path / "migrate.log")
        port = free_port()
        api = Stack("api", f"http://127.0.0.1:{port}")
        api.processes.append(
            ServerProcess("orders api", ["api", "--port", str(port)], env, tmp_path / "api.log")
        )
        api.processes[0].start()
        try:
            await api.wait_healthy()
            async with Api.connect(api.graphql_url) as client:
                mutation = {
                    "query": 'mutation { registerCustomer(input: {customerId: "c-' + uid
                    + '", name: "Ada", email: "' + uid + '@example.com", idempotencyKey: "k-'
                    + uid + '"}) { __typename } }'
                }  # fmt: skip
                query = {"query": '{ customer(id: "c-' + uid + '") { name } }'}

                await asyncio.to_thread(postgres.stop)
                refused = await client.post(mutation)
                assert refused.status_code == 503, refused.text
                assert refused.headers["Retry-After"] == "1"
                (error,) = refused.json()["errors"]
                assert error["extensions"]["code"] == "UNAVAILABLE"
                assert "retry it with the same idempotencyKey" in error["message"]
                assert "asyncpg" not in refused.text and "Traceback" not in refused.text
                await asyncio.to_thread(postgres.start)
                # The client's retry, with the same key, lands once.
                await until(lambda: _succeeds(client, mutation), "the write landed")

                await asyncio.to_thread(mongo.stop)
                unavailable = await client.post(query)
                assert unavailable.status_code == 503, unavailable.text
                (error,) = unavailable.json()["errors"]
                assert error["extensions"]["code"] == "UNAVAILABLE"
                assert "pymongo" not in unavailable.text
                await asyncio.to_thread(mongo.start)
                await until(lambda: _succeeds(client, query), "reads work again")
            api.check_running()
        finally:
            await asyncio.to_thread(api.stop)


async def _succeeds(client: Api, body: dict[str, Any]) -> bool:
    response = await client.post(body)
    return response.status_code == 200 and "errors" not in response.json()


async def test_a_process_started_before_its_database_waits_for_it(tmp_path: Path) -> None:
    with private_services(tmp_path) as (postgres, mongo):
        env = {
            **base_env(),
            "DATABASE_URL": postgres.url,
            "MONGO_URL": mongo.url,
            "MONGO_DB": "late",
            "STARTUP_TIMEOUT_SECONDS": "60",
        }
        await asyncio.to_thread(run_admin, ["migrate"], env, tmp_path / "migrate.log")
        await asyncio.to_thread(postgres.stop)
        projector = projector_with_ops_port(env, tmp_path)
        try:
            # Still trying, not dead, and saying so (waited for: on a loaded machine the
            # process may take seconds to get as far as connecting).
            deadline = time.monotonic() + 30
            while "cannot reach PostgreSQL" not in projector.processes[0].log_tail(200):
                projector.check_running()
                assert time.monotonic() < deadline, "the projector never said it waits"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            projector.check_running()
            await asyncio.to_thread(postgres.start)
            await projector.wait_healthy()
        finally:
            await asyncio.to_thread(projector.stop)
