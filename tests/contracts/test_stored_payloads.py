"""Stored payloads on every EventStore adapter (memory, sqlite, postgres): events are written
camelCase, and payloads stored before that (snake_case, older schema versions) read back as
today's events through the upcasters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.contracts.harness import StoreHarness
from write_model import stream_ids
from write_model.domain import customer, order, product
from write_model.domain.money import Money
from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store.port import NO_STREAM, EventStore
from write_model.event_types import CAMEL_CASE_FROM_THE_START, EVENT_TYPES, build_registry

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

Stored = tuple[str, int, dict[str, Any], object]  # type, schema version, payload, event


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "USD"}


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def stored_before(u: str) -> dict[str, list[Stored]]:
    """Streams as the event stores held them before payloads went camelCase (snake_case,
    older schema versions), each event with the one it must read back as today. They are
    whole, valid streams: projectors reading the shared log in other tests see them too."""
    email = f"ada-{u}@example.com"
    address = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
    return {
        f"CustomerEmail-{email}": [
            (
                "CustomerEmailReserved",
                1,
                {"email": email, "customer_id": f"c-{u}"},
                customer.CustomerEmailReserved(email, f"c-{u}"),
            ),
        ],
        f"Customer-c-{u}": [
            (
                "CustomerRegistered",
                1,
                {"customer_id": f"c-{u}", "name": "Ada", "email": email},
                customer.CustomerRegistered(f"c-{u}", "Ada", email),
            ),
            ("CustomerRenamed", 1, {"name": "Ada L."}, customer.CustomerRenamed("Ada L.")),
        ],
        f"Product-pen-{u}": [
            (
                "ProductAdded",
                1,
                {
                    "product_id": f"pen-{u}",
                    "name": "Pen",
                    "price": money("1.25"),
                    "initial_stock": 10,
                },
                product.ProductAdded(f"pen-{u}", "Pen", usd("1.25"), 10),
            ),
            ("ProductRenamed", 1, {"name": "Fine pen"}, product.ProductRenamed("Fine pen")),
            (
                "ProductPriceChanged",
                1,
                {"price": money("1.50")},
                product.ProductPriceChanged(usd("1.50")),
            ),
            ("ProductRestocked", 1, {"quantity": 5}, product.ProductRestocked(5)),
            (
                "StockReserved",
                1,
                {"order_id": f"o-{u}", "quantity": 2},
                product.StockReserved(f"o-{u}", 2),
            ),
            (
                "StockReservationReleased",
                1,
                {"order_id": f"o-{u}", "quantity": 2},
                product.StockReservationReleased(f"o-{u}", 2),
            ),
        ],
        f"Order-o-{u}": [
            (
                "OrderCreated",
                1,
                {"order_id": f"o-{u}", "customer_id": f"c-{u}", "tax_rate": "0.10"},
                order.OrderCreated(f"o-{u}", f"c-{u}", Decimal("0.10")),
            ),
            (
                "OrderItemAdded",
                1,  # the unit price as a bare USD amount
                {
                    "product_id": f"pen-{u}",
                    "product_name": "Pen",
                    "quantity": 2,
                    "unit_price": "1.25",
                },
                order.OrderItemAdded(f"pen-{u}", "Pen", 2, usd("1.25")),
            ),
            (
                "OrderItemAdded",
                2,
                {
                    "product_id": f"ink-{u}",
                    "product_name": "Ink",
                    "quantity": 1,
                    "unit_price": money("3.00"),
                },
                order.OrderItemAdded(f"ink-{u}", "Ink", 1, usd("3.00")),
            ),
            (
                "OrderItemRemoved",
                1,
                {"product_id": f"ink-{u}"},
                order.OrderItemRemoved(f"ink-{u}"),
            ),
            (
                "ShippingAddressSet",
                1,
                {"address": address},
                order.ShippingAddressSet(order.Address("1 Main St", "Springfield", "12345", "US")),
            ),
            (
                "OrderSubmitted",
                1,
                {"subtotal": money("2.50"), "tax": money("0.25"), "total": money("2.75")},
                order.OrderSubmitted(usd("2.50"), usd("0.25"), usd("2.75")),
            ),
            ("OrderConfirmed", 1, {}, order.OrderConfirmed()),
        ],
        f"Order-o-{u}-cancelled": [
            (
                "OrderCreated",
                1,
                {"order_id": f"o-{u}-cancelled", "customer_id": f"c-{u}", "tax_rate": "0.10"},
                order.OrderCreated(f"o-{u}-cancelled", f"c-{u}", Decimal("0.10")),
            ),
            ("OrderCancelled", 1, {"reason": None}, order.OrderCancelled(None)),
        ],
        f"Order-o-{u}-rejected": [
            (
                "OrderCreated",
                1,
                {"order_id": f"o-{u}-rejected", "customer_id": f"c-{u}", "tax_rate": "0.10"},
                order.OrderCreated(f"o-{u}-rejected", f"c-{u}", Decimal("0.10")),
            ),
            (
                "OrderSubmitted",
                1,
                {"subtotal": money("0.00"), "tax": money("0.00"), "total": money("0.00")},
                order.OrderSubmitted(usd("0.00"), usd("0.00"), usd("0.00")),
            ),
            ("OrderRejected", 1, {"reason": "out of ink"}, order.OrderRejected("out of ink")),
        ],
    }


def new_event(type_name: str, data: dict[str, Any], schema_version: int) -> NewEvent:
    metadata = EventMetadata("corr-payloads", schema_version=schema_version)
    return NewEvent(uuid.uuid4(), type_name, data, metadata, NOW)


async def append_streams(store: EventStore, streams: dict[str, list[NewEvent]]) -> None:
    for stream_id, events in streams.items():
        await store.append_to_stream(
            stream_id, stream_ids.stream_type(stream_id), NO_STREAM, events
        )


def test_every_event_type_has_a_payload_stored_before() -> None:
    stored_types = {type_name for stream in stored_before("x").values() for type_name, *_ in stream}

    older = set(EVENT_TYPES) - set(CAMEL_CASE_FROM_THE_START)
    assert stored_types == {cls.__name__ for cls in older}


async def test_payloads_stored_snake_case_read_back_as_todays_events(
    harness: StoreHarness, unique: str
) -> None:
    registry = build_registry()
    streams = stored_before(unique)
    await append_streams(
        harness.store,
        {
            stream_id: [
                new_event(type_name, data, version) for type_name, version, data, _ in events
            ]
            for stream_id, events in streams.items()
        },
    )

    found = await harness.store.read_streams(list(streams))

    for stream_id, events in streams.items():
        read = [
            registry.deserialize(e.type, e.data, e.metadata.schema_version)
            for e in found[stream_id]
        ]
        assert read == [event for *_, event in events], stream_id


async def test_todays_events_are_stored_camel_case_and_read_back_unchanged(
    harness: StoreHarness, unique: str
) -> None:
    registry = build_registry()
    todays = {
        stream_id: [event for *_, event in events]
        for stream_id, events in stored_before(unique).items()
    }
    await append_streams(
        harness.store,
        {
            stream_id: [new_event(*registry.serialize(event)) for event in events]
            for stream_id, events in todays.items()
        },
    )

    found = await harness.store.read_streams(list(todays))

    order_stream = found[f"Order-o-{unique}"]
    assert order_stream[0].data == {
        "orderId": f"o-{unique}",
        "customerId": f"c-{unique}",
        "taxRate": "0.10",
    }
    assert order_stream[4].data == {
        "address": {
            "line1": "1 Main St",
            "city": "Springfield",
            "postalCode": "12345",
            "country": "US",
        }
    }
    assert found[f"Product-pen-{unique}"][0].data["initialStock"] == 10
    recorded = [e for events in found.values() for e in events]
    assert all("_" not in key for e in recorded for key in _keys(e.data))
    for stream_id, events in todays.items():
        read = [
            registry.deserialize(e.type, e.data, e.metadata.schema_version)
            for e in found[stream_id]
        ]
        assert read == events, stream_id


def _keys(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [key for key, value in data.items() for key in (key, *_keys(value))]
    return []
