"""The ops port of processes without a GraphQL API (`orders projector`, `orders saga`, later
the relay): /healthz, /readyz and /metrics on OPS_PORT, for health checks and Prometheus.
A process without the read store (the saga's) passes no ReadModel: it reports its own
stores and dead letters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.health import readiness
from app.metrics import CONTENT_TYPE, Metrics
from app.settings import Settings
from read_model.service import ReadModel

if TYPE_CHECKING:
    from app.bootstrap import LogBackend


def ops_app(settings: Settings, backend: LogBackend, read_model: ReadModel | None) -> Starlette:
    metrics = Metrics()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = await readiness(settings, backend, read_model)
        ready = all(result == "ok" for result in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(request: Request) -> Response:
        if backend.listener_healthy is not None:
            metrics.listener_connected.set(1 if backend.listener_healthy() else 0)
        body = await metrics.render(read_model, backend.saga.dead_letters)
        return Response(body, media_type=CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles its own signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def ops_server(
    settings: Settings, backend: LogBackend, read_model: ReadModel | None
) -> AsyncIterator[None]:
    """Serve the ops endpoints on OPS_PORT while the block runs (nothing when unset)."""
    if settings.ops_port is None:
        yield
        return
    server = _EmbeddedServer(
        uvicorn.Config(
            ops_app(settings, backend, read_model),
            host=settings.host,
            port=settings.ops_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve(), name="ops-server")
    try:
        yield
    finally:
        server.should_exit = True
        await task
