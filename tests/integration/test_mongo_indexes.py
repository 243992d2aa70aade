"""Every query the API and the projector send to MongoDB is served by an index.

The adapter's own commands are recorded (a pymongo command listener) while the port is
driven with the filters and sorts the code uses, and each recorded command is then asked
for its plan with `explain`: none may contain a collection scan. Plans are read the way
MongoDB reports them, so this holds on SecantusDB and on a real `mongod` alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pymongo import monitoring

from read_model.document_store.mongo import MongoDocumentStore
from read_model.document_store.port import POSITION_FIELD, GuardedPut, SortKey, UpdateMany
from read_model.projections import ALL_PROJECTIONS
from read_model.projections.customers import CUSTOMERS
from read_model.projections.orders import ORDERS
from read_model.projections.products import PRODUCTS
from read_model.runner import ProjectionConsumer, physical_collection
from schema.types import (
    CUSTOMER_ORDERING,
    ORDER_SORT_KEYS,
    PRODUCT_ORDERING,
)
from tests.conftest import service_url
from write_model.event_types import build_registry

QUERY_COMMANDS = {"find", "aggregate", "update", "delete", "count"}
SESSION_FIELDS = {"$db", "lsid", "$clusterTime", "$readPreference", "txnNumber"}


class CommandRecorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self.recording = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording and event.command_name in QUERY_COMMANDS:
            command = {k: v for k, v in event.command.items() if k not in SESSION_FIELDS}
            self.commands.append(command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def single_statements(commands: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The commands, with each write batch split: MongoDB explains one statement at a time."""
    for command in commands:
        batch = "updates" if "update" in command else "deletes" if "delete" in command else None
        if batch is None:
            yield command
            continue
        for statement in command[batch]:
            yield {**command, batch: [statement]}


def stages(plan: Any) -> Iterator[str]:
    """Every stage name anywhere in an explain reply."""
    if isinstance(plan, Mapping):
        if isinstance(plan.get("stage"), str):
            yield plan["stage"]
        for value in plan.values():
            yield from stages(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from stages(value)


async def test_no_query_of_the_api_or_the_projector_is_a_collection_scan(unique: str) -> None:
    recorder = CommandRecorder()
    database = f"indexes_{unique}"
    store = await MongoDocumentStore.connect(
        service_url("MONGO_URL"), database, event_listeners=[recorder]
    )
    try:
        for projection in ALL_PROJECTIONS:
            await ProjectionConsumer(projection, store, build_registry()).ensure_indexes()
        orders = physical_collection(ORDERS, 1)
        # A few documents, so that a plan has something to choose between.
        await store.bulk_write(
            [
                GuardedPut(
                    orders,
                    {
                        "_id": f"o{i}",
                        POSITION_FIELD: f"{i:040d}",
                        "customerId": f"c{i % 3}",
                        "status": "DRAFT" if i % 2 else "SUBMITTED",
                        "createdAt": i,
                        "updatedAt": i,
                        "totalMinor": i * 100,
                        "productIds": [f"p{i % 4}"],
                    },
                )
                for i in range(40)
            ]
        )

        recorder.recording = True
        order_filters = [{}, {"customerId": "c1"}, {"status": "DRAFT"}]
        order_filters.append({"customerId": "c1", "status": "DRAFT"})
        for keys in ORDER_SORT_KEYS.values():
            for filter in order_filters:
                page = await store.find(orders, filter, keys, limit=2)
                # The next page: a keyset seek after the last row.
                last = page.documents[-1]
                row = [last.get(k.field) for k in (*keys, SortKey("_id"))]
                await store.find(orders, filter, keys, limit=2, after=row)
        for filter in order_filters:
            await store.count(orders, filter)
        await store.get_many(orders, ["o1", "o2"])
        await store.get(orders, "o1")
        await store.find(physical_collection(CUSTOMERS, 1), {}, CUSTOMER_ORDERING.keys, limit=5)
        await store.count(physical_collection(CUSTOMERS, 1), {})
        await store.find(physical_collection(PRODUCTS, 1), {}, PRODUCT_ORDERING.keys, limit=5)
        # The projections' cross-document updates (customer and product renames).
        await store.bulk_write(
            [],
            [
                UpdateMany(orders, {"customerId": "c1"}, {"customerName": "Ann"}),
                UpdateMany(orders, {"productIds": "p1"}, {"productNames.p1": "Pen"}),
            ],
        )
        await store.list_checkpoints()
        # What changed after a position (re-sent to subscribers after a gap).
        await (
            store.database[orders]
            .find({POSITION_FIELD: {"$gt": f"{30:040d}"}})
            .sort(POSITION_FIELD, 1)
            .to_list()
        )
        recorder.recording = False

        assert len(recorder.commands) > 40
        scans: list[str] = []
        for command in single_statements(recorder.commands):
            plan = await store.database.command({"explain": command, "verbosity": "queryPlanner"})
            if "COLLSCAN" in set(stages(plan)):
                scans.append(repr(command))
        assert scans == [], "collection scans:\n" + "\n".join(scans)
    finally:
        await store.database.client.drop_database(database)
        await store.close()
