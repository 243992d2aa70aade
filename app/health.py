"""Readiness, for /readyz of the API and of the processes that serve only an ops port: each
store the process uses answers, the LISTEN connection is up, and (where the process has the
read store) no projection has stopped while events wait for it. Each check says "ok" or why
not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.backends import LogBackend
from app.settings import Settings
from read_model.document_store.port import ProjectionState
from read_model.projections import OrdersProjection
from read_model.service import ReadModel

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0


class ProjectionsStopped(Exception):
    """A projection's leader has not moved or beaten while events wait for it."""


async def readiness(
    settings: Settings, backend: LogBackend, read_model: ReadModel | None
) -> dict[str, str]:
    """`read_model`: None in a process without the read store (`orders saga`)."""

    async def projections() -> None:
        assert read_model is not None
        stopped = [
            f"{status.name} (lag {status.lag})"
            for status in await read_model.statuses()
            if status.state == ProjectionState.STOPPED
        ]
        if stopped:
            raise ProjectionsStopped("stopped: " + ", ".join(stopped))

    probes: dict[str, Callable[[], Awaitable[object]]] = {
        ("postgres" if settings.database_url else "sqlite"): backend.events.head_position,
    }
    if read_model is not None:
        probes[("mongo" if settings.mongo_url else "memory")] = lambda: read_model.position(
            OrdersProjection.name
        )
        probes["projections"] = projections
    names = list(probes)
    results = await asyncio.gather(*(_check(probes[name]) for name in names))
    checks = dict(zip(names, results, strict=True))
    if backend.listener_healthy is not None:
        checks["listener"] = "ok" if backend.listener_healthy() else "reconnecting"
    return checks


async def _check(probe: Callable[[], Awaitable[object]]) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await probe()
    except ProjectionsStopped as stopped:
        return str(stopped)
    except Exception as error:  # reported in the response: that is the point of /readyz
        log.warning("readiness check failed: %s: %s", type(error).__name__, error)
        return f"unavailable: {type(error).__name__}: {error}"[:300]
    return "ok"
