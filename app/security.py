"""The HTTP and websocket side of authentication (app/auth.py) and CORS, for app/server.py:
the 401 answer, the `connection_init` check with its expiry, the cap on connections and
streams per principal (and the 429 of an HTTP stream over it), and the CORS middleware."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Iterator

import orjson
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope
from starlette.websockets import WebSocket, WebSocketState
from strawberry.exceptions import ConnectionRejectionError

from app.auth import Authenticator, Unauthenticated, connection_token, www_authenticate
from schema.context import RequestContext
from write_model.command_context import PrincipalKind

log = logging.getLogger(__name__)

UNAUTHENTICATED_CODE = "UNAUTHENTICATED"
TOO_MANY_CONNECTIONS_CODE = "TOO_MANY_CONNECTIONS"
TOKEN_EXPIRED_CLOSE_CODE = 4403
# What a browser on an allowed origin may send and read.
CORS_REQUEST_HEADERS = ("authorization", "content-type", "x-correlation-id")
CORS_EXPOSED_HEADERS = ("x-correlation-id", "retry-after", "www-authenticate")
_TOKEN_EXPIRY = "token_expiry"  # in a websocket's scope state: its token's expiry task
_COUNTED_AS = "counted_as"  # in a websocket's scope state: its key in ConnectionsPerPrincipal


class ConnectionsPerPrincipal:
    """How many websocket connections and HTTP subscription streams each authenticated
    principal holds open in this process; one more than `limit` is refused (a websocket at
    `connection_init`, a stream before it opens)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open(self, key: str) -> bool:
        if self._open.get(key, 0) >= self.limit:
            return False
        self._open[key] = self._open.get(key, 0) + 1
        return True

    def close(self, key: str) -> None:
        left = self._open.pop(key, 0) - 1
        if left > 0:
            self._open[key] = left

    @contextlib.contextmanager
    def holding(self, key: str) -> Iterator[None]:
        """One open stream of `key` while the block runs; TooManyConnections over the cap."""
        if not self.open(key):
            raise TooManyConnections(key)
        try:
            yield
        finally:
            self.close(key)


class TooManyConnections(Exception):
    """The principal already holds MAX_STREAMS_PER_PRINCIPAL connections and streams."""


class OperatorCheck:
    """Whether a request comes from an operator: it sends `Authorization: Bearer
    <OPS_TOKEN>` or a staff token. `open`: the API has neither a JWT key nor an OPS_TOKEN
    (app/ops_server.py decides what that opens)."""

    def __init__(self, auth: Authenticator, ops_token: str | None) -> None:
        self._auth = auth
        self._ops_token = ops_token
        self.open = not auth.enabled and not ops_token

    async def __call__(self, request: Request) -> bool:
        header = request.headers.get("authorization") or ""
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        given = given.strip()
        if self._ops_token and hmac.compare_digest(given.encode(), self._ops_token.encode()):
            return True
        if not self._auth.enabled:
            return False
        try:
            authenticated = await self._auth.from_token(given)
        except Unauthenticated:
            return False
        return authenticated.principal.kind is PrincipalKind.STAFF


def cors_middleware(origins: list[str]) -> list[Middleware]:
    """Starlette's CORS middleware for `origins` (none: same origin only, no middleware, so
    a cross-origin preflight is refused). Requests without an Origin pass untouched."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            allow_credentials=True,
            max_age=600,
        )
    ]


def too_many_message(limit: int) -> str:
    return (
        f"this principal already holds {limit} websocket connections and subscription "
        "streams, the most allowed (MAX_STREAMS_PER_PRINCIPAL); close one first"
    )


def too_many_streams_response(limit: int) -> Response:
    """HTTP 429 for an SSE or multipart stream over the principal's cap."""
    body = {
        "errors": [
            {"message": too_many_message(limit), "extensions": {"code": TOO_MANY_CONNECTIONS_CODE}}
        ]
    }
    return Response(orjson.dumps(body), 429, media_type="application/json")


def unauthenticated_response(message: str) -> Response:
    """HTTP 401 with WWW-Authenticate and the reason, as a GraphQL error body."""
    body = {"errors": [{"message": message, "extensions": {"code": UNAUTHENTICATED_CODE}}]}
    headers = {"WWW-Authenticate": www_authenticate(message)}
    return Response(orjson.dumps(body), 401, headers, media_type="application/json")


async def authenticate_connection(
    auth: Authenticator, connections: ConnectionsPerPrincipal, context: RequestContext
) -> None:
    """`connection_init`'s token becomes the connection's principal; a missing or bad one
    (where auth is configured) is a ConnectionRejectionError, which strawberry answers with
    close 4403 (graphql-transport-ws) or `connection_error` (graphql-ws). A connection is
    closed with 4403 when its token expires. A principal over its connection cap is refused
    the same way (code TOO_MANY_CONNECTIONS)."""
    try:
        authenticated = await auth.from_token(connection_token(context.connection_params))
    except Unauthenticated as refused:
        raise ConnectionRejectionError(
            {"message": str(refused), "extensions": {"code": UNAUTHENTICATED_CODE}}
        ) from None
    context.principal = authenticated.principal
    websocket = context.connection.websocket
    user = authenticated.principal.user_id
    if auth.enabled and user is not None and websocket is not None:
        if not connections.open(user):
            raise ConnectionRejectionError(
                {
                    "message": too_many_message(connections.limit),
                    "extensions": {"code": TOO_MANY_CONNECTIONS_CODE},
                }
            )
        websocket.scope.setdefault("state", {})[_COUNTED_AS] = (connections, user)
    if authenticated.expires_at is not None and websocket is not None:
        websocket.scope.setdefault("state", {})[_TOKEN_EXPIRY] = asyncio.create_task(
            _close_when_expired(websocket, authenticated.expires_at),
            name="websocket-token-expiry",
        )


def connection_ended(scope: Scope) -> None:
    """The connection ended: it no longer counts, and its expiry task has nothing to close."""
    state = scope.get("state", {})
    expiry = state.pop(_TOKEN_EXPIRY, None)
    if expiry is not None:
        expiry.cancel()
    counted = state.pop(_COUNTED_AS, None)
    if counted is not None:
        connections, user = counted
        connections.close(user)


async def _close_when_expired(websocket: WebSocket, expires_at: float) -> None:
    await asyncio.sleep(max(0.0, expires_at - time.time()))
    if websocket.application_state is WebSocketState.CONNECTED:
        log.info("closing a websocket connection: its token expired")
        await websocket.close(TOKEN_EXPIRED_CLOSE_CODE, "the token has expired")
