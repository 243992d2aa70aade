"""200 orders at once against scarce stock, on real PostgreSQL, in both modes: in one
process, and with the `orders saga` process (orchestration) or each `orders participant`
process (choreography) killed (SIGKILL) at random points and restarted. Afterwards every
saga has finished and the invariants of tests/integration/saga_invariants.py hold."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from sagas.gateways.simulated import PaymentRules, ShippingRules
from tests.conftest import service_url
from tests.integration.app_process import SagaProcess
from tests.integration.read_side import isolated_stack
from tests.integration.saga_invariants import (
    Workload,
    all_settled,
    check_invariants,
    declined_customers,
    scarce_stock_workload,
    settled_count,
    some_settled,
)
from tests.integration.saga_world import MODES, saga_world
from write_model.domain.order import OrderStatus

pytestmark = [pytest.mark.postgres]


@pytest.mark.parametrize("mode", MODES)
async def test_200_orders_at_once_against_scarce_stock(unique: str, mode: str) -> None:
    async with saga_world(mode=mode) as world:
        workload = await scarce_stock_workload(world, unique)
        orchestrator = world.driver(
            payment_rules=PaymentRules(decline_customers=declined_customers(workload)),
            shipping_rules=ShippingRules(fail_countries=frozenset({"AQ"})),
        )

        await world.fulfil(orchestrator, *workload.orders)

        statuses = await check_invariants(world, workload)
        reasons = {(await world.saga(o)).reason or "" for o in workload.orders}
    assert statuses[OrderStatus.CONFIRMED] > 0 and statuses[OrderStatus.REJECTED] > 0
    assert any("insufficient stock" in r for r in reasons)
    assert any("payment declined" in r for r in reasons)
    assert "no shipping to AQ" in reasons


def process_env(dsn: str, database: str, workload: Workload) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "MONGO_URL": service_url("MONGO_URL"),
        "MONGO_DB": database,
        "PAYMENT_DECLINE_CUSTOMERS": ",".join(declined_customers(workload)),
        "SHIPPING_FAIL_COUNTRIES": "AQ",
        "GATEWAY_LATENCY_SECONDS": "0.005",
        "PROJECTOR_POLL_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
    }


async def test_the_saga_process_killed_at_random_points_finishes_every_saga_once(
    unique: str, tmp_path: Path
) -> None:
    rng = random.Random(unique)
    database = f"saga_{unique}"
    async with isolated_stack(database) as (dsn, _, _), saga_world(dsn) as world:
        workload = await scarce_stock_workload(world, unique)
        env = process_env(dsn, database, workload)
        processes = [SagaProcess(env, tmp_path / "saga-0.log")]
        settled_at_kills = []
        try:
            # Killed 4 times at random moments while the 200 sagas run, restarted each time.
            for kill in range(1, 5):
                await processes[-1].leading()
                if kill == 1:
                    await some_settled(world, workload, seconds=60)
                await asyncio.sleep(rng.uniform(0.1, 1.0))
                processes[-1].kill()
                settled_at_kills.append(await settled_count(world, workload))
                processes.append(SagaProcess(env, tmp_path / f"saga-{kill}.log"))
            await all_settled(world, workload, seconds=120)
            # A SIGTERM before the process installs its handler would end it by the signal.
            await processes[-1].leading()
        finally:
            codes = [p.stop() for p in processes]
        assert codes[-1] == 0, processes[-1].log_path.read_text()[-3000:]
        # At least one kill landed while sagas were running, not before or after them all.
        assert any(0 < n < len(workload.orders) for n in settled_at_kills), settled_at_kills
        await check_invariants(world, workload)


async def test_each_participant_killed_at_random_points_finishes_every_saga_once(
    unique: str, tmp_path: Path
) -> None:
    rng = random.Random(unique)
    database = f"chor_{unique}"
    async with isolated_stack(database) as (dsn, _, _), saga_world(dsn, "choreography") as world:
        workload = await scarce_stock_workload(world, unique)
        env = {**process_env(dsn, database, workload), "SAGA_MODE": "choreography"}
        names = ["inventory", "payment", "shipping"]
        running = {n: SagaProcess(env, tmp_path / f"{n}-0.log", n) for n in names}
        stopped: list[SagaProcess] = []
        settled_at_kills = []
        try:
            # Each participant killed twice, in a random order at random moments, restarted.
            for kill, name in enumerate(rng.sample(names * 2, 6), start=1):
                await running[name].leading()
                if kill == 1:
                    await some_settled(world, workload, seconds=60)
                await asyncio.sleep(rng.uniform(0.1, 0.6))
                running[name].kill()
                stopped.append(running[name])
                settled_at_kills.append(await settled_count(world, workload))
                running[name] = SagaProcess(env, tmp_path / f"{name}-{kill}.log", name)
            await all_settled(world, workload, seconds=120)
            for process in running.values():
                await process.leading()
        finally:
            codes = {n: p.stop() for n, p in running.items()}
            for process in stopped:
                process.stop()
        assert set(codes.values()) == {0}, {n: p.log()[-3000:] for n, p in running.items()}
        assert any(0 < n < len(workload.orders) for n in settled_at_kills), settled_at_kills
        await check_invariants(world, workload)
