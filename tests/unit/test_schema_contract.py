"""The exported schema against the public contract (schema/contract.graphql, a copy of the
published contract kept in the repository).

Everything in the contract must be in the server's schema with the same type strings
(nullability included) and the same defaults; the server may add types, fields, optional
arguments and optional input fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    build_schema,
    print_ast,
)
from graphql.utilities import ast_from_value

CONTRACT = Path(__file__).resolve().parents[2] / "schema" / "contract.graphql"
LATER = {"Subscription"}  # compared by test_subscription_fields_exist


@pytest.fixture(scope="module")
def contract() -> GraphQLSchema:
    return build_schema(CONTRACT.read_text())


@pytest.fixture(scope="module")
def exported() -> GraphQLSchema:
    """The SDL the server exports (what `strawberry export-schema schema.export:schema`
    prints), read back."""
    from schema.export import schema

    return build_schema(str(schema))


def _named_types(schema: GraphQLSchema) -> Iterator[GraphQLNamedType]:
    for name, named in sorted(schema.type_map.items()):
        if name.startswith("__") or name in LATER:
            continue
        if isinstance(named, GraphQLScalarType) and name in {
            "String",
            "Int",
            "Float",
            "Boolean",
            "ID",
        }:
            continue
        yield named


def _default(holder: GraphQLArgument | GraphQLInputField) -> str | None:
    if holder.default_value is Undefined:
        return None
    node = ast_from_value(holder.default_value, holder.type)
    return print_ast(node) if node is not None else "null"


def _compare_inputs(
    where: str,
    ours: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
    theirs: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
    problems: list[str],
) -> None:
    for name, expected in theirs.items():
        actual = ours.get(name)
        if actual is None:
            problems.append(f"{where}: missing {name}: {expected.type}")
            continue
        if str(actual.type) != str(expected.type):
            problems.append(f"{where}.{name}: type {actual.type}, contract {expected.type}")
        if _default(expected) is not None and _default(actual) != _default(expected):
            problems.append(
                f"{where}.{name}: default {_default(actual)}, contract {_default(expected)}"
            )
    for name, extra in ours.items():
        if name not in theirs and isinstance(extra.type, GraphQLNonNull):
            if extra.default_value is Undefined:
                problems.append(f"{where}.{name}: added as required; clients would break")


def _report(problems: list[str]) -> None:
    assert not problems, "the schema differs from the contract:\n  " + "\n  ".join(problems)


def test_every_contract_type_exists_with_the_same_kind(
    contract: GraphQLSchema, exported: GraphQLSchema
) -> None:
    problems = []
    for expected in _named_types(contract):
        actual = exported.type_map.get(expected.name)
        if actual is None:
            problems.append(f"missing type {expected.name}")
        elif type(actual) is not type(expected):
            problems.append(
                f"{expected.name} is a {type(actual).__name__}, the contract says "
                f"{type(expected).__name__}"
            )
    _report(problems)


def test_fields_and_arguments_match(contract: GraphQLSchema, exported: GraphQLSchema) -> None:
    problems: list[str] = []
    for expected in _named_types(contract):
        if not isinstance(expected, GraphQLObjectType | GraphQLInterfaceType):
            continue
        actual = exported.type_map.get(expected.name)
        if not isinstance(actual, GraphQLObjectType | GraphQLInterfaceType):
            continue  # reported by the kind test
        for name, field in expected.fields.items():
            ours = actual.fields.get(name)
            if ours is None:
                problems.append(f"{expected.name}: missing field {name}: {field.type}")
                continue
            if str(ours.type) != str(field.type):
                problems.append(f"{expected.name}.{name}: type {ours.type}, contract {field.type}")
            _compare_inputs(f"{expected.name}.{name}()", ours.args, field.args, problems)
    _report(problems)


def test_interfaces_are_implemented(contract: GraphQLSchema, exported: GraphQLSchema) -> None:
    problems = []
    for expected in _named_types(contract):
        if not isinstance(expected, GraphQLObjectType | GraphQLInterfaceType):
            continue
        actual = exported.type_map.get(expected.name)
        if not isinstance(actual, GraphQLObjectType | GraphQLInterfaceType):
            continue
        ours = {i.name for i in actual.interfaces}
        for interface in expected.interfaces:
            if interface.name not in ours:
                problems.append(f"{expected.name} does not implement {interface.name}")
    _report(problems)


def test_enum_values_match(contract: GraphQLSchema, exported: GraphQLSchema) -> None:
    problems = []
    for expected in _named_types(contract):
        if not isinstance(expected, GraphQLEnumType):
            continue
        actual = exported.type_map.get(expected.name)
        if not isinstance(actual, GraphQLEnumType):
            continue
        missing = set(expected.values) - set(actual.values)
        if missing:
            problems.append(f"enum {expected.name}: missing {sorted(missing)}")
    _report(problems)


def test_union_members_match(contract: GraphQLSchema, exported: GraphQLSchema) -> None:
    problems = []
    for expected in _named_types(contract):
        if not isinstance(expected, GraphQLUnionType):
            continue
        actual = exported.type_map.get(expected.name)
        if not isinstance(actual, GraphQLUnionType):
            continue
        missing = {t.name for t in expected.types} - {t.name for t in actual.types}
        if missing:
            problems.append(f"union {expected.name}: missing members {sorted(missing)}")
    _report(problems)


def test_input_fields_match(contract: GraphQLSchema, exported: GraphQLSchema) -> None:
    problems: list[str] = []
    for expected in _named_types(contract):
        if not isinstance(expected, GraphQLInputObjectType):
            continue
        actual = exported.type_map.get(expected.name)
        if not isinstance(actual, GraphQLInputObjectType):
            continue
        _compare_inputs(f"input {expected.name}", actual.fields, expected.fields, problems)
    _report(problems)


def test_root_operation_types(contract: GraphQLSchema, exported: GraphQLSchema) -> None:
    assert contract.query_type is not None and contract.mutation_type is not None
    assert exported.query_type is not None and exported.query_type.name == "Query"
    assert exported.mutation_type is not None and exported.mutation_type.name == "Mutation"


def test_the_comparison_catches_a_difference(contract: GraphQLSchema) -> None:
    """The checks above, run against a contract with one nullability changed, fail."""
    altered = build_schema(
        CONTRACT.read_text().replace(
            "order(id: ID!, consistencyToken: String): Order",
            "order(id: ID!, consistencyToken: String!): Order",
        )
    )
    problems: list[str] = []
    query = altered.query_type
    assert query is not None and contract.query_type is not None
    _compare_inputs(
        "Query.order()",
        contract.query_type.fields["order"].args,
        query.fields["order"].args,
        problems,
    )
    assert problems == ["Query.order().consistencyToken: type String, contract String!"]


def test_subscription_fields_exist(contract: GraphQLSchema, exported: GraphQLSchema) -> None:
    expected = contract.subscription_type
    assert expected is not None
    actual = exported.subscription_type
    assert actual is not None and actual.name == "Subscription"
    problems: list[str] = []
    for name, field in expected.fields.items():
        ours = actual.fields.get(name)
        if ours is None:
            problems.append(f"Subscription: missing field {name}: {field.type}")
            continue
        if str(ours.type) != str(field.type):
            problems.append(f"Subscription.{name}: type {ours.type}, contract {field.type}")
        _compare_inputs(f"Subscription.{name}()", ours.args, field.args, problems)
    _report(problems)
