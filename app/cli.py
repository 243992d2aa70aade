"""The `orders` command."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from app.api_runtime import authenticator
from app.backends import embedded_backend, migrate, shared_backend
from app.bootstrap import projector_tools, run_projector, run_saga_process
from app.heap import freeze_startup_heap
from app.log_config import configure_logging
from app.settings import Settings
from app.settings_errors import settings_error_lines
from app.stores import ServiceUnavailable, require_services
from write_model.domain.choreography import Participant
from write_model.envelope import LogPosition

log = logging.getLogger(__name__)


class _OrdersGroup(click.Group):
    """Bad settings, for every command: one line per variable and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationError as error:
            if error.title != Settings.__name__:
                raise
            for line in settings_error_lines(error, Settings):
                click.echo(f"error: {line}", err=True)
            ctx.exit(2)


@click.group(cls=_OrdersGroup)
@click.version_option(package_name="orders", prog_name="orders")
def main() -> None:
    """Orders: a GraphQL CQRS API server."""


def _run(work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run `work` on uvloop; a configured service that cannot be reached exits with 2."""
    import uvloop

    freeze_startup_heap()
    try:
        return uvloop.run(work())
    except ServiceUnavailable as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


def _configure_logging(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)


async def _until_signalled(work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    await work(stop)


@main.command("migrate")
def migrate_command() -> None:
    """Create or update the event store schema (safe to run again)."""
    settings = Settings()
    done = _run(lambda: migrate(settings))
    click.echo(f"migrated: {done}")


@main.group("schema")
def schema_group() -> None:
    """The GraphQL schema the server serves."""


@schema_group.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="write to this file (default: standard output)",
)
def schema_export(output: str | None) -> None:
    """Print the schema as SDL (schema/schema.graphql is this output, committed)."""
    from schema.export import schema_sdl

    sdl = schema_sdl()
    if output is None:
        click.echo(sdl, nl=False)
    else:
        Path(output).write_text(sdl)
        click.echo(f"schema written to {output}", err=True)


@schema_group.command("export-events")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    default=None,
    help="where the schemas go (default: schema/events of this checkout)",
)
def schema_export_events(directory: Path | None) -> None:
    """Write the JSON Schema of every event type's current version as
    schema/events/<EventType>/<version>.json (committed: what Kafka consumers read). Refuses
    a change to a committed version that does more than add optional properties."""
    from messaging.event_schemas import SCHEMA_DIRECTORY, IncompatibleSchemaChange, export
    from write_model.event_types import build_registry

    try:
        result = export(build_registry(), directory or SCHEMA_DIRECTORY)
    except IncompatibleSchemaChange as error:
        raise click.ClickException(str(error)) from None
    for path in result.written:
        click.echo(f"written {path}", err=True)
    click.echo(f"{len(result.written)} written, {result.unchanged} unchanged", err=True)


@main.command("seed")
def seed_command() -> None:
    """Add a small demo catalog and customers through the GraphQL API (safe to run again:
    a second run adds nothing)."""
    from app.seed import SeedFailed, seed

    settings = Settings()
    # The in-process API's start-up and request lines would bury the one-line summary.
    configure_logging("ERROR", settings.log_format)
    try:
        summary = _run(lambda: seed(settings))
    except SeedFailed as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"seed: {summary}")


@main.command("projector")
def projector_command() -> None:
    """Keep the MongoDB read documents current from the PostgreSQL event log."""
    settings = Settings()
    _configure_logging(settings)
    _require_services(settings, "orders projector")
    _run(lambda: _until_signalled(lambda stop: run_projector(settings, stop)))


@main.command("saga")
def saga_command() -> None:
    """Run the fulfillment saga on PostgreSQL: confirm or reject submitted orders (a second
    one stands by). SAGA_MODE=choreography: its three participants."""
    settings = Settings()
    _configure_logging(settings)
    _require_services(settings, "orders saga", read_store=False)
    _run(lambda: _until_signalled(lambda stop: run_saga_process(settings, stop)))


@main.command("relay")
def relay_command() -> None:
    """Publish every event of the log to Kafka (KAFKA_BOOTSTRAP_SERVERS), exactly once, as
    CloudEvents; a second relay stands by. Exits with status 2 on a fatal Kafka error (fenced
    by another relay with its transactional.id): a supervisor restarts it."""
    from app.relay_process import run_relay_process

    settings = Settings()
    _configure_logging(settings)
    if not settings.kafka_bootstrap_servers:
        raise click.ClickException("KAFKA_BOOTSTRAP_SERVERS is not set: the relay needs Kafka")
    _require_services(settings, "orders relay", read_store=False)
    _run(lambda: _until_signalled(lambda stop: run_relay_process(settings, stop)))


@main.command("participant")
@click.argument("name", type=click.Choice([p.value.lower() for p in Participant]))
def participant_command(name: str) -> None:
    """Run one participant of the choreographed fulfillment saga on PostgreSQL (SAGA_MODE
    choreography): inventory, payment or shipping (a second one stands by). With
    KAFKA_BOOTSTRAP_SERVERS set it consumes the relay's topics in its consumer group
    instead (a second one shares the partitions)."""
    settings = Settings()
    _configure_logging(settings)
    _require_services(settings, f"orders participant {name}", read_store=False)
    if settings.saga_mode != "choreography":
        click.echo(
            "error: orders participant runs one participant of the choreography; set "
            "SAGA_MODE=choreography (orders saga runs the orchestrator)",
            err=True,
        )
        sys.exit(2)
    participant = Participant(name.capitalize())
    _run(lambda: _until_signalled(lambda stop: run_saga_process(settings, stop, participant)))


@main.group("projections")
def projections_group() -> None:
    """Inspect and rebuild projections."""


@projections_group.command("status")
def projections_status() -> None:
    """Each projection's checkpoint, the head of the log, lag, state and last error (of
    the stores in DATABASE_URL and MONGO_URL; unset: of the `orders dev` at HOST:PORT)."""
    from read_model.status import projection_statuses

    settings = Settings()
    if not settings.database_url:
        _print_statuses(_statuses_from_dev(settings))
        return
    _require_services(settings, "orders projections status")

    async def work() -> list[tuple[str, ...]]:
        async with projector_tools(settings) as deps:
            statuses = await projection_statuses(deps.events, deps.documents)
        return [
            (
                s.name,
                str(s.position.position),
                str(s.head.position),
                str(s.lag),
                s.state,
                s.last_error or "",
                s.updated_at.isoformat(timespec="seconds") if s.updated_at else "",
            )
            for s in statuses
        ]

    _print_statuses(_run(work))


def _print_statuses(rows: list[tuple[str, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "position", "head", "lag", "state", "last error", "updated")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _statuses_from_dev(settings: Settings) -> list[tuple[str, ...]]:
    """Without DATABASE_URL the stores are those of `orders dev` (its SQLite file and its
    in-memory read store): ask the running one over HTTP, as a staff member."""
    import httpx

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/graphql"
    auth = authenticator(settings)
    headers = (
        {"Authorization": f"Bearer {auth.mint('orders-cli', staff=True, ttl_seconds=60)}"}
        if auth.enabled and settings.jwt_secret
        else {}
    )
    query = "{ projections { name position headPosition lag state lastError updatedAt } }"
    try:
        response = httpx.post(url, json={"query": query}, headers=headers, timeout=10)
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        click.echo(
            f"error: DATABASE_URL is not set and no `orders dev` answers at {url} ({error}): "
            "start one (`make dev`, or `.venv/bin/orders dev`) and run this again, or set "
            "DATABASE_URL and MONGO_URL for the stores of `orders api`",
            err=True,
        )
        sys.exit(2)
    if response.status_code != 200 or body.get("errors"):
        click.echo(f"error: the `orders dev` at {url} answered {body.get('errors')}", err=True)
        sys.exit(2)
    return [
        (
            p["name"],
            p["position"],
            p["headPosition"],
            str(p["lag"]),
            p["state"],
            p["lastError"] or "",
            p["updatedAt"] or "",
        )
        for p in body["data"]["projections"]
    ]


@projections_group.command("rebuild")
@click.argument("name")
def projections_rebuild(name: str) -> None:
    """Build a fresh version of projection NAME from position zero, then switch readers."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from read_model.projections import ALL_PROJECTIONS
    from read_model.projector_process import rebuild_projection

    by_name = {p.name: p for p in ALL_PROJECTIONS}
    if name not in by_name:
        raise click.BadParameter(f"unknown projection {name!r}; one of {', '.join(by_name)}")
    settings = Settings()
    _configure_logging(settings)
    _require_services(settings, "orders projections rebuild")

    async def work() -> int:
        async with projector_tools(settings) as deps:
            with Progress(
                TextColumn(f"rebuilding {name}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} positions"),
                TimeRemainingColumn(),
            ) as bar:
                task = bar.add_task(name, total=None)

                def progress(done: LogPosition, head: LogPosition) -> None:
                    bar.update(task, completed=done.position, total=max(head.position, 1))

                return await rebuild_projection(deps, by_name[name], progress)

    version = _run(work)
    click.echo(f"{name}: version {version} built")


