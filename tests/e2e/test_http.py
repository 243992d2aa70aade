"""The HTTP face of /graphql: request errors are 400s with a clear message, GET serves
queries but never mutations, GraphiQL for browsers, limits, and the operational endpoints."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import websockets

from tests.e2e.client import Api, accepted
from tests.e2e.conftest import Stack


def first_error(response: httpx.Response) -> str:
    body = response.json()
    assert body.get("errors"), body
    message = body["errors"][0]["message"]
    assert isinstance(message, str) and message
    return message


def assert_request_error(response: httpx.Response, *patterns: str) -> str:
    assert response.status_code == 400, (response.status_code, response.text[:500])
    message = first_error(response)
    for pattern in patterns:
        assert re.search(pattern, message, re.IGNORECASE), (pattern, message)
    return message


async def test_syntax_error_is_a_400(api: Api) -> None:
    response = await api.post({"query": '{ order(id: "x") { id '})
    assert_request_error(response, r"syntax")


async def test_unknown_field_is_a_400_naming_it(api: Api) -> None:
    response = await api.post({"query": "{ products { edges { node { id colour } } } }"})
    assert_request_error(response, r"colour")


async def test_wrong_variable_type_is_a_400_naming_the_variable(api: Api) -> None:
    response = await api.post(
        {
            "query": "query Page($n: Int) { orders(first: $n) { totalCount } }",
            "variables": {"n": "twenty"},
        }
    )
    assert_request_error(response, r"\$n|'n'|\bn\b", r"Int")


async def test_missing_required_variable_is_a_400(api: Api) -> None:
    response = await api.post({"query": "query O($id: ID!) { order(id: $id) { id } }"})
    assert_request_error(response, r"\$id|'id'|\bid\b")


async def test_malformed_json_is_a_400(api: Api) -> None:
    response = await api.http.post(
        api.url, content=b'{"query": "{ products { totalCount } }"', headers=json_headers()
    )
    assert response.status_code == 400, (response.status_code, response.text[:500])


async def test_unknown_operation_name_is_a_400(api: Api) -> None:
    response = await api.post(
        {
            "query": "query A { products { totalCount } } query B { customers { totalCount } }",
            "operationName": "C",
        }
    )
    assert_request_error(response, r"\bC\b")


async def test_several_operations_need_an_operation_name(api: Api) -> None:
    response = await api.post(
        {"query": "query A { products { totalCount } } query B { customers { totalCount } }"}
    )
    assert response.status_code == 400, (response.status_code, response.text[:500])
    first_error(response)


async def test_query_over_get(api: Api) -> None:
    response = await api.http.get(
        api.url,
        params={
            "query": "query P($n: Int) { products(first: $n) { totalCount } }",
            "variables": '{"n": 1}',
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["products"]["totalCount"] >= 0


async def test_mutation_over_get_is_refused_and_changes_nothing(api: Api, uid: str) -> None:
    mutation = (
        f'mutation {{ registerCustomer(input: {{customerId: "get-{uid}", name: "G",'
        f' email: "get-{uid}@example.com"}}) {{ __typename }} }}'
    )
    response = await api.http.get(
        api.url, params={"query": mutation}, headers={"Accept": "application/json"}
    )
    assert response.status_code in (400, 405), (response.status_code, response.text[:500])
    assert "data" not in response.json() or not response.json()["data"]
    # Nothing was registered: the same registration over POST is the first one.
    registered = accepted(
        await api.mutate(
            "registerCustomer",
            {"customerId": f"get-{uid}", "name": "G", "email": f"get-{uid}@example.com"},
        ),
        "CustomerAccepted",
    )
    assert registered["version"] == 1


async def test_graphiql_for_browsers(api: Api) -> None:
    response = await api.http.get(api.url, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_too_many_aliases_are_refused(api: Api) -> None:
    aliases = " ".join(f"a{n}: __typename" for n in range(200))
    response = await api.post({"query": f"{{ {aliases} }}"})
    assert_request_error(response, r"alias")


async def test_too_many_tokens_are_refused(api: Api) -> None:
    fields = " ".join("__typename" for _ in range(5000))
    response = await api.post({"query": f"{{ {fields} }}"})
    assert_request_error(response, r"token")


async def test_too_deep_queries_are_refused(api: Api) -> None:
    selection = "id"
    for _ in range(15):
        selection = f"customer {{ orders {{ edges {{ node {{ {selection} }} }} }} }}"
    response = await api.post({"query": f'{{ order(id: "x") {{ {selection} }} }}'})
    assert_request_error(response, r"depth|deep")


async def test_bad_cursor_page_size_and_token_are_clear_errors(api: Api) -> None:
    """Argument values the server cannot use: GraphQL errors that say what is wrong."""
    for query, pattern in (
        ('{ orders(after: "garbage") { totalCount } }', r"cursor"),
        ("{ orders(first: 100000) { totalCount } }", r"first"),
        ("{ products(first: -1) { totalCount } }", r"first"),
        ('{ order(id: "x", consistencyToken: "garbage") { id } }', r"consistency ?token"),
    ):
        response = await api.post({"query": query})
        assert response.status_code in (200, 400), (query, response.status_code)
        message = first_error(response)
        assert re.search(pattern, message, re.IGNORECASE), (query, message)


async def test_health_readiness_and_metrics(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        health = await http.get("/healthz")
        assert health.status_code == 200
        ready = await http.get("/readyz")
        # Ready or not, never its checks (they name the stores and their errors).
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}, ready.text[:500]
        await http.post("/graphql", json={"query": "{ products(first: 1) { totalCount } }"})
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200
        assert "# TYPE" in metrics.text


def json_headers(**extra: Any) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json", **extra}


async def test_a_websocket_offering_compression_is_served_without_it(stack: Stack) -> None:
    # given a client that offers permessage-deflate, as browsers and `websockets` do
    url = stack.graphql_url.replace("http://", "ws://", 1)
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], compression="deflate"
    ) as socket:
        # then the server accepts the connection without the extension (its zlib state
        # would cost every subscriber's connection about 50 KiB of server memory)
        assert socket.response is not None
        assert "Sec-WebSocket-Extensions" not in socket.response.headers
        # and the protocol runs as usual
        await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
