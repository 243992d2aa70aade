"""A property-based fuzz of the running server (each stack): documents and variables
generated from the schema (hypothesis-graphql), hostile strings in every mutation input,
hostile bodies and hostile websocket frames. Whatever arrives:

- no HTTP 500, no unexpected-error id, no traceback or database driver name in any answer;
- a websocket is never dropped (1006) or closed as a server error (1011);
- nothing is appended for a refused request: no event carries its correlation id.

Bounded in examples (and no deadline per example, the machine is shared), so it adds
seconds, not minutes, to `make test`. Tests are sync: hypothesis drives them, the server
runs in its own processes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import hypothesis_graphql
import pytest
from graphql import StringValueNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.client import MUTATIONS, mutation_document
from tests.e2e.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schema" / "schema.graphql").read_text()
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,  # no example database written into the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LEAKS = re.compile(
    r"Traceback|File \"|INTERNAL_SERVER_ERROR|errorId|asyncpg|aiosqlite|sqlite3|pymongo"
    r"|psycopg|NoneType"
)
# Close codes a well-behaved server uses for bad input; never 1006 (dropped) or 1011.
ORDERLY_CLOSES = {1000, 1002, 1007, 1009, 4400, 4401, 4403, 4408, 4409, 4429}

# Strings a client should never get stored: controls, bidi overrides, other scripts'
# digits, huge values, lone surrogates (refused as JSON), and plain ones.
HOSTILE_CHARACTERS = st.sampled_from(
    ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\ufeff", "\ud800", "\u0661", "_"]
)
HOSTILE_STRINGS = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(HOSTILE_CHARACTERS, st.text(max_size=3)), max_size=8).map("".join),
    st.sampled_from(
        ["", " ", "1_000", "\u0661\u0662\u0663", "1e3", "NaN", "ZZ", "JPY", "a" * 5000]
    ),
    st.integers(min_value=1, max_value=300_000).map(lambda n: "x" * n),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_STRINGS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
CUSTOM_SCALARS = {
    "Decimal": st.sampled_from(
        ["12.30", "0", "-1", "\u0661\u0662\u0663", "1_000", "1e400", ""]
    ).map(lambda value: StringValueNode(value=value)),
    "DateTime": st.sampled_from(["2026-11-26T13:24:00+00:00", "2026-11-26", "soon", ""]).map(
        lambda value: StringValueNode(value=value)
    ),
    "JSON": st.just(StringValueNode(value="{}")),
}


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    stack.check_running()
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        yield client


class Refusals:
    """Correlation ids of refused requests, checked against the event store at the end."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ids: list[str] = []

    def appended(self) -> list[str]:
        if not self.ids:
            return []
        if self.stack.event_store.startswith("postgres"):
            return asyncio.run(_postgres_correlated(self.stack.event_store, self.ids))
        with sqlite3.connect(self.stack.event_store) as connection:
            marks = ",".join("?" * len(self.ids))
            rows = connection.execute(
                "SELECT DISTINCT json_extract(metadata, '$.correlationId') FROM events"
                f" WHERE json_extract(metadata, '$.correlationId') IN ({marks})",
                self.ids,
            ).fetchall()
        return [row[0] for row in rows]


async def _postgres_correlated(dsn: str, ids: list[str]) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT DISTINCT metadata->>'correlationId' AS id FROM events"
            " WHERE metadata->>'correlationId' = ANY($1::text[])",
            ids,
        )
    finally:
        await connection.close()
    return [row["id"] for row in rows]


@pytest.fixture
def refusals(stack: Stack) -> Iterator[Refusals]:
    recorded = Refusals(stack)
    yield recorded
    assert recorded.appended() == [], "events were appended for refused requests"


def post(http: httpx.Client, body: bytes | str) -> tuple[httpx.Response, str]:
    """POST /graphql with a correlation id of its own; the answer checked for leaks."""
    correlation_id = f"fuzz-{uuid.uuid4().hex}"
    content = body.encode() if isinstance(body, str) else body
    response = http.post(
        "/graphql",
        content=content,
        headers={"content-type": "application/json", "x-correlation-id": correlation_id},
    )
    assert_safe(response)
    return response, correlation_id


