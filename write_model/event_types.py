"""The registry of every domain event type and the upcasters of their older payloads.

Schema versions: payloads were stored snake_case (`order_id`) up to each type's
`_SNAKE_CASE_UNTIL` version, camelCase (`orderId`) from the next one on. OrderItemAdded's
version 1 held the unit price as a bare USD amount; version 2 made it Money.
"""

from __future__ import annotations

import typing
from typing import Any

from write_model.domain import choreography, customer, fulfillment, order, product
from write_model.registry import EventTypeRegistry, camel_case_keys

# Types that came after payloads went camelCase: version 1 is camelCase, nothing to upcast.
CAMEL_CASE_FROM_THE_START: tuple[type, ...] = (
    product.ReservedStockShipped,
    product.ShippedStockReturned,
    *typing.get_args(fulfillment.FulfillmentEvent),
    *typing.get_args(choreography.ParticipantEvent),
)

EVENT_TYPES: tuple[type, ...] = (
    *typing.get_args(order.OrderEvent),
    *typing.get_args(customer.CustomerEvent),
    *typing.get_args(product.ProductEvent),
    customer.CustomerEmailReserved,
    *typing.get_args(fulfillment.FulfillmentEvent),
    *typing.get_args(choreography.ParticipantEvent),
)

_SNAKE_CASE_UNTIL: dict[type, int] = {order.OrderItemAdded: 2}  # every other type: version 1


def _v1_order_item_added(data: dict[str, Any]) -> dict[str, Any]:
    # Schema version 1 stored the unit price as a bare amount; every catalog price was USD.
    return {**data, "unit_price": {"amount": data["unit_price"], "currency": "USD"}}


def build_registry() -> EventTypeRegistry:
    registry = EventTypeRegistry()
    for cls in EVENT_TYPES:
        if cls in CAMEL_CASE_FROM_THE_START:
            registry.register(cls)
            continue
        snake_case_until = _SNAKE_CASE_UNTIL.get(cls, 1)
        registry.register(cls, schema_version=snake_case_until + 1)
        registry.add_upcaster(cls.__name__, snake_case_until, camel_case_keys)
    registry.add_upcaster("OrderItemAdded", 1, _v1_order_item_added)
    return registry
