"""The relay in a running stack (`orders api` and `orders relay` as processes, a broker of
the test's own that takes SASL/PLAIN, as a managed cluster does): clients keep placing
orders over HTTP while the broker is SIGKILLed and restarted; every mutation succeeds, the
relay waits without crashing, resumes by itself, and a read_committed consumer sees every
event of the log exactly once. The relay is a follower of the log like the projector and
the saga: `processes`, the API's /readyz and /metrics show it, and its own /readyz reports
the broker. Its SASL password never shows in its log."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from messaging.kafka_config import rdkafka_overrides
from messaging.relay import RELAY
from tests.e2e.client import ADDRESS, Api, accepted, add_product, processes, register_customer
from tests.e2e.conftest import postgres_stack
from tests.e2e.processes import free_port
from tests.integration.kafka_relay import TopicReader, assert_published_exactly, whole_log
from tests.integration.private_services import private_kafka
from tests.integration.read_side import postgres_store

pytestmark = [pytest.mark.postgres, pytest.mark.mongo, pytest.mark.kafka]

WRITERS = 3


class Shoppers:
    """Clients (each its own connection) placing orders over HTTP until told to stop, each
    order created, addressed and submitted: when each accepted mutation answered; a
    mutation that is not accepted (or fails) fails the run."""

    def __init__(self, url: str, uid: str) -> None:
        self.url = url
        self.uid = uid
        self.accepted_at: list[float] = []
        self.stop = asyncio.Event()

    async def _mutate(self, api: Api, name: str, input: dict[str, object]) -> None:
        accepted(await api.mutate(name, input))
        self.accepted_at.append(time.monotonic())

    async def _shop(self, writer: int) -> None:
        customer, product = f"c-{self.uid}-{writer}", f"p-{self.uid}-{writer}"
        async with Api.connect(self.url) as api:
            await register_customer(api, f"{self.uid}-{writer}")
            await add_product(api, product, f"Widget {writer}", "2.50", stock=10_000)
            n = 0
            while not self.stop.is_set():
                order = f"o-{self.uid}-{writer}-{n}"
                item = {"productId": product, "quantity": 1 + n % 3}
                created = {"orderId": order, "customerId": customer, "items": [item]}
                await self._mutate(api, "createOrder", created)
                addressed = {"orderId": order, "address": ADDRESS}
                await self._mutate(api, "setShippingAddress", addressed)
                await self._mutate(api, "submitOrder", {"orderId": order})
                n += 1

    async def run(self) -> None:
        await asyncio.gather(*(self._shop(writer) for writer in range(WRITERS)))

    def between(self, start: float, end: float) -> int:
        return sum(1 for at in self.accepted_at if start <= at <= end)


async def wait_until(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds:g} s")
        await asyncio.sleep(0.2)


def metric_lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


async def test_the_broker_killed_under_api_mutations_they_succeed_and_kafka_gets_each_event_once(
    tmp_path: Path, uid: str
) -> None:
    prefix = f"e{uid}."
    api_ops, relay_ops = free_port(), free_port()
    password = f"secret-{uid}"
    sasl = {
        "KAFKA_RDKAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_RDKAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_RDKAFKA_SASL_USERNAME": "relay",
        "KAFKA_RDKAFKA_SASL_PASSWORD": password,
    }
    with private_kafka(tmp_path, sasl_user=f"relay:{password}") as broker:
        kafka = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": prefix,
            "KAFKA_TRANSACTIONAL_ID": f"relay-{uid}",
            "KAFKA_TOPIC_PARTITIONS": "3",
            "KAFKA_REPLICATION_FACTOR": "1",
            "KAFKA_TIMEOUT_SECONDS": "10",
            "FOLLOWER_HEARTBEAT_SECONDS": "0.5",
        }
        async with (
            postgres_stack(
                tmp_path,
                kafka,
                {"OPS_PORT": str(api_ops)},
                followers=("relay",),
                follower_settings={"relay": {"OPS_PORT": str(relay_ops), **sasl}},
            ) as stack,
            postgres_store(dsn=stack.event_store) as store,
            httpx.AsyncClient(timeout=10) as http,
        ):
            relay_process = next(p for p in stack.processes if p.name == "orders relay")

            async def relay_status() -> dict:
                return (await processes(http, stack.base_url))[RELAY]

            async def relay_leads() -> bool:
                return bool((await relay_status())["leading"])

            async def relay_ready() -> httpx.Response:
                return await http.get(f"http://127.0.0.1:{relay_ops}/readyz")

            await wait_until(relay_leads, 60, "the relay leads")
            reader = TopicReader(broker.bootstrap_servers, prefix, rdkafka_overrides(sasl))
            shoppers = Shoppers(stack.graphql_url, uid)
            shopping = asyncio.create_task(shoppers.run())
            try:

                async def orders_placed() -> bool:
                    return len(shoppers.accepted_at) >= 15

                await wait_until(orders_placed, 60, "orders placed")
                killed_at = time.monotonic()
                # On a thread: the clients keep going meanwhile (a blocked event loop would
                # leave their connections idle past the server's keep-alive).
                await asyncio.to_thread(broker.kill)

                async def broker_reported_away() -> bool:
                    answer = await relay_ready()
                    return answer.status_code == 503 and answer.json()["checks"]["kafka"] != "ok"

                await wait_until(broker_reported_away, 30, "the relay's /readyz reports the broker")
                await asyncio.sleep(2)  # the outage goes on under load
                assert relay_process.exited is None, relay_process.log_tail()  # waits, no crash
                lagging = await relay_status()
                assert lagging["lag"] > 0, lagging  # what waits, shown to operators
                restarted_at = time.monotonic()
                await asyncio.to_thread(broker.start)
                await asyncio.sleep(1)
                shoppers.stop.set()
                await shopping  # every mutation was accepted, before, during and after
                assert shoppers.between(killed_at, restarted_at) >= 5, "no load in the outage"

                log = await whole_log(store)
                consumed = await asyncio.to_thread(reader.poll_until, len(log), 120)
                assert_published_exactly(log, consumed, prefix)
            finally:
                shopping.cancel()
                reader.close()

            async def relay_caught_up() -> bool:
                status = await relay_status()
                return bool(status["leading"]) and status["lag"] == 0

            await wait_until(relay_caught_up, 30, "processes shows the relay caught up")
            status = await relay_status()
            assert status["kind"] == "RELAY" and status["leaderSince"] is not None, status
            assert status["position"] == status["headPosition"], status
            assert status["parkedLetters"] == 0 and status["lastHeartbeat"] is not None, status
            ready = await relay_ready()
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["kafka"] == "ok", ready.text
            api_ready = (await http.get(f"http://127.0.0.1:{api_ops}/readyz")).json()
            assert api_ready["followers"][RELAY] == "ok", api_ready
            metrics = (await http.get(f"http://127.0.0.1:{api_ops}/metrics")).text
            assert f'orders_follower_leading{{follower="{RELAY}",kind="relay"}} 1.0' in metrics
            assert f'orders_follower_lag_events{{follower="{RELAY}",kind="relay"}} 0.0' in metrics
            relay_metrics = (await http.get(f"http://127.0.0.1:{relay_ops}/metrics")).text
            assert metric_lines(relay_metrics, "orders_relay_lag_events ") == [
                "orders_relay_lag_events 0.0"
            ]
        assert relay_process.process is not None
        assert relay_process.process.returncode == 0, relay_process.log_tail()
        relay_log = relay_process.log_path.read_text()
        assert "relay producer configuration" in relay_log and password not in relay_log