def assert_safe(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:1000])
    leak = LEAKS.search(response.text)
    assert leak is None, (leak.group(), response.text[:1000])


def encoded(body: Any) -> str:
    # ensure_ascii: a lone surrogate goes as its escape, which the server must refuse.
    return json.dumps(body, ensure_ascii=True)


def refused_without_running(response: httpx.Response) -> bool:
    return response.status_code >= 400 or response.json().get("data") is None


# ---------------------------------------------------------- from the schema


def generated(documents: Any) -> st.SearchStrategy[str]:
    """Valid documents of the schema, and documents with one violation of it."""
    return st.one_of(
        documents(SCHEMA, custom_scalars=CUSTOM_SCALARS),
        documents(SCHEMA, custom_scalars=CUSTOM_SCALARS, mode=hypothesis_graphql.Mode.NEGATIVE),
    )


@FUZZ
@given(document=generated(hypothesis_graphql.queries))
def test_generated_queries_are_answered_or_refused_cleanly(
    http: httpx.Client, document: str
) -> None:
    post(http, encoded({"query": document}))


@FUZZ
@given(document=generated(hypothesis_graphql.mutations))
def test_generated_mutations_are_answered_or_refused_cleanly(
    http: httpx.Client, refusals: Refusals, document: str
) -> None:
    response, correlation_id = post(http, encoded({"query": document}))
    if refused_without_running(response):
        refusals.ids.append(correlation_id)


# ------------------------------------------------------------ hostile input


ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}


