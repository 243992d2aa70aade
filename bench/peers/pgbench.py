"""Ceiling: PostgreSQL's own pgbench inserting one row per transaction (the script beside
this file) at a given client count, on a database of the same cluster. pgbench comes with
Debian's PostgreSQL server package (ORDERS_TEST_PG_BINDIR, exported by
tests/services/with-services, which installs it) or its postgresql-client package."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import asyncpg

SCRIPT = Path(__file__).with_name("pgbench_insert.sql")
TABLE = """CREATE TABLE IF NOT EXISTS pgbench_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id text NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL
)"""


def pgbench_path() -> str:
    bindir = os.environ.get("ORDERS_TEST_PG_BINDIR")
    if bindir and Path(bindir, "pgbench").exists():
        return str(Path(bindir, "pgbench"))
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found: install Debian's postgresql-client (make bench does)")
    return found


async def insert_tps(dsn: str, clients: int, seconds: float) -> float:
    """Transactions per second (without the initial connection time)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(TABLE)
    finally:
        await connection.close()
    process = await asyncio.create_subprocess_exec(
        pgbench_path(),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(max(1, round(seconds))),
        "-f",
        str(SCRIPT),
        dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if process.returncode != 0 or not found:
        raise RuntimeError(f"pgbench failed ({process.returncode}):\n{output}")
    return float(found.group(1))
