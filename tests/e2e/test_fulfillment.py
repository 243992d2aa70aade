"""Fulfillment over GraphQL on both stacks (`orders dev`; api + projector + saga): a
submitted order is confirmed with its three steps done, stock and lifetime value follow;
an order the stock cannot cover is rejected at ReserveInventory and nothing is charged."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.e2e.client import (
    ADDRESS,
    Api,
    accepted,
    add_item,
    add_product,
    create_order,
    register_customer,
)

FULFILLMENT_QUERY = """
query Fulfilled($order: ID!, $product: ID!, $customer: ID!) {
  order(id: $order) {
    status
    fulfillment { state reason steps { name status detail updatedAt } }
  }
  product(id: $product) { stockOnHand stockReserved stockAvailable }
  customer(id: $customer) { lifetimeValue { amount currency } }
}
"""


async def submitted_order(api: Api, uid: str, quantity: int, stock: int) -> dict[str, str]:
    customer_id = (await register_customer(api, uid))["customerId"]
    sku = f"sku-{uid}"
    await add_product(api, sku, f"Lamp {uid}", "20.00", stock=stock)
    order_id = f"o-{uid}"
    await create_order(api, order_id, customer_id, shippingAddress=ADDRESS)
    await add_item(api, order_id, sku, quantity)
    accepted(await api.mutate("submitOrder", {"orderId": order_id}), "OrderAccepted")
    return {"order": order_id, "product": sku, "customer": customer_id}


async def settled(api: Api, ids: dict[str, str], seconds: float = 30.0) -> dict[str, Any]:
    """The order, its product and customer once the order left SUBMITTED and the saga ended."""
    deadline = time.monotonic() + seconds
    while True:
        data = await api.execute(FULFILLMENT_QUERY, ids)
        order = data["order"]  # None until the projector has written it
        if (
            order is not None
            and order["status"] != "SUBMITTED"
            and order["fulfillment"]["state"] in ("COMPLETED", "FAILED")
        ):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"order {ids['order']} not settled within {seconds} s: {data}")
        await asyncio.sleep(0.1)


async def test_an_order_is_confirmed_with_all_three_steps_done(api: Api, uid: str) -> None:
    ids = await submitted_order(api, uid, quantity=3, stock=10)

    data = await settled(api, ids)

    order = data["order"]
    assert order["status"] == "CONFIRMED"
    assert order["fulfillment"]["state"] == "COMPLETED"
    assert [(s["name"], s["status"]) for s in order["fulfillment"]["steps"]] == [
        ("ReserveInventory", "DONE"),
        ("ProcessPayment", "DONE"),
        ("CreateShipment", "DONE"),
    ]
    assert all(step["updatedAt"] for step in order["fulfillment"]["steps"])
    assert order["fulfillment"]["steps"][1]["detail"].startswith("charge-")
    assert data["product"] == {"stockOnHand": 7, "stockReserved": 0, "stockAvailable": 7}
    # 3 x 20.00 plus 10 % tax.
    assert data["customer"]["lifetimeValue"] == {"amount": "66.00", "currency": "USD"}


async def test_an_order_beyond_the_stock_is_rejected_before_any_payment(api: Api, uid: str) -> None:
    ids = await submitted_order(api, uid, quantity=5, stock=2)

    data = await settled(api, ids)

    order = data["order"]
    assert order["status"] == "REJECTED"
    assert order["fulfillment"]["state"] == "FAILED"
    assert "insufficient stock" in order["fulfillment"]["reason"]
    assert [(s["name"], s["status"]) for s in order["fulfillment"]["steps"]] == [
        ("ReserveInventory", "FAILED"),
        ("ProcessPayment", "PENDING"),
        ("CreateShipment", "PENDING"),
    ]
    assert data["product"] == {"stockOnHand": 2, "stockReserved": 0, "stockAvailable": 2}
    assert data["customer"]["lifetimeValue"]["amount"] in ("0", "0.00")
