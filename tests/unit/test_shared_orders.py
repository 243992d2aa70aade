"""SharedOrders: subscribers of one order share the Order decoded from its document, and a
document that differs in anything (a rename, a new version) is decoded anew."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from schema.subscriptions import SharedOrders


def order_doc(order_id: str, customer_name: str = "Ada", version: int = 1) -> dict[str, Any]:
    usd = {"amount": "0.00", "currency": "USD"}
    return {
        "_id": order_id,
        "_pos": f"{version:020d}",
        "customerId": "c1",
        "customerName": customer_name,
        "status": "DRAFT",
        "items": [],
        "productNames": {},
        "productIds": [],
        "subtotal": usd,
        "tax": usd,
        "total": usd,
        "shippingAddress": None,
        "fulfillment": {"state": "NOT_STARTED", "steps": [], "reason": None},
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
        "updatedAt": datetime(2026, 1, 1, tzinfo=UTC),
        "version": version,
    }


def test_the_same_or_an_equal_document_gives_the_same_order() -> None:
    shared = SharedOrders()
    doc = order_doc(f"o-{uuid.uuid4().hex}")

    first = shared.of(doc)

    assert shared.of(doc) is first
    assert shared.of(copy.deepcopy(doc)) is first  # another subscriber's own read
    assert first.customer_name == "Ada" and first.version == 1


def test_a_document_that_differs_is_decoded_anew() -> None:
    shared = SharedOrders()
    order_id = f"o-{uuid.uuid4().hex}"
    first = shared.of(order_doc(order_id))

    renamed = shared.of(order_doc(order_id, customer_name="Ada L."))  # same version and _pos
    newer = shared.of(order_doc(order_id, version=2))

    assert renamed.customer_name == "Ada L." and renamed is not first
    assert newer.version == 2


def test_it_remembers_at_most_size_orders() -> None:
    shared = SharedOrders(size=2)
    docs = [order_doc(f"o-{n}-{uuid.uuid4().hex}") for n in range(3)]
    first = shared.of(docs[0])
    for doc in docs[1:]:
        shared.of(doc)

    assert shared.of(copy.deepcopy(docs[0])) is not first  # forgotten, decoded anew
    assert len(shared._recent) == 2
