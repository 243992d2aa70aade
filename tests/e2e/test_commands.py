"""The write side through the contract: optimistic concurrency, idempotency, every
expected failure as a union member (never GraphQL `errors`), and the remaining mutations."""

from __future__ import annotations

from typing import Any

from tests.e2e.client import (
    ADDRESS,
    Api,
    accepted,
    add_item,
    add_product,
    create_order,
    read_order,
    register_customer,
)


async def history_types(api: Api, order_id: str) -> list[str]:
    data = await api.execute(
        "query H($id: ID!) { orderHistory(id: $id) { type version } }", {"id": order_id}
    )
    events = data["orderHistory"]
    assert [event["version"] for event in events] == list(range(1, len(events) + 1))
    return [event["type"] for event in events]


async def draft_order(api: Api, uid: str, price: str = "3.00") -> tuple[str, str, str]:
    """(customer id, product sku, order id) of a fresh empty draft order."""
    customer_id = (await register_customer(api, uid))["customerId"]
    sku = f"p-{uid}"
    await add_product(api, sku, "Mug", price)
    order_id = f"o-{uid}"
    await create_order(api, order_id, customer_id)
    return customer_id, sku, order_id


def user_error(payload: dict[str, Any], typename: str, code: str) -> dict[str, Any]:
    assert payload["__typename"] == typename, payload
    assert payload["code"] == code, payload
    assert payload["message"], payload
    return payload


# ------------------------------------------------------------------ concurrency


async def test_stale_expected_version_is_a_concurrency_error(api: Api, uid: str) -> None:
    _, sku, order_id = await draft_order(api, uid)
    first = await add_item(api, order_id, sku, 1, expectedVersion=1)
    assert first["version"] == 2

    stale = await api.mutate(
        "addOrderItem",
        {"orderId": order_id, "productId": sku, "quantity": 5, "expectedVersion": 1},
    )
    error = user_error(stale, "ConcurrencyError", "CONCURRENCY")
    assert (error["expectedVersion"], error["actualVersion"]) == (1, 2)
    assert await history_types(api, order_id) == ["OrderCreated", "OrderItemAdded"]

    current = await add_item(api, order_id, sku, 5, expectedVersion=2)
    assert current["version"] == 3
    order = await read_order(api, order_id, current["consistencyToken"])
    assert order is not None
    assert order["items"][0]["quantity"] == 6, "the same product's lines merge"
    assert order["items"][0]["lineTotal"] == {"amount": "18.00", "currency": "USD"}


async def test_expected_version_ahead_is_a_concurrency_error_too(api: Api, uid: str) -> None:
    _, _, order_id = await draft_order(api, uid)
    ahead = await api.mutate(
        "setShippingAddress", {"orderId": order_id, "address": ADDRESS, "expectedVersion": 7}
    )
    error = user_error(ahead, "ConcurrencyError", "CONCURRENCY")
    assert (error["expectedVersion"], error["actualVersion"]) == (7, 1)


# ------------------------------------------------------------------ idempotency


async def test_same_idempotency_key_and_input_returns_the_first_result(api: Api, uid: str) -> None:
    customer_id = (await register_customer(api, uid))["customerId"]
    sku = f"p-{uid}"
    await add_product(api, sku, "Cup", "4.25")

    create = {"customerId": customer_id, "idempotencyKey": f"create-{uid}"}
    first = accepted(await api.mutate("createOrder", create), "OrderAccepted")
    again = accepted(await api.mutate("createOrder", create), "OrderAccepted")
    assert first["orderId"], "the server names the order when the client does not"
    assert (again["orderId"], again["version"]) == (first["orderId"], 1)
    order_id = first["orderId"]
    assert await history_types(api, order_id) == ["OrderCreated"]

    add = {"orderId": order_id, "productId": sku, "quantity": 2, "idempotencyKey": f"add-{uid}"}
    added = accepted(await api.mutate("addOrderItem", add), "OrderAccepted")
    retried = accepted(await api.mutate("addOrderItem", add), "OrderAccepted")
    assert (added["orderId"], added["version"]) == (retried["orderId"], retried["version"])
    assert added["version"] == 2
    assert await history_types(api, order_id) == ["OrderCreated", "OrderItemAdded"]
    order = await read_order(api, order_id, retried["consistencyToken"])
    assert order is not None
    assert order["items"][0]["quantity"] == 2
    assert order["total"]["amount"] == "9.35"

    reused = await api.mutate("addOrderItem", {**add, "quantity": 3})
    user_error(reused, "IdempotencyKeyReusedError", "IDEMPOTENCY_KEY_REUSED")
    reused_create = await api.mutate(
        "createOrder", {**create, "items": [{"productId": sku, "quantity": 1}]}
    )
    user_error(reused_create, "IdempotencyKeyReusedError", "IDEMPOTENCY_KEY_REUSED")
    assert await history_types(api, order_id) == ["OrderCreated", "OrderItemAdded"]


