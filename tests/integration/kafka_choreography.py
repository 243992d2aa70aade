"""The choreography over Kafka as processes, for the tests: `orders relay` publishing the
log, and `orders participant <name>` processes consuming it in their consumer groups, on a
database and a topic prefix of the test's own."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

from tests.integration.app_process import AppProcess

PARTICIPANT_NAMES = ("inventory", "payment", "shipping")
PARTITIONS = 4


def choreography_env(
    dsn: str, bootstrap: str, prefix: str, declined: frozenset[str] = frozenset(), **more: str
) -> dict[str, str]:
    """What the relay and the participants share: the database, the broker, the prefix,
    the saga's rules (every outcome of the scarce-stock workload), quick followers."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("KAFKA_", "MONGO_")) and name not in ("OPS_PORT",)
    }
    env.update(
        DATABASE_URL=dsn,
        SAGA_MODE="choreography",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_TOPIC_PREFIX=prefix,
        KAFKA_TRANSACTIONAL_ID=f"{prefix}relay",
        KAFKA_TOPIC_PARTITIONS=str(PARTITIONS),
        KAFKA_REPLICATION_FACTOR="1",
        KAFKA_TIMEOUT_SECONDS="10",
        PAYMENT_DECLINE_CUSTOMERS=",".join(sorted(declined)),
        SHIPPING_FAIL_COUNTRIES="AQ",
        GATEWAY_LATENCY_SECONDS="0.005",
        FOLLOWER_POLL_SECONDS="0.2",
        FOLLOWER_HEARTBEAT_SECONDS="0.5",
        LOG_LEVEL="INFO",
    )
    env.update(more)
    return env


class Member(AppProcess):
    """`orders participant <name>` consuming Kafka: one member of its group."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        super().__init__(["participant", name], env, log_path)
        self.name = name

    async def following(self, seconds: float = 60.0) -> None:
        """Until it follows its group (joined, its follower running)."""
        deadline = time.monotonic() + seconds
        while not re.search(r"leading participant \S+orders-", self.log()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} does not follow its group: {self.log()[-3000:]}")
            await asyncio.sleep(0.1)


def relay(env: dict[str, str], log_path: Path) -> AppProcess:
    return AppProcess("relay", env, log_path)


def stop_all(processes: list[AppProcess]) -> dict[str, int]:
    """Stops each (SIGTERM); their exit codes by log file name."""
    return {p.log_path.name: p.stop() for p in processes}
