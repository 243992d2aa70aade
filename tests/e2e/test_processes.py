"""`processes`, /readyz and /metrics show every follower of the log: a stack run without its
saga process (api + projector alone) shows the saga unled and lagging, while the API stays
ready, and the projections led."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.client import Api, processes, register_customer
from tests.e2e.conftest import postgres_stack
from tests.e2e.processes import free_port


@pytest.mark.postgres
@pytest.mark.mongo
async def test_a_stack_without_its_saga_process_shows_the_saga_unled_and_lagging(
    tmp_path: Path, uid: str
) -> None:
    ops_port = free_port()
    async with postgres_stack(
        tmp_path, api_settings={"OPS_PORT": str(ops_port)}, followers=("projector",)
    ) as stack:
        async with Api.connect(stack.graphql_url) as api:
            await register_customer(api, uid)
        ops = f"http://127.0.0.1:{ops_port}"
        async with httpx.AsyncClient(timeout=10) as http:
            listed = await processes(http, stack.base_url)
            ready = await http.get(f"{ops}/readyz")
            metrics = (await http.get(f"{ops}/metrics")).text

    saga = listed["saga:fulfillment"]
    assert (saga["kind"], saga["leading"], saga["leaderSince"]) == ("SAGA", False, None)
    assert saga["lag"] > 0 and saga["position"] == "0" and saga["lastHeartbeat"] is None
    assert saga["oldestUnhandledSeconds"] is not None
    for projection in ("orders", "customers", "products"):
        assert listed[projection]["kind"] == "PROJECTION"
        assert listed[projection]["leading"] is True, listed[projection]
        assert listed[projection]["leaderSince"] is not None
    assert ready.status_code == 200, ready.text  # a warning, not unready
    body = ready.json()
    assert body["status"] == "ready"
    assert body["followers"]["saga:fulfillment"].startswith("no process leads saga")
    assert body["followers"]["orders"] == "ok"
    assert 'orders_follower_leading{follower="saga:fulfillment",kind="saga"} 0.0' in metrics
    assert 'orders_follower_leading{follower="orders",kind="projection"} 1.0' in metrics
