"""Per-adapter harnesses for the DocumentStore conformance suite.

A harness hands out fresh collection and checkpoint names (uuid-based, so tests never share
state and need no ordering) and removes what it handed out when the test ends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from read_model.change_feed.in_process import InProcessChangeFeed
from read_model.change_feed.port import ChangeFeed
from read_model.document_cache import CachedDocumentStore
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.mongo import CHECKPOINTS, MongoDocumentStore

CONTRACT_DATABASE = "orders_contract"


# Big enough that the suite's reads are answered from it; small enough to evict in one test.
CONTRACT_CACHE_CAPACITY = 64


@dataclass
class DocumentStoreHarness:
    store: InMemoryDocumentStore | MongoDocumentStore | CachedDocumentStore
    kind: Literal["memory", "mongo", "cached-memory", "cached-mongo"]
    collections: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)

    @property
    def backing(self) -> InMemoryDocumentStore | MongoDocumentStore:
        """The store itself, behind the read cache where there is one (for what only the
        adapters have, outside the port: their indexes)."""
        store = self.store
        return store.uncached if isinstance(store, CachedDocumentStore) else store  # type: ignore[return-value]

    def collection(self, label: str = "docs") -> str:
        name = f"{label}_{uuid.uuid4().hex[:12]}"
        self.collections.append(name)
        return name

    def checkpoint_name(self, label: str = "projection") -> str:
        name = f"contract-{label}-{uuid.uuid4().hex[:12]}"
        self.checkpoints.append(name)
        return name

    async def cleanup(self) -> None:
        for name in self.collections:
            await self.store.drop_collection(name)
        behind = self.backing
        if isinstance(behind, MongoDocumentStore) and self.checkpoints:
            await behind.database[CHECKPOINTS].delete_many({"_id": {"$in": self.checkpoints}})


@contextlib.asynccontextmanager
async def harnessed(
    store: InMemoryDocumentStore | MongoDocumentStore | CachedDocumentStore,
    kind: Literal["memory", "mongo", "cached-memory", "cached-mongo"],
) -> AsyncIterator[DocumentStoreHarness]:
    """`store` under test: what a test created in it is dropped after, then it is closed."""
    harness = DocumentStoreHarness(store, kind)
    try:
        yield harness
    finally:
        try:
            await harness.cleanup()
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def memory_document_store() -> AsyncIterator[DocumentStoreHarness]:
    async with harnessed(InMemoryDocumentStore(), "memory") as harness:
        yield harness


@contextlib.asynccontextmanager
async def mongo_document_store(url: str) -> AsyncIterator[DocumentStoreHarness]:
    store = await MongoDocumentStore.connect(url, CONTRACT_DATABASE)
    async with harnessed(store, "mongo") as harness:
        yield harness


@contextlib.asynccontextmanager
async def cached_memory_document_store() -> AsyncIterator[DocumentStoreHarness]:
    """The read cache in front of the memory store, watching the in-process feed."""
    feed = InProcessChangeFeed()
    async with cached(InMemoryDocumentStore(), feed, "cached-memory") as harness:
        yield harness


@contextlib.asynccontextmanager
async def cached_mongo_document_store(
    mongo_url: str, database_url: str
) -> AsyncIterator[DocumentStoreHarness]:
    """The read cache in front of the Mongo store, watching the PostgreSQL feed (LISTEN)."""
    import asyncpg

    from log_follower.postgres_listener import PostgresListener
    from read_model.change_feed.postgres import PostgresChangeFeed

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    listener = PostgresListener(database_url)
    await listener.start()
    try:
        store = await MongoDocumentStore.connect(mongo_url, CONTRACT_DATABASE)
        async with cached(store, PostgresChangeFeed(pool, listener), "cached-mongo") as harness:
            yield harness
    finally:
        await listener.close()
        await pool.close()


@contextlib.asynccontextmanager
async def cached(
    store: InMemoryDocumentStore | MongoDocumentStore,
    feed: ChangeFeed,
    kind: Literal["cached-memory", "cached-mongo"],
) -> AsyncIterator[DocumentStoreHarness]:
    async with (
        CachedDocumentStore.watching(store, feed, CONTRACT_CACHE_CAPACITY) as cache,
        harnessed(cache, kind) as harness,
    ):
        yield harness
