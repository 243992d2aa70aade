"""The event type registry: camelCase payloads both ways, and the upcaster chain."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from write_model.domain.money import Money
from write_model.domain.order import OrderItemAdded
from write_model.event_types import build_registry
from write_model.registry import EventTypeRegistry, UnknownEventType


@dataclass(frozen=True, slots=True)
class Line:
    address_2: str  # "address2" would come back as "address2", not "address_2"


@dataclass(frozen=True, slots=True)
class Moved:
    line: Line


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

    assert (
        current
        == build_registry().serialize(
            OrderItemAdded("pen", "Pen", 2, Money(Decimal("1.25"), "USD"))
        )[1]
    )


def test_a_field_that_would_not_survive_camel_case_is_refused_at_registration() -> None:
    with pytest.raises(ValueError, match=r"Moved: Line.address_2 does not survive camelCase"):
        EventTypeRegistry().register(Moved)


def test_a_payload_older_than_any_upcaster_is_a_clear_error() -> None:
    registry = build_registry()

    with pytest.raises(
        UnknownEventType, match="no upcaster for OrderCreated from schema version 0"
    ):
        registry.deserialize("OrderCreated", {"order_id": "o-1"}, 0)
