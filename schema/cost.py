"""What a query costs before it runs: the fields it would resolve, each list multiplied by
its length, and the pages it would read. A list's length is its page size (`first`, as the
resolvers read it) when it has one, the page of its connection for a connection's
`edges`, and LIST_LENGTH for any other list (an order's lines, its history). Introspection
(`__schema`, `__type`) costs INTROSPECTION_COST a field, whatever it selects: it is
bounded by the schema.

Fields are collected as graphql-core executes them: fields of one response key merge, and a
fragment spread twice in one selection set is collected once. So a fragment fan-out costs
what it executes, and the walk is linear in the document for it; merged groups are measured
once each (memoized by their field nodes).

One unit is about one resolved field: 3 to 6 us of CPU on this project's 2 loaded cores
(bench/hostile.py prints what the worst shapes within the default limit cost).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLCompositeType,
    GraphQLField,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
    is_composite_type,
    value_from_ast,
    value_from_ast_untyped,
)

from schema.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

LIST_LENGTH = 10  # a list without a page size: an order's lines or history, a saga's steps
# An element of a page (a connection's edge, a dead letter) is a document read from the
# store, converted and given a cursor: it costs as much as ~30 fields selected on it.
PAGE_ELEMENT_COST = 30
# A page is a query of the store, and its elements' objects are loaded in batches per page
# (a customer's, a product's): each page costs this much besides its elements.
PAGE_COST = 100
# Introspection, whatever it selects: GraphiQL's whole introspection query costs about
# 5000 units; one type, far less.
INTROSPECTION_COST = {"__schema": 5000, "__type": 200}
PAGE_ARGUMENT = "first"


@dataclass(frozen=True, slots=True)
class Collected:
    """One response key's field nodes, and the type they were selected on."""

    owner: GraphQLCompositeType
    nodes: tuple[FieldNode, ...]


@dataclass
class _Estimate:
    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    memo: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def collect(
        self,
        owner: GraphQLCompositeType,
        selection_sets: Iterable[SelectionSetNode | None],
    ) -> list[Collected]:
        by_key: dict[str, tuple[GraphQLCompositeType, list[FieldNode]]] = {}
        visited: set[str] = set()

        def walk(owner: GraphQLCompositeType, selection_set: SelectionSetNode | None) -> None:
            for selection in selection_set.selections if selection_set else ():
                if isinstance(selection, FieldNode):
                    key = (selection.alias or selection.name).value
                    by_key.setdefault(key, (owner, []))[1].append(selection)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if name in visited or fragment is None:
                        continue
                    visited.add(name)
                    walk(self.condition(owner, fragment.type_condition), fragment.selection_set)
                else:
                    assert isinstance(selection, InlineFragmentNode)
                    walk(self.condition(owner, selection.type_condition), selection.selection_set)

        for selection_set in selection_sets:
            walk(owner, selection_set)
        return [Collected(owner, tuple(nodes)) for owner, nodes in by_key.values()]

    def condition(self, owner: GraphQLCompositeType, type_condition: Any) -> GraphQLCompositeType:
        named = self.schema.get_type(type_condition.name.value) if type_condition else None
        return named if is_composite_type(named) else owner

    def selection_cost(
        self,
        owner: GraphQLCompositeType,
        selection_sets: Iterable[SelectionSetNode | None],
        page: int | None,
    ) -> int:
        """`page`: the page size of the connection these selections are made on."""
        return sum(self.field_cost(field, page) for field in self.collect(owner, selection_sets))

    def field_cost(self, collected: Collected, page: int | None) -> int:
        node = collected.nodes[0]
        name = node.name.value
        if name in INTROSPECTION_COST:
            return INTROSPECTION_COST[name]
        definition = self.definition(collected.owner, name)
        if definition is None:  # __typename, or a field validation will refuse
            return 1
        own_page = self.page_size(node, definition) if definition.args else None
        field_type = definition.type
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        length, element = 1, 0
        if isinstance(field_type, GraphQLList):
            paged = own_page if own_page is not None else page
            length = LIST_LENGTH if paged is None else paged
            element = 0 if paged is None else PAGE_ELEMENT_COST
        named = get_named_type(field_type)
        query = 0 if own_page is None else PAGE_COST
        if not is_composite_type(named):
            return query + length * (1 + element)
        # A connection's page is the length of its `edges`, one level down.
        child_page = None if isinstance(field_type, GraphQLList) else own_page
        return 1 + query + length * (element + self.inner_cost(named, collected.nodes, child_page))

    def inner_cost(
        self, named: GraphQLCompositeType, nodes: tuple[FieldNode, ...], page: int | None
    ) -> int:
        """The cost of the merged selections of `nodes`, measured once for the same nodes
        (a fragment's, wherever it is spread)."""
        key = (named.name, tuple(map(id, nodes)), page)
        if key not in self.memo:
            self.memo[key] = self.selection_cost(named, (n.selection_set for n in nodes), page)
        return self.memo[key]

    @staticmethod
    def definition(owner: GraphQLCompositeType, name: str) -> GraphQLField | None:
        if isinstance(owner, GraphQLObjectType | GraphQLInterfaceType):
            found: GraphQLField | None = owner.fields.get(name)
            return found
        return None

    def page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The page size the resolvers will use (pagination.page_size); MAX_PAGE_SIZE for a
        value they will refuse. None: the field has no page."""
        argument = definition.args.get(PAGE_ARGUMENT)
        if argument is None:
            return None
        given = next((a.value for a in node.arguments or () if a.name.value == PAGE_ARGUMENT), None)
        if isinstance(given, VariableNode) and given.name.value not in self.variables:
            given = None  # as graphql-core does: the argument's default
        value = (
            argument.default_value
            if given is None
            else value_from_ast(given, GraphQLInt, dict(self.variables))
        )
        if value is None or value is Undefined:
            return DEFAULT_PAGE_SIZE if value is None else MAX_PAGE_SIZE
        if isinstance(value, int) and 0 <= value <= MAX_PAGE_SIZE:
            return value
        return MAX_PAGE_SIZE


def operation_costs(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None
) -> dict[str | None, int]:
    """Each operation's estimated cost, by name. `variables` as the request gave them; a
    variable it does not give takes its declared default."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    costs: dict[str | None, int] = {}
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        values = {
            d.variable.name.value: value_from_ast_untyped(d.default_value)
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        } | dict(variables or {})
        estimate = _Estimate(schema, fragments, values)
        root, selections = schema.get_root_type(operation.operation), operation.selection_set
        name = operation.name.value if operation.name else None
        costs[name] = 0 if root is None else estimate.selection_cost(root, [selections], None)
    return costs
