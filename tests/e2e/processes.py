"""The server as real processes: `python -m app ...` with its output in a log file, and a
stack of them that tests wait on and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

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
    # Where its events are: the PostgreSQL URL or the SQLite file (tests look for events
    # that a refused request must not have appended).
    event_store: str = ""
    ops_url: str | None = None  # the API's OPS_PORT, where it has one

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


def base_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # the stacks' own URLs and listen address; the tests expect the default 10 % tax
        if key.upper() not in _OWN_SETTINGS
    }
    env.update({"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "PROJECTOR_POLL_SECONDS": "0.2"})
    return env


def run_admin(args: list[str], env: dict[str, str], log_path: Path) -> None:
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
