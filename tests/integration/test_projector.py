"""The projector on real PostgreSQL and the Mongo-wire server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from log_follower import storage as follower_storage
from log_follower.dead_letters.port import LetterOwner
from log_follower.follower import FollowerSettings
from read_model.change_feed.in_process import InProcessChangeFeed
from read_model.change_feed.port import DocumentChanged
from read_model.document_store.port import Document, UpdateMany
from read_model.projections.base import DocKey, ProjectedEvent, View
from read_model.projections.orders import OrdersProjection
from read_model.service import letter_document
from tests.integration.read_side import (
    CONTEXT,
    HeldOpenStore,
    all_documents,
    build_bus,
    catch_up,
    mongo_documents,
    order_workload,
    postgres_store,
    runners,
)
from tests.integration.write_side import customer_and_product, one_item_order
from tests.projecting import projection_runner
from write_model import commands
from write_model.event_types import build_registry


async def test_documents_show_the_orders_customers_and_products(unique: str) -> None:
    database = f"projector_{unique}"
    async with postgres_store() as events, mongo_documents(database) as documents:
        bus = build_bus(events)
        await order_workload(bus, unique, orders=2)
        await bus.dispatch(
            commands.RenameCustomer(customer_id=f"c-{unique}", name="Renamed Customer"), CONTEXT
        )
        projection_runners = runners(events, documents)

        await catch_up(projection_runners)

        order = await documents.get("orders_v1", f"o0-{unique}")
        assert order is not None
        assert order["status"] == "SUBMITTED"
        assert order["customerName"] == "Renamed Customer"
        assert [(i["productId"], i["quantity"]) for i in order["items"]] == [(f"p0-{unique}", 3)]
        assert order["subtotal"] == {"amount": "3.75", "currency": "USD"}
        assert order["tax"] == {"amount": "0.38", "currency": "USD"}
        assert order["total"] == {"amount": "4.13", "currency": "USD"}
        assert order["version"] == 5  # created + item, item, address, submitted
        customer = await documents.get("customers_v1", f"c-{unique}")
        assert customer is not None
        assert (customer["name"], customer["orderCount"]) == ("Renamed Customer", 2)
        product = await documents.get("products_v1", f"p1-{unique}")
        assert product is not None
        assert product["price"] == {"amount": "2.50", "currency": "USD"}


async def test_never_skips_an_event_of_a_late_committing_writer(unique: str) -> None:
    """Writers hold their transactions open for random times, so commits land out of
    position order; the projector runs all along and must still apply every event."""
    database = f"projector_gap_{unique}"
    async with postgres_store(max_size=30) as events, mongo_documents(database) as documents:
        bus = build_bus(HeldOpenStore(events))
        projection_runners = runners(events, documents)
        writing = asyncio.gather(*(order_workload(bus, f"{unique}-{w}", 6) for w in range(8)))
        while not writing.done():
            for runner in projection_runners:
                await runner.step()
            await asyncio.sleep(0.005)
        await writing
        await catch_up(projection_runners)

        orders = (await all_documents(documents))["orders"]
        for w in range(8):
            for n in range(6):
                order_id = f"o{n}-{unique}-{w}"
                stored = await events.read_stream(f"Order-{order_id}")
                assert orders[order_id]["version"] == len(stored), order_id
                assert sum(i["quantity"] for i in orders[order_id]["items"]) == 3


@dataclass
class FailingFor:
    """The orders projection, failing on one stream while `broken` (a bad deploy)."""

    inner: OrdersProjection
    stream_id: str
    broken: bool = True

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        if self.broken and event.recorded.stream_id == self.stream_id:
            raise ValueError("projection bug on this stream")
        return self.inner.evolve(key, doc, event, view)

    def keys(self, event: ProjectedEvent, view: View) -> Sequence[DocKey]:
        return self.inner.keys(event, view)

    def effects(self, event: ProjectedEvent) -> Sequence[UpdateMany]:
        return self.inner.effects(event)

    def indexes(self) -> Mapping[str, Sequence[Sequence[tuple[str, int]]]]:
        return self.inner.indexes()


async def test_a_poison_event_parks_its_stream_and_retry_recovers_it(unique: str) -> None:
    database = f"projector_poison_{unique}"
    async with postgres_store() as events, mongo_documents(database) as documents:
        bus = build_bus(events)
        await order_workload(bus, unique, orders=4)  # o1 and o3 stay drafts
        poisoned = FailingFor(OrdersProjection(), f"Order-o1-{unique}")
        await follower_storage.migrate_postgres(events.pool)
        stored = follower_storage.postgres_stores(events.pool).dead_letters
        runner = projection_runner(
            poisoned,
            events,
            documents,
            build_registry(),
            settings=FollowerSettings(max_attempts=3, backoff_seconds=0.001),
            dead_letters=stored,
        )
        owner = LetterOwner(OrdersProjection.name, 1)
        await catch_up([runner])
        # Later events on the parked stream and on a healthy one.
        await bus.dispatch(
            commands.AddOrderItem(order_id=f"o1-{unique}", product_id=f"p2-{unique}", quantity=1),
            CONTEXT,
        )
        await bus.dispatch(
            commands.AddOrderItem(order_id=f"o3-{unique}", product_id=f"p2-{unique}", quantity=5),
            CONTEXT,
        )
        await catch_up([runner])

        assert await documents.get("orders_v1", f"o1-{unique}") is None
        healthy = await documents.get("orders_v1", f"o3-{unique}")
        assert healthy is not None and healthy["version"] == 5
        letters = [
            letter_document(letter)
            for key in (f"Order-o1-{unique}", f"Order-o3-{unique}")
            for letter in await stored.of_key(owner, key)
        ]
        assert {d["streamId"] for d in letters} == {f"Order-o1-{unique}"}
        assert len(letters) == 5  # created, 2 items, address, then the later item
        first = min(letters, key=lambda d: d["streamVersion"])
        assert first["attempts"] == 3 and "projection bug" in first["error"]

        poisoned.broken = False
        assert await stored.request_retry(first["_id"])
        assert await runner.retry_key(f"Order-o1-{unique}") is True

        recovered = await documents.get("orders_v1", f"o1-{unique}")
        assert recovered is not None and recovered["version"] == 5
        assert sum(i["quantity"] for i in recovered["items"]) == 4
        remaining = await stored.of_key(owner, f"Order-o1-{unique}")
        assert remaining == []
        await bus.dispatch(
            commands.AddOrderItem(order_id=f"o1-{unique}", product_id=f"p0-{unique}", quantity=1),
            CONTEXT,
        )
        await catch_up([runner])
        flowing = await documents.get("orders_v1", f"o1-{unique}")
        assert flowing is not None and flowing["version"] == 6


async def test_replaying_a_batch_after_a_crash_changes_nothing(unique: str) -> None:
    """Documents written but checkpoint not saved (a crash in between): the batch is read
    again and must converge to the same documents."""
    database = f"projector_replay_{unique}"
    async with postgres_store() as events, mongo_documents(database) as documents:
        bus = build_bus(events)
        await order_workload(bus, unique, orders=3)
        projection_runners = runners(events, documents)
        before = {r.checkpoint_name: await r.position() for r in projection_runners}
        await catch_up(projection_runners)
        first = await all_documents(documents)

        # Roll every checkpoint back, as if the process died before saving them.
        for runner in projection_runners:
            await runner.save(before[runner.checkpoint_name])
        await catch_up(projection_runners)

        assert await all_documents(documents) == first
        assert first["customers"][f"c-{unique}"]["orderCount"] == 3


async def test_money_in_documents_is_exact(unique: str) -> None:
    database = f"projector_money_{unique}"
    async with postgres_store() as events, mongo_documents(database) as documents:
        bus = build_bus(events)
        await customer_and_product(bus, CONTEXT, unique, price="0.10", stock=100)
        await bus.dispatch(one_item_order(unique, 3), CONTEXT)
        await catch_up(runners(events, documents))

        order = await documents.get("orders_v1", f"o-{unique}")
        assert order is not None
        assert order["subtotal"]["amount"] == "0.30"
        assert order["tax"]["amount"] == "0.03"
        assert order["total"]["amount"] == "0.33"
        assert order["totalMinor"] == 33


async def test_written_documents_are_published_on_the_change_feed(unique: str) -> None:
    database = f"projector_feed_{unique}"
    feed = InProcessChangeFeed()
    async with postgres_store() as events, mongo_documents(database) as documents:
        bus = build_bus(events)
        await customer_and_product(bus, CONTEXT, unique, price="2.00", stock=10)
        async with feed.subscribe() as changes:
            await bus.dispatch(one_item_order(unique, 1), CONTEXT)
            await catch_up(runners(events, documents, feed=feed))
            published: list[DocumentChanged] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    async for batch in changes:
                        published.extend(batch)

        assert DocumentChanged("orders", f"o-{unique}", 2) in published
        assert DocumentChanged("customers", f"c-{unique}", 1) in published
        assert DocumentChanged("products", f"p-{unique}", 1) in published
