"""Mutations over HTTP against the real stores: every expected failure is a union member,
never a GraphQL error; idempotency keys replay; unexpected exceptions are masked with an
error id that the log carries with the traceback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.graphql_stack import ApiStack, api_stack

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]

RESULT = """
  __typename
  ... on UserError { code message }
  ... on ValidationError { field }
  ... on NotFoundError { id }
  ... on ConcurrencyError { expectedVersion actualVersion }
"""
ORDER_RESULT = "{ ... on OrderAccepted { orderId version consistencyToken }" + RESULT + "}"
CUSTOMER_RESULT = "{ ... on CustomerAccepted { customerId version consistencyToken }" + RESULT + "}"
PRODUCT_RESULT = "{ ... on ProductAccepted { productId version consistencyToken }" + RESULT + "}"

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "us"}


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[ApiStack]:
    async with api_stack() as built:
        yield built


async def mutate(stack: ApiStack, name: str, input: dict[str, Any], result: str) -> dict:
    input_type = name[0].upper() + name[1:] + "Input"
    data = await stack.gql(
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {result} }}",
        {"input": input},
    )
    return data[name]


def order(stack: ApiStack, name: str, input: dict[str, Any]):
    return mutate(stack, name, input, ORDER_RESULT)


@pytest.fixture
async def catalog(stack: ApiStack) -> dict[str, str]:
    """A registered customer and a product of their own for the test."""
    tag = uuid.uuid4().hex[:8]
    ids = {"customer": f"c-{tag}", "product": f"p-{tag}"}
    registered = await mutate(
        stack,
        "registerCustomer",
        {"customerId": ids["customer"], "name": "Ada", "email": f"{tag}@example.com"},
        CUSTOMER_RESULT,
    )
    assert registered["__typename"] == "CustomerAccepted"
    added = await mutate(
        stack,
        "addProduct",
        {"productId": ids["product"], "name": "Pen", "price": "1.25", "initialStock": 5},
        PRODUCT_RESULT,
    )
    assert added["__typename"] == "ProductAccepted", added
    return ids


async def test_the_whole_draft_flow_returns_accepted_payloads(
    stack: ApiStack, catalog: dict[str, str]
) -> None:
    created = await order(
        stack,
        "createOrder",
        {
            "customerId": catalog["customer"],
            "items": [{"productId": catalog["product"], "quantity": 2}],
        },
    )
    assert created["__typename"] == "OrderAccepted"
    assert created["version"] == 2
    assert created["consistencyToken"].startswith("ct1:")
    order_id = created["orderId"]
    assert (await order(stack, "setShippingAddress", {"orderId": order_id, "address": ADDRESS}))[
        "version"
    ] == 3
    assert (
        await order(
            stack, "removeOrderItem", {"orderId": order_id, "productId": catalog["product"]}
        )
    )["version"] == 4
    assert (
        await order(
            stack,
            "addOrderItem",
            {"orderId": order_id, "productId": catalog["product"], "quantity": 3},
        )
    )["version"] == 5
    submitted = await order(stack, "submitOrder", {"orderId": order_id, "expectedVersion": 5})
    assert submitted == {**submitted, "__typename": "OrderAccepted", "version": 6}
    cancelled = await order(stack, "cancelOrder", {"orderId": order_id, "reason": "changed mind"})
    assert cancelled["version"] == 7

    renamed = await mutate(
        stack,
        "renameCustomer",
        {"customerId": catalog["customer"], "name": "Ada L."},
        CUSTOMER_RESULT,
    )
    assert renamed["__typename"] == "CustomerAccepted" and renamed["version"] == 2
    for name, input in (
        ("renameProduct", {"productId": catalog["product"], "name": "Fountain pen"}),
        ("changeProductPrice", {"productId": catalog["product"], "price": 2.5}),
        ("restockProduct", {"productId": catalog["product"], "quantity": 10}),
    ):
        changed = await mutate(stack, name, input, PRODUCT_RESULT)
        assert changed["__typename"] == "ProductAccepted", (name, changed)

    product = await stack.gql(
        "query($id: ID!, $t: String) { product(id: $id, consistencyToken: $t) "
        "{ name price { amount } stockOnHand version } }",
        {"id": catalog["product"], "t": changed["consistencyToken"]},
    )
    assert product["product"] == {
        "name": "Fountain pen",
        "price": {"amount": "2.50"},
        "stockOnHand": 15,
        "version": 4,
    }


async def test_validation_failures_name_the_field(stack: ApiStack, catalog: dict[str, str]) -> None:
    bad_price = await mutate(
        stack,
        "addProduct",
        {"productId": "p-bad-price", "name": "X", "price": "twelve"},
        PRODUCT_RESULT,
    )
    assert bad_price == {
        "__typename": "ValidationError",
        "code": "VALIDATION",
        "message": "'twelve' is not a decimal number",
        "field": "price",
    }
    three_places = await mutate(
        stack,
        "changeProductPrice",
        {"productId": catalog["product"], "price": "1.234"},
        PRODUCT_RESULT,
    )
    assert three_places["__typename"] == "ValidationError"
    assert three_places["field"] == "price"

    bad_email = await mutate(
        stack,
        "registerCustomer",
        {"name": "Bob", "email": "not-an-email"},
        CUSTOMER_RESULT,
    )
    assert bad_email["__typename"] == "ValidationError" and bad_email["field"] == "email"

    no_quantity = await order(
        stack,
        "createOrder",
        {
            "customerId": catalog["customer"],
            "items": [{"productId": catalog["product"], "quantity": 0}],
        },
    )
    assert no_quantity["__typename"] == "ValidationError" and no_quantity["field"] == "quantity"

    bad_country = await order(
        stack,
        "createOrder",
        {"customerId": catalog["customer"], "shippingAddress": {**ADDRESS, "country": "Narnia"}},
    )
    assert bad_country["__typename"] == "ValidationError" and bad_country["field"] == "country"


async def test_unknown_entities_are_not_found(stack: ApiStack, catalog: dict[str, str]) -> None:
    no_customer = await order(stack, "createOrder", {"customerId": "nobody"})
    assert no_customer["__typename"] == "NotFoundError"
    assert no_customer["id"] == "nobody" and no_customer["code"] == "NOT_FOUND"

    no_product = await order(
        stack,
        "createOrder",
        {"customerId": catalog["customer"], "items": [{"productId": "ghost", "quantity": 1}]},
    )
    assert (no_product["__typename"], no_product["id"]) == ("NotFoundError", "ghost")

    no_order = await order(stack, "submitOrder", {"orderId": "never-created"})
    assert (no_order["__typename"], no_order["id"]) == ("NotFoundError", "never-created")

    no_product_to_rename = await mutate(
        stack, "renameProduct", {"productId": "ghost", "name": "Y"}, PRODUCT_RESULT
    )
    assert no_product_to_rename["__typename"] == "NotFoundError"


async def test_a_stale_expected_version_is_a_concurrency_error(
    stack: ApiStack, catalog: dict[str, str]
) -> None:
    created = await order(stack, "createOrder", {"customerId": catalog["customer"]})
    order_id = created["orderId"]
    assert created["version"] == 1
    added = await order(
        stack,
        "addOrderItem",
        {"orderId": order_id, "productId": catalog["product"], "quantity": 1, "expectedVersion": 1},
    )
    assert added["version"] == 2
    stale = await order(
        stack,
        "addOrderItem",
        {"orderId": order_id, "productId": catalog["product"], "quantity": 1, "expectedVersion": 1},
    )
    assert stale["__typename"] == "ConcurrencyError"
    assert (stale["expectedVersion"], stale["actualVersion"]) == (1, 2)
    assert stale["code"] == "CONCURRENCY"

    # Without expectedVersion the handler decides on the current version.
    fresh = await order(
        stack, "addOrderItem", {"orderId": order_id, "productId": catalog["product"], "quantity": 1}
    )
    assert fresh["version"] == 3


async def test_commands_the_state_forbids_are_invalid_state(
    stack: ApiStack, catalog: dict[str, str]
) -> None:
    created = await order(stack, "createOrder", {"customerId": catalog["customer"]})
    empty = await order(stack, "submitOrder", {"orderId": created["orderId"]})
    assert empty["__typename"] == "InvalidStateError"
    assert empty["code"] == "INVALID_STATE" and "no items" in empty["message"]

    again = await mutate(
        stack,
        "registerCustomer",
        {"customerId": catalog["customer"], "name": "Ada", "email": "other@example.com"},
        CUSTOMER_RESULT,
    )
    assert again["__typename"] == "InvalidStateError"


async def test_idempotency_key_replays_and_refuses_other_input(
    stack: ApiStack, catalog: dict[str, str]
) -> None:
    key = f"key-{uuid.uuid4().hex}"
    input = {
        "customerId": catalog["customer"],
        "items": [{"productId": catalog["product"], "quantity": 1}],
        "idempotencyKey": key,
    }
    first = await order(stack, "createOrder", input)
    assert first["__typename"] == "OrderAccepted"
    replayed = await order(stack, "createOrder", input)
    assert replayed == first  # the same order id, version and token: nothing appended again

    history = await stack.gql(
        "query($id: ID!) { orderHistory(id: $id) { type } }", {"id": first["orderId"]}
    )
    assert [e["type"] for e in history["orderHistory"]] == ["OrderCreated", "OrderItemAdded"]

    other = await order(
        stack, "createOrder", {**input, "items": [{"productId": catalog["product"], "quantity": 2}]}
    )
    assert other["__typename"] == "IdempotencyKeyReusedError"
    assert other["code"] == "IDEMPOTENCY_KEY_REUSED" and key in other["message"]

    # Keys are scoped by mutation: the same key on another mutation is another key, and
    # replays there.
    add = {
        "orderId": first["orderId"],
        "productId": catalog["product"],
        "quantity": 1,
        "idempotencyKey": key,
    }
    elsewhere = await order(stack, "addOrderItem", add)
    assert elsewhere["__typename"] == "OrderAccepted", elsewhere
    assert elsewhere["version"] == first["version"] + 1
    assert await order(stack, "addOrderItem", add) == elsewhere


async def test_the_correlation_id_reaches_the_events(
    stack: ApiStack, catalog: dict[str, str]
) -> None:
    response = await stack.post(
        "mutation($c: ID!) { createOrder(input: {customerId: $c}) "
        "{ ... on OrderAccepted { orderId } } }",
        {"c": catalog["customer"]},
        headers={"X-Correlation-ID": "checkout-42"},
    )
    assert response.headers["x-correlation-id"] == "checkout-42"
    order_id = response.json()["data"]["createOrder"]["orderId"]
    history = await stack.gql(
        "query($id: ID!) { orderHistory(id: $id) { correlationId causationId userId } }",
        {"id": order_id},
    )
    assert history["orderHistory"] == [
        {"correlationId": "checkout-42", "causationId": None, "userId": None}
    ]

    anonymous = await stack.post("{ projections { name } }")
    generated = anonymous.headers["x-correlation-id"]
    assert uuid.UUID(generated)


async def test_an_unexpected_exception_is_masked_with_an_error_id(
    stack: ApiStack,
    catalog: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    monkeypatch.setattr(stack.services.commands, "dispatch", broken)
    with caplog.at_level(logging.ERROR, logger="schema.errors"):
        response = await stack.post(
            'mutation { submitOrder(input: {orderId: "any"}) { __typename } }'
        )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    error_id = error["extensions"]["errorId"]
    assert error["message"] == f"Internal server error (error id {error_id})"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["path"] == ["submitOrder"]
    assert "hunter2" not in response.text

    (record,) = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert error_id in record.getMessage()


async def test_a_failing_read_is_masked_and_other_fields_still_answer(
    stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("internal detail")

    monkeypatch.setattr(stack.services.read_model, "find", broken)
    response = await stack.post("{ projections { name } orders { totalCount } }")
    body = response.json()
    assert body["data"] is None  # `orders` is non-null, so the whole data is null
    assert body["errors"][0]["message"].startswith("Internal server error (error id ")
    assert "internal detail" not in response.text
