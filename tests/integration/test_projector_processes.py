"""`orders projector` as real processes: killed at random points, and two at once."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from read_model.projections import ALL_PROJECTIONS
from tests.conftest import service_url
from tests.integration.app_process import AppProcess
from tests.integration.read_side import (
    CONTEXT,
    all_documents,
    build_bus,
    catch_up,
    isolated_stack,
    mongo_documents,
    order_workload,
    runners,
)
from write_model import commands


class Projector(AppProcess):
    """One `orders projector` process with its log in a file."""

    def __init__(self, dsn: str, database: str, log_path: Path, batch_size: int = 200) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "MONGO_URL": service_url("MONGO_URL"),
            "MONGO_DB": database,
            "PROJECTOR_BATCH_SIZE": str(batch_size),
            "PROJECTOR_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
        }
        super().__init__("projector", env, log_path)


@contextmanager
def projectors() -> Iterator[list[Projector]]:
    started: list[Projector] = []
    try:
        yield started
    finally:
        for projector in started:
            if projector.process.poll() is None:
                projector.stop()


async def caught_up(documents, events, seconds: float = 90.0) -> None:
    """Every projection's checkpoint reaches the head of the log."""
    head = await events.head_position()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        checkpoints = {c.name: c for c in await documents.list_checkpoints()}
        if all(
            p.name in checkpoints and checkpoints[p.name].position >= head for p in ALL_PROJECTIONS
        ):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"projections did not reach {head} within {seconds}s: {checkpoints}")


async def test_killed_at_random_points_converges_to_a_clean_rebuild(
    unique: str, tmp_path: Path
) -> None:
    database = f"killed_{unique}"
    rebuilt_database = f"clean_{unique}"
    rng = random.Random(unique)
    async with isolated_stack(database, max_size=20) as (dsn, events, documents):
        bus = build_bus(events)
        with projectors() as started:
            started.append(Projector(dsn, database, tmp_path / "projector-0.log"))
            # About 2,000 commands from 5 writers, while the projector is killed with SIGKILL
            # at random moments (and at least 4 times, catching up included) and restarted.
            load = asyncio.gather(*(order_workload(bus, f"{unique}-{w}", 80) for w in range(5)))
            kills = 0
            while not load.done() or kills < 4:
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                started[-1].kill()
                kills += 1
                started.append(Projector(dsn, database, tmp_path / f"projector-{kills}.log"))
            await load
            await caught_up(documents, events)
            # The head may have been reached before the last restart: a SIGTERM before the
            # process installs its handler would end it by the signal, not by a clean stop.
            last = started[-1]
            await _until(lambda: "leading projection" in last.log(), "the last process leads")
            assert last.stop() == 0

        async with mongo_documents(rebuilt_database) as clean:
            await catch_up(runners(events, clean))
            expected = await all_documents(clean)
        actual = await all_documents(documents)
        assert len(expected["orders"]) == 5 * 80
        assert actual == expected


async def test_a_standby_takes_over_when_the_leader_dies(unique: str, tmp_path: Path) -> None:
    database = f"standby_{unique}"
    async with isolated_stack(database) as (dsn, events, documents):
        bus = build_bus(events)
        await order_workload(bus, unique, orders=2)
        with projectors() as started:
            first = Projector(dsn, database, tmp_path / "first.log")
            started.append(first)
            await caught_up(documents, events)
            second = Projector(dsn, database, tmp_path / "second.log")
            started.append(second)
            await _until(lambda: "standing by" in second.log(), "second process stands by")

            await bus.dispatch(
                commands.AddOrderItem(
                    order_id=f"o1-{unique}", product_id=f"p2-{unique}", quantity=7
                ),
                CONTEXT,
            )
            await caught_up(documents, events)
            assert "leading projection orders" in first.log()
            assert "leading projection" not in second.log(), "only one process applies"

            first.kill()
            killed_at = time.monotonic()
            await bus.dispatch(
                commands.AddOrderItem(
                    order_id=f"o1-{unique}", product_id=f"p0-{unique}", quantity=9
                ),
                CONTEXT,
            )
            await caught_up(documents, events, seconds=30)
            takeover = time.monotonic() - killed_at

            assert "leading projection orders" in second.log()
            order = await documents.get("orders_v1", f"o1-{unique}")
            assert order is not None and order["version"] == 6
            assert takeover < 15, f"took {takeover:.1f}s to take over"


async def _until(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.1)
