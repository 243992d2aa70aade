"""Size limits on HTTP requests, before anything reads them: a body over
`max_request_bytes` is a 413 (by its Content-Length when it has one, else as soon as the
bytes received pass it), a query string over `max_query_string_bytes` a 414. Websocket
messages are bounded by uvicorn (`ws_max_size`, set from `max_websocket_message_bytes`).
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTooLarge(Exception):
    """Raised into the application from `receive` once the body passes the limit."""


class RequestSizeLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_query_string_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_string_bytes = max_query_string_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.max_query_string_bytes:
            await _refuse(
                send, 414, f"the query string is longer than {self.max_query_string_bytes} bytes"
            )
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _refuse(send, 413, self._body_message())
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise RequestTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLarge:
            if started:  # the application answered before reading the whole body
                raise
            await _refuse(send, 413, self._body_message())

    def _body_message(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11/httptools) refuses a malformed one itself
    return None


async def _refuse(send: Send, status: int, message: str) -> None:
    code = {413: "REQUEST_TOO_LARGE", 414: "URI_TOO_LONG"}[status]
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
