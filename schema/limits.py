"""Limits on what one operation may ask for, and the parse / validation caches.

Depth and aliases are measured by `measure_document` in time linear in the document: each
fragment is measured once and its figures reused wherever it is spread (strawberry's
limiters walk the expanded tree, whose size doubles with every fragment spreading the
previous one twice). They are checked before any other validation rule runs, so a document
over the limits costs its parse and one walk, nothing more.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
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
    VariableNode,
)
from strawberry.extensions import (
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from schema.cost import PAGE_ARGUMENT, PAGE_COST, PAGE_ELEMENT_COST, operation_costs

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
    return [
        GraphQLError(message) for message in limit_messages(document, limits, schema, variables)
    ]


def limit_messages(
    document: DocumentNode,
    limits: Limits,
    schema: GraphQLSchema,
    variables: Mapping[str, Any] | None = None,
) -> list[str]:
    """limit_errors' messages."""
    operations = measure_document(document)
    errors = [
        f"'{name or 'anonymous'}' exceeds maximum operation depth of {limits.max_depth}"
        for name, measure in operations.items()
        if measure.depth > limits.max_depth
    ]
    aliases = sum(measure.aliases for measure in operations.values())
    if aliases > limits.max_aliases:
        errors.append(f"{aliases} aliases found. Allowed: {limits.max_aliases}")
    if errors:
        return errors
    return [
        f"'{name or 'anonymous'}' costs {cost}, over the maximum query cost of "
        f"{limits.max_cost} (each field 1, each page {PAGE_COST} and each of its elements "
        f"{PAGE_ELEMENT_COST}, times the page sizes they are nested in: ask for smaller "
        "pages or fewer fields)"
        for name, cost in operation_costs(schema, document, variables).items()
        if cost > limits.max_cost
    ]


def page_variables(document: DocumentNode) -> frozenset[str]:
    """The variables given as a page size (`first: $n`) anywhere in the document: the only
    ones a query's cost depends on."""
    names: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    if argument.name.value == PAGE_ARGUMENT and isinstance(
                        argument.value, VariableNode
                    ):
                        names.add(argument.value.name.value)
            if isinstance(selection, FieldNode | InlineFragmentNode):
                walk(selection.selection_set)

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            walk(definition.selection_set)
    return frozenset(names)


_ABSENT = object()


class LimitCheck:
    """limit_errors, remembered for the last CACHE_SIZE documents and page sizes: a client
    sends a handful of fixed operations, and measuring one costs as much as running a
    small query. The answer depends on the document's text and on the values of its page
    variables only (cost.py reads nothing else), so those are the key; a page variable whose
    value cannot be a key (a list, an object: validation refuses it) is measured each time."""

    def __init__(self, limits: Limits, maxsize: int = CACHE_SIZE) -> None:
        self.limits = limits
        self.maxsize = maxsize
        self._pages: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._messages: OrderedDict[Hashable, list[str]] = OrderedDict()

    def errors(
        self,
        query: str | None,
        document: DocumentNode,
        schema: GraphQLSchema,
        variables: Mapping[str, Any] | None,
    ) -> list[GraphQLError]:
        """`query`: the document's text; None (a document given parsed) is measured anew."""
        key = None if query is None else self._key(query, document, variables or {})
        messages = None if key is None else _recall(self._messages, key)
        if messages is None:
            messages = limit_messages(document, self.limits, schema, variables)
            if key is not None:
                _remember(self._messages, key, messages, self.maxsize)
        return [GraphQLError(message) for message in messages]

    def _key(self, query: str, document: DocumentNode, variables: Mapping[str, Any]) -> Hashable:
        pages = _recall(self._pages, query)
        if pages is None:
            pages = page_variables(document)
            _remember(self._pages, query, pages, self.maxsize)
        values = []
        for name in sorted(pages):
            value = variables.get(name, _ABSENT)
            if not isinstance(value, int | str | float | None) and value is not _ABSENT:
                return None
            # The type too: True == 1 and 1.0 == 1, yet GraphQL's Int refuses the first two.
            values.append((name, type(value), value))
        return (query, tuple(values))


def _recall(cache: OrderedDict[Any, Any], key: Hashable) -> Any:
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
    return found


def _remember(cache: OrderedDict[Any, Any], key: Hashable, value: Any, maxsize: int) -> None:
    cache[key] = value
    if len(cache) > maxsize:
        cache.popitem(last=False)


class LimitedValidation(ValidationCache):
    """The limits first; the schema's validation rules (cached) only for a document within
    them."""

    def __init__(self, check: LimitCheck) -> None:
        super().__init__(maxsize=CACHE_SIZE)
        self.check = check

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document, query = context.graphql_document, context.query
        errors = (
            self.check.errors(query, document, context.schema._schema, context.variables)
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

    def __init__(self, max_tokens: int, within: OrderedDict[str, bool]) -> None:
        self.max_tokens = max_tokens
        self.within = within  # texts counted before and within the limit (shared, bounded)

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None and _recall(self.within, query) is None:
            if count_tokens(query) > self.max_tokens:
                raise GraphQLSyntaxError(
                    Source(query),
                    0,
                    f"Document contains more than {self.max_tokens} tokens. Parsing aborted.",
                )
            _remember(self.within, query, True, CACHE_SIZE)
        yield


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """Extension factories, in order: token limit (at parse), parse cache, limits and
    validation, operation name."""
    max_tokens = limits.max_tokens
    check = LimitCheck(limits)  # one per schema: its cache outlives the requests
    within_tokens: OrderedDict[str, bool] = OrderedDict()
    return [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: FastTokenLimit(max_tokens, within_tokens),  # before the parse cache parses
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: LimitedValidation(check),
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
