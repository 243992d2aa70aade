"""Commands load snapshotted streams (products, orders, customers) from their latest
snapshot and the events after it, over every EventStore adapter."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from tests.contracts.harness import StoreHarness
from tests.integration.write_side import build_bus
from write_model import commands
from write_model.bus import Streams
from write_model.command_context import CommandContext, Principal
from write_model.event_store.port import EventStore, Snapshot, StreamFromSnapshot
from write_model.event_types import build_registry
from write_model.handlers import CUSTOMER, ORDER, PRODUCT

CONTEXT = CommandContext("corr-snapshots", principal=Principal.staff("staff-1"))


class ReadsRecorded:
    """The store, recording how many events each stream's read from its snapshot returned."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.events_read: dict[str, list[int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read_from_snapshots(
        self, schema_versions: Mapping[str, int | None]
    ) -> dict[str, StreamFromSnapshot]:
        found = await self._store.read_from_snapshots(schema_versions)
        for stream_id, stream in found.items():
            self.events_read.setdefault(stream_id, []).append(len(stream.events))
        return found


class SnapshotsFail(ReadsRecorded):
    async def save_snapshot(self, stream_id: str, snapshot: Snapshot) -> None:
        raise ConnectionError("the snapshots table is on fire")


async def product_with_reservations(store: Any, unique: str, reservations: int) -> str:
    bus = build_bus(store, snapshot_every=10)
    product_id = f"p-{unique}"
    add = commands.AddProduct(
        product_id=product_id, name="Ink", price=Decimal("12.30"), initial_stock=100_000
    )
    await bus.dispatch(add, CONTEXT)
    for n in range(reservations):
        reserve = commands.ReserveStock(product_id=product_id, order_id=f"o{n}", quantity=2)
        await bus.dispatch(reserve, CONTEXT)
    return product_id


async def folded_from_zero(store: EventStore, product_id: str) -> Any:
    streams = Streams(store, build_registry())
    return streams.fold(PRODUCT, None, await store.read_stream(f"Product-{product_id}"))


@pytest.mark.parametrize(
    ("reservations", "snapshot_at", "events_after"),
    [(8, None, 9), (9, 10, 0), (35, 30, 6), (49, 50, 0)],
)
async def test_a_product_is_loaded_from_its_snapshot_and_the_events_after_it(
    harness: StoreHarness, unique: str, reservations: int, snapshot_at: int, events_after: int
) -> None:
    product_id = await product_with_reservations(harness.store, unique, reservations)
    stream_id = f"Product-{product_id}"
    snapshot = await harness.store.load_snapshot(stream_id)
    assert (snapshot.version if snapshot else None) == snapshot_at
    recorded = ReadsRecorded(harness.store)

    reserve = commands.ReserveStock(product_id=product_id, order_id="o-last", quantity=3)
    await build_bus(recorded, snapshot_every=10).dispatch(reserve, CONTEXT)

    assert recorded.events_read[stream_id] == [events_after]
    state, version = await Streams(harness.store, build_registry()).load(PRODUCT, product_id)
    assert version == reservations + 2
    assert state == await folded_from_zero(harness.store, product_id)
    assert state.stock_reserved == 2 * reservations + 3


async def test_a_snapshot_of_another_state_schema_is_ignored_and_replaced(
    harness: StoreHarness, unique: str
) -> None:
    product_id = await product_with_reservations(harness.store, unique, 24)  # version 25
    stream_id = f"Product-{product_id}"
    # As an older release wrote it: another shape, under another schema version.
    older = Snapshot(20, 0, {"sku": product_id, "stock": 7})
    await harness.store.save_snapshot(stream_id, Snapshot(25, 0, older.data))
    recorded = ReadsRecorded(harness.store)

    state, version = await Streams(recorded, build_registry(), snapshot_every=10).load(
        PRODUCT, product_id
    )

    assert recorded.events_read[stream_id] == [25]  # folded from the first event
    assert version == 25
    assert state == await folded_from_zero(harness.store, product_id)
    assert await harness.store.load_snapshot(stream_id) == Snapshot(
        25, PRODUCT.snapshots.schema_version, PRODUCT.snapshots.to_data(state)
    )
    await Streams(recorded, build_registry(), snapshot_every=10).load(PRODUCT, product_id)
    assert recorded.events_read[stream_id] == [25, 0]


async def test_an_unreadable_snapshot_is_folded_around_with_a_warning(
    harness: StoreHarness, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    product_id = await product_with_reservations(harness.store, unique, 4)
    stream_id = f"Product-{product_id}"
    schema = PRODUCT.snapshots.schema_version
    await harness.store.save_snapshot(stream_id, Snapshot(5, schema, {"productId": 1}))

    with caplog.at_level(logging.WARNING, logger="write_model.streams"):
        state, version = await Streams(harness.store, build_registry()).load(PRODUCT, product_id)

    assert version == 5
    assert state == await folded_from_zero(harness.store, product_id)
    assert f"snapshot of {stream_id} at version 5 unreadable" in caplog.text


async def test_a_snapshot_that_cannot_be_saved_fails_no_command(
    harness: StoreHarness, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotsFail(harness.store)
    with caplog.at_level(logging.WARNING, logger="write_model.snapshots"):
        product_id = await product_with_reservations(store, unique, 12)

    stream_id = f"Product-{product_id}"
    assert await harness.store.load_snapshot(stream_id) is None
    state, version = await Streams(harness.store, build_registry()).load(PRODUCT, product_id)
    assert version == 13 and state.stock_reserved == 24
    assert f"snapshot of {stream_id} at version 10 (state schema 1) not saved" in caplog.text
    assert "the snapshots table is on fire" in caplog.text


async def test_orders_and_customers_are_snapshotted_too(harness: StoreHarness, unique: str) -> None:
    bus = build_bus(harness.store, snapshot_every=3)
    customer_id, order_id = f"c-{unique}", f"o-{unique}"
    register = commands.RegisterCustomer(
        customer_id=customer_id, name="Ada", email=f"{unique}@example.com"
    )
    await bus.dispatch(register, CONTEXT)
    for name in ("Ada B", "Ada C"):
        await bus.dispatch(commands.RenameCustomer(customer_id=customer_id, name=name), CONTEXT)
    await product_with_reservations(harness.store, unique, 0)
    create = commands.CreateOrder(
        order_id=order_id,
        customer_id=customer_id,
        items=(commands.OrderItem(f"p-{unique}", 2),),
    )
    await bus.dispatch(create, CONTEXT)
    remove = commands.RemoveOrderItem(order_id=order_id, product_id=f"p-{unique}")
    await bus.dispatch(remove, CONTEXT)

    streams = Streams(harness.store, build_registry())
    for decider, entity_id in ((CUSTOMER, customer_id), (ORDER, order_id)):
        stream_id = decider.stream_id(entity_id)
        snapshot = await harness.store.load_snapshot(stream_id)
        assert snapshot is not None and snapshot.version == 3
        state, _ = await streams.load(decider, entity_id)
        assert decider.snapshots.from_data(snapshot.data) is not None
        folded = streams.fold(decider, None, await harness.store.read_stream(stream_id))
        assert state == folded
