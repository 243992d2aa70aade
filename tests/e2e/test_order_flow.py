"""The whole order flow through the public contract, as a frontend drives it: customer,
products, order, items, address, submit; then the read side, the history and the past."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.e2e.client import (
    ADDRESS,
    ORDER_QUERY,
    Api,
    accepted,
    add_product,
    read_order,
    register_customer,
)

# Prices chosen so that the subtotal of the first two lines is 39.40 and the final tax,
# 10 % of 39.45 = 3.945, shows half-up rounding (banker's rounding would give 3.94).
PRICES = {"a": "12.35", "b": "4.90", "c": "0.05"}
QUANTITIES = {"a": 2, "b": 3, "c": 1}
EVENT_TYPES = [
    "OrderCreated",
    "OrderItemAdded",
    "OrderItemAdded",
    "OrderItemAdded",
    "ShippingAddressSet",
    "OrderSubmitted",
]


@dataclass
class PlacedOrder:
    order_id: str
    customer_id: str
    skus: dict[str, str]
    correlation_ids: list[str]  # the X-Correlation-ID sent with the mutation of version n+1
    tokens: list[str]
    draft: dict  # the order read after its last item, before address and submit


async def place_order(api: Api, uid: str) -> PlacedOrder:
    customer = await register_customer(api, uid, name=f"Ada {uid}")
    customer_id = customer["customerId"]
    assert customer_id == f"c-{uid}"
    assert customer["version"] == 1
    skus = {key: f"sku-{key}-{uid}" for key in PRICES}
    for key, price in PRICES.items():
        product = await add_product(api, skus[key], f"Widget {key.upper()} {uid}", price)
        assert product["productId"] == skus[key]
        assert product["version"] == 1

    order_id = f"o-{uid}"
    correlation_ids = [f"corr-{uid}-{n}" for n in range(1, 7)]
    tokens = []

    created = accepted(
        await api.mutate(
            "createOrder",
            {"orderId": order_id, "customerId": customer_id},
            correlation_id=correlation_ids[0],
        ),
        "OrderAccepted",
    )
    assert (created["orderId"], created["version"]) == (order_id, 1)
    tokens.append(created["consistencyToken"])

    for n, key in enumerate(PRICES, start=2):
        added = accepted(
            await api.mutate(
                "addOrderItem",
                {"orderId": order_id, "productId": skus[key], "quantity": QUANTITIES[key]},
                correlation_id=correlation_ids[n - 1],
            ),
            "OrderAccepted",
        )
        assert (added["orderId"], added["version"]) == (order_id, n)
        tokens.append(added["consistencyToken"])

    draft = await read_order(api, order_id, tokens[-1])

    addressed = accepted(
        await api.mutate(
            "setShippingAddress",
            {"orderId": order_id, "address": ADDRESS, "expectedVersion": 4},
            correlation_id=correlation_ids[4],
        ),
        "OrderAccepted",
    )
    assert addressed["version"] == 5
    tokens.append(addressed["consistencyToken"])

    submitted = accepted(
        await api.mutate(
            "submitOrder",
            {"orderId": order_id, "expectedVersion": 5},
            correlation_id=correlation_ids[5],
        ),
        "OrderAccepted",
    )
    assert submitted["version"] == 6
    tokens.append(submitted["consistencyToken"])
    return PlacedOrder(order_id, customer_id, skus, correlation_ids, tokens, draft)


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


async def test_whole_order_flow_with_exact_totals(api: Api, uid: str) -> None:
    placed = await place_order(api, uid)

    draft = placed.draft
    assert draft is not None, "order(id, consistencyToken) did not find the order just written"
    assert draft["status"] == "DRAFT"
    assert draft["version"] == 4
    assert draft["customerId"] == placed.customer_id
    assert draft["customer"] == {"id": placed.customer_id, "name": f"Ada {uid}"}
    assert draft["customerName"] == f"Ada {uid}"
    assert draft["items"] == [
        {
            "productId": placed.skus[key],
            "productName": f"Widget {key.upper()} {uid}",
            "quantity": QUANTITIES[key],
            "unitPrice": money(PRICES[key]),
            "lineTotal": money(line_total),
            "product": {
                "id": placed.skus[key],
                "name": f"Widget {key.upper()} {uid}",
                "stockAvailable": 100,
            },
        }
        for key, line_total in (("a", "24.70"), ("b", "14.70"), ("c", "0.05"))
    ]
    assert draft["subtotal"] == money("39.45")
    assert draft["tax"] == money("3.95"), "tax is 10 % rounded half-up to the cent"
    assert draft["total"] == money("43.40")
    assert draft["shippingAddress"] is None

    order = await read_order(api, placed.order_id, placed.tokens[-1])
    assert order is not None
    assert order["status"] in ("SUBMITTED", "CONFIRMED")
    assert order["version"] >= 6
    assert order["shippingAddress"] == ADDRESS
    assert (order["subtotal"], order["tax"], order["total"]) == (
        money("39.45"),
        money("3.95"),
        money("43.40"),
    )
    assert [item["productId"] for item in order["items"]] == list(placed.skus.values())
    created_at = datetime.fromisoformat(order["createdAt"])
    updated_at = datetime.fromisoformat(order["updatedAt"])
    assert created_at.tzinfo is not None and updated_at.tzinfo is not None
    assert created_at <= updated_at


async def test_first_two_lines_total_39_40(api: Api, uid: str) -> None:
    """The brief's figure: 2 x 12.35 + 3 x 4.90 = 39.40, tax 3.94, total 43.34."""
    customer = await register_customer(api, uid)
    await add_product(api, f"a-{uid}", "A", "12.35")
    await add_product(api, f"b-{uid}", "B", "4.90")
    order_id = f"o-{uid}"
    created = accepted(
        await api.mutate(
            "createOrder",
            {
                "orderId": order_id,
                "customerId": customer["customerId"],
                "items": [
                    {"productId": f"a-{uid}", "quantity": 2},
                    {"productId": f"b-{uid}", "quantity": 3},
                ],
                "shippingAddress": ADDRESS,
            },
        )
    )
    assert created["version"] == 4  # OrderCreated, 2 x OrderItemAdded, ShippingAddressSet
    order = await read_order(api, order_id, created["consistencyToken"])
    assert order is not None
    assert order["subtotal"] == money("39.40")
    assert order["tax"] == money("3.94")
    assert order["total"] == money("43.34")
    assert Decimal(order["total"]["amount"]) == Decimal("43.34")