def _require_services(settings: Settings, command: str, *, read_store: bool = True) -> None:
    """Exit 2 naming `command` when a setting it needs is missing (`read_store`: MONGO_URL
    too)."""
    try:
        require_services(settings, command, read_store=read_store)
    except ServiceUnavailable as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


class AnnouncingServer(uvicorn.Server):
    """Says where GraphiQL is, and whether the API is open, on standard output, once the
    server listens."""

    def __init__(self, config: uvicorn.Config, auth_banner: str, *, graphiql: bool) -> None:
        super().__init__(config)
        self._auth_banner = auth_banner
        self._graphiql = graphiql

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            host = self.config.host
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            if self._graphiql:  # else a warning said which assets are missing
                click.echo(f"GraphiQL: http://{shown}:{self.config.port}/graphql")
            click.echo(self._auth_banner)


def _check_reachable(settings: Settings, *, embedded: bool) -> None:
    """Connect to the configured services once before serving, so an unreachable one is a
    single clear line and exit status 2, not a startup traceback from the server."""
    if not (settings.database_url or settings.mongo_url):
        return

    async def probe() -> None:
        backend = (
            embedded_backend(settings) if embedded else shared_backend(settings, follows_log=False)
        )
        async with backend:
            pass

    _run(probe)


def _serve(settings: Settings, host: str | None, port: int | None, *, embedded: bool) -> None:
    """Serve the API with uvicorn (one worker, uvloop) until SIGINT / SIGTERM."""
    from app.graphiql import GraphiQL
    from app.server import create_app
    from app.websocket_protocol import LeanWebSocketProtocol

    # --host and --port win over HOST and PORT, for the ops port's default host too.
    settings = settings.model_copy(
        update={"host": host or settings.host, "port": port if port is not None else settings.port}
    )
    _require_free_port(settings.host, settings.port)
    _check_reachable(settings, embedded=embedded)
    missing = GraphiQL().missing_files()
    if missing:
        log.warning(
            "GraphiQL is not served: its assets are missing from %s: %s (a wheel or sdist of "
            "orders carries them; in a clone, `make install` builds them)",
            GraphiQL().assets_dir,
            ", ".join(missing),
        )
    app = create_app(settings, embedded=embedded)
    server = AnnouncingServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            workers=1,
            log_config=None,  # the root logger configured by _configure_logging
            access_log=settings.access_log,
            server_header=False,
            ws_max_size=settings.max_websocket_message_bytes,
            # No permessage-deflate: its zlib state costs each websocket about 50 KiB of
            # server memory, half of what a subscriber costs, to shrink pushes of a few
            # hundred bytes.
            ws_per_message_deflate=False,
            ws=LeanWebSocketProtocol,  # less held per connection (app/websocket_protocol.py)
        ),
        _auth_banner(settings),
        graphiql=not missing,
    )
    freeze_startup_heap()
    try:
        server.run()
    except KeyboardInterrupt:
        # Ctrl-C: uvicorn has shut down cleanly and re-raised the signal; an interrupt is
        # how `orders dev` is meant to stop, not a failure ("Aborted!", status 1).
        click.echo("stopped", err=True)
    except SystemExit:
        # uvicorn exits with 3 when the lifespan fails; a service that cannot be reached
        # (or an ops port that cannot be listened on) is the operator's to fix, so say
        # which one and exit with 2 like every command.
        startup_error = getattr(app.state, "startup_error", None)
        if startup_error is not None:
            click.echo(f"error: {startup_error}", err=True)
            sys.exit(2)
        raise


