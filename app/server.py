"""The Starlette application: /graphql, /healthz, /readyz, /metrics (app/ops_server.py
says which of the last two are served here and which on OPS_PORT).

Authentication (app/auth.py) happens here: a bearer token on each HTTP request (HTTP 401
with WWW-Authenticate when auth is configured and it is missing or bad), and the token in a
websocket's `connection_init` payload (`OrdersGraphQL.on_ws_connect`). CORS:
CORS_ALLOWED_ORIGINS, for HTTP (Starlette's CORSMiddleware) and websocket handshakes alike.
Subscriptions run over websockets and over HTTP streams (SSE, multipart: app/http_streams.py).

`create_app(settings)` builds nothing that needs I/O: the lifespan enters
`app.api_runtime.api_runtime`, which builds every adapter when the server starts and closes
them when it stops. In embedded mode (`orders dev`) it also runs the projections in the
same process.

About 450 lines: the app factory and the GraphQL view it mounts (status codes, request
limits, the IDE page, who may open a stream) change together; what subscriptions over HTTP
change in the view is in app/http_streams.py.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any

import orjson

# strawberry raises cross_web's HTTPException (its HTTP layer); it does not re-export it.
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)

from app import log_config
from app.api_runtime import ApiRuntime, api_runtime, authenticator, cors_origins
from app.auth import OPEN, Authenticator, Unauthenticated
from app.graphiql import GraphiQL
from app.health import readiness
from app.http_streams import HTTPSubscriptions, stream_transports
from app.metrics import Metrics
from app.ops_server import OpsPortUnavailable, api_routes, ops_app
from app.ops_server import serving as serving_ops
from app.request_limits import RequestSizeLimits
from app.security import (
    ConnectionsPerPrincipal,
    OperatorCheck,
    TooManyConnections,
    authenticate_connection,
    connection_ended,
    cors_middleware,
    too_many_streams_response,
    unauthenticated_response,
)
from app.settings import Settings
from app.stores import ServiceUnavailable
from app.websockets import (
    GraphQLTransportWSHandler,
    GraphQLWSHandler,
    OperationScopedSchema,
    TextWebSocketAdapter,
)
from schema.context import Connection, RequestContext, Services
from schema.errors import ForbiddenRequest
from schema.limits import Limits
from schema.masking import RETRY_AFTER_SECONDS, UNAVAILABLE_CODE
from schema.rate_limit import RateLimited
from schema.schema import build_schema

log = logging.getLogger(__name__)

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
ROUTES = ("/graphql", "/healthz", "/readyz", "/metrics", "/")


Runtime = ApiRuntime


def create_app(
    settings: Settings, *, embedded: bool = False, mongo_event_listeners: Sequence[Any] = ()
) -> Starlette:
    """The API. `embedded`: the `orders dev` mode (embedded stores, projector in process).
    `mongo_event_listeners`: pymongo monitoring listeners for the API's Mongo client."""
    metrics = Metrics()
    auth = authenticator(settings)
    operator = OperatorCheck(auth, settings.ops_token)
    origins = cors_origins(settings, embedded=embedded)
    schema = build_schema(
        Limits(
            max_depth=settings.max_query_depth,
            max_tokens=settings.max_query_tokens,
            max_aliases=settings.max_query_aliases,
            max_cost=settings.max_query_cost,
        ),
        introspection="on" if embedded else settings.introspection,
    )

    def running() -> Runtime | None:
        return getattr(app.state, "runtime", None)

    async def checks() -> dict[str, str] | None:
        runtime = running()
        return await _readiness(settings, runtime) if runtime is not None else None

    async def follower_checks() -> dict[str, str]:
        """A check per follower of the log: "ok", or a warning (the API stays ready)."""
        runtime = running()
        if runtime is None:
            return {}
        stale = settings.projection_stale_seconds
        return {
            status.name: status.warning(stale) or "ok"
            for status in await runtime.services.read_model.processes()
        }

    async def render_metrics() -> bytes:
        runtime = running()
        if runtime is None:
            return metrics.render_local()
        if runtime.backend.listener_healthy is not None:
            metrics.listener_connected.set(1 if runtime.backend.listener_healthy() else 0)
        if runtime.services.live is not None:
            metrics.feed_gaps.set(runtime.services.live.gaps)
        if (cache := runtime.backend.read_cache) is not None:
            for outcome, value in (
                ("hits", cache.hits),
                ("misses", cache.misses),
                ("invalidated", cache.invalidations),
                ("cleared", cache.clears),
                ("held", cache.size),
            ):
                metrics.read_cache.labels(outcome).set(value)
        read_model = runtime.services.read_model
        return await metrics.render(read_model, read_model.processes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with (
                api_runtime(
                    settings,
                    embedded=embedded,
                    observer=metrics,
                    mongo_event_listeners=mongo_event_listeners,
                ) as runtime,
                serving_ops(settings, ops_app(checks, render_metrics, follower_checks)),
            ):
                app.state.runtime = runtime
                _log_start(settings, embedded, auth)
                try:
                    yield
                finally:
                    app.state.runtime = None
        except (ServiceUnavailable, OpsPortUnavailable) as error:
            # `orders api` reads this to exit with a clear message and status 2.
            app.state.startup_error = error
            raise

    async def root(request: Request) -> Response:
        return RedirectResponse("/graphql")

    def services() -> Services:
        runtime: Runtime | None = app.state.runtime
        if runtime is None:
            raise RuntimeError("the API is not started: its lifespan has not run")
        return runtime.services

    graphiql = GraphiQL()
    graphql = OrdersGraphQL(
        schema,
        services,
        graphiql,
        auth,
        origins,
        settings.max_streams_per_principal,
        connection_init_timeout=timedelta(seconds=settings.connection_init_timeout_seconds),
        stream_heartbeat_seconds=settings.stream_heartbeat_seconds,
    )
    middleware = [
        Middleware(RequestObservability, metrics=metrics),
        *cors_middleware(origins),
        Middleware(
            RequestSizeLimits,
            max_body_bytes=settings.max_request_bytes,
            max_query_string_bytes=settings.max_query_string_bytes,
        ),
    ]
    app = Starlette(
        routes=[
            # Queries, mutations, and subscriptions over SSE or multipart HTTP streams.
            Route("/graphql", graphql, methods=["GET", "POST"]),
            # Subscriptions: graphql-transport-ws and the legacy graphql-ws protocol.
            WebSocketRoute("/graphql", graphql),
            *api_routes(
                checks,
                render_metrics,
                operator,
                ops_port=settings.ops_port is not None,
                followers=follower_checks,
            ),
            Route("/", root, methods=["GET"]),
            graphiql.assets_route(),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.runtime = None
    return app


def _log_start(settings: Settings, embedded: bool, auth: Authenticator) -> None:
    stores = (
        f"event store {'PostgreSQL' if settings.database_url else 'SQLite'}, "
        f"read store {'MongoDB ' + settings.mongo_db if settings.mongo_url else 'in memory'}"
    )
    mode = "embedded (projector in process)" if embedded else "API (projector runs apart)"
    log.info("orders API started: %s; %s", mode, stores)
    if auth.enabled:
        log.info("%s", auth.describe())
    else:
        log.warning("%s", auth.describe())


async def _readiness(settings: Settings, runtime: Runtime) -> dict[str, str]:
    checks = await readiness(settings, runtime.backend, runtime.services.read_model)
    if runtime.projector is not None:
        checks["projector"] = "ok" if not runtime.projector.done() else "stopped"
    return checks


# ------------------------------------------------------------------ GraphQL


class OrdersGraphQL(HTTPSubscriptions):
    """strawberry's ASGI view with: the request context, JSON error bodies with a 400 for
    requests that cannot run (malformed JSON, unknown operation, invalid document or
    variables, limits, a subscription asking for one JSON response) and a 405 for mutations
    over GET, and orjson. Subscriptions (and queries) over a websocket in the
    graphql-transport-ws and legacy graphql-ws protocols, and over HTTP streams: SSE and
    multipart (app/http_streams.py). Every operation that streams runs through
    `OperationScopedSchema` (its own context, masked errors)."""

    # strawberry types this class attribute as a callable its own adapter class is not
    # (strawberry/asgi assigns ASGIWebSocketAdapter under an ignore, too).
    websocket_adapter_class = TextWebSocketAdapter  # type: ignore[assignment]
    graphql_transport_ws_handler_class = GraphQLTransportWSHandler
    graphql_ws_handler_class = GraphQLWSHandler

    def __init__(
        self,
        schema: Any,
        services: Callable[[], Services],
        graphiql: GraphiQL,
        auth: Authenticator,
        allowed_origins: Sequence[str] = (),
        max_streams_per_principal: int = 10,
        *,
        connection_init_timeout: timedelta,
        stream_heartbeat_seconds: float = 15.0,
    ) -> None:
        super().__init__(
            OperationScopedSchema(schema),
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
            ),
            connection_init_wait_timeout=connection_init_timeout,
            allowed_origins=allowed_origins,  # websocket handshakes from other origins
        )
        self.stream_transport_classes_by_protocol = stream_transports(stream_heartbeat_seconds)
        self._services = services
        self._graphiql = graphiql
        self._auth = auth
        # Websocket connections and HTTP streams, counted together per principal.
        self._connections = ConnectionsPerPrincipal(max_streams_per_principal)

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our page with the server's own assets, instead of strawberry's CDN-based one.
        return self._graphiql.response()

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        correlation_id = getattr(request.state, "correlation_id", None) or str(uuid.uuid4())
        if isinstance(request, WebSocket):
            # Who asks is known once `connection_init` arrives (on_ws_connect).
            return RequestContext(
                self._services(),
                correlation_id,
                connection=Connection(websocket=request),
                client_address=request.client.host if request.client else None,
            )
        return RequestContext(
            self._services(),
            correlation_id=correlation_id,
            principal=request.state.authenticated.principal,
            client_address=request.client.host if request.client else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._websocket(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        with contextlib.ExitStack() as stream_held:  # released when the response ends
            try:
                # GraphiQL's page itself is public; every operation needs the token.
                if self.should_render_graphql_ide(self.request_adapter_class(request)):
                    request.state.authenticated = OPEN
                else:
                    request.state.authenticated = await self._auth.from_header(
                        request.headers.get("authorization")
                    )
                user = request.state.authenticated.principal.user_id
                if self._auth.enabled and user is not None and self.asks_for_stream(request):
                    stream_held.enter_context(self._connections.holding(user))
                response = await self.run(request)
            except Unauthenticated as refused:
                response = unauthenticated_response(str(refused))
            except TooManyConnections:
                response = too_many_streams_response(self._connections.limit)
            except HTTPException as error:
                response = _error_response(error.status_code, error.reason)
            await response(scope, receive, send)

    # ------------------------------------------------------------ websockets

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            connection_ended(scope)

    async def on_ws_connect(self, context: RequestContext) -> Any:
        """`connection_init`: its payload's token (`Authorization: Bearer <JWT>`, as GraphiQL
        sends its headers, or `token`) is checked before `connection_ack`; refused, the
        connection is closed with 4403 (graphql-transport-ws) or sent `connection_error`
        (graphql-ws). An accepted token's connection is closed with 4403 when it expires."""
        await authenticate_connection(self._auth, self._connections, context)
        return await super().on_ws_connect(context)

    def decode_json(self, data: str | bytes) -> object:
        value = orjson.loads(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, f"expected a JSON object, got {_json_kind(value)} instead")
        return value

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if not sub_response.status_code and _not_executed(response_data):
            # Refused before it ran: a 403 where who asks may not (introspection), else 400.
            forbidden = _error_extensions(response_data, ForbiddenRequest.code)
            response.status_code = 403 if forbidden else 400
        elif _error_extensions(response_data, UNAVAILABLE_CODE):
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        elif limited := _error_extensions(response_data, RateLimited.code):
            response.status_code = 429
            response.headers["Retry-After"] = str(max(e["retryAfterSeconds"] for e in limited))
        elif _error_extensions(response_data, ForbiddenRequest.code):
            response.status_code = 403
        return response


def _error_extensions(
    response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], code: str
) -> list[dict[str, Any]]:
    """The extensions of the response's errors with `code`."""
    responses = response_data if isinstance(response_data, list) else [response_data]
    found = (error.get("extensions") or {} for r in responses for error in _errors(r))
    return [extensions for extensions in found if extensions.get("code") == code]


def _errors(response: GraphQLHTTPResponse) -> list[dict[str, Any]]:
    """The response's errors, as GraphQL formats them: objects."""
    return [error for error in response.get("errors") or () if isinstance(error, dict)]


def _json_kind(value: object) -> str:
    """What a JSON value is, in JSON's words (never Python's: NoneType, str)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    return "a string" if isinstance(value, str) else "a number"


def _not_executed(response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse]) -> bool:
    """A request that never ran: no data, and only errors without a resolver path (syntax,
    validation, variable coercion, limits). Errors of executed fields keep the 200."""
    if isinstance(response_data, list):
        return False
    errors = _errors(response_data)
    return (
        bool(errors)
        and response_data.get("data") is None
        and all("path" not in error for error in errors)
    )


def _error_response(status: int, message: str) -> Response:
    # The only 405 the view raises itself: a mutation sent with GET.
    headers = {"Allow": "POST"} if status == 405 else {}
    code = {405: "METHOD_NOT_ALLOWED", 404: "NOT_FOUND"}.get(status, "BAD_REQUEST")
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


# --------------------------------------------------------------- middleware


class RequestObservability:
    """Per HTTP request: a correlation id (from X-Correlation-ID, else new) in the logs'
    context, in `request.state` for commands and echoed in the response; and the request
    metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = _correlation_id(scope)
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        token = log_config.correlation_id.set(correlation_id)
        status = 500
        header = (CORRELATION_HEADER.encode(), correlation_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope["path"]
            route = path if path in ROUTES else "other"
            self.metrics.request_finished(
                scope["method"], route, status, time.perf_counter() - started
            )
            log_config.correlation_id.reset(token)


def _correlation_id(scope: Scope) -> str:
    wanted = CORRELATION_HEADER.encode()
    for name, value in scope["headers"]:
        if name == wanted:
            given: str = value.decode("latin-1").strip()
            if _CORRELATION_ID.fullmatch(given):
                return given
            log.info("ignoring a malformed %s header; using a new id", CORRELATION_HEADER)
            break
    return str(uuid.uuid4())
