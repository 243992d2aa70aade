"""The `orders` command."""

from __future__ import annotations

import asyncio
import sys

import click

from app.bootstrap import ServiceUnavailable, migrate
from app.settings import Settings


@click.group()
def main() -> None:
    """Orders: a GraphQL CQRS API server."""


@main.command("migrate")
def migrate_command() -> None:
    """Create or update the event store schema (safe to run again)."""
    settings = Settings()
    try:
        done = asyncio.run(migrate(settings))
    except ServiceUnavailable as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(f"migrated: {done}")


@main.command("dev")
@click.option("--host", default=None, help="listen address (default HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="listen port (default PORT or 8000)")
def dev_command(host: str | None, port: int | None) -> None:
    """Run API and projector in one process on the embedded defaults."""
    click.echo(
        "orders dev: the GraphQL API is not built yet (it arrives with the GraphQL issue); "
        "today this project provides the write model and `orders migrate`."
    )
