"""The GraphQL schema: the contract's Query, Mutation and Subscription, scalars, limits
and masking."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types import ExecutionContext

from schema.errors import (
    ConcurrencyError,
    IdempotencyKeyReusedError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)
from schema.introspection import IntrospectionAccess, IntrospectionPolicy
from schema.limits import Limits, limit_extensions
from schema.masking import MaskUnexpectedErrors, is_unexpected
from schema.mutations import Mutation
from schema.queries import Query
from schema.scalars import SCALAR_MAP
from schema.subscriptions import Subscription

log = logging.getLogger("schema.errors")


class RememberingNameConverter(NameConverter):
    """strawberry's names, each worked out once: it converts every argument's Python name
    to camelCase again on every execution of its field (to_camel_case, a regular expression:
    ~3% of an `order(id)` request's CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._names.get(name)
        if converted is None:
            converted = self._names[name] = super().apply_naming_config(name)
        return converted


class OrdersSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry logs every error with a traceback by default. Here the client's own
        mistakes are logged briefly at debug level; unexpected errors are logged once, with
        their traceback and error id, by MaskUnexpectedErrors."""
        for error in errors:
            if not is_unexpected(error):
                log.debug("request error: %s", error.message)


DEFAULT_LIMITS = Limits()


def build_schema(
    limits: Limits = DEFAULT_LIMITS, *, introspection: IntrospectionPolicy = "on"
) -> OrdersSchema:
    """`introspection`: who may ask `__schema` and `__type` (schema/introspection.py); the
    others get a validation error before anything runs."""
    return OrdersSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # The error types are reachable through the unions; listed so that every
        # `UserError` implementation is in the schema whatever the unions hold.
        types=[
            ValidationError,
            NotFoundError,
            ConcurrencyError,
            InvalidStateError,
            IdempotencyKeyReusedError,
        ],
        config=StrawberryConfig(scalar_map=SCALAR_MAP, name_converter=RememberingNameConverter()),
        extensions=[
            lambda: IntrospectionAccess(introspection),
            *limit_extensions(limits),
            MaskUnexpectedErrors,
        ],
    )
