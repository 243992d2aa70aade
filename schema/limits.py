"""Limits on what one operation may ask for, and the parse / validation caches.

Depth and aliases are measured by `measure_document` in time linear in the document: each
fragment is measured once and its figures reused wherever it is spread (strawberry's
limiters walk the expanded tree, whose size doubles with every fragment spreading the
previous one twice). They are checked before any other validation rule runs, so a document
over the limits costs its parse and one walk, nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
)
from strawberry.extensions import (
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from schema.cost import PAGE_COST, PAGE_ELEMENT_COST, operation_costs

CACHE_SIZE = 512  # distinct documents; clients send a handful of fixed operations


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 10
    max_tokens: int = 2000
    max_aliases: int = 30
    max_cost: int = 10_000


@dataclass(frozen=True, slots=True)
class Measure:
    """Of a selection set as executed (fragments expanded): its depth in fields with
    selections (introspection fields count 0, as strawberry's limiter does) and its
    aliased fields. Figures of expanded trees can be astronomically large; Python's ints
    hold them exactly."""

    depth: int = 0
    aliases: int = 0


def measure_document(document: DocumentNode) -> dict[str | None, Measure]:
    """Each operation's Measure, by name; every fragment is measured once. A fragment that
    spreads itself (directly or not) counts nothing the second time: NoFragmentCycles
    refuses such a document later."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measured: dict[str, Measure] = {}
    in_progress: set[str] = set()

    def fragment(name: str) -> Measure:
        if name in measured:
            return measured[name]
        definition = fragments.get(name)
        if definition is None or name in in_progress:
            return Measure()
        in_progress.add(name)
        result = selections(definition.selection_set)
        in_progress.discard(name)
        measured[name] = result
        return result

    def selections(selection_set: SelectionSetNode | None) -> Measure:
        depth, aliases = 0, 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                inner = selections(selection.selection_set)
                aliases += inner.aliases + (1 if selection.alias else 0)
                if selection.selection_set and not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
                continue
            if isinstance(selection, FragmentSpreadNode):
                inner = fragment(selection.name.value)
            else:
                assert isinstance(selection, InlineFragmentNode)
                inner = selections(selection.selection_set)
            depth, aliases = max(depth, inner.depth), aliases + inner.aliases
        return Measure(depth, aliases)

    return {
        (d.name.value if d.name else None): selections(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    }


def limit_errors(
    document: DocumentNode,
    limits: Limits,
    schema: GraphQLSchema,
    variables: Mapping[str, Any] | None = None,
) -> list[GraphQLError]:
    """The limits this document exceeds, in the words of strawberry's limiters; its cost
    only when its depth and aliases are within theirs."""
    operations = measure_document(document)
    errors = [
        GraphQLError(
            f"'{name or 'anonymous'}' exceeds maximum operation depth of {limits.max_depth}"
        )
        for name, measure in operations.items()
        if measure.depth > limits.max_depth
    ]
    aliases = sum(measure.aliases for measure in operations.values())
    if aliases > limits.max_aliases:
        errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {limits.max_aliases}"))
    if errors:
        return errors
    return [
        GraphQLError(
            f"'{name or 'anonymous'}' costs {cost}, over the maximum query cost of "
            f"{limits.max_cost} (each field 1, each page {PAGE_COST} and each of its elements "
            f"{PAGE_ELEMENT_COST}, times the page sizes they are nested in: ask for smaller "
            "pages or fewer fields)"
        )
        for name, cost in operation_costs(schema, document, variables).items()
        if cost > limits.max_cost
    ]


class LimitedValidation(ValidationCache):
    """The limits first; the schema's validation rules (cached) only for a document within
    them."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(maxsize=CACHE_SIZE)
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        context = self.execution_context
        errors = (
            limit_errors(document, self.limits, context.schema._schema, context.variables)
            if document is not None
            else []
        )
        if errors:
            self.execution_context.pre_execution_errors = errors
            yield
            return
        yield from super().on_validate()


# The token limit, counted in C before graphql-core's lexer (about 8 us a token in Python)
# walks a document that it would refuse after `max_tokens` of them. Strings count one token
# each and comments none, as the lexer counts them; any difference can only undercount
# (an unterminated string swallows the rest), and then the parser's own limit decides.
_STRINGS_AND_COMMENTS = re.compile(r'"""(?:\\"""|[^"]|"(?!""))*"""|"(?:\\.|[^"\\\n\r])*"|#[^\n\r]*')
_TOKENS = re.compile(r"\.\.\.|[_A-Za-z][_0-9A-Za-z]*|-?[0-9][0-9.eE+-]*|[!$&():=@\[\]{|}]")


def count_tokens(document: str) -> int:
    """The lexical tokens of a GraphQL document, without comments (never more than
    graphql-core counts)."""
    strings = 0

    def blank(match: re.Match[str]) -> str:
        nonlocal strings
        strings += match.group().startswith('"')
        return " "

    rest = _STRINGS_AND_COMMENTS.sub(blank, document)  # counts the strings
    return strings + len(_TOKENS.findall(rest))


class FastTokenLimit(SchemaExtension):
    """Refuses a document over the token limit before it is parsed, with the parser's own
    error (GraphQLSyntaxError, so every transport answers it as a syntax error)."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None and count_tokens(query) > self.max_tokens:
            raise GraphQLSyntaxError(
                Source(query),
                0,
                f"Document contains more than {self.max_tokens} tokens. Parsing aborted.",
            )
        yield


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Extension factories, in order: token limit (at parse), parse cache, limits and
    validation, operation name."""
    max_tokens = limits.max_tokens
    return [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: FastTokenLimit(max_tokens),  # before the parse cache parses
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: LimitedValidation(limits),
        RequireOperationName,  # after LimitedValidation, which sets the validation errors
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
