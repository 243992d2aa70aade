"""A subscriber to `orderUpdated` sees each fulfillment step as it happens: `orders dev`
with gateways that take 0.3 s a call, so every step is its own write of the order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.client import (
    ADDRESS,
    Api,
    accepted,
    add_item,
    add_product,
    create_order,
    register_customer,
)
from tests.e2e.conftest import embedded_stack
from tests.e2e.test_outages import Subscription

ORDER_STEPS = """
subscription($id: ID!) {
  orderUpdated(id: $id) { id version status fulfillment { state steps { name status } } }
}
"""


async def until(
    watching: Subscription, condition: Callable[[list[dict]], bool], seconds: float = 30
) -> None:
    deadline = time.monotonic() + seconds
    while not condition(watching.results):
        if watching.error is not None:
            raise watching.error
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {watching.results}")
        await asyncio.sleep(0.05)


def steps_of(result: dict) -> tuple[str, ...]:
    return tuple(step["status"] for step in result["orderUpdated"]["fulfillment"]["steps"])


async def test_a_subscriber_sees_each_step_as_it_happens(tmp_path: Path, uid: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    slow = {"GATEWAY_LATENCY_SECONDS": "0.3"}
    async with (
        embedded_stack(tmp_path, data_dir, slow) as stack,
        Api.connect(stack.graphql_url) as api,
    ):
        customer_id = (await register_customer(api, uid))["customerId"]
        await add_product(api, f"sku-{uid}", "Lamp", "20.00", stock=5)
        order_id = f"o-{uid}"
        await create_order(api, order_id, customer_id, shippingAddress=ADDRESS)
        await add_item(api, order_id, f"sku-{uid}", 1)
        watching = Subscription(
            stack.graphql_url.replace("http", "ws", 1), ORDER_STEPS, {"id": order_id}
        )
        try:
            await watching.started.wait()
            await until(watching, lambda results: bool(results))  # the current version
            accepted(await api.mutate("submitOrder", {"orderId": order_id}), "OrderAccepted")
            await until(
                watching,
                lambda results: (
                    bool(results) and results[-1]["orderUpdated"]["status"] == "CONFIRMED"
                ),
            )
        finally:
            await watching.close()

    seen = [
        steps_of(result)
        for result in watching.results
        if result["orderUpdated"]["status"] != "DRAFT"
    ]
    assert seen[0] == ("PENDING", "PENDING", "PENDING")
    assert ("DONE", "PENDING", "PENDING") in seen  # stock reserved, payment under way
    assert ("DONE", "DONE", "PENDING") in seen  # charged, shipment under way
    assert seen[-1] == ("DONE", "DONE", "DONE")
    assert watching.results[-1]["orderUpdated"]["status"] == "CONFIRMED"
