"""What must hold after many sagas ran, however often their process was killed: checked on
the event store and the gateways' ledger, as an auditor would."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

from sagas.orchestrator import FULFILLMENT
from tests.integration.saga_world import SagaWorld
from write_model.domain import fulfillment, product
from write_model.domain.fulfillment import FulfillmentState
from write_model.domain.order import Address, OrderStatus
from write_model.event_types import build_registry
from write_model.handlers import PRODUCT

NOWHERE = Address("1 Ice Shelf", "McMurdo", "0", "AQ")


@dataclass(frozen=True)
class Workload:
    unique: str
    products: dict[str, int]  # id -> stock received
    orders: dict[str, list[tuple[str, int]]]  # id -> lines


async def scarce_stock_workload(
    world: SagaWorld, unique: str, orders: int = 200, stock: int = 60
) -> Workload:
    """`orders` orders of one or two of three products, 1-3 units a line, about twice what
    the stock holds; every tenth ships where shipping fails, every seventh customer's card
    is declined (the tests' rules), so every kind of outcome and compensation happens. The
    first ten orders buy a fourth product whose stock covers them all, so the first declined
    card (o0) and the first refused shipment (o9) meet stock however the sagas interleave
    (with many at once on a loaded machine, an order's reservation can lose every race for
    the scarce products)."""
    rng = random.Random(unique)
    scarce = {f"p{n}-{unique}": stock for n in range(3)}
    first = f"p-first-{unique}"
    products = {**scarce, first: 3 * 10}
    for product_id, received in products.items():
        await world.product(product_id, received)
    customers = [f"c{n}-{unique}" for n in range(orders // 7 + 1)]
    await asyncio.gather(*(world.customer(c) for c in customers))
    lines = {
        f"o{n}-{unique}": (
            [(first, rng.randint(1, 3))]
            if n < 10
            else [(p, rng.randint(1, 3)) for p in rng.sample(sorted(scarce), rng.randint(1, 2))]
        )
        for n in range(orders)
    }

    async def place(n: int, order_id: str) -> None:
        address = NOWHERE if n % 10 == 9 else None
        customer = customers[n % len(customers)]
        if address is None:
            await world.submitted_order(order_id, customer, lines[order_id])
        else:
            await world.submitted_order(order_id, customer, lines[order_id], address)

    placed = list(enumerate(lines))
    for n, order_id in placed[:10]:
        await place(n, order_id)
    await asyncio.gather(*(place(n, order_id) for n, order_id in placed[10:]))
    return Workload(unique, products, lines)


def declined_customers(workload: Workload) -> frozenset[str]:
    return frozenset({f"c0-{workload.unique}"})


async def settled_count(world: SagaWorld, workload: Workload) -> int:
    found = await world.events.read_streams([FULFILLMENT.stream_id(o) for o in workload.orders])
    finals = ("FulfillmentCompleted", "FulfillmentFailed")
    return sum(1 for events in found.values() if events and events[-1].type in finals)


async def unfinished(world: SagaWorld, workload: Workload, shown: int = 5) -> dict[str, list]:
    """A few unfinished sagas and their streams' event types, to see where each stopped."""
    found = await world.events.read_streams([FULFILLMENT.stream_id(o) for o in workload.orders])
    finals = ("FulfillmentCompleted", "FulfillmentFailed")
    stuck = [
        o
        for o in workload.orders
        if not found[FULFILLMENT.stream_id(o)]
        or (found[FULFILLMENT.stream_id(o)][-1].type not in finals)
    ]
    kinds = ("Order", "Fulfillment", "Inventory", "Payment", "Shipping")
    shown_streams = await world.events.read_streams(
        [f"{kind}-{o}" for o in stuck[:shown] for kind in kinds]
    )
    return {
        o: [(e.type, e.data.get("step")) for k in kinds for e in shown_streams[f"{k}-{o}"]]
        for o in stuck[:shown]
    }


async def some_settled(world: SagaWorld, workload: Workload, seconds: float) -> None:
    """Waits until at least one saga has finished, so that a kill after it lands mid-run
    even on a machine so loaded that a process needs seconds to do its first work."""
    deadline = time.monotonic() + seconds
    while await settled_count(world, workload) == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"no saga finished within {seconds} s")
        await asyncio.sleep(0.05)


