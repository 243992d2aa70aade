"""The projector's state through the contract: `projections` and `deadLetters`."""

from __future__ import annotations

from datetime import datetime

from tests.e2e.client import Api, register_customer

PROJECTIONS = """
query Projections {
  projections { name position headPosition lag state lastError updatedAt }
}
"""


async def test_projections_report_position_head_and_lag(api: Api, uid: str) -> None:
    customer = await register_customer(api, uid)
    await api.execute(
        "query W($id: ID!, $t: String) { customer(id: $id, consistencyToken: $t) { id } }",
        {"id": customer["customerId"], "t": customer["consistencyToken"]},
    )
    projections = (await api.execute(PROJECTIONS))["projections"]
    by_name = {p["name"]: p for p in projections}
    assert {"orders", "customers", "products"} <= set(by_name), projections
    for projection in projections:
        assert projection["lag"] >= 0, projection
        position, head = int(projection["position"]), int(projection["headPosition"])
        assert 0 <= position <= head, projection
        assert projection["state"] in (
            "RUNNING",
            "CATCHING_UP",
            "REBUILDING",
            "STOPPED",
            "FAILED",
        ), projection
        if projection["updatedAt"] is not None:
            assert datetime.fromisoformat(projection["updatedAt"]).tzinfo is not None
    # The customers projection has passed the registration just made.
    assert int(by_name["customers"]["headPosition"]) > 0
    assert int(by_name["customers"]["position"]) > 0


async def test_dead_letters_is_a_list(api: Api) -> None:
    data = await api.execute(
        """
        query DeadLetters($first: Int) {
          deadLetters(first: $first) {
            id subscriber eventId streamId position error attempts failedAt
          }
        }
        """,
        {"first": 5},
    )
    letters = data["deadLetters"]
    assert isinstance(letters, list)
    assert len(letters) <= 5
    for letter in letters:
        assert letter["id"] and letter["attempts"] >= 1
