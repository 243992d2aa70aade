"""GraphiQL's docs explorer explains the whole served schema: every type, field, argument,
input field, enum value and mutation has a description that says more than its name, and
the descriptions of limited inputs quote the limit the validators enforce (their own
constants, so the two cannot drift apart)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    specified_scalar_types,
)

from schema.export import schema as served

BUILT_IN = {*specified_scalar_types, "JSON"}


def graphql_schema() -> GraphQLSchema:
    return served._schema


def described() -> Iterator[tuple[str, str, str | None]]:
    """(path, name, description) of every element of the served schema."""
    for name, named in sorted(graphql_schema().type_map.items()):
        if name.startswith("__") or name in specified_scalar_types:
            continue
        yield name, name, named.description
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                yield f"{name}.{field_name}", field_name, field.description
                for arg_name, arg in field.args.items():
                    yield f"{name}.{field_name}({arg_name})", arg_name, arg.description
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, field in named.fields.items():
                yield f"{name}.{field_name}", field_name, field.description
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                yield f"{name}.{value_name}", value_name, value.description
        elif isinstance(named, GraphQLUnionType):
            pass


def words(text: str) -> list[str]:
    """`shippingAddress` / `SHIPPING_ADDRESS` / "Shipping address." -> shipping address"""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text).replace("_", " ")
    return re.findall(r"[a-z0-9]+", spaced.lower())


def test_every_element_of_the_served_schema_has_a_description() -> None:
    missing = [path for path, _, description in described() if not (description or "").strip()]
    assert missing == [], f"{len(missing)} elements have no description: {missing}"


def test_no_description_merely_repeats_the_name() -> None:
    repeating = [
        path
        for path, name, description in described()
        if description and words(description) in (words(name), ["the", *words(name)])
    ]
    assert repeating == []


def limits() -> dict[str, object]:
    """Each limited input of the served schema and the constant its validator enforces."""
    from schema.pagination import MAX_PAGE_SIZE
    from write_model.domain.money import MAX_AMOUNT
    from write_model.domain.order import MAX_LINES
    from write_model.domain.validation import (
        MAX_EMAIL_LENGTH,
        MAX_ID_LENGTH,
        MAX_IDEMPOTENCY_KEY_LENGTH,
        MAX_NAME_LENGTH,
        MAX_QUANTITY,
        MAX_STOCK,
        MAX_TEXT_LENGTH,
    )

    by_name = {
        "idempotencyKey": MAX_IDEMPOTENCY_KEY_LENGTH,
        "orderId": MAX_ID_LENGTH,
        "productId": MAX_ID_LENGTH,
        "customerId": MAX_ID_LENGTH,
        "name": MAX_NAME_LENGTH,
        "email": MAX_EMAIL_LENGTH,
        "quantity": MAX_QUANTITY,
        "initialStock": MAX_STOCK,
        "reason": MAX_TEXT_LENGTH,
        "items": MAX_LINES,
        "price": MAX_AMOUNT,
        "line1": MAX_TEXT_LENGTH,
        "city": MAX_NAME_LENGTH,
        "postalCode": MAX_NAME_LENGTH,
        "first": MAX_PAGE_SIZE,
    }
    exceptions = {
        "RestockProductInput.quantity": MAX_STOCK,
        "OrderFilter.customerId": None,  # a filter: any value, it just matches nothing
    }
    found: dict[str, object] = {}
    for path, name, _ in described():
        argument = re.fullmatch(r"\w+\.\w+\((\w+)\)", path)
        input_type = path.split(".")[0].endswith("Input")
        if (argument or input_type) and name in by_name:
            found[path] = exceptions.get(path, by_name[name])
    return {path: limit for path, limit in found.items() if limit is not None}


def test_limited_inputs_quote_the_limit_their_validator_enforces() -> None:
    descriptions = {path: description or "" for path, _, description in described()}
    checked = limits()
    assert len(checked) > 40  # every input type's ids, keys, names, quantities...
    wrong = {
        path: (limit, descriptions[path])
        for path, limit in checked.items()
        if not re.search(rf"(?<![\d.]){limit}(?!\d|\.\d)", descriptions[path])
    }
    assert wrong == {}
