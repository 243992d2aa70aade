"""The Mongo-wire server that `make test` starts answers pymongo's async client.

Money goes into read documents as a decimal string with the currency's scale, as the API
serves it (plus integer minor units where a sort needs a number).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from tests.conftest import service_url


async def test_ping_and_round_trip_a_document(unique: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(service_url("MONGO_URL"), tz_aware=True)
    try:
        assert (await client.admin.command("ping"))["ok"] == 1.0
        collection = client["orders_smoke"][f"smoke_{unique}"]
        document = {
            "_id": f"o-{unique}",
            "total": {"amount": "12.30", "currency": "USD", "minor": 1230},
            "items": [{"productId": "pen", "quantity": 2}],
            "createdAt": datetime(2026, 11, 26, 13, 24, tzinfo=UTC),
            "version": 3,
        }

        await collection.insert_one(document)
        found = await collection.find_one({"_id": f"o-{unique}"})

        assert found == document
        await collection.drop()
    finally:
        await client.close()
