"""PostgreSQL, Mongo-wire and Kafka servers of a test's own, to stop and restart under load.

The shared test servers are never stopped; these are started from the binaries that
tests/services/with-services points at (ORDERS_TEST_PG_BINDIR, ORDERS_TEST_MONGO_SERVER),
each on a free port with a data directory in the test's tmp_path, and stopped at the end.
A restart keeps the port and the data, as a server restart in production does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite with `make test`")
    return value


def _wait_for_port(port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not open port {port} within {seconds:g} s")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    def __init__(self) -> None:
        self.bindir = Path(_setting("ORDERS_TEST_PG_BINDIR"))
        # Not under pytest's tmp_path: the `postgres` user must be able to reach it.
        self.home = Path(tempfile.mkdtemp(prefix="orders-test-pg-"))
        self.home.chmod(0o755)
        self.data = self.home / "data"
        self.data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(self.bindir / tool), *args]),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=100"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w", "-o", options,
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)

    def restart(self, down_seconds: float = 0.0) -> None:
        """`pg_ctl stop -m fast`, `down_seconds` with no server, start: every session ends."""
        self.stop()
        time.sleep(down_seconds)
        self.start()


class PrivateMongo:
    def __init__(self, directory: Path) -> None:
        self.command = _setting("ORDERS_TEST_MONGO_SERVER")
        self.data = directory / "mongo"
        self.log = directory / "mongo.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.command, str(self.port), str(self.data)], stdout=log, stderr=log
            )
        _wait_for_port(self.port, 60, "the private Mongo-wire server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


@contextlib.contextmanager
def private_services(directory: Path) -> Iterator[tuple[PrivatePostgres, PrivateMongo]]:
    postgres, mongo = PrivatePostgres(), PrivateMongo(directory)
    try:
        postgres.start()
        mongo.start()
        try:
            yield postgres, mongo
        finally:
            mongo.stop()
    finally:
        postgres.remove()


class PrivateKafka:
    """A broker of a test's own (a single KRaft node) from ORDERS_TEST_KAFKA_SERVER, to SIGKILL
    and restart on its data; with `sasl_user` ("name:password") its listener takes SASL/PLAIN."""

    def __init__(self, directory: Path, sasl_user: str | None = None) -> None:
        self.command = _setting("ORDERS_TEST_KAFKA_SERVER")
        self.data = directory / "kafka"
        self.log = directory / "kafka.log"
        self.port = free_port()
        self.sasl_user = sasl_user
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        sasl = ["--sasl", self.sasl_user] if self.sasl_user else []
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.command, str(self.port), str(self.data), *sasl], stdout=log, stderr=log
            )
        _wait_for_port(self.port, 120, "the private Kafka broker")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crashed machine."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextlib.contextmanager
def private_kafka(directory: Path, sasl_user: str | None = None) -> Iterator[PrivateKafka]:
    broker = PrivateKafka(directory, sasl_user)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
