"""Masking of unexpected errors.

An exception a resolver did not expect (a bug, a store that went away) must not leak its
message to clients. The client gets "Internal server error" with an error id (also in
`extensions.errorId`); the log gets the traceback under the same id, so an operator can
find it from a user's report.

Storage that cannot be reached (a ConnectionError: the stores' ...Unavailable errors) is no
bug: it becomes a typed, retryable error, `extensions.code: UNAVAILABLE` (HTTP 503 with
Retry-After); for a mutation the message says it may or may not have been applied, so the
client retries with the same `idempotencyKey`.

Not masked: errors of the request itself (syntax, validation, variable coercion, limits:
they carry no resolver path) and `RequestError`s that resolvers raise on purpose.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.errors import RequestError

log = logging.getLogger("schema.errors")

INTERNAL_ERROR_CODE = "INTERNAL_SERVER_ERROR"
UNAVAILABLE_CODE = "UNAVAILABLE"
RETRY_AFTER_SECONDS = 1


def is_unexpected(error: GraphQLError) -> bool:
    """An exception from executing a field, other than a deliberate GraphQL error."""
    original = error.original_error
    if error.path is None or original is None:
        return False
    return not isinstance(original, RequestError | GraphQLError)


class MaskUnexpectedErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        context = self.execution_context
        mutation = context.operation_type == OperationType.MUTATION
        result.errors = masked(errors, context.operation_name, mutation=mutation)


def masked(
    errors: list[GraphQLError], operation_name: str | None, *, mutation: bool = False
) -> list[GraphQLError]:
    """The errors, each unexpected one replaced by its masked form (and logged), each
    storage outage by an UNAVAILABLE error."""
    return [_replaced(error, operation_name, mutation) for error in errors]


def _replaced(error: GraphQLError, operation_name: str | None, mutation: bool) -> GraphQLError:
    if not is_unexpected(error):
        return error
    if isinstance(error.original_error, ConnectionError):
        return _unavailable(error, mutation)
    return _masked(error, operation_name)


def _unavailable(error: GraphQLError, mutation: bool) -> GraphQLError:
    log.warning("storage unavailable at %s: %s", ".".join(map(str, error.path or ())), error)
    retry = (
        "; it may or may not have been applied: retry it with the same idempotencyKey"
        if mutation
        else "; try again shortly"
    )
    return _in_place_of(
        error,
        f"storage is unavailable right now{retry}",
        {"code": UNAVAILABLE_CODE, "retryAfterSeconds": RETRY_AFTER_SECONDS},
    )


def _masked(error: GraphQLError, operation_name: str | None) -> GraphQLError:
    error_id = uuid.uuid4().hex
    original = error.original_error
    assert original is not None
    log.error(
        "unexpected error in %s at %s (error id %s): %s: %s",
        operation_name or "anonymous operation",
        ".".join(str(part) for part in error.path or ()),
        error_id,
        type(original).__name__,
        original,
        exc_info=(type(original), original, original.__traceback__),
        extra={"error_id": error_id},
    )
    return _in_place_of(
        error,
        f"Internal server error (error id {error_id})",
        {"code": INTERNAL_ERROR_CODE, "errorId": error_id},
    )


def _in_place_of(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    """An error at the same place in the response, saying `message` instead."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )
