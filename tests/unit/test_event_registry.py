"""The event type registry: camelCase payloads both ways, and the upcaster chain."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from write_model.domain.money import Money
from write_model.domain.order import Address, OrderItemAdded, ShippingAddressSet
from write_model.event_types import build_registry
from write_model.registry import UnknownEventType

USD = {"amount": "1.25", "currency": "USD"}


def test_an_event_is_serialized_camel_case_at_every_depth() -> None:
    event = OrderItemAdded("pen", "Pen", 2, Money(Decimal("1.25"), "USD"))

    type_name, data, schema_version = build_registry().serialize(event)

    assert (type_name, schema_version) == ("OrderItemAdded", 3)
    assert data == {
        "productId": "pen",
        "productName": "Pen",
        "quantity": 2,
        "unitPrice": {"amount": "1.25", "currency": "USD"},
    }


def test_upcast_gives_the_payload_as_the_current_version_writes_it() -> None:
    stored = {"product_id": "pen", "product_name": "Pen", "quantity": 2, "unit_price": "1.25"}

    current = build_registry().upcast("OrderItemAdded", stored, 1)

    today = OrderItemAdded("pen", "Pen", 2, Money(Decimal("1.25"), "USD"))
    assert current == build_registry().serialize(today)[1]


def test_a_payload_read_back_is_the_event_written() -> None:
    registry = build_registry()
    event = ShippingAddressSet(Address("1 Main St", "Springfield", "12345", "US"))

    assert registry.deserialize(*registry.serialize(event)) == event


def test_a_snake_case_payload_under_the_current_version_is_refused() -> None:
    """Only the upcasters turn snake_case payloads into today's: one stored under the
    current version with snake_case keys is corrupt, not silently half read."""
    stored = {"product_id": "pen", "product_name": "Pen", "quantity": 2, "unit_price": USD}

    with pytest.raises(ValidationError, match="productId"):
        build_registry().deserialize("OrderItemAdded", stored, 3)


def test_a_payload_older_than_any_upcaster_is_a_clear_error() -> None:
    registry = build_registry()

    with pytest.raises(
        UnknownEventType, match="no upcaster for OrderCreated from schema version 0"
    ):
        registry.deserialize("OrderCreated", {"order_id": "o-1"}, 0)
