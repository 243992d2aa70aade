"""The query cost estimate (schema/cost.py) and its limit: each field 1, each page
PAGE_COST and each of its elements PAGE_ELEMENT_COST more, times the page sizes they are
nested in; lists without a page count LIST_LENGTH items; introspection a fixed cost. Every
GraphQL document the README and the contract, integration and e2e tests send, and the
other limits accept, is within the default cost limit."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse, validate

from app.settings import Settings
from schema.cost import (
    INTROSPECTION_COST,
    LIST_LENGTH,
    PAGE_COST,
    PAGE_ELEMENT_COST,
    operation_costs,
)
from schema.export import schema
from schema.limits import LimitCheck, Limits, limit_errors
from schema.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = Limits(max_cost=Settings.model_fields["max_query_cost"].default)
ELEMENT = PAGE_ELEMENT_COST
LAYERS = ("contracts", "integration", "e2e")  # the layers that send GraphQL to the server


def cost(document: str, variables: dict[str, Any] | None = None) -> int:
    (only,) = operation_costs(schema._schema, parse(document), variables).values()
    return only


def order_ids(page: int) -> int:
    """orders(first: page) { edges { node { id } } }: the connection and its page, its
    edges, and per element its node and id."""
    return 1 + PAGE_COST + 1 + page * (ELEMENT + 2)


def test_a_page_costs_its_elements_and_their_fields() -> None:
    # given a page of 7 orders selecting their ids
    document = "{ orders(first: 7) { edges { node { id } } } }"
    # when its cost is estimated, then it is the connection, its edges and 7 elements
    assert cost(document) == order_ids(7)
    # and fields beside the page (totalCount, pageInfo) are not multiplied by it
    with_count = (
        "{ orders(first: 7) { totalCount pageInfo { hasNextPage } edges { node { id } } } }"
    )
    assert cost(with_count) == order_ids(7) + 1 + 2


def test_the_page_size_is_read_as_the_resolvers_read_it() -> None:
    page = "query($n: Int) { orders(first: $n) { edges { node { id } } } }"
    with_default = "query($n: Int = 3) { orders(first: $n) { edges { node { id } } } }"
    # given no `first`, or a variable left out: the argument's default page
    assert cost("{ orders { edges { node { id } } } }") == order_ids(DEFAULT_PAGE_SIZE)
    assert cost(page, {}) == order_ids(DEFAULT_PAGE_SIZE)
    # given a variable: its value, or its declared default, or null (the default page)
    assert cost(page, {"n": 4}) == order_ids(4)
    assert cost(with_default, {}) == order_ids(3)
    assert cost(page, {"n": None}) == order_ids(DEFAULT_PAGE_SIZE)
    # given a page the resolvers refuse: counted as the largest page
    assert cost("{ orders(first: 100000) { edges { node { id } } } }") == order_ids(MAX_PAGE_SIZE)
    assert cost(page, {"n": "many"}) == order_ids(MAX_PAGE_SIZE)


def test_nested_pages_multiply() -> None:
    # given each of 10 orders' customers asking 5 orders of their own
    document = """{ orders(first: 10) { edges { node {
        customer { orders(first: 5) { edges { node { id } } } } } } } }"""
    # then the inner page is paid for once per outer element
    inner = 1 + order_ids(5)  # customer, its page
    assert cost(document) == 1 + PAGE_COST + 1 + 10 * (ELEMENT + 1 + inner)


def test_a_list_without_a_page_counts_list_length_items() -> None:
    # given an order's lines (no page size), each with its product name
    document = '{ order(id: "o") { items { productName quantity } } }'
    # then it counts as LIST_LENGTH lines of two fields
    assert cost(document) == 1 + 1 + LIST_LENGTH * 2
    # and a list of a page size counts its page: dead letters are a page
    assert cost("{ deadLetters(first: 4) { id error } }") == 1 + PAGE_COST + 4 * (ELEMENT + 2)


def test_fields_merge_and_fragments_count_as_they_execute() -> None:
    # given a fragment spread twice and a field asked twice under one name
    twice = (
        "{ ...F ...F orders(first: 2) { totalCount } }"
        " fragment F on Query { orders(first: 2) { totalCount } }"
    )
    # then they execute once, and cost once
    assert cost(twice) == cost("{ orders(first: 2) { totalCount } }") == 2 + PAGE_COST
    # given a fan-out of fragments 40 levels deep: it costs what it executes
    fragments = ["fragment F0 on Query { projections { name } }"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 41)
    ]
    fan_out = "query FanOut { ...F40 }\n" + "\n".join(fragments)
    assert cost(fan_out) == 1 + LIST_LENGTH
    # while the same field under two aliases is paid twice
    two = "{ a: orders(first: 2) { totalCount } b: orders(first: 2) { totalCount } }"
    assert cost(two) == 2 * (2 + PAGE_COST)


def test_introspection_costs_a_fixed_amount() -> None:
    assert (
        cost("{ __schema { types { name fields { name args { name } } } } }")
        == (INTROSPECTION_COST["__schema"])
    )
    assert cost('{ __type(name: "Order") { name } __typename }') == INTROSPECTION_COST["__type"] + 1


def test_each_operation_is_costed_by_name() -> None:
    document = parse(
        "query Small { orders(first: 1) { totalCount } }"
        " query Big { orders(first: 9) { edges { node { id } } } }"
    )
    assert operation_costs(schema._schema, document, None) == {
        "Small": 2 + PAGE_COST,
        "Big": order_ids(9),
    }


def test_a_query_over_the_cost_limit_gets_an_error_naming_its_cost_and_the_limit() -> None:
    # given the worst shapes the other limits accepted (about 0.8 s of CPU each)
    depth_9 = """{ order(id: "o") { customer { orders(first: 100) { edges { node {
        customer { orders(first: 100) { edges { node { id } } } } } } } } } }"""
    aliases = (
        "{ "
        + " ".join(
            f"a{n}: orders(first: 100) {{ edges {{ node {{ id total {{ amount }} }} }} }}"
            for n in range(30)
        )
        + " }"
    )
    for document in (depth_9, aliases):
        # when the limits are checked at the defaults
        (error,) = limit_errors(parse(document), DEFAULTS, schema._schema)
        # then the error names its cost and the limit
        assert error.message.startswith(
            f"'anonymous' costs {cost(document)}, over the maximum query cost of "
            f"{DEFAULTS.max_cost}"
        ), error.message
    # and a document over the depth limit is refused for its depth, not costed
    deeper = (
        '{ order(id: "o") { '
        + "customer { orders { edges { node { " * 3
        + "id"
        + " } } } }" * 3
        + " } }"
    )
    (error,) = limit_errors(parse(deeper), DEFAULTS, schema._schema)
    assert "exceeds maximum operation depth of 10" in error.message


def test_the_cost_limit_is_a_setting() -> None:
    document = parse("{ orders(first: 10) { edges { node { id } } } }")
    assert limit_errors(document, Limits(max_cost=order_ids(10)), schema._schema) == []
    (error,) = limit_errors(document, Limits(max_cost=order_ids(10) - 1), schema._schema)
    assert f"costs {order_ids(10)}, over the maximum query cost of {order_ids(10) - 1}" in (
        error.message
    )


def test_a_remembered_check_answers_for_each_page_size_it_is_given() -> None:
    # given one check that remembers its answers, at a limit 10 orders' ids fit
    check = LimitCheck(Limits(max_cost=order_ids(10)), maxsize=2)
    text = """query($n: Int, $m: Int) { orders(first: $n) { edges { node { id } } }
        customers(first: 1) { totalCount } other: orders(first: $m) { totalCount } }"""
    document = parse(text)
    extra = 1 + PAGE_COST + 1 + 1 + PAGE_COST + 1  # customers' page and `other`'s page

    def messages(variables: dict[str, Any] | None) -> list[str]:
        return [error.message for error in check.errors(text, document, schema._schema, variables)]

    def fresh(variables: dict[str, Any] | None) -> list[str]:
        limits = Limits(max_cost=order_ids(10))
        return [e.message for e in limit_errors(document, limits, schema._schema, variables)]

    # when the same document comes with other page sizes, again and again, in turns,
    # and with values that compare equal to an int but are not one
    asked = [
        {"n": 9},
        {"n": 10},
        {"n": 9},
        None,
        {"n": 9, "m": 5},
        {"n": True},
        {"n": 1},
        {"n": 1.0},
        {"n": [1]},
        {"n": 9, "other": 1000},
        {"n": 9},
    ]
    for variables in asked:
        # then each answer is the one measured afresh
        assert messages(variables) == fresh(variables), variables
    # and the answers differ where the page sizes make them differ
    assert messages({"n": 1}) == []
    (refused,) = messages({"n": 100})
    assert f"costs {order_ids(100) + extra}" in refused
    # and a document given without its text is measured anew
    assert [e.message for e in check.errors(None, document, schema._schema, {"n": 100})] == [
        refused
    ]


# ------------------------------------------------------- every query the project sends


def module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "string" assignments: what the f-string queries interpolate."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def rendered(node: ast.JoinedStr, constants: dict[str, str]) -> str | None:
    """An f-string whose every placeholder is a module-level string constant, rendered;
    None for any other (its text is only known at run time)."""
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif (
            isinstance(value, ast.FormattedValue)
            and isinstance(value.value, ast.Name)
            and value.value.id in constants
        ):
            parts.append(constants[value.value.id])
        else:
            return None
    return "".join(parts)


def project_documents() -> Iterator[tuple[str, str]]:
    """(where, text) for each GraphQL example of the README and each string the contract,
    integration and end-to-end tests write (literals, and f-strings of module constants)."""
    readme = (ROOT / "README.md").read_text()
    for n, example in enumerate(re.findall(r"```graphql\n(.*?)```", readme, re.DOTALL)):
        yield f"README.md example {n + 1}", example
    paths = (path for layer in LAYERS for path in (ROOT / "tests" / layer).rglob("*.py"))
    for path in sorted(paths):
        tree = ast.parse(path.read_text())
        constants = module_strings(tree)
        for node in ast.walk(tree):
            text = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = rendered(node, constants)
            if text is not None and "{" in text:
                yield f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}", text


def worst_variables(document: Any) -> dict[str, Any]:
    """Every variable at its worst for the cost: the largest page."""
    return {
        definition.variable.name.value: MAX_PAGE_SIZE
        for operation in document.definitions
        if isinstance(operation, OperationDefinitionNode)
        for definition in operation.variable_definitions or ()
    }


def test_every_query_of_the_readme_and_the_tests_is_within_the_default_cost() -> None:
    checked, over = 0, []
    for where, text in project_documents():
        try:
            document = parse(text)
        except GraphQLSyntaxError:
            continue  # not GraphQL (or deliberately malformed)
        if validate(schema._schema, document):
            continue  # not a document of this schema, or deliberately invalid
        without_cost = Limits(max_cost=10**100)
        if limit_errors(document, without_cost, schema._schema):
            continue  # refused by the depth or alias limit, as its test means it to be
        checked += 1
        errors = limit_errors(document, DEFAULTS, schema._schema, worst_variables(document))
        over += [f"{where}: {error.message}" for error in errors]
    assert checked >= 100, checked  # the collection finds the project's documents
    assert over == [], "\n".join(over)
