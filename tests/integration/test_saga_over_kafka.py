"""The choreographed saga over Kafka on the real broker, PostgreSQL and processes: `orders
relay` publishes the log, each participant is an `orders participant` process consuming
its triggers' topics in a consumer group of its own. Afterwards every saga has finished
and the invariants of tests/integration/saga_invariants.py hold (every saga ends once, no
double charge, refund, shipment or reservation, stock exact):

- one member per group, the scarce-stock workload (every outcome and compensation);
- two members per group during 200 orders, one of each SIGKILLed twice: the other takes
  its partitions after the group's rebalance;
- the broker SIGKILLed and restarted mid-run: the participants wait and resume, and
  nothing is parked for it.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest

from log_follower import storage as follower_storage
from tests.integration.app_process import AppProcess
from tests.integration.kafka_choreography import (
    PARTICIPANT_NAMES,
    Member,
    choreography_env,
    relay,
    stop_all,
)
from tests.integration.kafka_relay import kafka_address
from tests.integration.private_services import free_port, private_kafka
from tests.integration.read_side import own_postgres_database
from tests.integration.saga_invariants import (
    all_settled,
    check_invariants,
    declined_customers,
    scarce_stock_workload,
    settled_count,
    some_settled,
)
from tests.integration.saga_world import saga_world
from tests.subscriber_loop import eventually
from write_model.domain.order import OrderStatus

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def test_choreography_over_kafka_each_participant_its_own_process(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"t{unique}."
    ops_port = free_port()
    async with (
        own_postgres_database(f"kchor_{unique}") as dsn,
        saga_world(dsn, "choreography") as world,
    ):
        workload = await scarce_stock_workload(world, unique, orders=60, stock=20)
        env = choreography_env(dsn, kafka_address(), prefix, declined_customers(workload))
        processes: list[AppProcess] = [relay(env, tmp_path / "relay.log")]
        members = [
            Member(
                name,
                {**env, "OPS_PORT": str(ops_port)} if name == "payment" else env,
                tmp_path / f"{name}.log",
            )
            for name in PARTICIPANT_NAMES
        ]
        processes += members
        try:
            for member in members:
                await member.following()
            await all_settled(world, workload, seconds=150)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as ops:
                ready = await ops.get("/readyz")

                async def caught_up() -> str | None:
                    # Caught up, each participant's follower shows no lag in the log.
                    text = (await ops.get("/metrics", timeout=10)).text
                    lags = [
                        f'orders_follower_lag_events{{follower="{prefix}orders-{name}",'
                        f'kind="participant"}} 0.0'
                        for name in PARTICIPANT_NAMES
                    ]
                    return text if all(lag in text for lag in lags) else None

                metrics = await eventually(caught_up, seconds=20)
        finally:
            codes = stop_all(processes)
        assert set(codes.values()) == {0}, {p.log_path.name: p.log()[-3000:] for p in processes}
        statuses = await check_invariants(world, workload)
        reasons = {(await world.saga(o)).reason or "" for o in workload.orders}
        stores = follower_storage.postgres_stores(world.events.pool)
        parked = await stores.dead_letters.count()
        reports = {report.follower: report for report in await stores.status.reports()}
    assert statuses[OrderStatus.CONFIRMED] > 0 and statuses[OrderStatus.REJECTED] > 0
    assert any("insufficient stock" in r for r in reasons)
    assert any("payment declined" in r for r in reasons)
    assert "no shipping to AQ" in reasons
    assert parked == 0
    # Its ops port: the broker, the group and its assignment; lag and records per group.
    group = f"{prefix}orders-payment"
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["checks"]["kafka"] == "ok" and body["checks"][f"group {group}"] == "ok"
    assignment = body["consumer_groups"][group]["assignment"]
    for topic in ("order-events", "inventory-events", "shipping-events"):
        assert f"{prefix}{topic}[0,1,2,3]" in assignment, assignment
    lag = (
        f'orders_consumer_lag_records{{group="{group}",partition="0",topic="{prefix}order-events"}}'
    )
    assert lag in metrics, metrics[-3000:]
    handled = [
        line for line in metrics.splitlines() if line.startswith("orders_consumer_records_total")
    ]
    # Its triggers: an InventoryReserved per order that got its stock, and more.
    assert handled and float(handled[0].split()[-1]) >= statuses[OrderStatus.CONFIRMED], handled
    assert f'orders_dead_letters{{follower="{group}"}} 0.0' in metrics
    # `processes`: the group's follower, led by the member with its partitions.
    assert f"{prefix}order-events[0,1,2,3]" in reports[group].leader, reports[group]


async def test_two_members_per_group_one_of_each_killed_twice_every_saga_once(
    unique: str, tmp_path: Path
) -> None:
    rng = random.Random(unique)
    prefix = f"t{unique}."
    async with (
        own_postgres_database(f"kkill_{unique}") as dsn,
        saga_world(dsn, "choreography") as world,
    ):
        workload = await scarce_stock_workload(world, unique)
        env = choreography_env(dsn, kafka_address(), prefix, declined_customers(workload))
        processes: list[AppProcess] = [relay(env, tmp_path / "relay.log")]
        steady = {n: Member(n, env, tmp_path / f"{n}-steady.log") for n in PARTICIPANT_NAMES}
        killed = {n: Member(n, env, tmp_path / f"{n}-0.log") for n in PARTICIPANT_NAMES}
        processes += [*steady.values(), *killed.values()]
        settled_at_kills = []
        try:
            for member in [*steady.values(), *killed.values()]:
                await member.following()
            await some_settled(world, workload, seconds=90)
            # One member of each group killed twice, in a random order, restarted each time.
            for kill, name in enumerate(rng.sample(list(PARTICIPANT_NAMES) * 2, 6), start=1):
                await killed[name].following()
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                killed[name].kill()
                settled_at_kills.append(await settled_count(world, workload))
                killed[name] = Member(name, env, tmp_path / f"{name}-{kill}.log")
                processes.append(killed[name])
            await all_settled(world, workload, seconds=240)
            # A SIGTERM before a process installs its handler would end it by the signal.
            for member in killed.values():
                await member.following()
        finally:
            codes = stop_all(processes)
        survivors = [*steady.values(), *killed.values()]
        assert all(codes[p.log_path.name] == 0 for p in survivors), {
            p.log_path.name: p.log()[-2000:] for p in survivors
        }
        assert any(0 < n < len(workload.orders) for n in settled_at_kills), settled_at_kills
        await check_invariants(world, workload)


async def test_the_broker_killed_and_restarted_mid_run_nothing_parked(
    unique: str, tmp_path: Path
) -> None:
    prefix = f"t{unique}."
    with private_kafka(tmp_path) as broker:
        async with (
            own_postgres_database(f"kbroker_{unique}") as dsn,
            saga_world(dsn, "choreography") as world,
        ):
            workload = await scarce_stock_workload(world, unique, orders=40, stock=15)
            env = choreography_env(
                dsn, broker.bootstrap_servers, prefix, declined_customers(workload)
            )
            processes: list[AppProcess] = [relay(env, tmp_path / "relay.log")]
            members = [Member(n, env, tmp_path / f"{n}.log") for n in PARTICIPANT_NAMES]
            processes += members
            try:
                for member in members:
                    await member.following()
                await some_settled(world, workload, seconds=90)
                broker.kill()
                settled_while_down = await settled_count(world, workload)
                await asyncio.sleep(4)
                broker.start()
                await all_settled(world, workload, seconds=180)
            finally:
                codes = stop_all(processes)
            assert set(codes.values()) == {0}, {p.log_path.name: p.log()[-3000:] for p in processes}
            assert settled_while_down < len(workload.orders)
            await check_invariants(world, workload)
            letters = follower_storage.postgres_stores(world.events.pool).dead_letters
            assert await letters.count() == 0
