"""Over Kafka, the events of one order reach a participant on several topics (the order's,
the other participants'), each topic in order but with no order between topics. The
participants decide from the streams' current state, so every interleaving ends the same:
this feeds each saga's triggers to the participants one event at a time, in several random
interleavings that keep each stream's order, on real PostgreSQL, and compares the outcomes
(the order, the saga, the stock, the effects the gateways kept, each participant's own
events)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sagas.choreography.participant import FulfillmentParticipant
from sagas.gateways.simulated import ShippingRules
from tests.integration.saga_invariants import NOWHERE
from tests.integration.saga_world import SagaWorld, react_to, saga_world

pytestmark = pytest.mark.postgres

INTERLEAVINGS = 5
KINDS = ("Order", "Inventory", "Payment", "Shipping")


async def deliver_in_some_order(
    world: SagaWorld, participants: list[FulfillmentParticipant], order_id: str, seed: int
) -> list[str]:
    """Hand every trigger of the order to its participants, one at a time: at each turn a
    random participant takes the next event of a random stream it follows (as a consumer
    of several topics would). The interleaving taken, as `participant<-event type`."""
    rng = random.Random(seed)
    streams = [f"{kind}-{order_id}" for kind in KINDS]
    delivered: Counter[tuple[str, str]] = Counter()
    taken = []
    while True:
        found = await world.events.read_streams(streams)
        turns = []
        for participant in participants:
            for stream in streams:
                waiting = found[stream][delivered[participant.name, stream] :]
                for event in waiting:
                    if participant.key_of(event) is not None:
                        turns.append((participant, stream, event))
                        break
                    delivered[participant.name, stream] += 1  # not a trigger of it
        if not turns:
            return taken
        participant, stream, event = rng.choice(turns)
        await react_to(participant, [event])
        delivered[participant.name, stream] += 1
        taken.append(f"{participant.participant.value}<-{event.type}")


async def outcome(world: SagaWorld, order_id: str, product_id: str) -> tuple[object, ...]:
    order = await world.order(order_id)
    saga = await world.saga(order_id)
    own = [
        tuple(e.type for e in await world.events.read_stream(f"{kind}-{order_id}"))
        for kind in KINDS[1:]
    ]
    ledger = Counter(await world.ledger_of(order_id))
    # A charge or shipment kept: made and not undone (an undo with nothing to undo closes
    # the key, and counts for nothing).
    kept = (
        int(ledger["payment", "charge", True] > ledger["payment", "refund", True]),
        int(ledger["shipping", "create", True] > ledger["shipping", "cancel", True]),
    )
    assert order is not None
    return (
        order.status,
        saga.state,
        tuple(step.status for step in saga.steps),
        await world.stock(product_id),
        kept,
        tuple(sorted(own)),
    )


@pytest.mark.parametrize(
    "case", ["confirmed", "cancelled at once", "cancelled once confirmed", "no shipping there"]
)
async def test_every_interleaving_of_a_sagas_triggers_ends_the_same(unique: str, case: str) -> None:
    async with saga_world(mode="choreography") as world:
        driver = world.driver(shipping_rules=ShippingRules(fail_countries=frozenset({"AQ"})))
        assert isinstance(driver, list)
        await world.customer(f"c-{unique}")
        outcomes = {}
        orders = []
        for seed in range(INTERLEAVINGS):
            order_id, product_id = f"o{seed}-{unique}", f"p{seed}-{unique}"
            await world.product(product_id, 10)
            address = NOWHERE if case == "no shipping there" else None
            lines = [(product_id, 2)]
            if address is None:
                await world.submitted_order(order_id, f"c-{unique}", lines)
            else:
                await world.submitted_order(order_id, f"c-{unique}", lines, address)
            if case == "cancelled at once":
                await world.cancel(order_id)
            taken = await deliver_in_some_order(world, driver, order_id, seed)
            if case == "cancelled once confirmed":
                await world.cancel(order_id)
                taken += await deliver_in_some_order(world, driver, order_id, seed)
            orders.append(taken)
            outcomes[seed] = await outcome(world, order_id, product_id)
    if case.startswith("cancelled"):  # triggers on several topics at once: several orders
        assert len({tuple(taken) for taken in orders}) > 1, orders
    assert len(set(outcomes.values())) == 1, outcomes
    status, state, _, stock, kept, _ = outcomes[0]
    expected = {
        "confirmed": ("CONFIRMED", "COMPLETED", (8, 0), (1, 1)),
        "cancelled at once": ("CANCELLED", None, (10, 0), (0, 0)),
        "cancelled once confirmed": ("CANCELLED", None, (10, 0), (0, 0)),
        "no shipping there": ("REJECTED", "FAILED", (10, 0), (0, 0)),
    }[case]
    assert (status.value, stock, kept) == (expected[0], expected[2], expected[3])
    if expected[1] is not None:
        assert state.value == expected[1]
