"""Hostile strings and oversized values in mutations and event-store reads, on the real
stores: each is a ValidationError naming the field (or a BAD_USER_INPUT error for a read),
never an INTERNAL_SERVER_ERROR, and nothing is appended."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.graphql_stack import ApiStack, api_stack
from tests.integration.test_graphql_mutations import (
    ADDRESS,
    CUSTOMER_RESULT,
    ORDER_RESULT,
    PRODUCT_RESULT,
    mutate,
)

pytestmark = [pytest.mark.postgres, pytest.mark.mongo]

NUL, BELL, RIGHT_TO_LEFT_OVERRIDE = "\u0000", "\u0007", "\u202e"


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[ApiStack]:
    async with api_stack() as built:
        yield built


@pytest.fixture
async def customer_id(stack: ApiStack) -> str:
    tag = uuid.uuid4().hex[:8]
    registered = await mutate(
        stack,
        "registerCustomer",
        {"customerId": f"c-{tag}", "name": "Ada", "email": f"{tag}@example.com"},
        CUSTOMER_RESULT,
    )
    assert registered["__typename"] == "CustomerAccepted"
    return f"c-{tag}"


async def refused(stack: ApiStack, mutation: str, input: dict[str, Any], result: str) -> str:
    """The field a refused mutation names; the event log did not move."""
    before = await stack.services.events.head_position()
    answer = await mutate(stack, mutation, input, result)
    assert answer["__typename"] == "ValidationError", answer
    assert answer["code"] == "VALIDATION"
    assert await stack.services.events.head_position() == before
    return answer["field"]


async def test_control_characters_are_refused_in_every_string(
    stack: ApiStack, customer_id: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    customer = {"name": "Ada", "email": f"{tag}@example.com"}
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("registerCustomer", {**customer, "name": f"A{NUL}da"}, CUSTOMER_RESULT, "name"),
        ("registerCustomer", {**customer, "name": f"A{BELL}da"}, CUSTOMER_RESULT, "name"),
        ("registerCustomer", {**customer, "email": f"a{NUL}@x.com"}, CUSTOMER_RESULT, "email"),
        (
            "registerCustomer",
            {**customer, "customerId": f"c{NUL}{tag}"},
            CUSTOMER_RESULT,
            "customerId",
        ),
        (
            "renameCustomer",
            {"customerId": customer_id, "name": f"Eve{RIGHT_TO_LEFT_OVERRIDE}"},
            CUSTOMER_RESULT,
            "name",
        ),
        (
            "addProduct",
            {"productId": f"p-{tag}", "name": f"Pen{NUL}", "price": "1.00"},
            PRODUCT_RESULT,
            "name",
        ),
        (
            "addProduct",
            {"productId": f"p-{tag}", "name": "Pen", "price": "1.00", "currency": f"US{NUL}"},
            PRODUCT_RESULT,
            "currency",
        ),
        (
            "createOrder",
            {"customerId": customer_id, "shippingAddress": {**ADDRESS, "line1": f"1{NUL}"}},
            ORDER_RESULT,
            "shippingAddress.line1",
        ),
        (
            "createOrder",
            {"customerId": customer_id, "shippingAddress": {**ADDRESS, "city": "Spring\nfield"}},
            ORDER_RESULT,
            "shippingAddress.city",
        ),
        (
            "createOrder",
            {"customerId": customer_id, "items": [{"productId": f"p{NUL}", "quantity": 1}]},
            ORDER_RESULT,
            "productId",
        ),
        (
            "cancelOrder",
            {"orderId": f"o-{tag}", "reason": f"changed{NUL}mind"},
            ORDER_RESULT,
            "reason",
        ),
        (
            "createOrder",
            {"customerId": customer_id, "idempotencyKey": f"k{NUL}{tag}"},
            ORDER_RESULT,
            "idempotencyKey",
        ),
    ]
    for mutation, input, result, field in cases:
        assert await refused(stack, mutation, input, result) == field, (mutation, input)


async def test_free_text_keeps_line_breaks_and_tabs(stack: ApiStack, customer_id: str) -> None:
    created = await mutate(stack, "createOrder", {"customerId": customer_id}, ORDER_RESULT)
    cancelled = await mutate(
        stack,
        "cancelOrder",
        {"orderId": created["orderId"], "reason": "changed my mind:\n\tno longer needed"},
        ORDER_RESULT,
    )
    assert cancelled["__typename"] == "OrderAccepted", cancelled


async def test_oversized_values_are_refused(stack: ApiStack, customer_id: str) -> None:
    created = await mutate(stack, "createOrder", {"customerId": customer_id}, ORDER_RESULT)
    tag = uuid.uuid4().hex[:8]
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (
            "cancelOrder",
            {"orderId": created["orderId"], "reason": "x" * 1001},
            ORDER_RESULT,
            "reason",
        ),
        (
            "createOrder",
            {
                "customerId": customer_id,
                "items": [{"productId": f"p-{tag}", "quantity": 1}] * 101,
            },
            ORDER_RESULT,
            "items",
        ),
        (
            "createOrder",
            {"customerId": customer_id, "idempotencyKey": "k" * 129},
            ORDER_RESULT,
            "idempotencyKey",
        ),
        (
            "createOrder",
            {"customerId": customer_id, "idempotencyKey": ""},
            ORDER_RESULT,
            "idempotencyKey",
        ),
        (
            "registerCustomer",
            {"name": "Ada", "email": "a" * 250 + "@example.com"},
            CUSTOMER_RESULT,
            "email",
        ),
    ]
    for mutation, input, result, field in cases:
        assert await refused(stack, mutation, input, result) == field, (mutation, field)


async def test_event_store_reads_refuse_ids_no_command_could_write(stack: ApiStack) -> None:
    for query in (
        "query($id: ID!) { orderHistory(id: $id) { type } }",
        "query($id: ID!) { orderAt(id: $id, version: 1) { id } }",
    ):
        response = await stack.post(query, {"id": f"o{NUL}1"})
        assert response.status_code == 200
        body = response.json()
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["message"].startswith("id must be 1-100 letters")


async def test_prices_are_ascii_decimals_in_a_currency_kept_to_the_cent(stack: ApiStack) -> None:
    tag = uuid.uuid4().hex[:8]
    product = {"productId": f"p-{tag}", "name": "Pen"}
    for price in ["\u0661\u0662\u0663", "1_000", "1e3", "\uff15"]:
        input = {**product, "price": price}
        assert await refused(stack, "addProduct", input, PRODUCT_RESULT) == "price", price
    for currency in ["JPY", "ZZZ"]:
        input = {**product, "price": "1.00", "currency": currency}
        assert await refused(stack, "addProduct", input, PRODUCT_RESULT) == "currency"
    added = await mutate(stack, "addProduct", {**product, "price": "1000.50"}, PRODUCT_RESULT)
    assert added["__typename"] == "ProductAccepted", added