def _require_free_port(host: str, port: int) -> None:
    """A port in use is one line with the way out, before anything starts (uvicorn would
    say `[Errno 98]` after the start-up lines)."""
    if port == 0:
        return
    try:
        socket.create_server((host, port)).close()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            click.echo(
                f"error: port {port} on {host} is in use: another server (an `orders dev` "
                "already running?) listens there; choose another with --port or PORT",
                err=True,
            )
        else:
            click.echo(
                f"error: cannot listen on {host}:{port} ({error}): check --host / HOST and "
                "--port / PORT",
                err=True,
            )
        sys.exit(2)


def _auth_banner(settings: Settings) -> str:
    auth = authenticator(settings)
    if not auth.enabled:
        return f"Warning: {auth.describe()}"
    hint = " (a token for GraphiQL: `orders token --staff NAME`)" if settings.jwt_secret else ""
    return f"{auth.describe()[0].upper()}{auth.describe()[1:]}{hint}"


@main.command("token")
@click.argument("subject")
@click.option("--staff", is_flag=True, help="a staff token (else SUBJECT is a customer id)")
@click.option(
    "--ttl", type=float, default=3600.0, show_default=True, help="seconds the token is valid"
)
def token_command(subject: str, staff: bool, ttl: float) -> None:
    """Print a bearer token for a customer (SUBJECT: its id) or a staff member, signed with
    JWT_SECRET, for development: GraphiQL's headers, curl, the docs' examples."""
    settings = Settings()
    if not settings.jwt_secret:
        click.echo("error: `orders token` signs with JWT_SECRET, which is not set", err=True)
        sys.exit(2)
    if ttl <= 0:
        click.echo(f"error: --ttl must be positive, got {ttl:g}", err=True)
        sys.exit(2)
    click.echo(authenticator(settings).mint(subject, staff=staff, ttl_seconds=ttl))


@main.command("api")
@click.option("--host", default=None, help="listen address (default HOST or 127.0.0.1)")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="listen port (default PORT or 8000)"
)
def api_command(host: str | None, port: int | None) -> None:
    """Serve the GraphQL API on PostgreSQL and MongoDB (the projector runs apart:
    `orders projector`)."""
    settings = Settings()
    _configure_logging(settings)
    _require_services(settings, "orders api")
    _serve(settings, host, port, embedded=False)


@main.command("dev")
@click.option("--host", default=None, help="listen address (default HOST or 127.0.0.1)")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="listen port (default PORT or 8000)"
)
def dev_command(host: str | None, port: int | None) -> None:
    """Run the API and the projector in one process on the embedded defaults (SQLite event
    store in ORDERS_DATA_DIR, in-memory read store rebuilt from the log at start)."""
    settings = Settings()
    _configure_logging(settings)
    _serve(settings, host, port, embedded=True)
