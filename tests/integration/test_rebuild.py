"""Rebuilding a projection into a new collection version, then switching readers."""

from __future__ import annotations

import asyncio
import time

from log_follower.follower import FollowerSettings
from read_model.projections.orders import OrdersProjection
from read_model.projector_process import (
    ProjectorDependencies,
    active_version,
    rebuild_projection,
    run_projection,
)
from tests.integration.read_side import (
    CONTEXT,
    all_documents,
    build_bus,
    catch_up,
    isolated_stack,
    order_workload,
    runners,
)
from tests.projecting import follower_parts
from write_model import commands
from write_model.envelope import LogPosition
from write_model.event_types import build_registry


def dependencies(events, documents, grace_seconds: float = 30.0) -> ProjectorDependencies:
    return ProjectorDependencies(
        events=events,
        documents=documents,
        registry=build_registry(),
        feed=None,
        parts=follower_parts(events, settings=FollowerSettings(batch_size=100, poll_seconds=0.05)),
        old_version_grace_seconds=grace_seconds,
    )


async def test_rebuild_gives_the_same_documents_and_switches_readers(unique: str) -> None:
    database = f"rebuild_{unique}"
    async with isolated_stack(database) as (_, events, documents):
        bus = build_bus(events)
        await order_workload(bus, unique, orders=6)
        await bus.dispatch(
            commands.RenameCustomer(customer_id=f"c-{unique}", name="Renamed"), CONTEXT
        )
        await catch_up(runners(events, documents))
        served = (await all_documents(documents, version=1))["orders"]
        seen: list[tuple[LogPosition, LogPosition]] = []

        version = await rebuild_projection(
            dependencies(events, documents),
            OrdersProjection(),
            progress=lambda done, head: seen.append((done, head)),
        )

        assert version == 2
        assert await active_version(documents, "orders") == 2
        assert (await all_documents(documents, version=2))["orders"] == served
        assert seen and seen[-1][0] == seen[-1][1], "progress reached the head"
        # The old version outlives the switch for readers that cached it, until a leading
        # projector retires it after the grace period.
        assert (await all_documents(documents, version=1))["orders"] == served
        stop = asyncio.Event()
        leading = asyncio.create_task(
            run_projection(dependencies(events, documents, 0.0), OrdersProjection(), stop)
        )
        try:
            deadline = time.monotonic() + 10
            while (await all_documents(documents, version=1))["orders"]:
                assert time.monotonic() < deadline, "the old version was never dropped"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await leading
        assert (await all_documents(documents, version=2))["orders"] == served


async def test_a_running_projector_switches_to_the_rebuilt_version(unique: str) -> None:
    database = f"rebuild_live_{unique}"
    async with isolated_stack(database) as (_, events, documents):
        bus = build_bus(events)
        await order_workload(bus, unique, orders=3)
        deps = dependencies(events, documents)
        stop = asyncio.Event()
        live = asyncio.create_task(run_projection(deps, OrdersProjection(), stop))
        try:
            # The live projector holds the lead, so the rebuild leaves the switch to it.
            version = await rebuild_projection(deps, OrdersProjection(), take_over_seconds=0.2)
            deadline = time.monotonic() + 10
            while await active_version(documents, "orders") != version:
                assert time.monotonic() < deadline, "the live projector never switched"
                await asyncio.sleep(0.05)
            await bus.dispatch(
                commands.AddOrderItem(
                    order_id=f"o1-{unique}", product_id=f"p2-{unique}", quantity=4
                ),
                CONTEXT,
            )
            while True:
                order = await documents.get(f"orders_v{version}", f"o1-{unique}")
                if order is not None and order["version"] == 5:
                    break
                assert time.monotonic() < deadline, "new events did not reach the new version"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await live
