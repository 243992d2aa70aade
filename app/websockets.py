"""GraphQL over websockets: both protocols (graphql-transport-ws and the legacy graphql-ws),
on top of strawberry's handlers, with this server's rules in one place:

- every operation of a connection runs with a context of its own
  (`RequestContext.for_operation`), so DataLoader caches last as long as the operation
  (and each pushed event starts them afresh), never as long as the connection;
- unexpected errors inside pushed results are masked and logged with an error id, as over
  HTTP (`OperationScopedSchema`, which the view hands the handlers, and which runs the
  HTTP streams of app/http_streams.py too);
- frames are sent as text (the protocols are text; orjson gives bytes);
- a document that does not parse (a syntax error, over the token limit) gets an `error`
  message with the reason, and the socket stays open (strawberry raised it into a task
  nobody awaited, or closed the socket on graphql-transport-ws);
- a frame that is JSON but not a message of the protocol (`[1,2]`, `{"id":"1"}`, a
  `subscribe` without a query) closes the socket with 4400 and the reason;
- graphql-ws, too, closes a connection that sends no `connection_init` in time (4408).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Iterable, Mapping
from contextlib import aclosing, suppress
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.directive import StrawberryDirective
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.schema.base import BaseSchema
from strawberry.schema.schema import StreamResult, SubscriptionResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

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

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        """Messages as JSON values of any kind: the view's `decode_json` refuses a body that
        is not an object with an HTTP error, which would drop the socket (1006); here the
        handlers close it with 4400 instead (`_protocol_error`)."""
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                try:
                    yield orjson.loads(text)
                except orjson.JSONDecodeError as error:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from error
        except KeyError as error:  # a binary frame: starlette finds no "text" in it
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            return


class OperationScopedSchema(BaseSchema):
    """The schema as the view (app/server.py) and so the websocket handlers and HTTP streams
    see it: streamed operations run with a context of their own, and their results pass
    through the error masking (the masking extension sees only a stream's end). Everything
    else is the schema's own: its attributes, execution and error processing."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema
        self.config = schema.config
        self.schema_converter = schema.schema_converter
        self.query = schema.query
        self.mutation = schema.mutation
        self.subscription = schema.subscription
        self.schema_directives = schema.schema_directives
        self.exception_handlers = schema.exception_handlers

    def __getattr__(self, name: str) -> Any:  # what strawberry's Schema has beyond the port
        return getattr(self._schema, name)

    async def subscribe(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> SubscriptionResult:
        context = _for_operation(context_value)
        return await _scoped(
            self._schema.subscribe(
                query, variable_values, context, root_value, operation_name, operation_extensions
            ),
            operation_name,
        )

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        context = _for_operation(context_value)
        return await _scoped(
            self._schema.stream(
                query,
                variable_values,
                context,
                root_value,
                operation_name,
                operation_extensions,
                allowed_operation_types,
            ),
            operation_name,
        )

    # The rest of the port: the schema's own.

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        return await self._schema.execute(*args, **kwargs)

    def execute_sync(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        return self._schema.execute_sync(*args, **kwargs)

    def get_type_by_name(self, name: str) -> Any:
        return self._schema.get_type_by_name(name)

    def get_directive_by_name(self, graphql_name: str) -> StrawberryDirective[Any] | None:
        return self._schema.get_directive_by_name(graphql_name)

    def as_str(self) -> str:
        return self._schema.as_str()

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        self._schema.process_errors(errors, execution_context)

    def _process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        self._schema._process_errors(errors, execution_context)


async def _scoped(
    started: Awaitable[AsyncGenerator[Any, None]], operation_name: str | None
) -> AsyncGenerator[Any, None]:
    """The operation's results, masked; a document that does not parse, refused."""
    try:
        source = await started
    except GraphQLError as error:  # the document did not parse
        return _refused(error)
    return _masking(source, operation_name)


def _for_operation(context: object) -> RequestContext:
    """The operation's own context (the view always passes a RequestContext)."""
    if not isinstance(context, RequestContext):
        raise TypeError(f"a streamed operation needs a RequestContext, got {type(context)}")
    return context.for_operation()


async def _refused(error: GraphQLError) -> AsyncGenerator[Any, None]:
    yield PreExecutionError(data=None, errors=[error])


async def _masking(source: Any, operation_name: str | None) -> AsyncGenerator[Any, None]:
    async with aclosing(source):
        try:
            first = await anext(source)
        except StopAsyncIteration:
            return
        except GraphQLError as error:
            # Parsing runs at the first result: a syntax error (or a document over the
            # token limit) is refused like any error before execution.
            yield PreExecutionError(data=None, errors=[error])
            return
        yield _masked(first, operation_name)
        async for result in source:
            yield _masked(result, operation_name)


def _masked(result: Any, operation_name: str | None) -> Any:
    # A result of execution, or of validation before it (whose errors carry no resolver
    # path, so none is masked).
    if getattr(result, "errors", None):
        result.errors = masked(list(result.errors), operation_name)
    return result


def _protocol_error(message: object, operation_types: tuple[str, ...]) -> str | None:
    """Why a JSON frame is not a message of the protocol, or None when it is one. Only the
    shape is checked; the handlers decide what the message means."""
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message needs a string `type`"
    if kind in operation_types:
        if not isinstance(message.get("id"), str):
            return f"a {kind} message needs a string `id`"
        payload = message.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return f"a {kind} message needs a payload with a string `query`"
        if not isinstance(payload.get("variables") or {}, dict):
            return "`variables` must be a JSON object"
        if not isinstance(payload.get("operationName") or "", str):
            return "`operationName` must be a string"
    elif kind in ("complete", "stop") and not isinstance(message.get("id"), str):
        return f"a {kind} message needs a string `id`"
    return None


class GraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    async def handle_message(self, message: Any) -> None:
        if reason := _protocol_error(message, ("subscribe",)):
            await self.handle_invalid_message(reason)
            return
        await super().handle_message(message)

    # The connection_init timeout is a timer, not strawberry's task that sleeps it out and is
    # cancelled at `connection_init`: that task, its coroutine and its CancelledError (with
    # the error's traceback and frames, garbage until a full collection) cost every
    # connection about 2 KiB for nothing once it is initialised.

    def on_request_accepted(self) -> None:
        delay = self.connection_init_wait_timeout.total_seconds()
        self._init_timer = asyncio.get_running_loop().call_later(delay, self._init_timed_out)

    def _init_timed_out(self) -> None:
        if not self.connection_init_received:
            # strawberry's shutdown awaits this task, as it would its own.
            self.connection_init_timeout_task = asyncio.create_task(self._close_without_init())

    async def _close_without_init(self) -> None:
        self.connection_timed_out = True
        await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_connection_init(self, message: Any) -> None:
        self._init_timer.cancel()
        await super().handle_connection_init(message)

    async def shutdown(self) -> None:
        self._init_timer.cancel()
        await super().shutdown()

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        # Every error before execution is the operation's `error` message, never a close:
        # one bad document should not end the client's other subscriptions.
        return None


class GraphQLWSHandler(BaseGraphQLWSHandler[RequestContext, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_timeout: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        self._init_timeout = asyncio.create_task(self._close_without_init())
        try:
            await super().handle()
        finally:
            self._init_timeout.cancel()
            with suppress(asyncio.CancelledError):
                await self._init_timeout

    async def _close_without_init(self) -> None:
        # The view's timeout, as strawberry applies it to graphql-transport-ws.
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.connection_acknowledged:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_message(self, message: Any) -> None:
        if reason := _protocol_error(message, ("start",)):
            await self.websocket.close(code=4400, reason=reason)
            return
        await super().handle_message(message)
