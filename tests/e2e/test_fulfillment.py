"""Fulfillment over GraphQL on both stacks (`orders dev`; api + projector + saga) in both
saga modes (orchestration: the session's stacks; choreography: a stack of each kind with
SAGA_MODE=choreography, started once for this module): a submitted order is confirmed with
its three steps done, stock and lifetime value follow; an order the stock cannot cover is
rejected at ReserveInventory and nothing is charged."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.e2e.client import (
    ADDRESS,
    Api,
    accepted,
    add_item,
    add_product,
    create_order,
    register_customer,
)
from tests.e2e.conftest import started_stack
from tests.e2e.processes import Stack


@pytest.fixture(scope="module")
async def choreography_stack(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A stack of the same kind as `stack`, its saga in choreography."""
    logs = tmp_path_factory.mktemp(f"e2e-choreography-{stack.name}")
    async with started_stack(stack.name, logs, {"SAGA_MODE": "choreography"}) as running:
        yield running


@dataclass(frozen=True)
class SagaStack:
    api: Api
    stack: Stack
    mode: str

    async def stream_types(self, stream_id: str) -> list[str]:
        """The types of a stream's events, read from the stack's event store."""
        store = self.stack.event_store
        if store.startswith("postgres"):
            connection = await asyncpg.connect(store)
            try:
                rows = await connection.fetch(
                    "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", stream_id
                )
            finally:
                await connection.close()
            return [row["type"] for row in rows]
        with sqlite3.connect(store) as connection:
            query = "SELECT type FROM events WHERE stream_id = ? ORDER BY version"
            return [row[0] for row in connection.execute(query, (stream_id,))]


@pytest.fixture(params=["orchestration", "choreography"])
async def saga(
    request: pytest.FixtureRequest, stack: Stack, choreography_stack: Stack
) -> AsyncIterator[SagaStack]:
    """A client of a stack of `stack`'s kind whose saga runs in the mode of the parameter."""
    running = stack if request.param == "orchestration" else choreography_stack
    running.check_running()
    async with Api.connect(running.graphql_url) as client:
        yield SagaStack(client, running, request.param)


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


async def projections_caught_up(api: Api) -> bool:
    """Every projection has applied the log up to its head (the saga's last events too)."""
    statuses = (await api.execute("{ projections { lag } }"))["projections"]
    return all(status["lag"] == 0 for status in statuses)


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
            and await projections_caught_up(api)
        ):
            # Read again: the product and customer documents come from projections that
            # may have been behind the order's when the loop read them.
            return await api.execute(FULFILLMENT_QUERY, ids)
        if time.monotonic() > deadline:
            raise AssertionError(f"order {ids['order']} not settled within {seconds} s: {data}")
        await asyncio.sleep(0.1)


async def test_an_order_is_confirmed_with_all_three_steps_done(saga: SagaStack, uid: str) -> None:
    api = saga.api
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
    # Choreography: shipping, a participant of its own, recorded the shipment on its stream.
    shipped = await saga.stream_types(f"Shipping-{ids['order']}")
    assert shipped == (["ShipmentCreated"] if saga.mode == "choreography" else [])


async def test_an_order_beyond_the_stock_is_rejected_before_any_payment(
    saga: SagaStack, uid: str
) -> None:
    api = saga.api
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