async def test_accepted_payload_resolves_its_order_itself(api: Api, uid: str) -> None:
    """`OrderAccepted.order` is read-your-writes without passing the token around."""
    customer = await register_customer(api, uid)
    await add_product(api, f"p-{uid}", "Gadget", "7.10")
    order_id = f"o-{uid}"
    accepted(
        await api.mutate("createOrder", {"orderId": order_id, "customerId": customer["customerId"]})
    )
    payload = accepted(
        await api.mutate(
            "addOrderItem",
            {"orderId": order_id, "productId": f"p-{uid}", "quantity": 3},
            extra="order { id version items { productId quantity lineTotal { amount } } }",
        )
    )
    assert payload["version"] == 2
    assert payload["order"] == {
        "id": order_id,
        "version": 2,
        "items": [{"productId": f"p-{uid}", "quantity": 3, "lineTotal": {"amount": "21.30"}}],
    }

    registered = accepted(
        await api.mutate(
            "registerCustomer",
            {"customerId": f"c2-{uid}", "name": "Bo", "email": f"bo-{uid}@example.com"},
            extra="customer { id name email orderCount version }",
        ),
        "CustomerAccepted",
    )
    assert registered["customer"] == {
        "id": f"c2-{uid}",
        "name": "Bo",
        "email": f"bo-{uid}@example.com",
        "orderCount": 0,
        "version": 1,
    }
    product = accepted(
        await api.mutate(
            "addProduct",
            {"productId": f"q-{uid}", "name": "Thing", "price": "1.50", "initialStock": 7},
            extra="product { id name price { amount currency } stockOnHand stockAvailable }",
        ),
        "ProductAccepted",
    )
    assert product["product"] == {
        "id": f"q-{uid}",
        "name": "Thing",
        "price": {"amount": "1.50", "currency": "USD"},
        "stockOnHand": 7,
        "stockAvailable": 7,
    }


HISTORY_FIELDS = """
    eventId streamId type version position occurredAt data
    correlationId causationId userId schemaVersion
"""


async def test_order_history_and_order_history_field(api: Api, uid: str) -> None:
    placed = await place_order(api, uid)
    # The fulfillment saga appends OrderConfirmed: read both histories once it has.
    deadline = time.monotonic() + 30
    # (Wait for CONFIRMED itself: a read model still at DRAFT is not SUBMITTED either.)
    while (await read_order(api, placed.order_id))["status"] != "CONFIRMED":  # type: ignore[index]
        assert time.monotonic() < deadline, "the order was not confirmed"
        await asyncio.sleep(0.05)
    data = await api.execute(
        f"""
        query History($id: ID!, $token: String) {{
          orderHistory(id: $id) {{ {HISTORY_FIELDS} }}
          order(id: $id, consistencyToken: $token) {{ history {{ {HISTORY_FIELDS} }} }}
        }}
        """,
        {"id": placed.order_id, "token": placed.tokens[-1]},
    )
    history = data["orderHistory"]
    ours = history[: len(EVENT_TYPES)]
    assert [event["type"] for event in ours] == EVENT_TYPES
    assert [event["version"] for event in history] == list(range(1, len(history) + 1))
    assert {event["streamId"] for event in history} == {f"Order-{placed.order_id}"}
    assert [event["correlationId"] for event in ours] == placed.correlation_ids
    positions = [int(event["position"]) for event in history]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert len({event["eventId"] for event in history}) == len(history)
    for event in history:
        assert event["schemaVersion"] >= 1
        assert datetime.fromisoformat(event["occurredAt"]).tzinfo is not None
        assert isinstance(event["data"], dict)
    # `data` is the stored payload (its key style is the event store's own).
    assert placed.customer_id in ours[0]["data"].values()
    assert placed.skus["a"] in ours[1]["data"].values()
    assert ours[1]["data"]["quantity"] == 2
    # Order.history is the same list, read from the event store.
    assert data["order"]["history"] == history


