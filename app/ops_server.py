"""The ops endpoints, for health checks and Prometheus: /healthz, /readyz with its checks,
/metrics.

- `orders projector` and `orders saga` serve them on OPS_PORT only (`ops_server`). A process
  without the read store (the saga's) passes no ReadModel: it reports its own stores and
  dead letters.
- The API serves /healthz and a /readyz that says only ready or not on its own port
  (`api_routes`). With OPS_PORT set, its checks and /metrics are on that port (`serving`)
  and /metrics is not on the API's port; without, the checks are shown on the API's port to
  operators (OPS_TOKEN or a staff token) and /metrics needs the same, unless the API is open
  (no JWT key and no OPS_TOKEN), where it is public.

The ops port answers whoever reaches it: bind it (OPS_HOST) where only operators do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.backends import LogBackend, follower_statuses_of
from app.health import readiness
from app.metrics import CONTENT_TYPE, Metrics
from app.security import OperatorCheck, unauthenticated_response
from app.settings import Settings
from read_model.service import ReadModel

log = logging.getLogger(__name__)

# Each check's result ("ok" or why not); None while the process is still starting.
Checks = Callable[[], Awaitable[dict[str, str] | None]]
# A warning per follower of the log ("ok" or what to look at), which never makes the
# process unready: a missing saga process is the operator's to notice, not the balancer's.
FollowerChecks = Callable[[], Awaitable[dict[str, str]]]
RenderMetrics = Callable[[], Awaitable[bytes]]


async def _no_followers() -> dict[str, str]:
    return {}


class OpsPortUnavailable(RuntimeError):
    """OPS_PORT cannot be listened on (in use, or not allowed)."""


async def _no_details() -> dict[str, object]:
    return {}


# More of a process's own state for /readyz's operators (a consumer group's assignment).
Details = Callable[[], Awaitable[dict[str, object]]]


async def _readiness_response(
    checks: dict[str, str] | None,
    *,
    detailed: bool,
    followers: FollowerChecks = _no_followers,
    details: Details = _no_details,
) -> Response:
    ready = checks is not None and all(result == "ok" for result in checks.values())
    status = "ready" if ready else "unavailable" if checks is not None else "starting"
    # The checks name the stores and their errors: for operators only.
    detail: dict[str, object] = {}
    if detailed:
        detail["checks"] = checks or {}
        if checks is not None and (warnings := await _followers_or_why(followers)):
            detail["followers"] = warnings
        detail.update(await details())
    return JSONResponse({"status": status, **detail}, status_code=200 if ready else 503)


async def _followers_or_why(followers: FollowerChecks) -> dict[str, str]:
    try:
        async with asyncio.timeout(2.0):
            return await followers()
    except Exception as error:  # shown to the operator; readiness is the stores' checks
        log.warning("follower checks failed: %s: %s", type(error).__name__, error)
        return {"*": f"unavailable: {type(error).__name__}: {error}"[:300]}


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def ops_app(
    checks: Checks,
    render_metrics: RenderMetrics,
    followers: FollowerChecks = _no_followers,
    details: Details = _no_details,
) -> Starlette:
    """The ops port's application: everything, to whoever reaches it."""

    async def readyz(request: Request) -> Response:
        return await _readiness_response(
            await checks(), detailed=True, followers=followers, details=details
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(await render_metrics(), media_type=CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )


def api_routes(
    checks: Checks,
    render_metrics: RenderMetrics,
    operator: OperatorCheck,
    *,
    ops_port: bool,
    followers: FollowerChecks = _no_followers,
) -> list[Route]:
    """/healthz, /readyz and (without an ops port) /metrics on the API's own port."""

    async def readyz(request: Request) -> Response:
        detailed = not ops_port and await operator(request)
        return await _readiness_response(await checks(), detailed=detailed, followers=followers)

    async def metrics_endpoint(request: Request) -> Response:
        if not (operator.open or await operator(request)):
            return unauthenticated_response(
                "/metrics needs `Authorization: Bearer <OPS_TOKEN>` or a staff token"
            )
        return Response(await render_metrics(), media_type=CONTENT_TYPE)

    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if not ops_port:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return routes


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles its own signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening(settings: Settings, port: int) -> socket.socket:
    host = settings.ops_host or settings.host
    try:
        # Bound here rather than by uvicorn, which would exit the process on an error.
        return socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as error:
        raise OpsPortUnavailable(
            f"cannot serve the ops endpoints on {host}:{port} (OPS_HOST / OPS_PORT): {error}"
        ) from error


@contextlib.asynccontextmanager
async def serving(settings: Settings, app: Starlette) -> AsyncIterator[None]:
    """Serve `app` on OPS_PORT while the block runs (nothing when it is unset)."""
    if settings.ops_port is None:
        yield
        return
    listener = _listening(settings, settings.ops_port)
    host, port = listener.getsockname()[:2]
    server = _EmbeddedServer(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[listener]), name="ops-server")
    log.info("ops endpoints (/healthz, /readyz, /metrics) on http://%s:%s", host, port)
    try:
        yield
    finally:
        server.should_exit = True
        await task
        listener.close()


@contextlib.asynccontextmanager
async def ops_server(
    settings: Settings,
    backend: LogBackend,
    read_model: ReadModel | None,
    *,
    metrics: Metrics | None = None,
    more_checks: Checks | None = None,
    more_details: Details | None = None,
    refresh_metrics: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[None]:
    """The ops port of `orders projector`, `orders saga` and `orders relay` while the block
    runs; `metrics` with a process's own figures registered, `more_checks` its own checks,
    `more_details` shown beside them, `refresh_metrics` run before each scrape."""
    metrics = metrics or Metrics()

    async def checks() -> dict[str, str]:
        found = await readiness(settings, backend, read_model)
        if more_checks is not None:
            found = {**found, **(await more_checks() or {})}
        return found

    async def render_metrics() -> bytes:
        if refresh_metrics is not None:
            try:
                await refresh_metrics()
            except Exception:
                log.warning("process metrics not refreshed", exc_info=True)
        if backend.listener_healthy is not None:
            metrics.listener_connected.set(1 if backend.listener_healthy() else 0)
        return await metrics.render(read_model, follower_statuses_of(settings, backend))

    app = ops_app(checks, render_metrics, details=more_details or _no_details)
    async with serving(settings, app):
        yield
