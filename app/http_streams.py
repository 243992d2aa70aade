"""Subscriptions over plain HTTP: GraphQL over Server-Sent Events (the graphql-sse protocol,
distinct connections mode: `Accept: text/event-stream`) and Apollo's multipart subscriptions
(`Accept: multipart/mixed;subscriptionSpec=1.0`), both served by strawberry's transports on
`/graphql`, with the rules the websockets keep (app/security.py, app/server.py):

- the bearer token in the `Authorization` header, checked before the stream opens (401);
- each open stream counts toward MAX_STREAMS_PER_PRINCIPAL with the principal's
  websockets; one too many is refused before it opens (429, TOO_MANY_CONNECTIONS);
- the stream ends when its token expires: a last result with an UNAUTHENTICATED error
  (SSE: a `next` event, then `complete`; multipart: a transport error, `payload: null`),
  as a websocket is closed with 4403;
- a keep-alive every STREAM_HEARTBEAT_SECONDS while nothing else is sent (SSE: a `: ping`
  comment; multipart: an empty `{}` part, and one at once), so proxies keep an idle stream;
- a slow reader holds back the stream, not memory: uvicorn stops pulling the response when
  the socket's buffers are full, strawberry's merge of results and heartbeats holds one
  chunk, and the subscription's queue (schema/order_updates.py) drops superseded documents.

Errors before execution (syntax, validation, limits, introspection refused) are sent as a
`next` event or part with the errors, as the graphql-sse protocol asks: the stream has
already been accepted as `text/event-stream`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping

# strawberry raises cross_web's HTTPException (its HTTP layer); it does not re-export it.
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.http.streaming import (
    HTTPStreamTransport,
    MultipartSubscriptionTransport,
    SSETransport,
)
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from app.auth import OPEN
from schema.context import RequestContext

log = logging.getLogger(__name__)

TOKEN_EXPIRED = {
    "message": "the token has expired: subscribe again with a new one",
    "extensions": {"code": "UNAUTHENTICATED"},
}

# What a client told to use a stream is told (app/server.py's 400 for a subscription sent
# as a plain JSON request).
HOW_TO_SUBSCRIBE = (
    "a subscription needs a stream, not a single JSON response: subscribe over a websocket "
    "on this URL (subprotocol graphql-transport-ws, or the legacy graphql-ws), or POST it "
    "here with `Accept: text/event-stream` (GraphQL over Server-Sent Events, the graphql-sse "
    "protocol) or `Accept: multipart/mixed;subscriptionSpec=1.0` (multipart subscriptions, "
    "as Apollo Client's HTTP link sends)"
)

TextStream = Callable[[], AsyncIterator[str]]
JSONEncoder = Callable[[object], str]


def stream_transports(heartbeat_seconds: float) -> Mapping[str, type[HTTPStreamTransport]]:
    """strawberry's two HTTP stream transports, sending keep-alives every
    `heartbeat_seconds` (strawberry builds each with no arguments)."""

    class EventStream(SSETransport):
        def __init__(self) -> None:
            super().__init__(heartbeat_interval=heartbeat_seconds)

    class MultipartSubscription(MultipartSubscriptionTransport):
        heartbeat_interval = heartbeat_seconds

    return {
        GRAPHQL_SSE_PROTOCOL: EventStream,
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscription,
    }


def farewell(transport: HTTPStreamTransport, encode_json: JSONEncoder) -> str:
    """What a stream sends last when its token expires: the error, then its end."""
    if isinstance(transport, SSETransport):
        last = transport.encode_next({"errors": [TOKEN_EXPIRED]}, encode_json)
    else:
        # Apollo's multipart spec: a transport error is a part with `payload: null` and
        # top-level `errors`, after which the server ends the stream.
        assert isinstance(transport, MultipartSubscriptionTransport)
        last = transport.encode_multipart_data(
            {"payload": None, "errors": [TOKEN_EXPIRED]}, encode_json
        )
    return last + transport.encode_complete()


def ending_at(stream: TextStream, expires_at: float | None, last: str) -> TextStream:
    """`stream`, ended with `last` at `expires_at` (epoch seconds) if it runs that long."""
    if expires_at is None:
        return stream

    async def until_expiry() -> AsyncGenerator[str, None]:
        chunks = stream()
        deadline = asyncio.get_running_loop().time() + (expires_at - time.time())
        try:
            while True:
                # The timeout covers the wait for the next chunk only, never a `yield`
                # (it would cancel whoever reads this generator). No task of its own: the
                # server's cancellation (the client went away) reaches the wait as it is.
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    break
                yield chunk
            log.info("ending an HTTP subscription stream: its token expired")
            yield last
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()

    return until_expiry


class HTTPSubscriptions(GraphQL[RequestContext, None]):
    """What app/server.py's view (strawberry's ASGI view) does differently for
    subscriptions over HTTP: streams end when their token expires, and a subscription that
    asks for a single JSON response is refused with HOW_TO_SUBSCRIBE. The cap per principal
    is counted by the view's `__call__`, around the whole response (`asks_for_stream`)."""

    def asks_for_stream(self, request: Request) -> bool:
        """Whether the request asks for an SSE or multipart stream (by its Accept header),
        as strawberry decides it."""
        return self._get_stream_transport_from_headers(request.headers) is not None

    async def create_streaming_response(
        self,
        request: Request | WebSocket,
        stream: TextStream,
        sub_response: Response,
        headers: Mapping[str, str],
    ) -> Response:
        transport = self._get_stream_transport_from_headers(request.headers)
        if transport is not None:
            authenticated = getattr(request.state, "authenticated", OPEN)
            last = farewell(transport, self.encode_json_string)
            stream = ending_at(stream, authenticated.expires_at, last)
        return await super().create_streaming_response(request, stream, sub_response, headers)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: RequestContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """strawberry's, but a request for one JSON response runs no subscription (it would
        fail as a query): a 400 saying how to subscribe; and a mutation over GET is a 405."""
        method = request_adapter.method
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, HOW_TO_SUBSCRIBE) from error
            raise HTTPException(405, error.as_http_error_reason(method)) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error
