"""GraphQL over websockets: both protocols (graphql-transport-ws and the legacy graphql-ws),
on top of strawberry's handlers, with this server's rules in one place:

- every operation of a connection runs with a context of its own
  (`RequestContext.for_operation`), so DataLoader caches last as long as the operation
  (and each pushed event starts them afresh), never as long as the connection;
- unexpected errors inside pushed results are masked and logged with an error id, as over
  HTTP;
- frames are sent as text (the protocols are text; orjson gives bytes).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import orjson
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from schema.context import RequestContext
from schema.masking import masked


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends each websocket message as a text frame: `encode_json` gives bytes (orjson),
    which strawberry would send as binary frames, and the subscription protocols are
    text."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error


class OperationScopedSchema:
    """The schema as the websocket handlers see it: operations run with a context of their
    own, and their results pass through the error masking."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def subscribe(self, query: str, *, context_value: RequestContext, **kwargs: Any) -> Any:
        source = await self._schema.subscribe(
            query, context_value=context_value.for_operation(), **kwargs
        )
        return _masking(source, kwargs.get("operation_name"))

    async def stream(self, query: str, *, context_value: RequestContext, **kwargs: Any) -> Any:
        source = await self._schema.stream(
            query, context_value=context_value.for_operation(), **kwargs
        )
        return _masking(source, kwargs.get("operation_name"))


async def _masking(source: Any, operation_name: str | None) -> AsyncGenerator[Any, None]:
    async with aclosing(source):
        async for result in source:
            # A result of execution, or of validation before it (whose errors carry no
            # resolver path, so none is masked).
            if getattr(result, "errors", None):
                result.errors = masked(list(result.errors), operation_name)
            yield result


class GraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = OperationScopedSchema(self.schema)  # type: ignore[assignment]


class GraphQLWSHandler(BaseGraphQLWSHandler[RequestContext, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = OperationScopedSchema(self.schema)  # type: ignore[assignment]
