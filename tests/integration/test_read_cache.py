"""The API's read cache (read_model/document_cache.py) in front of the Mongo-wire server,
kept current by the PostgreSQL change feed that the real projector publishes on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg

from log_follower.postgres_listener import PostgresListener
from read_model.change_feed.postgres import PostgresChangeFeed
from read_model.document_cache import CachedDocumentStore
from read_model.document_store.mongo import MongoDocumentStore
from read_model.document_store.port import GuardedPut
from tests.conftest import service_url
from tests.contracts.test_signals_and_feed import terminate
from tests.integration.read_side import (
    CONTEXT,
    build_bus,
    catch_up,
    mongo_documents,
    postgres_store,
    runners,
)
from tests.integration.write_side import customer_and_product, one_item_order
from write_model import commands

ORDERS = "orders_v1"


@dataclass
class Api:
    """An API process's side: its own Mongo client behind the cache, its own LISTEN."""

    cache: CachedDocumentStore
    listener: PostgresListener


@contextlib.asynccontextmanager
async def api_side(database: str, channel: str, name: str) -> AsyncIterator[Api]:
    dsn = service_url("DATABASE_URL")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    listener = PostgresListener(dsn, application_name=name, check_seconds=0.2)
    await listener.start()
    store = await MongoDocumentStore.connect(service_url("MONGO_URL"), database)
    feed = PostgresChangeFeed(pool, listener, channel=channel)
    try:
        async with CachedDocumentStore.watching(store, feed, 100) as cache:
            yield Api(cache, listener)
    finally:
        await store.close()
        await listener.close()
        await pool.close()


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, f"not within 5 s: {what}"
        await asyncio.sleep(0.01)


async def test_a_projector_write_is_seen_on_the_next_read(unique: str) -> None:
    database, channel = f"read_cache_{unique}", f"docs_{unique}"
    async with (
        postgres_store() as events,
        mongo_documents(database) as documents,
        api_side(database, channel, f"api {unique}") as api,
    ):
        publisher_pool = await asyncpg.create_pool(
            service_url("DATABASE_URL"), min_size=1, max_size=2
        )
        projector_listener = PostgresListener(service_url("DATABASE_URL"))
        await projector_listener.start()
        try:
            feed = PostgresChangeFeed(publisher_pool, projector_listener, channel=channel)
            projection_runners = runners(events, documents, feed=feed)
            bus = build_bus(events)
            await customer_and_product(bus, CONTEXT, unique, price="1.00", stock=100)
            await bus.dispatch(one_item_order(unique, 1), CONTEXT)
            await catch_up(projection_runners)
            order_id = f"o-{unique}"

            first = await api.cache.get(ORDERS, order_id)
            assert first is not None and first["version"] == 2
            assert await api.cache.get(ORDERS, order_id) == first
            assert api.cache.hits == 1  # the second read was the cache's

            # An order write: its DocumentChanged drops the cached order.
            dropped = api.cache.invalidations
            await bus.dispatch(
                commands.AddOrderItem(order_id=order_id, product_id=f"p-{unique}", quantity=2),
                CONTEXT,
            )
            await catch_up(projection_runners)
            await eventually(lambda: api.cache.invalidations > dropped, "the order dropped")
            order = await api.cache.get(ORDERS, order_id)
            assert order is not None and order["version"] == 3
            assert [item["quantity"] for item in order["items"]] == [3]

            # A rename changes the order in place (an update, no put of the order): the
            # projector announces the orders it changed, so the cached one goes too.
            dropped = api.cache.invalidations
            rename = commands.RenameCustomer(customer_id=f"c-{unique}", name="Ada Lovelace")
            await bus.dispatch(rename, CONTEXT)
            await catch_up(projection_runners)
            await eventually(lambda: api.cache.invalidations > dropped, "the renamed order dropped")
            renamed = await api.cache.get(ORDERS, order_id)
            assert renamed is not None and renamed["customerName"] == "Ada Lovelace"
        finally:
            await projector_listener.close()
            await publisher_pool.close()


async def test_a_dropped_listen_connection_clears_the_cache(unique: str) -> None:
    database, name = f"read_cache_{unique}", f"api {unique}"
    async with (
        mongo_documents(database) as documents,
        api_side(database, f"docs_{unique}", name) as api,
    ):
        doc_id = f"o-{unique}"
        await documents.bulk_write([GuardedPut(ORDERS, {"_id": doc_id, "_pos": "1", "v": 1})])
        assert (await api.cache.get(ORDERS, doc_id) or {}).get("v") == 1
        assert api.cache.size == 1

        assert await terminate(service_url("DATABASE_URL"), name) == 1
        # Written while the connection is down: its notification (had there been one) is lost.
        await documents.bulk_write([GuardedPut(ORDERS, {"_id": doc_id, "_pos": "2", "v": 2})])
        await eventually(lambda: api.listener.reconnects == 1, "the listener reconnected")

        assert api.cache.size == 0 and api.cache.clears >= 1
        assert (await api.cache.get(ORDERS, doc_id) or {}).get("v") == 2


ORDER = """
query($id: ID!, $token: String) {
  order(id: $id, consistencyToken: $token) {
    version customer { name } items { quantity product { name } }
  }
}"""
SETUP = """
mutation($c: ID!, $p: ID!, $o: ID!) {
  registerCustomer(input: {customerId: $c, name: "Ada", email: "ada@example.com"}) {
    __typename
  }
  addProduct(input: {productId: $p, name: "Ink", price: "1.25", initialStock: 100}) {
    __typename
  }
  createOrder(input: {orderId: $o, customerId: $c, items: [{productId: $p, quantity: 1}]}) {
    ... on OrderAccepted { consistencyToken }
  }
}"""
ADD_ITEM = """
mutation($o: ID!, $p: ID!) {
  addOrderItem(input: {orderId: $o, productId: $p, quantity: 2}) {
    ... on OrderAccepted { consistencyToken }
  }
}"""


async def test_the_api_answers_a_repeated_order_from_memory_and_a_token_past_it(
    unique: str,
) -> None:
    from tests.integration.graphql_stack import api_stack

    ids = {"c": f"c-{unique}", "p": f"p-{unique}", "o": f"o-{unique}"}
    async with api_stack(read_model_version_ttl_seconds=60) as stack:
        token = (await stack.gql(SETUP, ids))["createOrder"]["consistencyToken"]
        first = await stack.gql(ORDER, {"id": ids["o"], "token": token})
        await stack.gql(ORDER, {"id": ids["o"]})  # read into the cache

        assert stack.runtime.backend.read_cache is not None
        stack.mongo.reset()
        again = await stack.gql(ORDER, {"id": ids["o"]})
        assert again == first
        assert stack.mongo.seen == []  # order, customer and product: none read from MongoDB

        # A write's token is honoured at once, whether or not the cache has heard of it.
        token = (await stack.gql(ADD_ITEM, ids))["addOrderItem"]["consistencyToken"]
        after = (await stack.gql(ORDER, {"id": ids["o"], "token": token}))["order"]
        assert [item["quantity"] for item in after["items"]] == [3]
        # And without one, the cache drops the order as the feed announces the write.
        deadline = time.monotonic() + 5
        while (await stack.gql(ORDER, {"id": ids["o"]}))["order"]["version"] != after["version"]:
            assert time.monotonic() < deadline, "the cached order was never dropped"
            await asyncio.sleep(0.01)

        metrics = (await stack.client.get("/metrics")).text
        assert 'orders_read_cache_documents{outcome="hits"}' in metrics
        hits = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith('orders_read_cache_documents{outcome="hits"}')
        )
        assert hits >= 3
