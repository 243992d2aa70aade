"""What the `orders` command says when something is missing or down: one clear line that
names the command and the setting, exit status 2, and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_URLS = ("DATABASE_URL", "MONGO_URL")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def orders(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in SERVICE_URLS}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=tmp_path,
        env={**base, "ORDERS_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = orders(["--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"orders, version {version('orders')}\n"


def test_projections_status_without_database_url_says_how_to_start_orders_dev(
    tmp_path: Path,
) -> None:
    port = closed_port()
    result = orders(["projections", "status"], tmp_path, PORT=str(port))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"error: DATABASE_URL is not set and no `orders dev` answers at "
        f"http://127.0.0.1:{port}/graphql"
    )
    assert "start one (`make dev`, or `.venv/bin/orders dev`)" in line


@pytest.mark.parametrize("command", ["dev", "api"])
def test_a_port_in_use_is_one_line_naming_port_and_the_option(command: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"} if command == "api" else {}
        env |= {"MONGO_URL": "mongodb://127.0.0.1:1"} if command == "api" else {}
        result = orders(
            [command, "--port", str(port)], tmp_path, STARTUP_TIMEOUT_SECONDS="0", **env
        )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # nothing started, no GraphiQL URL
    assert result.stderr.splitlines()[-1] == (
        f"error: port {port} on 127.0.0.1 is in use: another server (an `orders dev` already "
        "running?) listens there; choose another with --port or PORT"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ("projector", "orders projector"),
        ("api", "orders api"),
        ("projections rebuild orders", "orders projections rebuild"),
    ],
)
def test_a_missing_setting_names_the_command_that_needs_it(
    args: str, named: str, tmp_path: Path
) -> None:
    result = orders(args.split(), tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {named} needs DATABASE_URL and MONGO_URL")


@pytest.mark.parametrize("args", ["saga", "participant payment"])
def test_orders_saga_needs_only_postgresql(args: str, tmp_path: Path) -> None:
    result = orders(args.split(), tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: orders {args} needs DATABASE_URL: it shares PostgreSQL with")


@pytest.mark.parametrize("command", ["api", "dev", "migrate", "seed", "projector"])
def test_an_unreachable_url_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    result = orders(
        [command],
        tmp_path,
        DATABASE_URL=f"postgresql://orders:secret@127.0.0.1:{closed_port()}/orders",
        MONGO_URL=f"mongodb://127.0.0.1:{closed_port()}/",
        CONNECT_TIMEOUT_SECONDS="0.5",
        STARTUP_TIMEOUT_SECONDS="0",
        PORT=str(closed_port()),
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: cannot reach PostgreSQL at DATABASE_URL (postgresql://")
    assert "secret" not in line
    assert "Traceback" not in result.stderr


def test_a_participant_runs_only_in_choreography(tmp_path: Path) -> None:
    result = orders(
        ["participant", "inventory"],
        tmp_path,
        DATABASE_URL="postgresql://orders@127.0.0.1:1/orders",
        MONGO_URL="mongodb://127.0.0.1:1/",
        SAGA_MODE="orchestration",
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: orders participant runs one participant of the choreography")
    assert "SAGA_MODE=choreography" in line


def test_an_unknown_participant_is_refused_with_the_choices(tmp_path: Path) -> None:
    result = orders(["participant", "billing"], tmp_path)
    assert result.returncode == 2
    assert "'inventory', 'payment', 'shipping'" in result.stderr


def test_migrate_without_database_url_says_which_store(tmp_path: Path) -> None:
    result = orders(["migrate"], tmp_path)
    assert result.returncode == 0, result.stderr
    events_db = tmp_path / "data" / "events.db"
    assert result.stdout == f"migrated: SQLite event store at {events_db}\n"
    assert events_db.exists()


def test_seed_adds_the_demo_data_as_staff_where_auth_is_on(tmp_path: Path) -> None:
    secret = "a-seed-test-secret-of-32-characters-or-more"
    seeded = orders(["seed"], tmp_path, JWT_SECRET=secret)
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.startswith("seed: the demo catalog")
    with_public_key = orders(["seed"], tmp_path, JWT_PUBLIC_KEY="-----BEGIN PUBLIC KEY-----")
    assert with_public_key.returncode == 1
    assert "can sign staff tokens only with JWT_SECRET" in with_public_key.stderr
