"""The composition root's API: what GraphQL resolvers use (`api_runtime`), on the shared
backend, or in `orders dev` on the embedded one with the projector and saga as tasks of the
same process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from app.auth import Authenticator
from app.backends import Backend, embedded_backend, shared_backend
from app.bootstrap import (
    build_read_model,
    command_bus,
    follower_parts,
    projector_dependencies,
    run_followers,
    run_projections,
    saga_consumers,
)
from app.settings import Settings
from read_model.projector_process import ProjectorDependencies
from schema.context import CommandObserver, NoObserver, Services
from schema.order_updates import LiveOrders
from schema.rate_limit import RateLimiter

log = logging.getLogger(__name__)


def authenticator(settings: Settings) -> Authenticator:
    """Who asks, from a bearer token; open (everyone anonymous) when no key is set."""
    return Authenticator(settings)


def cors_origins(settings: Settings, *, embedded: bool) -> list[str]:
    """Browser origins other than the API's own that may call it (HTTP and websockets):
    CORS_ALLOWED_ORIGINS; unset: none (same origin only), or any in `orders dev`."""
    if settings.cors_allowed_origins is None:
        return ["*"] if embedded else []
    return [origin.strip() for origin in settings.cors_allowed_origins.split(",") if origin.strip()]


@dataclass
class ApiRuntime:
    """What the API process runs on once started. `projector`: the in-process projections
    task of embedded mode (`orders dev`); None where the projector is a process of its
    own."""

    settings: Settings
    backend: Backend
    services: Services
    projector: asyncio.Task[None] | None = None
    saga: asyncio.Task[None] | None = None


@contextlib.asynccontextmanager
async def api_runtime(
    settings: Settings,
    *,
    embedded: bool,
    observer: CommandObserver | None = None,
    mongo_event_listeners: Sequence[Any] = (),
) -> AsyncIterator[ApiRuntime]:
    backend_context = (
        embedded_backend(settings)
        if embedded
        else shared_backend(
            settings,
            follows_log=False,
            migrates=settings.migrate_on_start,
            mongo_event_listeners=mongo_event_listeners,
            read_cache=True,
        )
    )
    async with backend_context as backend, contextlib.AsyncExitStack() as running:
        reader = build_read_model(settings, backend)
        live = LiveOrders(backend.feed, reader)
        # Subscribed to the change feed before serving, so no later change is missed.
        await running.enter_async_context(live.running())
        services = Services(
            commands=command_bus(settings, backend),
            events=backend.events,
            registry=backend.registry,
            read_model=reader,
            observer=observer or NoObserver(),
            live=live,
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            # Off in `orders dev`: one developer, often scripting against it.
            mutation_limiter=RateLimiter(None if embedded else settings.mutation_rate_limit),
        )
        runtime = ApiRuntime(settings, backend, services)
        if embedded:
            deps = projector_dependencies(settings, backend)
            runtime.projector = await running.enter_async_context(_projections_running(deps))
            sagas = saga_consumers(settings, backend)
            parts = follower_parts(settings, backend)
            runtime.saga = await running.enter_async_context(
                _task_running("saga", lambda stop: run_followers(sagas, parts, stop))
            )
        yield runtime


def _projections_running(
    deps: ProjectorDependencies,
) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    return _task_running("projector", lambda stop: run_projections(deps, stop))


@contextlib.asynccontextmanager
async def _task_running(
    name: str, loop: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> AsyncIterator[asyncio.Task[None]]:
    """A loop (the projections, the saga) as a task of this process, stopped (not
    cancelled) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop(stop), name=name)
    task.add_done_callback(_report_end)
    try:
        yield task
    finally:
        stop.set()
        await task


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error(
            "the in-process %s stopped: %s",
            task.get_name(),
            error,
            exc_info=(type(error), error, error.__traceback__),
        )
