"""The registry of every domain event type and the upcasters of their older payloads."""

from __future__ import annotations

import typing
from typing import Any

from write_model.domain import customer, order, product
from write_model.registry import EventTypeRegistry


def _v1_order_item_added(data: dict[str, Any]) -> dict[str, Any]:
    # Schema version 1 stored the unit price as a bare amount; every catalog price was USD.
    return {**data, "unit_price": {"amount": data["unit_price"], "currency": "USD"}}


def build_registry() -> EventTypeRegistry:
    registry = EventTypeRegistry()
    for union in (order.OrderEvent, customer.CustomerEvent, product.ProductEvent):
        for cls in typing.get_args(union):
            registry.register(cls, schema_version=2 if cls is order.OrderItemAdded else 1)
    registry.register(customer.CustomerEmailReserved)
    registry.add_upcaster("OrderItemAdded", 1, _v1_order_item_added)
    return registry