async def test_idempotent_customer_registration(api: Api, uid: str) -> None:
    register = {
        "name": "Cy",
        "email": f"cy-{uid}@example.com",
        "idempotencyKey": f"reg-{uid}",
    }
    first = accepted(await api.mutate("registerCustomer", register), "CustomerAccepted")
    again = accepted(await api.mutate("registerCustomer", register), "CustomerAccepted")
    assert (again["customerId"], again["version"]) == (first["customerId"], 1)
    other = await api.mutate("registerCustomer", {**register, "name": "Someone else"})
    user_error(other, "IdempotencyKeyReusedError", "IDEMPOTENCY_KEY_REUSED")


# -------------------------------------------------------------------- bad input


async def test_validation_errors_name_their_field(api: Api, uid: str) -> None:
    _, sku, order_id = await draft_order(api, uid)

    zero = await api.mutate("addOrderItem", {"orderId": order_id, "productId": sku, "quantity": 0})
    assert user_error(zero, "ValidationError", "VALIDATION")["field"] == "quantity"
    negative = await api.mutate(
        "addOrderItem", {"orderId": order_id, "productId": sku, "quantity": -2}
    )
    assert user_error(negative, "ValidationError", "VALIDATION")["field"] == "quantity"

    price = await api.mutate(
        "addProduct", {"productId": f"neg-{uid}", "name": "Bad", "price": "-1.00"}
    )
    assert user_error(price, "ValidationError", "VALIDATION")["field"] == "price"
    fraction = await api.mutate(
        "addProduct", {"productId": f"frac-{uid}", "name": "Bad", "price": "1.001"}
    )
    assert user_error(fraction, "ValidationError", "VALIDATION")["field"] == "price"
    garbage = await api.mutate(
        "addProduct", {"productId": f"nan-{uid}", "name": "Bad", "price": "abc"}
    )
    assert user_error(garbage, "ValidationError", "VALIDATION")["field"] == "price"

    email = await api.mutate(
        "registerCustomer", {"customerId": f"bad-{uid}", "name": "Bad", "email": "not-an-email"}
    )
    assert user_error(email, "ValidationError", "VALIDATION")["field"] == "email"

    country = await api.mutate(
        "setShippingAddress",
        {"orderId": order_id, "address": {**ADDRESS, "country": "Narnia"}},
    )
    assert user_error(country, "ValidationError", "VALIDATION")["field"] == "country"

    assert await history_types(api, order_id) == ["OrderCreated"]
    missing = await api.execute(
        "query P($a: ID!, $b: ID!, $c: ID!) { a: product(id: $a) { id } b: product(id: $b) { id }"
        " c: customer(id: $c) { id } }",
        {"a": f"neg-{uid}", "b": f"frac-{uid}", "c": f"bad-{uid}"},
    )
    assert missing == {"a": None, "b": None, "c": None}


async def test_unknown_entities_are_not_found_errors_with_their_id(api: Api, uid: str) -> None:
    customer_id, sku, order_id = await draft_order(api, uid)

    product = await api.mutate(
        "addOrderItem", {"orderId": order_id, "productId": f"nope-{uid}", "quantity": 1}
    )
    assert user_error(product, "NotFoundError", "NOT_FOUND")["id"] == f"nope-{uid}"

    order = await api.mutate(
        "addOrderItem", {"orderId": f"nope-{uid}", "productId": sku, "quantity": 1}
    )
    assert user_error(order, "NotFoundError", "NOT_FOUND")["id"] == f"nope-{uid}"

    submit = await api.mutate("submitOrder", {"orderId": f"gone-{uid}"})
    assert user_error(submit, "NotFoundError", "NOT_FOUND")["id"] == f"gone-{uid}"

    customer = await api.mutate(
        "createOrder", {"orderId": f"o2-{uid}", "customerId": f"ghost-{uid}"}
    )
    assert user_error(customer, "NotFoundError", "NOT_FOUND")["id"] == f"ghost-{uid}"

    rename = await api.mutate("renameCustomer", {"customerId": f"ghost-{uid}", "name": "X"})
    assert user_error(rename, "NotFoundError", "NOT_FOUND")["id"] == f"ghost-{uid}"

    price = await api.mutate("changeProductPrice", {"productId": f"nope-{uid}", "price": "1.00"})
    assert user_error(price, "NotFoundError", "NOT_FOUND")["id"] == f"nope-{uid}"

    remove = await api.mutate("removeOrderItem", {"orderId": order_id, "productId": sku})
    assert user_error(remove, "NotFoundError", "NOT_FOUND")["id"] == sku

    retry = (
        await api.execute(
            "mutation R($id: ID!) { retryDeadLetter(id: $id) {"
            " __typename ... on NotFoundError { code message id } } }",
            {"id": f"dl-{uid}"},
        )
    )["retryDeadLetter"]
    assert retry == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": retry["message"],
        "id": f"dl-{uid}",
    }
    assert customer_id


