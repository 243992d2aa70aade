"""The servers under test: `orders migrate`, then `orders api` (one uvicorn worker) and
`orders projector`, on a PostgreSQL database and a Mongo database of their own."""

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
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def server_stack(workdir: Path) -> AsyncIterator[str]:
    """`orders migrate`, then `orders api` (one worker) + `orders projector` on a database
    of their own; yields the base URL."""
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
        processes: list[AppProcess] = []
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
            base_url = f"http://127.0.0.1:{port}"
            await wait_healthy(base_url, processes)
            yield base_url
        finally:
            for process in processes:
                await process.stop()
            await drop_mongo_database(mongo_url, database)


async def wait_healthy(base_url: str, processes: Sequence[AppProcess]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            for process in processes:
                if process.exited():
                    raise SystemExit(f"{process.name} exited:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):  # not listening yet: ask again
                if (await http.get(f"{base_url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    raise SystemExit(f"/healthz did not answer 200 within 30 s\n{tails}")
