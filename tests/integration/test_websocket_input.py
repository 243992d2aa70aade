"""Bad input over both websocket protocols, on the embedded app served by uvicorn and a
raw websocket client (so frames no GraphQL client would send can be sent): a document that
does not parse gets an `error` message and the socket stays open; a frame that is not a
message of the protocol closes it with 4400; a connection that never sends
`connection_init` is closed with 4408 on either protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.server import create_app
from app.settings import Settings
from app.websocket_protocol import LeanWebSocketProtocol
from tests.integration.test_graphql_subscriptions import _until

TRANSPORT_WS, GRAPHQL_WS = "graphql-transport-ws", "graphql-ws"
START = {TRANSPORT_WS: "subscribe", GRAPHQL_WS: "start"}
WAIT = 10.0
INIT_TIMEOUT = 2.0  # short for the test, long enough for a loaded machine
SYNTAX_ERROR = 'subscription { orderUpdated(id: "x") { id '
TOO_MANY_TOKENS = "subscription { " + " ".join(["__typename"] * 2100) + " }"
GOOD = 'subscription { orderUpdated(id: "ws-input") { id } }'


@pytest.fixture(scope="module")
async def url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("ws-input")
    settings = Settings(
        orders_data_dir=data_dir,
        connection_init_timeout_seconds=INIT_TIMEOUT,
    )
    app = create_app(settings, embedded=True)
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
    try:
        await _until(lambda: server.started or serving.done(), "uvicorn to start")
        assert not serving.done(), "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await serving


async def receive(socket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        message = json.loads(await socket.recv())
    while message.get("type") == "ka":  # graphql-ws keep-alives, if any
        async with asyncio.timeout(WAIT):
            message = json.loads(await socket.recv())
    return message


async def initialised(url: str, protocol: str) -> ClientConnection:
    socket = await connect(url, subprotocols=[protocol])  # type: ignore[list-item]
    await socket.send(json.dumps({"type": "connection_init"}))
    assert (await receive(socket))["type"] == "connection_ack"
    return socket


async def closed_with(socket: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(WAIT):
            while True:
                await socket.recv()
    assert socket.close_code is not None
    return socket.close_code, socket.close_reason


def start(protocol: str, id: str, query: str) -> str:
    return json.dumps({"type": START[protocol], "id": id, "payload": {"query": query}})


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, GRAPHQL_WS])
async def test_a_document_that_does_not_parse_is_an_error_and_the_socket_stays_open(
    url: str, protocol: str
) -> None:
    socket = await initialised(url, protocol)
    try:
        for n, (query, reason) in enumerate(
            [(SYNTAX_ERROR, "Syntax Error"), (TOO_MANY_TOKENS, "more than 2000 tokens")]
        ):
            await socket.send(start(protocol, f"bad-{n}", query))
            message = await receive(socket)
            assert message["type"] == "error" and message["id"] == f"bad-{n}", message
            payload = message["payload"]
            errors = payload if isinstance(payload, list) else [payload]
            assert reason in errors[0]["message"], errors
        # Still open: the next subscription runs.
        await socket.send(start(protocol, "good", GOOD))
        await socket.send(json.dumps({"type": "ping"} if protocol == TRANSPORT_WS else {}))
        if protocol == TRANSPORT_WS:
            assert (await receive(socket))["type"] == "pong"
        assert socket.close_code is None
    finally:
        await socket.close()


@pytest.mark.parametrize(
    ("protocol", "frame"),
    [
        (TRANSPORT_WS, "[1,2]"),
        (GRAPHQL_WS, "[1,2]"),
        (GRAPHQL_WS, '{"id":"1"}'),
        # JSON that is not an object (found by the fuzz: the view's HTTP check dropped them)
        (TRANSPORT_WS, "null"),
        (GRAPHQL_WS, '"text"'),
        (TRANSPORT_WS, '{"type":"subscribe","id":"1"}'),
        (GRAPHQL_WS, '{"type":"start","id":"1","payload":{"query":5}}'),
        (
            GRAPHQL_WS,
            '{"type":"start","id":"1","payload":{"query":"{ __typename }","variables":[1]}}',
        ),
    ],
)
async def test_a_frame_that_is_not_a_protocol_message_closes_with_4400(
    url: str, protocol: str, frame: str
) -> None:
    socket = await initialised(url, protocol)
    await socket.send(frame)
    code, reason = await closed_with(socket)
    assert code == 4400, (code, reason)
    assert reason


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, GRAPHQL_WS])
async def test_a_connection_without_connection_init_is_closed_with_4408(
    url: str, protocol: str
) -> None:
    socket = await connect(url, subprotocols=[protocol])  # type: ignore[list-item]
    code, reason = await closed_with(socket)
    assert (code, reason) == (4408, "Connection initialisation timeout")
