"""The read cache on the in-memory store and the in-process change feed: what it answers,
what drops it, and the reads it must not keep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from read_model.change_feed.in_process import InProcessChangeFeed
from read_model.change_feed.port import DocumentChanged, FeedGap
from read_model.document_cache import CachedDocumentStore
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.port import Document, GuardedPut
from read_model.service import ReadModel
from write_model.event_store.memory import InMemoryEventStore

ORDERS = "orders_v1"


class HeldReads(InMemoryDocumentStore):
    """The memory store, whose reads by id can be held after they read (a slow server)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def get_many(self, collection: str, ids: Sequence[str]) -> dict[str, Document]:
        found = await super().get_many(collection, ids)
        if self.hold is not None:
            self.reading.set()
            await self.hold.wait()
        return found


async def write(store: InMemoryDocumentStore, doc_id: str, position: str, **fields: object) -> None:
    """What the projector does: write the document (the feed is told separately)."""
    await store.bulk_write([GuardedPut(ORDERS, {"_id": doc_id, "_pos": position, **fields})])


@contextlib.asynccontextmanager
async def cached(
    capacity: int = 100,
) -> AsyncIterator[tuple[CachedDocumentStore, HeldReads, InProcessChangeFeed]]:
    store, feed = HeldReads(), InProcessChangeFeed()
    async with CachedDocumentStore.watching(store, feed, capacity) as cache:
        yield cache, store, feed


async def test_reads_come_from_the_cache_until_the_feed_announces_a_write(unique: str) -> None:
    async with cached() as (cache, store, feed):
        await write(store, f"o-{unique}", "1", status="DRAFT")
        assert (await cache.get(ORDERS, f"o-{unique}") or {})["status"] == "DRAFT"

        await write(store, f"o-{unique}", "2", status="SUBMITTED")
        # Not announced yet: the cache answers (this is what it saves a round trip on).
        assert (await cache.get(ORDERS, f"o-{unique}") or {})["status"] == "DRAFT"
        await feed.publish([DocumentChanged("orders", f"o-{unique}", 2)])

        assert (await cache.get(ORDERS, f"o-{unique}") or {})["status"] == "SUBMITTED"
        assert (cache.hits, cache.misses, cache.invalidations) == (1, 2, 1)


async def test_a_read_that_raced_an_announced_write_is_not_kept(unique: str) -> None:
    async with cached() as (cache, store, feed):
        await write(store, f"o-{unique}", "1", status="DRAFT")
        store.hold = asyncio.Event()
        racing = asyncio.create_task(cache.get(ORDERS, f"o-{unique}"))
        await store.reading.wait()  # it has read DRAFT, and is slow to return it
        await write(store, f"o-{unique}", "2", status="SUBMITTED")
        await feed.publish([DocumentChanged("orders", f"o-{unique}", 2)])
        store.hold.set()
        assert (await racing or {})["status"] == "DRAFT"  # as it was when read
        store.hold = None

        assert (await cache.get(ORDERS, f"o-{unique}") or {})["status"] == "SUBMITTED"


async def test_a_subscriber_re_reading_an_announced_document_gets_the_new_one(
    unique: str,
) -> None:
    """The cache drops a document as the notification arrives, before any subscriber of the
    feed can act on it."""
    async with cached() as (cache, store, feed), feed.subscribe() as changes:
        await write(store, f"o-{unique}", "1", status="DRAFT")
        await cache.get(ORDERS, f"o-{unique}")
        await write(store, f"o-{unique}", "2", status="SUBMITTED")
        await feed.publish([DocumentChanged("orders", f"o-{unique}", 2)])

        batch = await anext(changes)
        assert isinstance(batch, list)
        re_read = await cache.get_many(ORDERS, [change.id for change in batch])
        assert re_read[f"o-{unique}"]["status"] == "SUBMITTED"


async def test_a_feed_gap_drops_everything(unique: str) -> None:
    async with cached() as (cache, store, _):
        for n in range(3):
            await write(store, f"o{n}-{unique}", "1")
        await cache.get_many(ORDERS, [f"o{n}-{unique}" for n in range(3)])
        assert cache.size == 3

        cache.changed(FeedGap("the LISTEN connection was replaced"))

        assert (cache.size, cache.clears) == (0, 1)


async def test_it_holds_at_most_its_capacity_dropping_the_least_recently_read(
    unique: str,
) -> None:
    async with cached(capacity=2) as (cache, store, _):
        for n in range(3):
            await write(store, f"o{n}-{unique}", "1")
        await cache.get(ORDERS, f"o0-{unique}")
        await cache.get(ORDERS, f"o1-{unique}")
        await cache.get(ORDERS, f"o0-{unique}")  # o1 is now the least recently read
        await cache.get(ORDERS, f"o2-{unique}")
        misses = cache.misses

        await cache.get_many(ORDERS, [f"o0-{unique}", f"o2-{unique}"])
        assert (cache.size, cache.misses) == (2, misses)
        await cache.get(ORDERS, f"o1-{unique}")
        assert cache.misses == misses + 1


async def test_what_a_caller_gets_is_its_own_copy(unique: str) -> None:
    async with cached() as (cache, store, _):
        await write(store, f"o-{unique}", "1", items=[{"quantity": 1}])
        first = await cache.get(ORDERS, f"o-{unique}")
        assert first is not None
        first["items"][0]["quantity"] = 99

        assert (await cache.get(ORDERS, f"o-{unique}") or {})["items"] == [{"quantity": 1}]
        assert (await cache.get(ORDERS, f"o-{unique}") or {})["items"] == [{"quantity": 1}]


async def test_outside_a_watch_nothing_is_answered_from_memory(unique: str) -> None:
    store, feed = InMemoryDocumentStore(), InProcessChangeFeed()
    async with CachedDocumentStore.watching(store, feed, 10) as cache:
        await write(store, f"o-{unique}", "1", status="DRAFT")
        await cache.get(ORDERS, f"o-{unique}")
    await write(store, f"o-{unique}", "2", status="SUBMITTED")
    await feed.publish([DocumentChanged("orders", f"o-{unique}", 2)])  # unheard

    assert (await cache.get(ORDERS, f"o-{unique}") or {})["status"] == "SUBMITTED"
    assert cache.size == 0


async def test_fresh_reads_of_the_read_model_go_past_the_cache(unique: str) -> None:
    """After a consistency wait the read model reads past the cache, which may not have
    heard of the write the token names yet."""
    async with cached() as (cache, store, _):
        read_model = ReadModel(
            cache,
            InMemoryEventStore(),
            wait_seconds=1,
            poll_seconds=0.01,
            version_ttl_seconds=1,
            fresh_documents=store,
        )
        await write(store, f"o-{unique}", "1", status="DRAFT")
        await read_model.get("orders", f"o-{unique}")
        await write(store, f"o-{unique}", "2", status="SUBMITTED")  # not announced yet

        cached_doc = await read_model.get("orders", f"o-{unique}")
        fresh = await read_model.get_many("orders", [f"o-{unique}"], fresh=True)
        assert (cached_doc or {})["status"] == "DRAFT"
        assert fresh[f"o-{unique}"]["status"] == "SUBMITTED"
