"""The embedded defaults (`orders dev`): SQLite event store, in-memory read store filled by
replaying the log at start, then tailing it in the same process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from app.backends import Backend, embedded_backend
from app.bootstrap import command_bus, projector_dependencies, run_projections
from app.settings import Settings
from read_model.document_store.port import Document
from tests.integration.write_side import customer_and_product, one_item_order
from write_model.bus import CommandBus
from write_model.command_context import CommandContext

CONTEXT = CommandContext(correlation_id="embedded-test")


def embedded_settings(data_dir: Path) -> Settings:
    # Explicit None: the test services' URLs in the environment must not apply here.
    return Settings(
        database_url=None, mongo_url=None, orders_data_dir=data_dir, projector_poll_seconds=30
    )


@dataclass(frozen=True)
class Embedded:
    backend: Backend
    commands: CommandBus


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Embedded]:
    async with embedded_backend(settings) as backend:
        stop = asyncio.Event()
        deps = projector_dependencies(settings, backend)
        projector = asyncio.create_task(run_projections(deps, stop))
        try:
            yield Embedded(backend, command_bus(settings, backend))
        finally:
            stop.set()
            await projector


async def document(side: Embedded, collection: str, id_: str, version: int) -> Document:
    """The document once it reaches `version`; the long poll interval above means only the
    in-process append signal can make this prompt."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = await side.backend.documents.get(f"{collection}_v1", id_)
        if found is not None and found.get("version") == version:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"{collection}/{id_} did not reach version {version}")


async def test_appends_reach_the_memory_store_and_survive_a_restart(
    tmp_path: Path, unique: str
) -> None:
    settings = embedded_settings(tmp_path)
    async with running(settings) as side:
        bus = side.commands
        await customer_and_product(bus, CONTEXT, unique, price="1.25", stock=5)
        await bus.dispatch(one_item_order(unique, 2), CONTEXT)
        live = await document(side, "orders", f"o-{unique}", 2)
        assert live["total"] == {"amount": "2.75", "currency": "USD"}

    # A new process: the memory store starts empty and is rebuilt from the SQLite log.
    async with running(settings) as side:
        replayed = await document(side, "orders", f"o-{unique}", 2)
        assert replayed == live
        customer = await document(side, "customers", f"c-{unique}", 1)
        assert customer["orderCount"] == 1
