"""Subscriptions over plain HTTP, end to end, with authentication on, on both stacks
(`orders dev`, and `orders api` with the projector and the saga): GraphQL over SSE with the
npm `graphql-sse` client (tests/e2e/graphql_sse_client.js, on Node), multipart
subscriptions with gql's aiohttp transport, and raw httpx where the wire itself is checked
(heartbeats, CORS, status codes).

The rules are the websockets' (tests/e2e/test_security.py): the token in the
Authorization header, only the principal's own orders, the per-principal cap shared with
websockets, the stream's end when its token expires, the query limits, `afterVersion`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportServerError

from tests.e2e.client import ADDRESS, accepted, contract_sdl
from tests.e2e.conftest import ALLOWED_ORIGIN, SECURED, Shop, token
from tests.e2e.processes import Stack

SSE_CLIENT = Path(__file__).with_name("graphql_sse_client.js")
SSE = {"Accept": "text/event-stream", "Content-Type": "application/json"}
MULTIPART = {"Accept": "multipart/mixed;subscriptionSpec=1.0", "Content-Type": "application/json"}
ORDER = """
subscription($id: ID!, $after: Int) {
  orderUpdated(id: $id, afterVersion: $after) { id version status }
}
"""
EVERYTHING = "subscription { ordersUpdated { id customerId version } }"
HEARTBEAT_SECONDS = float(SECURED["STREAM_HEARTBEAT_SECONDS"])


class Watch:
    """What one subscription received, read in the background: `results` (the `data` of
    each result), `errors` (each result's errors), `ended` once the stream ended and
    `failure` when the client raised."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []
        self.errors: list[list[dict[str, Any]]] = []
        self.ended = asyncio.Event()
        self.failure: BaseException | None = None
        self.task: asyncio.Task[None] | None = None

    async def until(self, condition: Callable[[Watch], bool], seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition(self):
            if self.failure is not None:
                raise AssertionError(f"the client failed: {self.failure!r}") from self.failure
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {seconds} s: {self.results} {self.errors}")
            await asyncio.sleep(0.05)

    def __repr__(self) -> str:
        return f"Watch(results={self.results}, errors={self.errors}, failure={self.failure!r})"

    def orders(self) -> list[dict[str, Any]]:
        return [result["orderUpdated"] for result in self.results]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@contextlib.asynccontextmanager
async def graphql_sse(
    stack: Stack, credential: str, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[Watch]:
    """The npm graphql-sse client as a Node process, one JSON line per event."""
    watch = Watch()
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SSE_CLIENT),
        stack.graphql_url,
        credential,
        query,
        json.dumps(variables or {}),
        "120",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            event = json.loads(line)
            if "next" in event:
                result = event["next"]
                if result.get("errors"):
                    watch.errors.append(result["errors"])
                if result.get("data") is not None:
                    watch.results.append(result["data"])
            elif "error" in event:
                watch.failure = RuntimeError(f"graphql-sse: {event}")
            elif "complete" in event:
                watch.ended.set()
        watch.ended.set()

    watch.task = asyncio.create_task(read())
    try:
        yield watch
    finally:
        await watch.close()
        if process.returncode is None:
            process.terminate()
        _, stderr = await process.communicate()
        assert b"Error" not in stderr, stderr.decode()


@contextlib.asynccontextmanager
async def multipart(
    stack: Stack, credential: str, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[Watch]:
    """gql's aiohttp transport, which subscribes with Apollo's multipart protocol; the
    documents are validated against the contract first."""
    watch = Watch()
    transport = AIOHTTPTransport(
        url=stack.graphql_url, headers={"Authorization": f"Bearer {credential}"}
    )

    async def read() -> None:
        try:
            async with Client(transport=transport, schema=contract_sdl()) as session:
                request = GraphQLRequest(query, variable_values=variables or {})
                async for data in session.subscribe(request):
                    watch.results.append(data)
        except Exception as error:
            watch.failure = error
        finally:
            watch.ended.set()

    watch.task = asyncio.create_task(read())
    try:
        yield watch
    finally:
        await watch.close()


def versions(watch: Watch) -> list[int]:
    return [order["version"] for order in watch.orders()]


# ----------------------------------------------------------------- delivery


async def test_both_clients_receive_every_version_of_an_order_in_order_through_confirmed(
    shop: Shop,
) -> None:
    mine = token(shop.a_id)
    variables = {"id": shop.a_order}
    async with (
        graphql_sse(shop.stack, mine, ORDER, variables) as sse,
        multipart(shop.stack, mine, ORDER, variables) as parts,
    ):
        watches = (sse, parts)
        for watch in watches:
            await watch.until(lambda w: len(w.results) >= 1)  # the current document
        first = versions(sse)[0]
        steps = [
            ("addOrderItem", {"productId": shop.sku, "quantity": 2}),
            ("setShippingAddress", {"address": ADDRESS}),
        ]
        for mutation, fields in steps:
            done = accepted(await shop.a.mutate(mutation, {"orderId": shop.a_order, **fields}))
            for watch in watches:  # one change at a time: each is its own version
                await watch.until(lambda w, v=done["version"]: v in versions(w))
        accepted(await shop.a.mutate("submitOrder", {"orderId": shop.a_order}))
        for watch in watches:
            await watch.until(lambda w: w.orders()[-1]["status"] == "CONFIRMED")
        final = await shop.a.execute("query($id: ID!) { order(id: $id) { version } }", variables)
    last = final["order"]["version"]
    for watch in watches:
        seen = versions(watch)
        assert seen == sorted(seen), seen  # in order
        assert set(seen) == set(range(first, last + 1)), seen  # every version
        statuses = [order["status"] for order in watch.orders()]
        assert statuses[0] == "DRAFT" and "SUBMITTED" in statuses, statuses
        assert statuses[-1] == "CONFIRMED" and seen[-1] == last
        assert watch.errors == []


async def test_another_customers_order_sends_nothing_over_either_stream(shop: Shop) -> None:
    as_a = token(shop.a_id)
    theirs = {"id": shop.b_order}
    async with (
        graphql_sse(shop.stack, as_a, ORDER, theirs) as sse_theirs,
        multipart(shop.stack, as_a, ORDER, theirs) as parts_theirs,
        graphql_sse(shop.stack, as_a, EVERYTHING) as sse_all,
        multipart(shop.stack, as_a, EVERYTHING) as parts_all,
    ):
        item = {"productId": shop.sku, "quantity": 1}

        def a_version(watch: Watch) -> int:
            mine = [r["ordersUpdated"] for r in watch.results]
            return max((o["version"] for o in mine if o["id"] == shop.a_order), default=0)

        async def a_changes_its_order() -> None:
            """Until both streams of everything have A's change, so they are live (a
            client may take a while to start on a busy machine): a change, 3 s to see it."""
            for _ in range(10):
                change = {"orderId": shop.a_order, **item}
                version = accepted(await shop.a.mutate("addOrderItem", change))["version"]
                with contextlib.suppress(AssertionError):
                    for watch in (sse_all, parts_all):
                        await watch.until(lambda w, v=version: a_version(w) >= v, seconds=3)
                    return
            raise AssertionError(f"A's changes never came: {sse_all!r} {parts_all!r}")

        await a_changes_its_order()
        accepted(await shop.b.mutate("addOrderItem", {"orderId": shop.b_order, **item}))
        await a_changes_its_order()  # B's change, written before, would have come first
    # Not even B's current document: nothing at all, as for a missing id.
    assert sse_theirs.results == parts_theirs.results == []
    assert sse_theirs.failure is None and parts_theirs.failure is None  # they were open
    for watch in (sse_all, parts_all):
        assert {r["ordersUpdated"]["customerId"] for r in watch.results} == {shop.a_id}


async def test_a_stream_resumed_with_after_version_gets_the_current_document_first(
    shop: Shop,
) -> None:
    read = "query($id: ID!) { order(id: $id) { version } }"
    current = (await shop.a.execute(read, {"id": shop.a_order}))["order"]["version"]
    as_a = token(shop.a_id)
    behind = {"id": shop.a_order, "after": current - 1}
    up_to_date = {"id": shop.a_order, "after": current}
    async with (
        graphql_sse(shop.stack, as_a, ORDER, behind) as sse_behind,
        multipart(shop.stack, as_a, ORDER, behind) as parts_behind,
        graphql_sse(shop.stack, as_a, ORDER, up_to_date) as sse_current,
        multipart(shop.stack, as_a, ORDER, up_to_date) as parts_current,
    ):
        for watch in (sse_behind, parts_behind):
            await watch.until(lambda w: len(w.results) >= 1)
            assert versions(watch) == [current]  # missed: sent at once
        await asyncio.sleep(1)
        assert sse_current.results == parts_current.results == []  # nothing newer yet
        item = {"productId": shop.sku, "quantity": 1}
        accepted(await shop.a.mutate("addOrderItem", {"orderId": shop.a_order, **item}))
        for watch in (sse_behind, parts_behind, sse_current, parts_current):
            await watch.until(lambda w: current + 1 in versions(w))
    assert versions(sse_current) == versions(parts_current) == [current + 1]
    assert all(w.failure is None for w in (sse_behind, parts_behind, sse_current, parts_current))


# -------------------------------------------------------------------- rules


async def test_an_expired_token_ends_the_stream(secured: Stack) -> None:
    order = {"id": f"o-{uuid.uuid4().hex}"}  # nothing to send: only the end comes
    started = time.monotonic()
    async with (
        graphql_sse(secured, token("c", ttl=3), ORDER, order) as sse,
        multipart(secured, token("c", ttl=3), ORDER, order) as parts,
    ):
        for watch in (sse, parts):
            await asyncio.wait_for(watch.ended.wait(), 20)
    assert time.monotonic() - started < 15
    # graphql-sse: a last result with the reason, then `complete`.
    assert sse.failure is None and sse.results == []
    assert [[e["extensions"]["code"] for e in errors] for errors in sse.errors] == [
        ["UNAUTHENTICATED"]
    ]
    assert "expired" in sse.errors[0][0]["message"]
    # multipart: a transport error (payload null), which gql raises.
    assert isinstance(parts.failure, TransportServerError), parts.failure
    assert "expired" in str(parts.failure)

    async with httpx.AsyncClient(timeout=10) as http:  # and it cannot come back
        again = await http.post(
            secured.graphql_url,
            json={"query": ORDER, "variables": order},
            headers={**SSE, "Authorization": f"Bearer {token('c', ttl=-5)}"},
        )
    assert again.status_code == 401
    assert again.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def _handshake(stack: Stack, credential: str) -> Any:
    connection = await websockets.connect(
        stack.graphql_url.replace("http", "ws", 1), subprotocols=["graphql-transport-ws"]
    )
    await connection.send(json.dumps({"type": "connection_init", "payload": {"token": credential}}))
    return connection


async def test_the_per_principal_cap_counts_http_streams_with_websockets(secured: Stack) -> None:
    """MAX_STREAMS_PER_PRINCIPAL is 4 on the secured stacks: three streams and a socket."""
    credential = token(f"cust-{uuid.uuid4().hex}")
    bearer = {"Authorization": f"Bearer {credential}"}
    body = {"query": ORDER, "variables": {"id": f"o-{uuid.uuid4().hex}"}}
    async with contextlib.AsyncExitStack() as held, httpx.AsyncClient(timeout=10) as http:

        async def open_stream() -> httpx.Response:
            request = http.build_request(
                "POST", secured.graphql_url, json=body, headers={**SSE, **bearer}
            )
            response = await http.send(request, stream=True)
            held.push_async_callback(response.aclose)
            return response

        first, *others = [await open_stream() for _ in range(3)]
        assert [r.status_code for r in (first, *others)] == [200, 200, 200]
        socket = await _handshake(secured, credential)
        held.push_async_callback(socket.close)
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"

        refused_sse = await http.post(secured.graphql_url, json=body, headers={**SSE, **bearer})
        assert refused_sse.status_code == 429
        assert refused_sse.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
        async with multipart(secured, credential, ORDER, body["variables"]) as parts:
            await asyncio.wait_for(parts.ended.wait(), 10)
        assert isinstance(parts.failure, TransportServerError) and parts.failure.code == 429
        one_more_socket = await _handshake(secured, credential)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(one_more_socket.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

        await first.aclose()  # a stream the client closes no longer counts
        for _ in range(50):
            if (again := await open_stream()).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert again.status_code == 200


async def test_streams_send_heartbeats_and_carry_cors_headers(secured: Stack) -> None:
    bearer = {"Authorization": f"Bearer {token('c')}", "Origin": ALLOWED_ORIGIN}
    body = {"query": ORDER, "variables": {"id": f"o-{uuid.uuid4().hex}"}}
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream(
            "POST", secured.graphql_url, json=body, headers={**SSE, **bearer}
        ) as sse:
            assert sse.status_code == 200
            assert sse.headers["content-type"].startswith("text/event-stream")
            assert sse.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
            started = time.monotonic()
            lines = sse.aiter_lines()
            while (line := await asyncio.wait_for(anext(lines), HEARTBEAT_SECONDS * 5)) != ": ping":
                assert line == "", line  # an idle stream sends nothing but its keep-alives
            assert time.monotonic() - started < HEARTBEAT_SECONDS * 5
        async with http.stream(
            "POST", secured.graphql_url, json=body, headers={**MULTIPART, **bearer}
        ) as parts:
            assert parts.status_code == 200
            assert parts.headers["content-type"].startswith("multipart/mixed")
            assert "subscriptionSpec=1.0" in parts.headers["content-type"]
            assert parts.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
            received = ""
            chunks = parts.aiter_text()
            while received.count("{}") < 2:  # at once, then after an idle interval
                received += await asyncio.wait_for(anext(chunks), HEARTBEAT_SECONDS * 5)
            assert '"payload"' not in received


def _events(text: str) -> list[tuple[str, Any]]:
    """An SSE body's events as (event, data as JSON or None)."""
    events = []
    for block in text.split("\r\n\r\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"]) if fields["data"] else None))
    return events


async def test_queries_run_and_errors_before_execution_come_in_the_stream(
    secured: Stack,
) -> None:
    bearer = {"Authorization": f"Bearer {token('c')}"}
    aliases = " ".join(f"a{i}: id" for i in range(40))
    too_many = f'subscription {{ orderUpdated(id: "x") {{ {aliases} }} }}'
    unknown = 'subscription { orderUpdated(id: "x") { nope } }'
    async with httpx.AsyncClient(timeout=10) as http:
        for document, expected in ((too_many, "aliases"), (unknown, "nope")):
            answered = await http.post(
                secured.graphql_url, json={"query": document}, headers={**SSE, **bearer}
            )
            assert answered.status_code == 200  # the protocol: errors as a `next` event
            (first, data), last = _events(answered.text)
            assert (first, last) == ("next", ("complete", None))
            assert expected in data["errors"][0]["message"], data
        query = "{ products(first: 1) { edges { node { id } } } }"
        answered = await http.post(
            secured.graphql_url, json={"query": query}, headers={**SSE, **bearer}
        )
        (first, data), last = _events(answered.text)  # a query: one result, then the end
        assert (first, last) == ("next", ("complete", None))
        assert "errors" not in data and "edges" in data["data"]["products"]


async def test_a_subscription_posted_for_one_json_response_is_a_400_naming_the_ways(
    secured: Stack,
) -> None:
    bearer = {"Authorization": f"Bearer {token('c')}"}
    body = {"query": ORDER, "variables": {"id": "x"}}
    async with httpx.AsyncClient(timeout=10) as http:
        for headers in ({"Accept": "application/json"}, {}):
            answered = await http.post(
                secured.graphql_url, json=body, headers={**headers, **bearer}
            )
            assert answered.status_code == 400, answered.text
            error = answered.json()["errors"][0]
            assert error["extensions"]["code"] == "BAD_REQUEST"
            for way in ("graphql-transport-ws", "text/event-stream", "multipart/mixed"):
                assert way in error["message"]
            assert "Internal server error" not in answered.text
        by_get = await http.get(
            secured.graphql_url, params={"query": ORDER, "variables": '{"id": "x"}'}, headers=bearer
        )
        assert by_get.status_code == 400 and "text/event-stream" in by_get.text
