"""Masking of unexpected errors.

An exception a resolver did not expect (a bug, a store that went away) must not leak its
message to clients. The client gets "Internal server error" with an error id (also in
`extensions.errorId`); the log gets the traceback under the same id, so an operator can
find it from a user's report.

Not masked: errors of the request itself (syntax, validation, variable coercion, limits:
they carry no resolver path) and `RequestError`s that resolvers raise on purpose.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from schema.errors import RequestError

log = logging.getLogger("schema.errors")

INTERNAL_ERROR_CODE = "INTERNAL_SERVER_ERROR"


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
        result.errors = masked(errors, self.execution_context.operation_name)


def masked(errors: list[GraphQLError], operation_name: str | None) -> list[GraphQLError]:
    """The errors, each unexpected one replaced by its masked form (and logged)."""
    return [_masked(error, operation_name) if is_unexpected(error) else error for error in errors]


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
    return GraphQLError(
        f"Internal server error (error id {error_id})",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": INTERNAL_ERROR_CODE, "errorId": error_id},
    )
