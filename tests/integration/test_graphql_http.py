"""The HTTP side of /graphql and the operational endpoints: limits, malformed requests,
GET, GraphiQL, /healthz, /readyz, /metrics, and `orders api` as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.ops_server import OpsPortUnavailable
from app.server import create_app
from app.settings import Settings
from tests.conftest import service_url
from tests.integration.graphql_stack import ApiStack, api_stack

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[ApiStack]:
    async with api_stack() as built:
        yield built


def nested_orders(repeats: int, page: int = 5) -> str:
    """order { customer { orders(first: page) { edges { node { customer ... `repeats` times
    ... id. Pages of 5: at depth 9, pages of the default 20 are over the cost limit."""
    cycle = f"customer {{ orders(first: {page}) {{ edges {{ node {{ "
    return '{ order(id: "x") { ' + cycle * repeats + "id" + " }" * (4 * repeats + 2)


async def test_a_query_too_deep_is_refused_before_it_runs(stack: ApiStack) -> None:
    assert (await stack.post(nested_orders(2))).status_code == 200  # depth 9
    response = await stack.post(nested_orders(3))  # depth 13
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert "exceeds maximum operation depth of 10" in error["message"]


async def test_too_many_aliases_are_refused(stack: ApiStack) -> None:
    fields = " ".join(f"a{n}: projections {{ name }}" for n in range(31))
    response = await stack.post(f"{{ {fields} }}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "31 aliases found. Allowed: 30"


def fragment_fan_out(levels: int, field: str) -> str:
    """Each fragment spreads the one before it twice: the expanded tree has 2**levels
    copies of `field`, the document only `levels` lines."""
    fragments = [f"fragment F0 on Query {{ {field} }}"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"query FanOut {{ ...F{levels} }}\n" + "\n".join(fragments)


async def test_a_fragment_fan_out_is_refused_without_expanding_it(stack: ApiStack) -> None:
    # 2**40 aliases: a limiter that walked the expanded tree would never answer.
    response = await stack.post(fragment_fan_out(40, "a: projections { name }"))
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == f"{2**40} aliases found. Allowed: 30"
    # Without aliases the same shape is within the limits and runs: fragments are
    # collected once per selection set.
    accepted = await stack.post(fragment_fan_out(40, "projections { name }"))
    assert accepted.status_code == 200, accepted.text
    assert "projections" in accepted.json()["data"]


def deep_fragments(levels: int) -> str:
    """Depth through fragments: each one nests the previous one a level deeper."""
    nest = "orders(first: 5) { edges { node { customer { ...D%d } } } }"  # within the cost
    fragments = ["fragment D0 on Customer { id }"] + [
        f"fragment D{n} on Customer {{ {nest % (n - 1)} }}" for n in range(1, levels + 1)
    ]
    return f'query Deep {{ customer(id: "x") {{ ...D{levels} }} }}\n' + "\n".join(fragments)


async def test_depth_is_measured_through_fragments(stack: ApiStack) -> None:
    assert (await stack.post(deep_fragments(2))).status_code == 200  # depth 9
    response = await stack.post(deep_fragments(3))  # depth 13
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == "'Deep' exceeds maximum operation depth of 10"


def order_pages(aliases: int) -> str:
    fields = " ".join(
        f"a{n}: orders(first: $page) {{ edges {{ node {{ id total {{ amount }} }} }} }}"
        for n in range(aliases)
    )
    return f"query Pages($page: Int) {{ {fields} }}"


async def test_a_query_over_the_cost_limit_is_refused_naming_its_cost_and_the_limit(
    stack: ApiStack,
) -> None:
    # Depth 9 through pages of 100: about 0.8 s of CPU before the cost limit.
    response = await stack.post(nested_orders(2, page=100))
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"].startswith(
        "'anonymous' costs 333504, over the maximum query cost of 10000"
    ), error["message"]
    assert response.json()["data"] is None  # nothing ran
    # The page size comes from the variables: 30 pages of 2 run, 30 pages of 100 do not.
    small = await stack.post(order_pages(30), {"page": 2})
    assert small.status_code == 200 and "errors" not in small.json(), small.text
    large = await stack.post(order_pages(30), {"page": 100})
    assert large.status_code == 400
    (error,) = large.json()["errors"]
    assert "'Pages' costs 105060, over the maximum query cost of 10000" in error["message"]


async def test_the_cost_limit_is_a_setting() -> None:
    async with api_stack(max_query_cost=50_000) as stack:
        assert (await stack.post(nested_orders(2, page=20))).status_code == 200
        response = await stack.post(nested_orders(2, page=100))
        assert "over the maximum query cost of 50000" in response.json()["errors"][0]["message"]


async def test_too_many_tokens_are_refused(stack: ApiStack) -> None:
    response = await stack.post("{ " + " ".join(["__typename"] * 2100) + " }")
    assert response.status_code == 400
    assert "more than 2000 tokens" in response.json()["errors"][0]["message"]


async def test_malformed_requests_get_a_clear_400(stack: ApiStack) -> None:
    cases = [
        (b'{"query": ', "Unable to parse request body as JSON"),
        (b'"just a string"', "expected a JSON object, got a string instead"),
        (b"null", "expected a JSON object, got null instead"),
        (b"12.5", "expected a JSON object, got a number instead"),
        (b"true", "expected a JSON object, got a boolean (true) instead"),
        (b'{"query": "{ projections { name }"}', "Syntax Error"),
        (b'{"query": "{ nope }"}', "Cannot query field 'nope' on type 'Query'."),
        (
            b'{"query": "query A { projections { name } }", "operationName": "B"}',
            'Unknown operation named "B".',
        ),
        (
            b'{"query": "query($n: Int) { orders(first: $n) { totalCount } }",'
            b' "variables": {"n": "ten"}}',
            "Variable '$n' has invalid value",
        ),
        (
            b'{"query": "query($i: ID!) { order(id: $i) { id } }", "variables": {}}',
            "Expected a value of non-null type 'ID!' to be provided.",
        ),
        (b'{"variables": {}}', "No GraphQL query found in the request"),
        (
            b'{"query": "query A { projections { name } } query B { projections { lag } }"}',
            "Must provide operation name if query contains multiple operations.",
        ),
    ]
    for body, message in cases:
        response = await stack.client.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"].startswith("application/json")
        errors = response.json()["errors"]
        assert message in errors[0]["message"], (body, errors)


async def test_queries_over_get_and_mutations_refused_over_get(stack: ApiStack) -> None:
    response = await stack.client.get("/graphql", params={"query": "{ projections { name } }"})
    assert response.status_code == 200
    assert "projections" in response.json()["data"]

    refused = await stack.client.get(
        "/graphql", params={"query": 'mutation { retryDeadLetter(id: "x") { __typename } }'}
    )
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    assert "mutations are not allowed when using GET" in refused.json()["errors"][0]["message"]


async def test_browsers_get_graphiql(stack: ApiStack) -> None:
    response = await stack.client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def _mongo_down(*args: object) -> None:
    raise ConnectionError("no route to host")


async def test_health_readiness_and_metrics(
    stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await stack.client.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.client.get("/readyz")
    # Even on an open API, the public /readyz names no store and no error.
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}

    monkeypatch.setattr(stack.runtime.backend.documents, "load_checkpoint", _mongo_down)
    unready = await stack.client.get("/readyz")
    assert unready.status_code == 503 and unready.json() == {"status": "unavailable"}
    monkeypatch.undo()

    await stack.post(
        'mutation { registerCustomer(input: {name: "M", email: "m@example.com"}) { __typename } }'
    )
    await stack.caught_up()
    text = (await stack.client.get("/metrics")).text
    assert 'orders_http_requests_total{method="POST",route="/graphql",status="200"}' in text
    assert "orders_http_request_duration_seconds_bucket" in text
    assert (
        'orders_command_duration_seconds_count{command="registerCustomer",outcome="ACCEPTED"} 1.0'
        in text
    )
    assert 'orders_events_appended_total{stream_type="Customer"} 1.0' in text
    assert 'orders_projection_lag_events{projection="customers"} 0.0' in text
    assert 'orders_dead_letters{follower="orders"} 0.0' in text
    assert 'orders_dead_letters{follower="saga:fulfillment"} 0.0' in text


async def test_with_an_ops_port_the_checks_and_metrics_are_served_there_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    async with (
        api_stack(ops_port=port) as stack,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as ops,
    ):
        assert (await ops.get("/healthz")).json() == {"status": "ok"}
        ready = await ops.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert {key: body[key] for key in ("status", "checks")} == {
            "status": "ready",
            "checks": {"postgres": "ok", "mongo": "ok", "projections": "ok", "listener": "ok"},
        }
        # This stack runs no projector or saga process: each follower is warned about,
        # and the API stays ready.
        assert body["followers"] == {
            "customers": "no process leads projection customers",
            "orders": "no process leads projection orders",
            "products": "no process leads projection products",
            "saga:fulfillment": "no process leads saga saga:fulfillment",
        }
        monkeypatch.setattr(stack.runtime.backend.documents, "load_checkpoint", _mongo_down)
        unready = await ops.get("/readyz")
        assert unready.status_code == 503
        checks = unready.json()["checks"]
        assert checks["postgres"] == "ok"
        assert checks["mongo"] == "unavailable: ConnectionError: no route to host"
        assert (await stack.client.get("/readyz")).json() == {"status": "unavailable"}
        monkeypatch.undo()

        await stack.post("{ projections { name } }")
        scraped = await ops.get("/metrics")
        assert scraped.status_code == 200
        # The API's own metrics (its requests on the public port), not a process's.
        assert 'orders_http_requests_total{method="POST",route="/graphql"' in scraped.text
        assert (await stack.client.get("/metrics")).status_code == 404


async def test_an_ops_port_in_use_is_a_clear_start_up_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(
            database_url=None, mongo_url=None, orders_data_dir=tmp_path, ops_port=port
        )
        app = create_app(settings, embedded=True)
        with pytest.raises(OpsPortUnavailable, match=f"ops endpoints on 127.0.0.1:{port}"):
            async with app.router.lifespan_context(app):
                pass
    assert isinstance(app.state.startup_error, OpsPortUnavailable)


# ------------------------------------------------------------- the process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def orders_api(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "api", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_orders_api_needs_both_urls() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MONGO_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "app", "api"],
        cwd=ROOT,
        env={**env, "MONGO_URL": "mongodb://127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "orders api needs DATABASE_URL" in result.stderr


def test_orders_api_exits_2_when_a_service_cannot_be_reached() -> None:
    process = orders_api(
        {
            "DATABASE_URL": service_url("DATABASE_URL"),
            "MONGO_URL": f"mongodb://127.0.0.1:{free_port()}",
            "CONNECT_TIMEOUT_SECONDS": "0.5",
            "STARTUP_TIMEOUT_SECONDS": "0.5",
            "PORT": str(free_port()),
        }
    )
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2, stderr
    assert "error: cannot reach MongoDB at MONGO_URL" in stderr


async def test_orders_api_serves_until_terminated() -> None:
    port = free_port()
    process = orders_api(
        {
            "DATABASE_URL": service_url("DATABASE_URL"),
            "MONGO_URL": service_url("MONGO_URL"),
            "MONGO_DB": f"api_process_{port}",
        },
        "--port",
        str(port),
    )
    try:
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            while True:
                try:
                    ready = await client.get("/readyz")
                    break
                except httpx.ConnectError:
                    assert process.poll() is None, process.communicate()[1]
                    assert time.monotonic() < deadline, "orders api did not start"
                    await asyncio.sleep(0.1)
            assert ready.status_code == 200, ready.text
            answer = await client.post("/graphql", json={"query": "{ projections { name } }"})
            assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    # uvicorn shuts down cleanly, then lets SIGTERM end the process as it would have.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete." in stderr
    assert "the API is open to every client" in stderr
    assert '"level":"INFO"' in stderr  # JSON logs


async def test_an_oversized_body_is_a_413_whether_or_not_it_declares_its_length(
    stack: ApiStack,
) -> None:
    limit = stack.settings.max_request_bytes
    padding = "x" * limit
    body = b'{"query": "{ projections { name } }", "variables": {"pad": "' + padding.encode()
    body += b'"}}'
    declared = await stack.client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    streamed = await stack.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text[:200]
        (error,) = response.json()["errors"]
        assert error == {
            "message": f"the request body is larger than {limit} bytes",
            "extensions": {"code": "REQUEST_TOO_LARGE"},
        }
    # Just under the limit is served.
    small = await stack.post("{ projections { name } }", {"pad": "x" * (limit // 2)})
    assert small.status_code == 200


async def test_an_oversized_get_query_string_is_a_414(stack: ApiStack) -> None:
    limit = stack.settings.max_query_string_bytes
    query = "{ projections { name } }" + " " * limit
    response = await stack.client.get("/graphql", params={"query": query})
    assert response.status_code == 414
    assert response.json()["errors"][0]["extensions"]["code"] == "URI_TOO_LONG"


INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_introspection_is_a_setting(stack: ApiStack) -> None:
    opened = await stack.post(INTROSPECTION)
    assert opened.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    async with api_stack(introspection="off") as closed:
        refused = await closed.post(INTROSPECTION)
        assert refused.status_code == 400
        error = refused.json()["errors"][0]
        assert error["message"].startswith("GraphQL introspection has been disabled")
        assert error["extensions"] == {"code": "INTROSPECTION_DISABLED"}
        assert (await closed.post('{ __type(name: "Order") { name } }')).status_code == 400
        # __typename is not introspection of the schema.
        assert (await closed.post("{ __typename }")).json() == {"data": {"__typename": "Query"}}


async def test_orders_dev_keeps_introspection_open(tmp_path: Path) -> None:
    app = create_app(Settings(orders_data_dir=tmp_path, introspection="off"), embedded=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.post("/graphql", json={"query": INTROSPECTION})
        assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"
