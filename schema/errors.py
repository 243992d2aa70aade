"""Errors on both sides of the contract.

Expected command failures are union members (`UserError` and its types), never GraphQL
`errors`: `user_error_of` maps the write model's typed exceptions to them.

A request the server cannot answer as asked (a malformed cursor or consistency token,
`first` out of range, `orderAt` without exactly one of `version` / `at`, a read model that
did not catch up in time) raises a `RequestError`: a GraphQL error with a clear message and
an `extensions.code`, shown to the client as is. Anything else a resolver raises is
unexpected and masked (see `schema.masking`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError

from write_model.access import Forbidden
from write_model.bus import IdempotencyKeyReused
from write_model.decide_and_append import ConcurrencyConflict
from write_model.domain.errors import DomainError, InvalidState, NotFound, ValidationFailed

# ----------------------------------------------------------- request errors


class RequestError(GraphQLError):
    """The client's request cannot be served as asked; the message says why."""

    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": self.code})


class BadRequest(RequestError):
    code = "BAD_USER_INPUT"


class ConsistencyTimeout(RequestError):
    code = "CONSISTENCY_TIMEOUT"


class StaleReadModel(RequestError):
    """A consistency token that the read model cannot honour: it passed the write, but an
    event of the stream read is parked as a dead letter."""

    code = "STALE_READ_MODEL"


class SubscriptionLimit(RequestError):
    code = "TOO_MANY_SUBSCRIPTIONS"


class ForbiddenRequest(RequestError):
    """The principal may not do this at all (write_model/access.py); HTTP 403."""

    code = "FORBIDDEN"


@contextlib.contextmanager
def forbidden_as_request_error() -> Iterator[None]:
    """The access rule's Forbidden, shown to the client as a FORBIDDEN error."""
    try:
        yield
    except Forbidden as refused:
        raise ForbiddenRequest(str(refused)) from None


class LiveUpdatesUnavailable(RequestError):
    code = "SERVICE_UNAVAILABLE"


# ----------------------------------------------------------- union members


@strawberry.interface(description="An expected failure of a mutation.")
class UserError:
    code: str = strawberry.field(
        description="VALIDATION | NOT_FOUND | CONCURRENCY | INVALID_STATE | IDEMPOTENCY_KEY_REUSED"
    )
    message: str = strawberry.field(description="What went wrong, for a person to read.")


@strawberry.type(
    description="Bad input: the message says what is wrong, field which input field (camelCase)."
)
class ValidationError(UserError):
    field: str | None = strawberry.field(
        default=None, description="The input field at fault (camelCase), when there is one."
    )


@strawberry.type(
    description="The order, customer or product does not exist (or is not yours: that answers the "
    "same)."
)
class NotFoundError(UserError):
    id: strawberry.ID = strawberry.field(description="The id that was not found.")


@strawberry.type(
    description="expectedVersion did not match: the stream has moved on. Read it again, then retry."
)
class ConcurrencyError(UserError):
    expected_version: int = strawberry.field(description="The expectedVersion sent.")
    actual_version: int = strawberry.field(description="The stream's version now.")


@strawberry.type(
    description="The entity's state forbids this command (submitting an order twice, changing a "
    "submitted one...)."
)
class InvalidStateError(UserError):
    pass


@strawberry.type(description="The idempotencyKey was used before with other input.")
class IdempotencyKeyReusedError(UserError):
    pass


CommandError = (
    ValidationError
    | NotFoundError
    | ConcurrencyError
    | InvalidStateError
    | IdempotencyKeyReusedError
)

EXPECTED_FAILURES = (DomainError, ConcurrencyConflict, IdempotencyKeyReused)


def user_error_of(error: Exception) -> CommandError:
    """The union member for an expected failure; anything else is re-raised by the caller."""
    match error:
        case ValidationFailed():
            return ValidationError(code=error.code, message=error.message, field=error.field)
        case NotFound():
            return NotFoundError(
                code=error.code, message=error.message, id=strawberry.ID(error.entity_id)
            )
        case InvalidState():
            return InvalidStateError(code=error.code, message=error.message)
        case DomainError():  # a refusal without a more specific type: the state forbids it
            return InvalidStateError(code=InvalidState.code, message=error.message)
        case ConcurrencyConflict():
            return ConcurrencyError(
                code="CONCURRENCY",
                message=str(error),
                expected_version=error.expected,
                actual_version=error.actual,
            )
        case IdempotencyKeyReused():
            return IdempotencyKeyReusedError(code="IDEMPOTENCY_KEY_REUSED", message=str(error))
    raise TypeError(f"{type(error).__name__} is not an expected command failure") from error


def not_found(message: str, entity_id: str) -> NotFoundError:
    return NotFoundError(code=NotFound.code, message=message, id=strawberry.ID(entity_id))
