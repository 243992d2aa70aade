"""Who may introspect the schema under each INTROSPECTION policy: the schema run without
I/O (introspection reads no service) for each kind of principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from app.settings import Settings
from schema.introspection import IntrospectionPolicy
from schema.schema import build_schema
from write_model.command_context import ANONYMOUS, Principal

SCHEMA_QUERY = "{ __schema { queryType { name } types { name fields { name } } } }"
TYPE_QUERY = '{ __type(name: "Order") { name } }'
PRINCIPALS = {
    "anonymous": ANONYMOUS,
    "staff": Principal.staff("ada"),
    "system": Principal.system("saga"),
    "customer": Principal.customer("c-1"),
}


@dataclass
class Asker:
    """The part of the request context the policy reads."""

    principal: Principal


async def run(policy: IntrospectionPolicy, who: str, query: str) -> Any:
    schema = build_schema(introspection=policy)
    return await schema.execute(query, context_value=Asker(PRINCIPALS[who]))


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
async def test_on_answers_everyone(who: str) -> None:
    result = await run("on", who, SCHEMA_QUERY)
    assert result.errors is None
    assert result.data["__schema"]["queryType"] == {"name": "Query"}


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
async def test_off_refuses_everyone_with_a_typed_error_once_per_field(who: str) -> None:
    both = '{ __schema { types { name fields { name } } } __type(name: "Order") { name } }'
    result = await run("off", who, both)
    assert result.data is None
    # `types` and `fields` inside __schema are not reported again.
    assert [(e.message.split("`")[1], e.extensions) for e in result.errors] == [
        ("__schema", {"code": "INTROSPECTION_DISABLED"}),
        ("__type", {"code": "INTROSPECTION_DISABLED"}),
    ]


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
async def test_staff_answers_only_those_who_see_everything(who: str) -> None:
    for query in (SCHEMA_QUERY, TYPE_QUERY):
        result = await run("staff", who, query)
        if who == "customer":
            assert result.data is None
            (error,) = result.errors
            assert error.extensions == {"code": "FORBIDDEN"}
            assert "for staff only" in error.message
        else:
            assert result.errors is None and result.data


@pytest.mark.parametrize("policy", ["on", "off", "staff"])
async def test_typename_is_never_refused(policy: IntrospectionPolicy) -> None:
    result = await run(policy, "customer", "{ __typename }")
    assert result.errors is None and result.data == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("given", "policy"),
    [("true", "on"), ("FALSE", "off"), ("1", "on"), ("no", "off"), ("Staff", "staff")],
)
def test_the_setting_takes_the_old_booleans_too(given: str, policy: str) -> None:
    assert Settings(introspection=given).introspection == policy
    assert Settings().introspection == "staff"
