"""End-to-end fixtures: the real server as real processes, driven over HTTP.

`stack` is session-scoped and parametrized, so every e2e test runs once against each stack
and each stack starts once per session:

- `postgres`: `orders migrate`, then `orders api` (one uvicorn worker) and `orders projector`
  as two processes, on a PostgreSQL database of their own and a Mongo database of their own
  on the Mongo-wire server started by tests/services/with-services;
- `embedded`: `orders dev` alone (SQLite event store in a temporary ORDERS_DATA_DIR,
  in-memory read store, projector in the same process), with no service URL in its env.

Tests use fresh random ids, so they stay independent while sharing one stack. When a test
fails, the tail of the stack's process logs is attached to its report.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import service_url
from tests.e2e.client import Api

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    """One `python -m app ...` process, its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL when it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class Stack:
    name: str
    base_url: str
    processes: list[ServerProcess] = field(default_factory=list)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(
            f"----- {p.name} ({p.log_path}), exit code {p.exited} -----\n{p.log_tail(lines)}"
            for p in self.processes
        )

    def check_running(self) -> None:
        dead = [p for p in self.processes if p.exited is not None]
        if dead:
            pytest.fail(
                f"{self.name} stack: {', '.join(p.name for p in dead)} exited\n{self.log_tail()}",
                pytrace=False,
            )

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last_error = "no answer yet"
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                self.check_running()
                try:
                    response = await http.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        return
                    last_error = f"/healthz answered {response.status_code}"
                except httpx.HTTPError as error:
                    last_error = repr(error)
                await asyncio.sleep(0.1)
        pytest.fail(
            f"{self.name} stack: /healthz not 200 within {STARTUP_TIMEOUT_SECONDS:.0f} s "
            f"({last_error})\n{self.log_tail()}",
            pytrace=False,
        )

    def stop(self) -> None:
        # The API first, so no request is in flight when the projector goes.
        for process in self.processes:
            code = process.stop()
            if code not in (0, -signal.SIGTERM, None):
                print(f"\n{self.name}: {process.name} exited with {code}\n{process.log_tail()}")


_OWN_SETTINGS = frozenset(
    {"DATABASE_URL", "MONGO_URL", "MONGO_DB", "ORDERS_DATA_DIR", "PORT", "HOST", "TAX_RATE"}
)


def _base_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # the stacks' own URLs and listen address; the tests expect the default 10 % tax
        if key.upper() not in _OWN_SETTINGS
    }
    env.update({"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "PROJECTOR_POLL_SECONDS": "0.2"})
    return env


def _run_admin(args: list[str], env: dict[str, str], log_path: Path) -> None:
    with log_path.open("ab") as log:
        done = subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        pytest.fail(f"`orders {' '.join(args)}` failed ({done.returncode}):\n{tail}", pytrace=False)


async def drop_mongo_database(name: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(service_url("MONGO_URL"))
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def postgres_stack(logs: Path) -> AsyncIterator[Stack]:
    from tests.integration.read_side import own_postgres_database

    tag = uuid.uuid4().hex[:10]
    mongo_db = f"orders_e2e_{tag}"
    async with own_postgres_database(f"orders_e2e_{tag}") as dsn:
        env = {
            **_base_env(),
            "DATABASE_URL": dsn,
            "MONGO_URL": service_url("MONGO_URL"),
            "MONGO_DB": mongo_db,
        }
        await asyncio.to_thread(_run_admin, ["migrate"], env, logs / "migrate.log")
        port = free_port()
        stack = Stack("postgres", f"http://127.0.0.1:{port}")
        try:
            stack.processes.append(
                ServerProcess(
                    "orders api",
                    ["api", "--host", "127.0.0.1", "--port", str(port)],
                    env,
                    logs / "api.log",
                ).start()
            )
            stack.processes.append(
                ServerProcess(
                    "orders projector", ["projector"], env, logs / "projector.log"
                ).start()
            )
            await stack.wait_healthy()
            yield stack
        finally:
            await asyncio.to_thread(stack.stop)
            with contextlib.suppress(Exception):
                await drop_mongo_database(mongo_db)


@contextlib.asynccontextmanager
async def embedded_stack(logs: Path, data_dir: Path) -> AsyncIterator[Stack]:
    env = {**_base_env(), "ORDERS_DATA_DIR": str(data_dir)}
    port = free_port()
    stack = Stack("embedded", f"http://127.0.0.1:{port}")
    try:
        stack.processes.append(
            ServerProcess(
                "orders dev",
                ["dev", "--host", "127.0.0.1", "--port", str(port)],
                env,
                logs / "dev.log",
            ).start()
        )
        await stack.wait_healthy()
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.mongo]),
        "embedded",
    ],
)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One running server stack for the whole session (per parameter). pytest does not
    cache a failed setup, so a stack that failed to start fails its other tests at once
    instead of waiting for it again."""
    name = request.param
    if name in _START_FAILURES:
        pytest.fail(
            f"{name} stack failed to start earlier:\n{_START_FAILURES[name]}", pytrace=False
        )
    logs = tmp_path_factory.mktemp(f"e2e-{name}")
    if name == "postgres":
        factory = postgres_stack(logs)
    else:
        data_dir = logs / "data"
        data_dir.mkdir()
        factory = embedded_stack(logs, data_dir)
    try:
        running = await factory.__aenter__()
    except BaseException as error:
        _START_FAILURES[name] = str(error)[-4000:]
        raise
    try:
        yield running
    finally:
        await factory.__aexit__(None, None, None)


_START_FAILURES: dict[str, str] = {}


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    """A GraphQL client (gql over aiohttp) and a raw HTTP client for the running stack."""
    stack.check_running()
    async with Api.connect(stack.graphql_url) as client:
        yield client


@pytest.fixture
def uid() -> str:
    """A fresh id fragment: every test names its own customers, products and orders."""
    return uuid.uuid4().hex[:10]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.failed:
        running = getattr(item, "funcargs", {}).get("stack")
        if isinstance(running, Stack):
            report.sections.append((f"{running.name} stack logs (tail)", running.log_tail()))
    return report