async def all_settled(world: SagaWorld, workload: Workload, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        done = await settled_count(world, workload)
        if done == len(workload.orders):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{done} of {len(workload.orders)} sagas finished in {seconds} s; "
                f"unfinished: {await unfinished(world, workload)}"
            )
        await asyncio.sleep(0.25)


async def check_invariants(world: SagaWorld, workload: Workload) -> Counter[str]:
    """Every order ended CONFIRMED or REJECTED as its saga says; stock never went negative and
    what is reserved plus shipped never exceeded what was received, at every event; on-hand
    stock is what was received minus what confirmed orders hold; the ledger charged, refunded
    and shipped each order at most once, and only confirmed orders keep a charge and a
    shipment. Returns how many orders ended in each status."""
    statuses: Counter[str] = Counter()
    confirmed_units: Counter[str] = Counter()
    for order_id, lines in workload.orders.items():
        placed = await world.order(order_id)
        saga = await world.saga(order_id)
        assert placed is not None
        statuses[placed.status] += 1
        if placed.status is OrderStatus.CONFIRMED:
            assert saga.state is FulfillmentState.COMPLETED, order_id
            for product_id, quantity in lines:
                confirmed_units[product_id] += quantity
        else:
            assert placed.status is OrderStatus.REJECTED, (order_id, placed.status)
            assert saga.state is FulfillmentState.FAILED, order_id
        saga_events = await world.events.read_stream(FULFILLMENT.stream_id(order_id))
        recorded = Counter((e.type, e.data.get("step")) for e in saga_events)
        assert max(recorded.values()) == 1, f"{order_id} recorded twice: {recorded}"
        if world.mode == "choreography":
            for kind in ("Inventory", "Payment", "Shipping"):
                own = Counter(e.type for e in await world.events.read_stream(f"{kind}-{order_id}"))
                assert all(n == 1 for n in own.values()), f"{order_id} recorded twice: {own}"

    registry = build_registry()
    for product_id, received in workload.products.items():
        state: product.ProductState = None
        shipped = 0
        for recorded_event in await world.events.read_stream(PRODUCT.stream_id(product_id)):
            event = registry.deserialize(
                recorded_event.type, recorded_event.data, recorded_event.metadata.schema_version
            )
            state = product.evolve(state, event)
            assert state is not None
            shipped = received - state.stock_on_hand
            assert state.stock_available >= 0, (product_id, state)
            assert state.stock_reserved + shipped <= received, (product_id, state)
        assert state is not None
        assert state.stock_reserved == 0, product_id
        assert state.stock_on_hand == received - confirmed_units[product_id], product_id

    entries = [*await world.ledger.entries("payment"), *await world.ledger.entries("shipping")]
    ours = [
        e for e in entries if e.key.split(":")[0].removeprefix("Fulfillment-") in workload.orders
    ]
    assert len({e.key for e in ours}) == len(ours)
    for order_id in workload.orders:
        prefix = fulfillment.saga_id(order_id) + ":"
        done = Counter(
            e.operation for e in ours if e.key.startswith(prefix) and e.succeeded and e.reference
        )
        assert all(count <= 1 for count in done.values()), (order_id, done)
        kept_charge = done["charge"] - done["refund"]
        kept_shipment = done["create"] - done["cancel"]
        confirmed = (await world.order(order_id)).status is OrderStatus.CONFIRMED  # type: ignore[union-attr]
        assert (kept_charge, kept_shipment) == ((1, 1) if confirmed else (0, 0)), (order_id, done)
    return statuses
