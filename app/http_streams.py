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
from collections.abc import AsyncGenerator, Callable, Mapping

from strawberry.http.streaming import (
    HTTPStreamTransport,
    MultipartSubscriptionTransport,
    SSETransport,
)
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL

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

TextStream = Callable[[], AsyncGenerator[str, None]]
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
            await chunks.aclose()

    return until_expiry
