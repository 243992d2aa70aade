"""`orders saga` needs PostgreSQL and the gateways, not MongoDB: started with MONGO_URL
unset, it fulfils an order, parks a poison trigger as a dead letter in PostgreSQL (and logs
it with its context) while that saga completes, and its ops port reports ready and counts
the letter."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from log_follower import storage as follower_storage
from log_follower.dead_letters.port import LetterOwner
from sagas.orchestrator import FULFILLMENT, SUBSCRIBER
from tests.integration.app_process import SagaProcess
from tests.integration.private_services import free_port
from tests.integration.read_side import own_postgres_database
from tests.integration.saga_world import saga_world
from tests.subscriber_loop import eventually
from write_model.envelope import EventMetadata, NewEvent
from write_model.event_store.port import ANY

pytestmark = [pytest.mark.postgres]


async def test_orders_saga_runs_without_mongo_and_parks_a_poison_trigger(
    unique: str, tmp_path: Path
) -> None:
    ops_port = free_port()
    async with own_postgres_database(f"saga_{unique}") as dsn, saga_world(dsn) as world:
        await world.product(f"p-{unique}", stock=5)
        await world.customer(f"c-{unique}")
        poison = f"o-poison-{unique}"
        # A trigger whose payload the saga cannot use (and no order behind it).
        await world.events.append_to_stream(
            f"Order-{poison}",
            "Order",
            ANY,
            [
                NewEvent(
                    uuid.uuid4(),
                    "OrderSubmitted",
                    {"total": "much"},
                    EventMetadata("poison"),
                    datetime.now(UTC),
                )
            ],
        )
        healthy = f"o-{unique}"
        await world.submitted_order(healthy, f"c-{unique}", [(f"p-{unique}", 2)])
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in ("MONGO_URL", "MONGO_DB")
        }
        env.update(
            DATABASE_URL=dsn,
            OPS_PORT=str(ops_port),
            SAGA_MAX_ATTEMPTS="2",
            SAGA_BACKOFF_SECONDS="0.01",
            PROJECTOR_POLL_SECONDS="0.2",
            LOG_LEVEL="INFO",
            LOG_FORMAT="text",
        )
        saga = SagaProcess(env, tmp_path / "saga.log")
        try:
            await saga.leading()

            async def completed() -> bool:
                events = await world.events.read_stream(FULFILLMENT.stream_id(healthy))
                return bool(events) and events[-1].type == "FulfillmentCompleted"

            await eventually(completed)
            letters = follower_storage.postgres_stores(world.events.pool).dead_letters
            [letter] = await eventually(lambda: letters.of_key(LetterOwner(SUBSCRIBER), poison))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as ops:
                ready = await ops.get("/readyz")
                metrics = (await ops.get("/metrics")).text
        finally:
            code = saga.stop()
        log = saga.log()
    assert code == 0, log[-3000:]
    assert letter.attempts == 2 and letter.stream_id == f"Order-{poison}"
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": "ok", "listener": "ok"}
    assert 'orders_dead_letters{follower="saga:fulfillment"} 1.0' in metrics
    assert "MONGO_URL" not in log
    parked = [line for line in log.splitlines() if "parked event" in line]
    assert len(parked) == 1
    error = letter.error.splitlines()[0]  # e.g. "ValidationError: 3 validation errors ..."
    for context in (SUBSCRIBER, letter.event_id, f"key {poison}", letter.id, error):
        assert context in parked[0], parked[0]