async def test_correlation_id_is_generated_when_not_sent(api: Api, uid: str) -> None:
    customer = await register_customer(api, uid)
    accepted(
        await api.mutate(
            "createOrder", {"orderId": f"o-{uid}", "customerId": customer["customerId"]}
        )
    )
    data = await api.execute(
        "query H($id: ID!) { orderHistory(id: $id) { type correlationId } }", {"id": f"o-{uid}"}
    )
    [event] = data["orderHistory"]
    assert event["type"] == "OrderCreated"
    assert event["correlationId"]


ORDER_AT = """
query OrderAt($id: ID!, $version: Int, $at: DateTime) {
  orderAt(id: $id, version: $version, at: $at) {
    id status version
    items { productId quantity lineTotal { amount } }
    subtotal { amount } tax { amount } total { amount }
    shippingAddress { city }
  }
}
"""


async def test_order_at_a_version_and_at_an_instant(api: Api, uid: str) -> None:
    placed = await place_order(api, uid)

    at_two = (await api.execute(ORDER_AT, {"id": placed.order_id, "version": 2}))["orderAt"]
    assert at_two == {
        "id": placed.order_id,
        "status": "DRAFT",
        "version": 2,
        "items": [{"productId": placed.skus["a"], "quantity": 2, "lineTotal": {"amount": "24.70"}}],
        "subtotal": {"amount": "24.70"},
        "tax": {"amount": "2.47"},
        "total": {"amount": "27.17"},
        "shippingAddress": None,
    }

    at_five = (await api.execute(ORDER_AT, {"id": placed.order_id, "version": 5}))["orderAt"]
    assert at_five["version"] == 5
    assert at_five["status"] == "DRAFT"
    assert at_five["shippingAddress"] == {"city": ADDRESS["city"]}
    assert at_five["total"] == {"amount": "43.40"}

    history = (
        await api.execute(
            "query H($id: ID!) { orderHistory(id: $id) { version occurredAt } }",
            {"id": placed.order_id},
        )
    )["orderHistory"]
    times = {event["version"]: datetime.fromisoformat(event["occurredAt"]) for event in history}
    # Halfway between the 3rd and the 4th event: the order as it was after its 3rd.
    between = times[3] + (times[4] - times[3]) / 2
    at_instant = (await api.execute(ORDER_AT, {"id": placed.order_id, "at": between.isoformat()}))[
        "orderAt"
    ]
    assert at_instant["version"] == 3
    assert [item["productId"] for item in at_instant["items"]] == [
        placed.skus["a"],
        placed.skus["b"],
    ]
    assert at_instant["subtotal"] == {"amount": "39.40"}

    before = times[1] - timedelta(seconds=1)
    at_before = await api.execute(ORDER_AT, {"id": placed.order_id, "at": before.isoformat()})
    assert at_before["orderAt"] is None, "before its first event the order did not exist"

    latest = (await api.execute(ORDER_AT, {"id": placed.order_id, "version": len(history)}))[
        "orderAt"
    ]
    assert latest["version"] == len(history)
    assert latest["status"] in ("SUBMITTED", "CONFIRMED")


async def test_order_at_unknown_order_is_null(api: Api, uid: str) -> None:
    data = await api.execute(ORDER_AT, {"id": f"missing-{uid}", "version": 1})
    assert data["orderAt"] is None


async def test_order_at_needs_a_version_or_an_instant(api: Api, uid: str) -> None:
    from gql.transport.exceptions import TransportQueryError

    with pytest.raises(TransportQueryError) as raised:
        await api.execute(ORDER_AT, {"id": f"o-{uid}"})
    assert raised.value.errors, "a GraphQL error names the missing argument"
    message = raised.value.errors[0]["message"]
    assert "version" in message and "at" in message, message


async def test_unknown_ids_read_as_null(api: Api, uid: str) -> None:
    data = await api.execute(
        """
        query Missing($id: ID!) {
          order(id: $id) { id }
          customer(id: $id) { id }
          product(id: $id) { id }
          orderHistory(id: $id) { eventId }
        }
        """,
        {"id": f"missing-{uid}"},
    )
    assert data == {"order": None, "customer": None, "product": None, "orderHistory": []}


async def test_order_query_by_id_with_items_and_customer(api: Api, uid: str) -> None:
    """The query the HTTP benchmark measures, answered in full."""
    placed = await place_order(api, uid)
    data = await api.execute(ORDER_QUERY, {"id": placed.order_id, "token": placed.tokens[-1]})
    order = data["order"]
    assert order["id"] == placed.order_id
    assert order["customer"]["name"] == f"Ada {uid}"
    assert len(order["items"]) == 3