def valid_inputs(http: httpx.Client, uid: str) -> dict[str, dict[str, Any]]:
    """An input each mutation accepts, on entities of this example's own."""
    customer, product, order = f"c-{uid}", f"p-{uid}", f"o-{uid}"
    for mutation, input in [
        ("registerCustomer", {"customerId": customer, "name": "Ada", "email": f"{uid}@x.com"}),
        ("addProduct", {"productId": product, "name": "Pen", "price": "1.00"}),
        ("createOrder", {"orderId": order, "customerId": customer}),
    ]:
        body = encoded({"query": mutation_document(mutation), "variables": {"input": input}})
        response, _ = post(http, body)
        assert response.json()["data"]["result"]["__typename"].endswith("Accepted"), response.text
    item = {"productId": product, "quantity": 1}
    return {
        "registerCustomer": {"name": "Bob", "email": f"b-{uid}@x.com"},
        "renameCustomer": {"customerId": customer, "name": "Bo"},
        "addProduct": {"productId": f"q-{uid}", "name": "Ink", "price": "2.50"},
        "changeProductPrice": {"productId": product, "price": "2.00"},
        "restockProduct": {"productId": product, "quantity": 5},
        "createOrder": {"customerId": customer, "items": [item], "shippingAddress": ADDRESS},
        "addOrderItem": {"orderId": order, **item},
        "removeOrderItem": {"orderId": order, "productId": product},
        "setShippingAddress": {"orderId": order, "address": ADDRESS},
        "submitOrder": {"orderId": order},
        "cancelOrder": {"orderId": order, "reason": "changed my mind"},
    }


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every leaf of an input, as a path of keys and indexes."""
    if isinstance(value, dict):
        return [p for key, inner in value.items() for p in _paths(inner, (*prefix, key))]
    if isinstance(value, list):
        return [p for index, inner in enumerate(value) for p in _paths(inner, (*prefix, index))]
    return [prefix]


def _replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], tuple(rest), new)}
    return [_replaced(v, tuple(rest), new) if i == head else v for i, v in enumerate(value)]


@FUZZ
@given(
    mutation=st.sampled_from(sorted(MUTATIONS)),
    choice=st.integers(min_value=0),
    hostile=st.one_of(HOSTILE_STRINGS, st.integers(), st.none()),
    key=st.one_of(st.none(), st.just(None), HOSTILE_STRINGS),  # mostly without a key
)
def test_one_hostile_field_in_a_valid_mutation_is_refused_and_stores_nothing(
    http: httpx.Client, refusals: Refusals, mutation: str, choice: int, hostile: Any, key: Any
) -> None:
    """A valid input with one field made hostile (and perhaps a hostile idempotency key):
    the hostile value is what the server has to deal with, not some other mistake."""
    input = valid_inputs(http, uuid.uuid4().hex[:10])[mutation]
    paths = _paths(input)
    input = _replaced(input, paths[choice % len(paths)], hostile)
    if key is not None:
        input["idempotencyKey"] = key
    body = encoded({"query": mutation_document(mutation), "variables": {"input": input}})
    response, correlation_id = post(http, body)
    result = (response.json().get("data") or {}).get("result")
    if result is None or not result["__typename"].endswith("Accepted"):
        refusals.ids.append(correlation_id)


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=300),
        JSON_VALUES.map(encoded),
        st.fixed_dictionaries(
            {"query": HOSTILE_STRINGS},
            optional={"variables": JSON_VALUES, "operationName": JSON_VALUES},
        ).map(encoded),
    )
)
def test_hostile_bodies_are_refused_cleanly(
    http: httpx.Client, refusals: Refusals, body: bytes | str
) -> None:
    response, correlation_id = post(http, body)
    if refused_without_running(response):
        refusals.ids.append(correlation_id)


# --------------------------------------------------------------- websockets


def _frames() -> st.SearchStrategy[str]:
    operation = st.fixed_dictionaries(
        {"type": st.sampled_from(["subscribe", "start", "stop", "complete", "ping", "x"])},
        optional={
            "id": JSON_VALUES,
            "payload": st.one_of(
                JSON_VALUES,
                st.fixed_dictionaries(
                    {"query": HOSTILE_STRINGS}, optional={"variables": JSON_VALUES}
                ),
                hypothesis_graphql.queries(SCHEMA, custom_scalars=CUSTOM_SCALARS).map(
                    lambda query: {"query": query}
                ),
            ),
        },
    )
    return st.one_of(st.text(max_size=50), JSON_VALUES.map(encoded), operation.map(encoded))


def _after_frame(socket: ClientConnection) -> None:
    """Reads what the server answers for a while: messages, or an orderly close."""
    try:
        while True:
            message = socket.recv(timeout=0.2)
            assert LEAKS.search(str(message)) is None, message
    except TimeoutError:
        return  # still open, and quiet
    except ConnectionClosed:
        assert socket.close_code in ORDERLY_CLOSES, (socket.close_code, socket.close_reason)


@settings(FUZZ, max_examples=25)
@given(protocol=st.sampled_from(["graphql-transport-ws", "graphql-ws"]), frame=_frames())
def test_hostile_websocket_frames_never_drop_the_socket(
    stack: Stack, http: httpx.Client, protocol: str, frame: str
) -> None:
    url = stack.base_url.replace("http", "ws", 1) + "/graphql"
    with connect(url, subprotocols=[protocol], open_timeout=10) as socket:  # type: ignore[list-item]
        socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(socket.recv(timeout=10))["type"] == "connection_ack"
        socket.send(frame)
        _after_frame(socket)
    assert http.get("/healthz").status_code == 200


# ------------------------------------------------------------- size limits


def test_an_oversized_websocket_message_closes_the_socket_as_too_big(stack: Stack) -> None:
    url = stack.base_url.replace("http", "ws", 1) + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10) as socket:  # type: ignore[list-item]
        socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(socket.recv(timeout=10))["type"] == "connection_ack"
        # Over the default MAX_WEBSOCKET_MESSAGE_BYTES (256 KiB): uvicorn's limit.
        query = "{ __typename }" + " " * 300_000
        socket.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
    assert socket.close_code == 1009


def test_oversized_bodies_and_query_strings_are_refused(http: httpx.Client) -> None:
    response = http.post("/graphql", content=b"{" + b" " * 300_000 + b"}")
    assert response.status_code == 413
    long_get = http.get("/graphql", params={"query": "{ __typename }" + " " * 20_000})
    assert long_get.status_code == 414
