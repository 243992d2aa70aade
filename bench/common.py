"""What the benchmarks share: printing, percentiles, the machine and servers they ran on,
databases of their own, `python -m app ...` processes, and a main that cleans up on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import uvloop
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from app.heap import freeze_startup_heap

ROOT = Path(__file__).resolve().parents[1]


def say(text: str = "") -> None:
    print(text, flush=True)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# ---------------------------------------------------------------- percentiles


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest rank: always one of the values, so an `inf` (never seen) stays `inf`."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


def p50_p99_ms(latencies_seconds: Sequence[float]) -> tuple[float, float]:
    """Latency p50 and p99 in ms, interpolated between samples (statistics.quantiles)."""
    quantiles = statistics.quantiles(latencies_seconds, n=100)
    return quantiles[49] * 1000, quantiles[98] * 1000


# ------------------------------------------------------- machine and servers


def machine_description() -> str:
    model = ""
    with contextlib.suppress(OSError):  # no /proc/cpuinfo: the platform's name below
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model or platform.processor() or platform.machine()}), "
        f"load average {load} at start, Python {platform.python_version()} + uvloop"
    )


async def server_description(admin_dsn: str, mongo_url: str | None) -> tuple[str, str]:
    connection = await asyncpg.connect(admin_dsn)
    try:
        pg = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    if not mongo_url:
        return f"PostgreSQL {pg}", "none (MONGO_URL unset)"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=10_000
    )
    try:
        info = await client.admin.command("buildInfo")
    finally:
        await client.close()
    described = await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / "tests/services/mongo-server"), "--describe"],
        capture_output=True,
        text=True,
        check=False,
    )
    server = described.stdout.strip()
    mongo = f"MongoDB {info.get('version')} wire (tests/services/mongo-server: {server})"
    return f"PostgreSQL {pg}", mongo


# ------------------------------------------------------------ own databases


@contextlib.asynccontextmanager
async def own_postgres_database(admin_dsn: str, name: str) -> AsyncIterator[str]:
    """A PostgreSQL database created for the run and dropped after it; yields its DSN."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(admin_dsn)._replace(path=f"/{name}"))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def drop_mongo_database(url: str, name: str) -> None:
    """Drop the run's Mongo database; a failure is reported, not raised, so that the
    cleanup after it (and the error that ended the run, if any) still happen."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=10_000
    )
    try:
        await client.drop_database(name)
    except PyMongoError as error:
        say(f"could not drop the bench's Mongo database {name!r}: {error!r}")
    finally:
        await client.close()


# ------------------------------------------------------------- app processes


def _die_with_parent() -> None:
    """In the child: SIGTERM when the bench process dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):  # no prctl: the bench stops it itself
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class AppProcess:
    """`python -m app <args>` (or another `module`) from the repository root, its output
    appended to `log_path`."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        module: str = "app",
    ):
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def check_running(self) -> None:
        if self.exited():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited 15 s later."""
        if self.exited():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, 15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


# ---------------------------------------------------------------------- main


def run_main(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main` on uvloop (as under uvicorn); SIGTERM ends it like Ctrl-C, through every
    cleanup (databases, subprocesses), and either exits with 130."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main()

    freeze_startup_heap()  # as every `orders` process does (app/heap.py)
    try:
        uvloop.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; bench databases dropped")
        sys.exit(130)


async def loop_lag(lags: list[float], period: float = 0.01) -> None:
    """How late the running event loop runs a `period` timer, sample by sample."""
    while True:
        due = time.monotonic() + period
        await asyncio.sleep(period)
        lags.append(time.monotonic() - due)
