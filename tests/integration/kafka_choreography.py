"""The choreography over Kafka as processes, for the tests: `orders relay` publishing the
log, and `orders participant <name>` processes consuming it in their consumer groups, on a
database and a topic prefix of the test's own."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from tests.integration.app_process import AppProcess
from tests.integration.kafka_relay import relay_env

PARTICIPANT_NAMES = ("inventory", "payment", "shipping")
PARTITIONS = 4


def choreography_env(
    dsn: str, bootstrap: str, prefix: str, declined: frozenset[str] = frozenset(), **more: str
) -> dict[str, str]:
    """What the relay and the participants share: the relay's environment (the database,
    the broker, the prefix, quick followers), the saga's rules (every outcome of the
    scarce-stock workload), no MongoDB and no fixed ops port."""
    env = relay_env(
        dsn,
        bootstrap,
        prefix,
        f"{prefix}relay",
        SAGA_MODE="choreography",
        KAFKA_TOPIC_PARTITIONS=str(PARTITIONS),
        PAYMENT_DECLINE_CUSTOMERS=",".join(sorted(declined)),
        SHIPPING_FAIL_COUNTRIES="AQ",
        GATEWAY_LATENCY_SECONDS="0.005",
        **more,
    )
    for name in [name for name in env if name.startswith("MONGO_")] + ["OPS_PORT"]:
        env.pop(name, None)
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
