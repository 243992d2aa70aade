"""Limits on what one operation may ask for, and the parse / validation caches.

The validation rules are built once per schema: ValidationCache keys its entries on the
rule classes, so a rule class made per request would miss the cache every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

CACHE_SIZE = 512  # distinct documents; clients send a handful of fixed operations


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 10
    max_tokens: int = 2000
    max_aliases: int = 30


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Extension factories, in order: token limit (at parse), caches, validation rules."""
    rules = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    max_tokens = limits.max_tokens
    return [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: AddValidationRules(rules),
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        RequireOperationName,  # after ValidationCache, which sets the validation errors
    ]


class RequireOperationName(SchemaExtension):
    """A document with several operations needs `operationName` (GraphQL spec, "Executing
    Requests"); strawberry would otherwise run the first one."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # `operation_name` falls back to the first operation's name; what the request gave
        # is only kept privately (strawberry has no public accessor for it).
        if context._provided_operation_name is None and document is not None:
            operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if operations > 1:
                context.pre_execution_errors = [
                    *(context.pre_execution_errors or ()),
                    GraphQLError(
                        "Must provide operation name if query contains multiple operations."
                    ),
                ]
        yield
