"""A process on PostgreSQL stops cleanly: the event store's NOTIFY task (started by the first
append) ends with the backend, before its pool closes, instead of failing afterwards with
"pool is closing" (seen at the end of every `make bench` write-model run)."""

from __future__ import annotations

import asyncio

from app.backends import shared_log_backend
from app.bootstrap import command_bus
from app.settings import Settings
from tests.conftest import service_url
from write_model.command_context import CommandContext
from write_model.commands import RegisterCustomer


def notifier_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "append-notifier"]


async def test_the_append_notifier_ends_with_the_backend(unique):
    settings = Settings(database_url=service_url("DATABASE_URL"), pg_pool_min_size=1)
    async with shared_log_backend(settings, follows_log=False, migrates=True) as backend:
        register = RegisterCustomer(
            customer_id=f"c-{unique}", name="Shutdown", email=f"{unique}@example.com"
        )
        await command_bus(settings, backend).dispatch(register, CommandContext("shutdown"))
        started = notifier_tasks()  # held here: the loop keeps only weak references
        assert started, "the append started no NOTIFY task"
    for task in started:
        assert task.done(), "the NOTIFY task outlived the backend"
        assert task.cancelled() or task.exception() is None, task.exception()
