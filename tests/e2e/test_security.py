"""Security end to end: a server started with JWT_SECRET (and an issuer, an audience and an
allowed CORS origin), driven with real clients (gql over HTTP and websockets, raw httpx and
websockets for status codes and close codes), on both stacks.

Customer A must not see, change or subscribe to customer B's orders through any field or
list; staff sees everything and alone changes the catalog and reads the operators' views;
every refused path answers with the documented status, code or close code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.client import ADDRESS, accepted, contract_sdl
from tests.e2e.conftest import ALLOWED_ORIGIN, AUDIENCE, ISSUER, SECURED, Shop, token
from tests.e2e.processes import Stack, base_env

# ------------------------------------------------------------- authentication


async def test_without_a_token_or_with_a_bad_one_http_answers_401_saying_why(
    secured: Stack,
) -> None:
    query = {"query": "{ products(first: 1) { edges { node { id } } } }"}
    now = int(time.time())
    cases = {
        None: "needs a bearer token",
        token("c", ttl=-60): "expired",
        token("c", nbf=now + 600): "not valid yet",
        token("c", iss="https://elsewhere.test"): "issuer",
        token("c", aud="another-api"): "audience",
        token("c")[:-4] + "AAAA": "signature",
        jwt.encode(
            {"sub": "c", "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE},
            "other-key-00000000000000000000000",
            "HS256",
        ): "signature",
        _unsigned({"sub": "c", "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE}): "algorithm",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        for credential, reason in cases.items():
            headers = {"Authorization": f"Bearer {credential}"} if credential else {}
            response = await http.post(secured.graphql_url, json=query, headers=headers)
            assert response.status_code == 401, (reason, response.text)
            assert response.headers["www-authenticate"].startswith('Bearer realm="orders"')
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
            assert reason in error["message"]
        # A valid token gets through; GraphiQL's page itself needs none.
        good = {"Authorization": f"Bearer {token('c')}"}
        assert (await http.post(secured.graphql_url, json=query, headers=good)).status_code == 200
        page = await http.get(secured.graphql_url, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "<html" in page.text.lower()


def _unsigned(claims: dict[str, Any]) -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _orders_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_orders_token_mints_what_the_server_accepts_and_the_banner_says_auth_is_on(
    secured: Stack,
) -> None:
    assert any(
        line.startswith("Authentication is on: bearer tokens verified with JWT_SECRET")
        for line in secured.log_tail().splitlines()
    )
    minted = _orders_command("token", "ops-cli", "--staff", "--ttl", "60", **SECURED)
    assert minted.returncode == 0, minted.stderr
    query = {"query": "{ projections { name } }"}
    async with httpx.AsyncClient(timeout=10) as http:
        headers = {"Authorization": f"Bearer {minted.stdout.strip()}"}
        response = await http.post(secured.graphql_url, json=query, headers=headers)
    assert response.status_code == 200, response.text
    refused = _orders_command("token", "c-1")  # no JWT_SECRET in this environment
    assert refused.returncode == 2
    assert "JWT_SECRET, which is not set" in refused.stderr


# ------------------------------------------------------------------- reading

ORDER_IDS = "edges { node { id customerId } }"


async def test_a_customer_reads_only_its_own_orders_through_every_field_and_list(
    shop: Shop,
) -> None:
    a, mine, theirs = shop.a, shop.a_order, shop.b_order
    # One request, one DataLoader batch holding both ids: B's is null, as a missing one.
    data = await a.execute(
        """query($mine: ID!, $theirs: ID!, $missing: ID!) {
          mine: order(id: $mine) { id customer { id } }
          theirs: order(id: $theirs) { id }
          missing: order(id: $missing) { id }
        }""",
        {"mine": mine, "theirs": theirs, "missing": f"o-{uuid.uuid4().hex}"},
    )
    assert data["mine"] == {"id": mine, "customer": {"id": shop.a_id}}
    assert data["theirs"] is None and data["missing"] is None

    lists = await a.execute(
        f"""query($b: ID!, $a: ID!) {{
          all: orders(first: 100) {{ totalCount {ORDER_IDS} }}
          filtered: orders(filter: {{customerId: $b}}) {{ totalCount {ORDER_IDS} }}
          customers(first: 100) {{ edges {{ node {{ id }} }} }}
          me: customer(id: $a) {{ orders {{ totalCount {ORDER_IDS} }} }}
          them: customer(id: $b) {{ id }}
        }}""",
        {"a": shop.a_id, "b": shop.b_id},
    )
    seen = {edge["node"]["customerId"] for edge in lists["all"]["edges"]}
    assert seen == {shop.a_id} and lists["all"]["totalCount"] == 1
    assert lists["filtered"] == {"totalCount": 0, "edges": []}
    assert [edge["node"]["id"] for edge in lists["customers"]["edges"]] == [shop.a_id]
    assert [e["node"]["id"] for e in lists["me"]["orders"]["edges"]] == [mine]
    assert lists["them"] is None

    history = await a.execute(
        """query($mine: ID!, $theirs: ID!) {
          mine: orderHistory(id: $mine) { type userId }
          theirs: orderHistory(id: $theirs) { type }
          at: orderAt(id: $theirs, version: 1) { id }
          past: orderAt(id: $theirs, version: 99) { id }
        }""",
        {"mine": mine, "theirs": theirs},
    )
    assert history["mine"][0] == {"type": "OrderCreated", "userId": shop.a_id}
    assert history["theirs"] == [] and history["at"] is None and history["past"] is None

    # Staff sees both customers' orders.
    both = await shop.staff.execute(
        "query($a: ID!, $b: ID!) { a: order(id: $a) { id } b: order(id: $b) { id } }",
        {"a": mine, "b": theirs},
    )
    assert both == {"a": {"id": mine}, "b": {"id": theirs}}


# ------------------------------------------------------------------ changing


async def test_a_customer_cannot_change_another_customers_order_or_order_for_them(
    shop: Shop,
) -> None:
    missing = f"o-{uuid.uuid4().hex}"
    read_b = "query($id: ID!) { order(id: $id) { version status items { quantity } } }"
    before = await shop.staff.execute(read_b, {"id": shop.b_order})
    attempts = {
        "addOrderItem": {"productId": shop.sku, "quantity": 1},
        "removeOrderItem": {"productId": shop.sku},
        "setShippingAddress": {"address": ADDRESS},
        "submitOrder": {},
        "cancelOrder": {"reason": "not mine"},
    }
    for mutation, fields in attempts.items():
        refused = await shop.a.mutate(mutation, {"orderId": shop.b_order, **fields})
        as_missing = await shop.a.mutate(mutation, {"orderId": missing, **fields})
        assert refused["__typename"] == "NotFoundError", (mutation, refused)
        assert refused["message"] == as_missing["message"].replace(missing, shop.b_order)
    for_them = await shop.a.mutate(
        "createOrder", {"customerId": shop.b_id, "items": [{"productId": shop.sku, "quantity": 1}]}
    )
    nobody = f"cust-{uuid.uuid4().hex}"
    for_nobody = await shop.a.mutate("createOrder", {"customerId": nobody, "items": []})
    assert for_them["__typename"] == "NotFoundError"
    assert for_them["message"] == for_nobody["message"].replace(nobody, shop.b_id)
    renamed = await shop.a.mutate("renameCustomer", {"customerId": shop.b_id, "name": "Mallory"})
    assert renamed["__typename"] == "NotFoundError"
    # A chosen orderId that is B's answers A exactly as A's own taken id does, without
    # saying that an order exists; staff are told why.
    items = [{"productId": shop.sku, "quantity": 1}]
    taken = {
        order_id: await shop.a.mutate(
            "createOrder", {"orderId": order_id, "customerId": shop.a_id, "items": items}
        )
        for order_id in (shop.a_order, shop.b_order)
    }
    own, bs = taken[shop.a_order], taken[shop.b_order]
    assert own["__typename"] == bs["__typename"] == "ValidationError"
    assert own["field"] == bs["field"] == "orderId"
    assert bs["message"] == own["message"].replace(shop.a_order, shop.b_order)
    assert "exist" not in bs["message"] and shop.b_id not in bs["message"]
    told = await shop.staff.mutate(
        "createOrder", {"orderId": shop.b_order, "customerId": shop.a_id, "items": items}
    )
    assert told == {
        "__typename": "InvalidStateError",
        "code": "INVALID_STATE",
        "message": f"order {shop.b_order} already exists",
    }

    # B's order is as B left it; its owner can still change it.
    await asyncio.sleep(0.3)  # were anything appended, the projector would have it by now
    assert await shop.staff.execute(read_b, {"id": shop.b_order}) == before
    assert before["order"]["status"] == "DRAFT"
    owner_sets = {"orderId": shop.b_order, "address": ADDRESS}
    accepted(await shop.b.mutate("setShippingAddress", owner_sets), "OrderAccepted")


async def test_only_staff_changes_the_catalog_and_reads_the_operators_views(shop: Shop) -> None:
    staff_only = [
        ("addProduct", {"productId": f"p-{uuid.uuid4().hex}", "name": "X", "price": "1.00"}),
        ("changeProductPrice", {"productId": shop.sku, "price": "0.01"}),
        ("restockProduct", {"productId": shop.sku, "quantity": 1000}),
    ]
    for mutation, input in staff_only:
        response = await shop.a.post(
            {
                "query": f"mutation($input: {mutation[0].upper() + mutation[1:]}Input!) "
                f"{{ {mutation}(input: $input) {{ __typename }} }}",
                "variables": {"input": input},
            }
        )
        assert response.status_code == 403, (mutation, response.text)
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "FORBIDDEN" and "staff only" in error["message"]
    rename = await shop.a.post(
        {
            "query": f'mutation {{ renameProduct(input: {{productId: "{shop.sku}", name: "Free"}}) '
            "{ __typename } }"
        }
    )
    assert rename.status_code == 403
    for query in (
        "{ projections { name } }",
        "{ deadLetters { id } }",
        'mutation { retryDeadLetter(id: "x") { __typename } }',
    ):
        response = await shop.a.post({"query": query})
        assert response.status_code == 403, (query, response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    product = await shop.a.execute(
        "query($id: ID!) { product(id: $id) { price { amount } } }", {"id": shop.sku}
    )
    assert product["product"]["price"]["amount"] == "4.00"  # unchanged
    accepted(await shop.staff.mutate("restockProduct", {"productId": shop.sku, "quantity": 5}))
    ops = await shop.staff.execute("{ projections { name } deadLetters { id } }")
    assert {p["name"] for p in ops["projections"]} >= {"orders", "customers", "products"}


# -------------------------------------------------------------- subscriptions


@contextlib.asynccontextmanager
async def subscribed(
    stack: Stack, credential: str, query: str, variables: dict[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The results of a subscription over graphql-transport-ws with the token in
    `connection_init`, collected while the block runs."""
    results: list[dict[str, Any]] = []
    transport = WebsocketsTransport(
        url=stack.graphql_url.replace("http", "ws", 1),
        init_payload={"Authorization": f"Bearer {credential}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport, schema=contract_sdl()) as session:

        async def read() -> None:
            async for result in session.subscribe(GraphQLRequest(query, variable_values=variables)):
                results.append(result)

        task = asyncio.create_task(read())
        await asyncio.sleep(0.5)  # subscribed on the server's change feed
        try:
            yield results
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_customer_subscribed_to_another_customers_order_hears_nothing_of_it(
    shop: Shop,
) -> None:
    by_id = "subscription($id: ID!) { orderUpdated(id: $id) { id version } }"
    by_filter = "subscription($c: ID) { ordersUpdated(filter: {customerId: $c}) { id customerId } }"
    everything = "subscription { ordersUpdated { id customerId } }"
    async with (
        subscribed(shop.stack, token(shop.a_id), by_id, {"id": shop.b_order}) as theirs,
        subscribed(shop.stack, token(shop.a_id), by_filter, {"c": shop.b_id}) as filtered,
        subscribed(shop.stack, token(shop.a_id), everything, {}) as all_of_a,
        subscribed(
            shop.stack, token(f"ops-{uuid.uuid4().hex}", staff=True), everything, {}
        ) as all_of_staff,
    ):
        accepted(
            await shop.b.mutate(
                "addOrderItem", {"orderId": shop.b_order, "productId": shop.sku, "quantity": 2}
            )
        )
        accepted(
            await shop.a.mutate(
                "addOrderItem", {"orderId": shop.a_order, "productId": shop.sku, "quantity": 2}
            )
        )
        for _ in range(150):
            if any(r["ordersUpdated"]["id"] == shop.a_order for r in all_of_a) and {
                r["ordersUpdated"]["id"] for r in all_of_staff
            } >= {shop.a_order, shop.b_order}:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything else in flight arrives too
    # Not even B's current document: nothing at all, as for a missing id.
    assert theirs == [] and filtered == []
    assert {r["ordersUpdated"]["customerId"] for r in all_of_a} == {shop.a_id}
    assert {r["ordersUpdated"]["id"] for r in all_of_staff} >= {shop.a_order, shop.b_order}


NODE_CLIENT = Path(__file__).with_name("graphql_ws_client.js")


async def _node_subscription(
    stack: Stack, credential: str, query: str, seconds: float
) -> asyncio.subprocess.Process:
    """The npm graphql-ws client (tests/e2e/graphql_ws_client.js) as a Node process."""
    return await asyncio.create_subprocess_exec(
        "node",
        "--experimental-websocket",
        "--no-warnings",
        str(NODE_CLIENT),
        stack.graphql_url.replace("http", "ws", 1),
        credential,
        query,
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _events(process: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_the_npm_graphql_ws_client_with_a_token_hears_only_its_own_orders(
    shop: Shop,
) -> None:
    everything = "subscription { ordersUpdated { id customerId } }"
    listening = await _node_subscription(shop.stack, token(shop.a_id), everything, 6)
    refused = await _node_subscription(shop.stack, token(shop.a_id, ttl=-60), everything, 3)
    assert listening.stdout is not None
    first = json.loads(await asyncio.wait_for(listening.stdout.readline(), 30))
    assert first == {"connected": True}  # acknowledged, so the token was accepted
    await asyncio.sleep(0.5)  # its subscribe message reached the server's change feed
    item = {"productId": shop.sku, "quantity": 1}
    accepted(await shop.b.mutate("addOrderItem", {"orderId": shop.b_order, **item}))
    accepted(await shop.a.mutate("addOrderItem", {"orderId": shop.a_order, **item}))

    events = await _events(listening)
    heard = [e["next"]["data"]["ordersUpdated"] for e in events if "next" in e]
    assert {"id": shop.a_order, "customerId": shop.a_id} in heard
    assert {order["customerId"] for order in heard} == {shop.a_id}
    closed = [e for e in await _events(refused) if "closed" in e]
    assert closed and closed[0]["closed"] == 4403


async def _handshake(
    stack: Stack, subprotocol: str, payload: Any, origin: str | None = None
) -> Any:
    url = stack.graphql_url.replace("http", "ws", 1)
    headers = {"Origin": origin} if origin else None
    connection = await websockets.connect(
        url, subprotocols=[subprotocol], additional_headers=headers
    )
    await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
    return connection


async def test_a_websocket_without_a_valid_token_is_refused_before_connection_ack(
    secured: Stack,
) -> None:
    for payload in ({}, {"Authorization": f"Bearer {token('c', ttl=-60)}"}, {"token": "garbage"}):
        connection = await _handshake(secured, "graphql-transport-ws", payload)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403, payload

        legacy = await _handshake(secured, "graphql-ws", payload)
        message = json.loads(await asyncio.wait_for(legacy.recv(), 10))
        assert message["type"] == "connection_error", payload
        assert message["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
        await legacy.close()

    good = await _handshake(secured, "graphql-transport-ws", {"token": token("c")})
    assert json.loads(await asyncio.wait_for(good.recv(), 10))["type"] == "connection_ack"
    await good.close()


async def test_a_websocket_whose_token_expires_is_closed_with_4403(secured: Stack) -> None:
    connection = await _handshake(
        secured, "graphql-transport-ws", {"Authorization": f"Bearer {token('c', ttl=2)}"}
    )
    assert json.loads(await asyncio.wait_for(connection.recv(), 10))["type"] == "connection_ack"
    started = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(connection.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert "expired" in closed.value.rcvd.reason
    assert time.monotonic() - started < 5


# -------------------------------------------------------------- introspection

INTROSPECT = "{ __schema { queryType { name } } }"


def _transports(stack: Stack, credential: str) -> Iterator[Any]:
    """gql over HTTP and over graphql-transport-ws, with `credential` (the legacy graphql-ws
    protocol runs subscriptions only, and introspection is a query)."""
    bearer = {"Authorization": f"Bearer {credential}"}
    yield AIOHTTPTransport(url=stack.graphql_url, headers=bearer)
    yield WebsocketsTransport(
        url=stack.graphql_url.replace("http", "ws", 1),
        init_payload=bearer,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )


async def test_only_staff_introspect_the_schema_over_http_and_websockets(secured: Stack) -> None:
    """INTROSPECTION's default where authentication is on: staff only (`orders dev` keeps
    it on for everyone)."""
    uid = uuid.uuid4().hex[:8]
    for transport in _transports(secured, token(f"ops-{uid}", staff=True)):
        # As GraphiQL and code generators do: the schema fetched from the server.
        async with Client(transport=transport, fetch_schema_from_transport=True) as session:
            assert session.client.schema is not None
            assert session.client.schema.mutation_type is not None
            assert "createOrder" in session.client.schema.mutation_type.fields
    customer = token(f"cust-{uid}")
    for transport in _transports(secured, customer):
        async with Client(transport=transport) as session:
            if secured.name == "embedded":
                answered = await session.execute(gql(INTROSPECT))
                assert answered == {"__schema": {"queryType": {"name": "Query"}}}
            else:
                with pytest.raises(TransportQueryError) as refused:
                    await session.execute(gql(INTROSPECT))
                assert refused.value.errors is not None
                (error,) = refused.value.errors
                assert error["extensions"] == {"code": "FORBIDDEN"}
                assert "introspection (__schema, __type) is for staff only" in error["message"]
            assert await session.execute(gql("{ __typename }")) == {"__typename": "Query"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            secured.graphql_url,
            json={"query": '{ __type(name: "Order") { name } }'},
            headers={"Authorization": f"Bearer {customer}"},
        )
    assert response.status_code == (200 if secured.name == "embedded" else 403), response.text


# ---------------------------------------------------------------------- CORS


async def test_cors_lets_the_allowed_origin_in_and_refuses_any_other(secured: Stack) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        allowed = await http.options(
            secured.graphql_url, headers={"Origin": ALLOWED_ORIGIN, **preflight}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

        other = await http.options(
            secured.graphql_url, headers={"Origin": "http://evil.test", **preflight}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers

        answered = await http.post(
            secured.graphql_url,
            json={"query": "{ products(first: 1) { edges { node { id } } } }"},
            headers={"Origin": ALLOWED_ORIGIN, "Authorization": f"Bearer {token('c')}"},
        )
        assert answered.status_code == 200
        assert answered.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "x-correlation-id" in answered.headers["access-control-expose-headers"].lower()

    ok = await _handshake(secured, "graphql-transport-ws", {"token": token("c")}, ALLOWED_ORIGIN)
    assert json.loads(await asyncio.wait_for(ok.recv(), 10))["type"] == "connection_ack"
    await ok.close()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await _handshake(secured, "graphql-transport-ws", {"token": token("c")}, "http://evil.test")
    assert refused.value.response.status_code == 403


# -------------------------------------------------------------- abuse limits


async def test_mutations_beyond_the_rate_limit_get_429_with_retry_after(secured: Stack) -> None:
    document = (
        'mutation { renameCustomer(input: {customerId: "nobody", name: "X"}) { __typename } }'
    )
    headers = {"Authorization": f"Bearer {token(f'cust-{uuid.uuid4().hex}')}"}
    async with httpx.AsyncClient(timeout=10) as http:
        statuses = [
            (await http.post(secured.graphql_url, json={"query": document}, headers=headers))
            for _ in range(26)
        ]
        other = {"Authorization": f"Bearer {token(f'cust-{uuid.uuid4().hex}')}"}
        someone_else = await http.post(secured.graphql_url, json={"query": document}, headers=other)
    assert all(response.status_code == 200 for response in statuses[:25])
    assert someone_else.status_code == 200  # the limit is per principal
    last = statuses[-1]
    if secured.name == "embedded":
        assert last.status_code == 200  # `orders dev` has no rate limit
        return
    assert last.status_code == 429, last.text
    assert int(last.headers["retry-after"]) >= 1
    error = last.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and "a minute" in error["message"]


async def test_a_principal_holds_at_most_the_allowed_websocket_connections(
    secured: Stack,
) -> None:
    credential = {"token": token(f"cust-{uuid.uuid4().hex}")}
    limit = int(SECURED["MAX_STREAMS_PER_PRINCIPAL"])
    held = [await _handshake(secured, "graphql-transport-ws", credential) for _ in range(limit)]
    for connection in held:
        assert json.loads(await asyncio.wait_for(connection.recv(), 10))["type"] == "connection_ack"
    one_more = await _handshake(secured, "graphql-transport-ws", credential)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(one_more.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    legacy = await _handshake(secured, "graphql-ws", credential)
    refused = json.loads(await asyncio.wait_for(legacy.recv(), 10))
    assert refused["payload"]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
    await legacy.close()

    await held.pop().close()
    for _ in range(50):  # the server notices the close
        again = await _handshake(secured, "graphql-transport-ws", credential)
        with contextlib.suppress(websockets.ConnectionClosed):
            if json.loads(await asyncio.wait_for(again.recv(), 10))["type"] == "connection_ack":
                held.append(again)
                break
        await asyncio.sleep(0.1)
    assert len(held) == limit
    for connection in held:
        await connection.close()


# ------------------------------------------------------------ operations


async def test_metrics_and_readiness_checks_are_for_operators_only(secured: Stack) -> None:
    base = secured.base_url
    ops = {"Authorization": f"Bearer {SECURED['OPS_TOKEN']}"}
    staff = {"Authorization": f"Bearer {token('ops-1', staff=True)}"}
    customer = {"Authorization": f"Bearer {token('cust-1')}"}
    async with httpx.AsyncClient(timeout=10) as http:
        public = await http.get(f"{base}/readyz")
        assert public.status_code == 200 and public.json() == {"status": "ready"}
        if secured.ops_url is not None:
            # OPS_PORT: the checks and /metrics there (the API's own metrics), and on the
            # public port a ready-or-not /readyz and no /metrics, whoever asks.
            detailed = (await http.get(f"{secured.ops_url}/readyz")).json()
            assert detailed["status"] == "ready"
            assert set(detailed["checks"]) == {"postgres", "mongo", "projections", "listener"}
            scraped = await http.get(f"{secured.ops_url}/metrics")
            assert scraped.status_code == 200
            assert 'orders_http_requests_total{method="POST",route="/graphql"' in scraped.text
            for asker in ({}, ops, staff, customer):
                answer = await http.get(f"{base}/readyz", headers=asker)
                assert answer.json() == {"status": "ready"}
                assert (await http.get(f"{base}/metrics", headers=asker)).status_code == 404
            return
        for operator in (ops, staff):
            detailed = (await http.get(f"{base}/readyz", headers=operator)).json()
            assert detailed["status"] == "ready" and detailed["checks"]["projections"] == "ok"
            scraped = await http.get(f"{base}/metrics", headers=operator)
            assert scraped.status_code == 200 and "orders_" in scraped.text
        assert "checks" not in (await http.get(f"{base}/readyz", headers=customer)).json()
        for refused in ({}, customer, {"Authorization": "Bearer wrong-token-0000000000"}):
            response = await http.get(f"{base}/metrics", headers=refused)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")


async def test_by_default_orders_dev_allows_any_origin_and_orders_api_only_its_own(
    stack: Stack,
) -> None:
    """The default stacks (no CORS_ALLOWED_ORIGINS): `orders dev` (embedded) lets a frontend
    on any origin in; `orders api` (postgres) answers no cross-origin preflight."""
    preflight = {"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.options(stack.graphql_url, headers=preflight)
    if stack.name == "embedded":
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    else:
        assert response.status_code >= 400
        assert "access-control-allow-origin" not in response.headers
    handshake = _handshake(stack, "graphql-transport-ws", {}, "http://localhost:5173")
    if stack.name == "embedded":
        connection = await handshake
        assert json.loads(await asyncio.wait_for(connection.recv(), 10))["type"] == "connection_ack"
        await connection.close()
    else:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await handshake
        assert refused.value.response.status_code == 403
