"""GraphQL subscriptions over real websockets: the app served by uvicorn on a free port,
PostgreSQL (change feed over LISTEN/NOTIFY) and the Mongo-wire server, the projector
running as its own loop, driven by gql's websockets client in both protocols
(`graphql-transport-ws` and the legacy `graphql-ws`); and over SSE, read with httpx and a
raw socket (a reader that stalls). tests/e2e/test_http_subscriptions.py runs the SSE and
multipart clients against the running processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from app.server import create_app
from app.settings import Settings
from app.websocket_protocol import LeanWebSocketProtocol
from schema.order_updates import LiveOrders
from tests.conftest import service_url
from tests.integration.graphql_stack import Projector, drop_mongo_database
from tests.integration.read_side import own_postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]
MAX_SUBSCRIPTIONS = 3
WAIT = 10.0

SETUP = """
mutation {
  ada: registerCustomer(input: {customerId: "ada", name: "Ada", email: "ada@example.com"}) {
    __typename }
  bob: registerCustomer(input: {customerId: "bob", name: "Bob", email: "bob@example.com"}) {
    __typename }
  addProduct(input: {productId: "pen", name: "Pen", price: "1.25", initialStock: 1000}) {
    __typename }
}"""
CREATE = """
mutation($order: ID!, $customer: ID!) {
  createOrder(input: {orderId: $order, customerId: $customer}) {
    ... on OrderAccepted { version } ... on UserError { message } }
}"""
ADD_ITEM = """
mutation($order: ID!) {
  addOrderItem(input: {orderId: $order, productId: "pen", quantity: 1}) {
    ... on OrderAccepted { version } ... on UserError { message } }
}"""
ORDER_UPDATED = """
subscription($id: ID!, $after: Int) {
  orderUpdated(id: $id, afterVersion: $after) { id version customerId items { quantity } }
}"""
ORDERS_UPDATED = """
subscription($customer: ID) {
  ordersUpdated(filter: {customerId: $customer}) { id version customerId }
}"""


@dataclass
class Served:
    url: str
    http: httpx.AsyncClient
    live: LiveOrders

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def create(self, order_id: str, customer: str = "ada") -> int:
        data = await self.gql(CREATE, {"order": order_id, "customer": customer})
        return data["createOrder"]["version"]

    async def add_item(self, order_id: str) -> int:
        return (await self.gql(ADD_ITEM, {"order": order_id}))["addOrderItem"]["version"]

    def websocket(self, protocol: str) -> WebsocketsTransport:
        return WebsocketsTransport(url=self.url, subprotocols=[protocol])


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Served]:
    name = f"gql_{uuid.uuid4().hex[:16]}"
    async with own_postgres_database(name) as dsn:
        settings = Settings(
            database_url=dsn,
            mongo_url=service_url("MONGO_URL"),
            mongo_db=name,
            pg_pool_min_size=1,
            pg_pool_max_size=5,
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
        )
        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                lifespan="on",
                log_level="warning",
                ws=LeanWebSocketProtocol,  # as `orders api` serves websockets
            )
        )
        serving = asyncio.create_task(server.serve())
        projector = Projector(settings)
        try:
            await _until(lambda: server.started or serving.done(), "uvicorn to start")
            assert not serving.done(), "uvicorn did not start"
            port = server.servers[0].sockets[0].getsockname()[1]
            projector.start()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                stack = Served(
                    f"ws://127.0.0.1:{port}/graphql", http, app.state.runtime.services.live
                )
                await stack.gql(SETUP)
                yield stack
        finally:
            if projector.running:
                await projector.stop()
            server.should_exit = True
            await serving
            await drop_mongo_database(name)


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Stream:
    """A subscription read in the background; `next()` takes its next result."""

    def __init__(self, session: Any, query: str, variables: dict[str, Any]) -> None:
        self.results: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        request = GraphQLRequest(query, variable_values=variables)
        self._task = asyncio.create_task(self._read(session, request))

    async def _read(self, session: Any, request: GraphQLRequest) -> None:
        try:
            async for result in session.subscribe(request):
                await self.results.put(result)
        except Exception as error:
            await self.results.put(error)

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            result = await self.results.get()
        if isinstance(result, BaseException):
            raise result
        return result

    async def nothing_within(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.results.empty(), self.results.get_nowait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def session(served: Served, protocol: str) -> AsyncIterator[Any]:
    transport = served.websocket(protocol)
    async with Client(transport=transport) as connected:
        assert transport.subprotocol == protocol
        yield connected


def versions(result: dict[str, Any]) -> tuple[str, int]:
    order = result["orderUpdated"]
    return order["id"], order["version"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_order_updated_streams_each_version_then_resumes_after_one(
    served: Served, protocol: str
) -> None:
    order_id = f"live-{protocol}"
    async with session(served, protocol) as connected:
        stream = Stream(connected, ORDER_UPDATED, {"id": order_id})
        try:
            # Subscribed to an order that does not exist yet: its creation is delivered.
            await _until(lambda: served.live.watchers(order_id) == 1, "the subscription")
            await stream.nothing_within(0.1)
            assert await served.create(order_id) == 1
            assert versions(await stream.next()) == (order_id, 1)
            for expected in (2, 3):
                assert await served.add_item(order_id) == expected
                assert versions(await stream.next()) == (order_id, expected)
            await stream.nothing_within(0.2)
        finally:
            await stream.close()
        await _until(lambda: served.live.watchers(order_id) == 0, "the subscription to end")

    async with session(served, protocol) as connected:
        # Reconnecting after the last version seen: nothing is resent, the next one comes.
        resumed = Stream(connected, ORDER_UPDATED, {"id": order_id, "after": 3})
        # Reconnecting after an older version: the current document comes first.
        behind = Stream(connected, ORDER_UPDATED, {"id": order_id, "after": 1})
        try:
            assert versions(await behind.next()) == (order_id, 3)
            await _until(lambda: served.live.watchers(order_id) == 2, "both subscriptions")
            await resumed.nothing_within(0.2)
            assert await served.add_item(order_id) == 4
            newest = (await resumed.next())["orderUpdated"]
            assert (newest["version"], len(newest["items"])) == (4, 1)
            assert newest["items"][0]["quantity"] == 3
            assert versions(await behind.next()) == (order_id, 4)
        finally:
            await resumed.close()
            await behind.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_orders_updated_sends_only_the_filtered_customers_orders(
    served: Served, protocol: str
) -> None:
    async with session(served, protocol) as connected:
        adas = Stream(connected, ORDERS_UPDATED, {"customer": "ada"})
        everyone = Stream(connected, ORDERS_UPDATED, {})
        try:
            await _until(lambda: served.live.watchers() == 2, "the subscriptions")
            await served.create(f"bob-{protocol}", customer="bob")
            # One write at a time: the projector may fold quick successive writes to a
            # document into one, and publishes only the version it wrote.
            await served.create(f"ada-{protocol}", customer="ada")
            first = (await adas.next())["ordersUpdated"]
            await served.add_item(f"ada-{protocol}")
            second = (await adas.next())["ordersUpdated"]
            assert [(o["id"], o["version"], o["customerId"]) for o in (first, second)] == [
                (f"ada-{protocol}", 1, "ada"),
                (f"ada-{protocol}", 2, "ada"),
            ]
            seen = {
                (o["id"], o["version"])
                for o in [(await everyone.next())["ordersUpdated"] for _ in range(3)]
            }
            assert seen == {(f"bob-{protocol}", 1), (f"ada-{protocol}", 1), (f"ada-{protocol}", 2)}
            await adas.nothing_within(0.2)
        finally:
            await adas.close()
            await everyone.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_connection_runs_a_bounded_number_of_subscriptions(
    served: Served, protocol: str
) -> None:
    async with session(served, protocol) as connected:
        streams = [
            Stream(connected, ORDER_UPDATED, {"id": f"limit-{protocol}-{n}"})
            for n in range(MAX_SUBSCRIPTIONS)
        ]
        try:
            await _until(
                lambda: all(
                    served.live.watchers(f"limit-{protocol}-{n}") == 1
                    for n in range(MAX_SUBSCRIPTIONS)
                ),
                "the subscriptions",
            )
            refused = Stream(connected, ORDER_UPDATED, {"id": f"limit-{protocol}-more"})
            with pytest.raises(TransportQueryError) as raised:
                await refused.next()
            assert raised.value.errors is not None
            assert raised.value.errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            await refused.close()
        finally:
            for stream in streams:
                await stream.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_nested_fields_of_each_push_are_read_as_they_are_then(
    served: Served, protocol: str
) -> None:
    """Loaders belong to one pushed event, not to the connection: a customer renamed
    between two pushes shows its new name in the second."""
    customer, order_id = f"nested-{protocol}", f"nested-order-{protocol}"
    await served.gql(
        'mutation($id: ID!) { registerCustomer(input: {customerId: $id, name: "Before", '
        'email: "nested-' + protocol + '@example.com"}) { __typename } }',
        {"id": customer},
    )
    query = """subscription($id: ID!) {
      orderUpdated(id: $id) { version customer { name } items { product { name } } }
    }"""
    async with session(served, protocol) as connected:
        stream = Stream(connected, query, {"id": order_id})
        try:
            await _until(lambda: served.live.watchers(order_id) == 1, "the subscription")
            await served.create(order_id, customer=customer)
            first = (await stream.next())["orderUpdated"]
            assert first["customer"] == {"name": "Before"}
            await served.gql(
                "mutation($id: ID!) { renameCustomer(input: {customerId: $id, "
                'name: "After"}) { __typename } }',
                {"id": customer},
            )
            renamed = "query($id: ID!) { customer(id: $id) { name } }"

            async def customer_renamed() -> bool:
                data = await served.gql(renamed, {"id": customer})
                return data["customer"]["name"] == "After"

            deadline = time.monotonic() + WAIT
            while not await customer_renamed():
                assert time.monotonic() < deadline, "the rename never reached the read model"
                await asyncio.sleep(0.02)
            await served.add_item(order_id)
            second = (await stream.next())["orderUpdated"]
            assert second["version"] == 2
            assert second["customer"] == {"name": "After"}
        finally:
            await stream.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_unexpected_error_in_a_pushed_event_is_masked_with_an_error_id(
    served: Served, protocol: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    order_id = f"masked-{protocol}"

    async def broken(ids: list[str]) -> list[Any]:
        raise RuntimeError("secret driver detail")

    query = "subscription($id: ID!) { orderUpdated(id: $id) { version customer { name } } }"
    async with session(served, protocol) as connected:
        stream = Stream(connected, query, {"id": order_id})
        try:
            await _until(lambda: served.live.watchers(order_id) == 1, "the subscription")
            monkeypatch.setattr(
                "schema.loaders._documents_by_id", lambda read_model, logical: broken
            )
            await served.create(order_id)
            with pytest.raises(TransportQueryError) as raised:
                await stream.next()
        finally:
            await stream.close()
    (error,) = raised.value.errors or [None]
    assert error is not None
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret driver detail" not in str(raised.value)
    assert error["extensions"]["errorId"] in caplog.text


# ------------------------------------------------------------ HTTP streams


def _sse_request(port: int, query: str, variables: dict[str, Any]) -> bytes:
    body = orjson.dumps({"query": query, "variables": variables})
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Accept: text/event-stream\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def test_an_sse_reader_that_stalls_costs_superseded_documents_not_memory(
    served: Served, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that stops reading: uvicorn stops taking the response once the socket's
    buffers are full, so the subscription's bounded queue drops the oldest documents; when
    the client reads again, it still gets the order's last version."""
    caplog.set_level(logging.INFO, logger="schema.order_updates")
    # A queue of 2 documents (not 100), so that a few dozen updates overflow it.
    monkeypatch.setattr("schema.order_updates.QUEUE_SIZE", 2)
    uid = uuid.uuid4().hex[:8]
    order_id = f"slow-{uid}"
    # Each pushed document about 600 kB: 100 lines of products with long names, 30 times.
    skus = [f"wide-{uid}-{i}" for i in range(100)]
    for batch in (skus[start : start + 25] for start in range(0, len(skus), 25)):
        adds = " ".join(
            f'a{i}: addProduct(input: {{productId: "{sku}", name: "{"N" * 190} {i}", '
            'price: "1.00", initialStock: 1000}) { __typename }'
            for i, sku in enumerate(batch)
        )
        await served.gql(f"mutation {{ {adds} }}")
    items = [{"productId": sku, "quantity": 1} for sku in skus]
    create = """mutation($id: ID!, $items: [OrderItemInput!]) {
      createOrder(input: {orderId: $id, customerId: "ada", items: $items}) {
        ... on OrderAccepted { version } }
    }"""
    await served.gql(create, {"id": order_id, "items": items})
    wide = " ".join(f"i{i}: items {{ productName }}" for i in range(30))
    query = f"subscription($id: ID!) {{ orderUpdated(id: $id) {{ version {wide} }} }}"
    port = int(served.url.rsplit(":", 1)[1].split("/")[0])
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
    stalled.connect(("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=stalled)
    try:
        writer.write(_sse_request(port, query, {"id": order_id}))
        await writer.drain()
        await _until(lambda: served.live.watchers(order_id) == 1, "the subscription")
        last = 0
        more = """mutation($id: ID!, $sku: ID!) {
          addOrderItem(input: {orderId: $id, productId: $sku, quantity: 1}) {
            ... on OrderAccepted { version } ... on UserError { message } }
        }"""
        for _ in range(60):  # far more than the socket's buffers and the queue hold
            added = await served.gql(more, {"id": order_id, "sku": skus[0]})
            last = added["addOrderItem"]["version"]
        read_back = "query($id: ID!) { order(id: $id) { version } }"
        deadline = time.monotonic() + WAIT
        while (await served.gql(read_back, {"id": order_id}))["order"]["version"] < last:
            assert time.monotonic() < deadline, "the projector did not catch up"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the last documents reach the subscription's queue
        received = bytearray()
        final = f'"version":{last},'.encode()
        async with asyncio.timeout(WAIT):  # reading again: the last version arrives
            while final not in received[-(2 << 20) :]:  # within the last document
                received += await reader.read(1 << 20)
    finally:
        writer.close()
    await _until(lambda: served.live.watchers(order_id) == 0, "the stream's end")
    dropped = [r.getMessage() for r in caplog.records if "slow subscriber missed" in r.getMessage()]
    assert dropped, "the stalled stream's queue dropped nothing: it was never held back"


async def test_an_unexpected_error_in_an_sse_push_is_masked_with_an_error_id(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    order_id = f"masked-sse-{uuid.uuid4().hex[:8]}"

    async def broken(ids: list[str]) -> list[Any]:
        raise RuntimeError("secret driver detail")

    query = "subscription($id: ID!) { orderUpdated(id: $id) { version customer { name } } }"
    body = {"query": query, "variables": {"id": order_id}}
    headers = {"Accept": "text/event-stream"}
    async with served.http.stream("POST", "/graphql", json=body, headers=headers) as stream:
        assert stream.status_code == 200
        await _until(lambda: served.live.watchers(order_id) == 1, "the subscription")
        monkeypatch.setattr("schema.loaders._documents_by_id", lambda read_model, logical: broken)
        await served.create(order_id)
        async with asyncio.timeout(WAIT):
            lines = stream.aiter_lines()
            while not (line := await anext(lines)).startswith("data: "):
                pass
    (error,) = orjson.loads(line.removeprefix("data: "))["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret driver detail" not in line
    assert error["extensions"]["errorId"] in caplog.text
