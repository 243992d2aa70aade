"""The servers under test, each started as its command line starts it: `orders migrate`,
then `orders api` (one uvicorn worker), `orders projector` (and `orders saga`), on a
PostgreSQL database and a Mongo database of their own; `orders dev` on a data directory of
its own; and the bare strawberry peer (bench/peers/bare_graphql.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx

from bench.common import ROOT, AppProcess, drop_mongo_database, own_postgres_database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def server_stack(
    workdir: Path, *, saga: bool = False, started: list[AppProcess] | None = None
) -> AsyncIterator[str]:
    """`orders migrate`, then `orders api` (one worker) + `orders projector` (+ `orders
    saga`) on a database of their own; yields the base URL. `started` gets the processes
    (the API first)."""
    base_dsn = os.environ.get("DATABASE_URL")
    mongo_url = os.environ.get("MONGO_URL")
    if not base_dsn or not mongo_url:
        raise SystemExit(
            "DATABASE_URL and MONGO_URL must be set: run under tests/services/with-services"
        )
    database = f"bench_http_{uuid.uuid4().hex[:10]}"
    async with own_postgres_database(base_dsn, database) as dsn:
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "MONGO_URL": mongo_url,
            "MONGO_DB": database,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        processes: list[AppProcess] = [] if started is None else started
        try:
            migrate = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "app", "migrate"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if migrate.returncode != 0:
                raise SystemExit(f"orders migrate failed:\n{migrate.stdout}{migrate.stderr}")
            port = free_port()
            processes.append(
                AppProcess(
                    "orders api",
                    ["api", "--host", "127.0.0.1", "--port", str(port)],
                    env,
                    workdir / "api.log",
                )
            )
            processes.append(
                AppProcess("orders projector", ["projector"], env, workdir / "projector.log")
            )
            if saga:
                processes.append(AppProcess("orders saga", ["saga"], env, workdir / "saga.log"))
            base_url = f"http://127.0.0.1:{port}"
            await wait_healthy(base_url, processes)
            yield base_url
        finally:
            for process in processes:
                await process.stop()
            await drop_mongo_database(mongo_url, database)


@contextlib.asynccontextmanager
async def dev_stack(workdir: Path, started: list[AppProcess] | None = None) -> AsyncIterator[str]:
    """`orders dev` (API, projector and saga in one process on the embedded stores) on a data
    directory of its own; yields the base URL. `started` gets the process."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "MONGO_URL", "MONGO_DB")
    }
    data = workdir / f"dev-data-{uuid.uuid4().hex[:8]}"
    data.mkdir(exist_ok=True)
    env |= {"ORDERS_DATA_DIR": str(data), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    port = free_port()
    process = AppProcess(
        "orders dev", ["dev", "--host", "127.0.0.1", "--port", str(port)], env, workdir / "dev.log"
    )
    if started is not None:
        started.append(process)
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, [process])
        yield base_url
    finally:
        await process.stop()


@contextlib.asynccontextmanager
async def peer_stack(workdir: Path, name: str, args: Sequence[str]) -> AsyncIterator[str]:
    """The bare strawberry peer with `args`; yields the base URL."""
    port = free_port()
    process = AppProcess(
        name,
        ["--port", str(port), *args],
        {**os.environ, "PYTHONUNBUFFERED": "1"},
        workdir / "peer.log",
        module="bench.peers.bare_graphql",
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, [process], path="/graphql")
        yield base_url
    finally:
        await process.stop()


async def wait_healthy(
    base_url: str, processes: Sequence[AppProcess], path: str = "/healthz"
) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            for process in processes:
                if process.exited():
                    raise SystemExit(f"{process.name} exited:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):  # not listening yet: ask again
                if (await http.get(f"{base_url}{path}")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise SystemExit(f"{path} did not answer 200 within 60 s\n{tails}")
