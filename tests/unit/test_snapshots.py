"""Snapshots change how a product is loaded, never what it is: whatever the commands and the
interval, the state loaded from its latest snapshot equals the fold of all its events."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.wiring import build_command_bus
from write_model import commands
from write_model.bus import CommandBus, Streams
from write_model.command_context import CommandContext, Principal
from write_model.domain.errors import DomainError
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_types import build_registry
from write_model.handlers import PRODUCT

CONTEXT = CommandContext("snapshot-test", principal=Principal.staff("staff-1"))
ORDERS = [f"o{n}" for n in range(6)]
PRODUCT_ID = "ink"

STOCK_COMMANDS = st.one_of(
    st.builds(
        commands.ReserveStock,
        product_id=st.just(PRODUCT_ID),
        order_id=st.sampled_from(ORDERS),
        quantity=st.integers(1, 5),
    ),
    *(
        st.builds(command, product_id=st.just(PRODUCT_ID), order_id=st.sampled_from(ORDERS))
        for command in (
            commands.ReleaseStockReservation,
            commands.ShipReservedStock,
            commands.ReturnShippedStock,
        )
    ),
    st.builds(commands.RestockProduct, product_id=st.just(PRODUCT_ID), quantity=st.integers(1, 9)),
    st.builds(
        commands.ChangeProductPrice, product_id=st.just(PRODUCT_ID), price=st.just(Decimal("2.50"))
    ),
)


def bus_over(store: InMemoryEventStore, snapshot_every: int) -> CommandBus:
    return build_command_bus(
        store, build_registry(), tax_rate=Decimal("0.10"), snapshot_every=snapshot_every
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(every=st.integers(1, 7), sent=st.lists(STOCK_COMMANDS, max_size=40))
async def test_a_product_loaded_from_snapshots_is_the_fold_of_all_its_events(
    every: int, sent: list[commands.Command]
) -> None:
    # Given a product that went through the commands, snapshotted every `every` events
    store = InMemoryEventStore()
    bus = bus_over(store, every)
    add = commands.AddProduct(
        product_id=PRODUCT_ID, name="Ink", price=Decimal("12.30"), initial_stock=10
    )
    await bus.dispatch(add, CONTEXT)
    for command in sent:
        try:
            await bus.dispatch(command, CONTEXT)
        except DomainError:
            pass  # refused (e.g. not enough stock): nothing appended, as the domain says

    # When it is loaded (from its latest snapshot, if it has one)
    streams = Streams(store, build_registry())
    loaded, version = await streams.load(PRODUCT, PRODUCT_ID)

    # Then it is the state folded from its first event, at the stream's version
    events = await store.read_stream(PRODUCT.stream_id(PRODUCT_ID))
    assert (loaded, version) == (streams.fold(PRODUCT, None, events), len(events))
    snapshot = await store.load_snapshot(PRODUCT.stream_id(PRODUCT_ID))
    assert (snapshot.version if snapshot else 0) == len(events) // every * every