async def test_invalid_state_errors(api: Api, uid: str) -> None:
    customer_id, sku, order_id = await draft_order(api, uid)

    empty = await api.mutate("submitOrder", {"orderId": order_id})
    user_error(empty, "InvalidStateError", "INVALID_STATE")

    await add_item(api, order_id, sku, 1)
    no_address = await api.mutate("submitOrder", {"orderId": order_id})
    user_error(no_address, "InvalidStateError", "INVALID_STATE")

    again = await api.mutate("createOrder", {"orderId": order_id, "customerId": customer_id})
    user_error(again, "InvalidStateError", "INVALID_STATE")

    registered = await api.mutate(
        "registerCustomer",
        {"customerId": customer_id, "name": "Dup", "email": f"dup-{uid}@example.com"},
    )
    user_error(registered, "InvalidStateError", "INVALID_STATE")

    cancelled = accepted(await api.mutate("cancelOrder", {"orderId": order_id, "reason": "oops"}))
    assert cancelled["version"] == 3
    late = await api.mutate("addOrderItem", {"orderId": order_id, "productId": sku, "quantity": 1})
    user_error(late, "InvalidStateError", "INVALID_STATE")
    assert await history_types(api, order_id) == [
        "OrderCreated",
        "OrderItemAdded",
        "OrderCancelled",
    ]
    order = await read_order(api, order_id, cancelled["consistencyToken"])
    assert order is not None and order["status"] == "CANCELLED"


async def test_a_second_customer_with_the_same_email_is_refused(api: Api, uid: str) -> None:
    await register_customer(api, uid)
    second = await api.mutate(
        "registerCustomer",
        {"customerId": f"c2-{uid}", "name": "Twin", "email": f"{uid.upper()}@example.com"},
    )
    assert second["__typename"] in ("ValidationError", "InvalidStateError"), second
    assert second["message"]


# ------------------------------------------------------- the remaining mutations


async def test_remove_item_rename_customer_reprice_and_restock(api: Api, uid: str) -> None:
    customer_id, sku, order_id = await draft_order(api, uid, price="5.00")
    other = f"q-{uid}"
    await add_product(api, other, "Plate", "2.00", stock=4)
    await add_item(api, order_id, sku, 2)
    await add_item(api, order_id, other, 1)

    removed = accepted(
        await api.mutate(
            "removeOrderItem", {"orderId": order_id, "productId": other, "expectedVersion": 3}
        )
    )
    assert removed["version"] == 4

    renamed = accepted(
        await api.mutate(
            "renameCustomer",
            {"customerId": customer_id, "name": f"Renamed {uid}", "expectedVersion": 1},
            extra="customer { name version }",
        ),
        "CustomerAccepted",
    )
    assert renamed["version"] == 2
    assert renamed["customer"] == {"name": f"Renamed {uid}", "version": 2}

    repriced = accepted(
        await api.mutate(
            "changeProductPrice",
            {"productId": sku, "price": "6.50", "expectedVersion": 1},
            extra="product { price { amount currency } version }",
        ),
        "ProductAccepted",
    )
    assert repriced["product"] == {"price": {"amount": "6.50", "currency": "USD"}, "version": 2}

    restocked = accepted(
        await api.mutate(
            "restockProduct",
            {"productId": other, "quantity": 6},
            extra="product { stockOnHand stockAvailable }",
        ),
        "ProductAccepted",
    )
    assert restocked["product"] == {"stockOnHand": 10, "stockAvailable": 10}

    # Wait until the projection has passed the last write, then read the order.
    order = await read_order(api, order_id, restocked["consistencyToken"])
    assert order is not None
    assert order["version"] == 4
    assert order["customerName"] == f"Renamed {uid}", "a rename reaches the customer's orders"
    assert order["customer"]["name"] == f"Renamed {uid}"
    [item] = order["items"]
    assert item["productId"] == sku
    assert item["unitPrice"]["amount"] == "5.00", "the price when the item was added"
    assert item["lineTotal"]["amount"] == "10.00"
    assert order["subtotal"]["amount"] == "10.00"
    assert order["total"]["amount"] == "11.00"

    # A line added after the price change takes the new catalog price.
    await add_item(api, order_id, other, 1)
    added = accepted(
        await api.mutate(
            "addOrderItem",
            {"orderId": order_id, "productId": sku, "quantity": 1},
            extra="order { items { productId quantity unitPrice { amount } } }",
        )
    )
    lines = {item["productId"]: item for item in added["order"]["items"]}
    assert lines[sku]["quantity"] == 3
    assert lines[sku]["unitPrice"]["amount"] == "6.50"
    assert lines[other]["unitPrice"]["amount"] == "2.00"
