"""A DocumentStore in front of another that answers reads by id (`get`, `get_many`) from a
bounded cache kept current by the change feed: the API's read cache, in front of MongoDB.

Every document the projector writes is announced on the change feed (DocumentChanged, the
documents an update changed in place included), after it is written. The cache watches the
feed (`ChangeFeed.watch`: at once as a notification arrives, before any subscriber acts on
it, so a subscriber re-reading a changed document never gets the cached one), and:

- drops a document when its DocumentChanged arrives (whatever the collection version: the
  feed names logical collections, the cache holds physical ones; ids are unique enough that
  dropping a namesake costs one miss at most);
- drops everything on a FeedGap (the LISTEN connection was replaced, a notification could
  not be read) and, while the feed's connection is down, serves and keeps nothing;
- never keeps a read that raced an invalidation: a miss notes the generation (bumped by
  every invalidation) before it reads, and keeps what it read only if none came meanwhile.

Writes through this store (tests, tools) drop what they touch as well. Everything else
(`find`, `count`, checkpoints...) goes to the store behind it. A consistency-token read must
not be answered from here (the projector's checkpoint can be visible before its
notification arrives): `ReadModel` reads such requests from `uncached`.

Cached documents are copies, and every hit returns a copy of its own, as any DocumentStore
does: callers may change what they get.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from read_model.change_feed.port import ChangeFeed, Connected, FeedGap, FeedItem
from read_model.document_store.port import (
    Checkpoint,
    Document,
    DocumentStore,
    GuardedPut,
    Page,
    SortKey,
    UpdateMany,
)
from read_model.document_store.rules import copied

Key = tuple[str, str]  # physical collection, document id


class CachedDocumentStore:
    """Build it with `watching`: until it watches a feed, it answers nothing from memory."""

    def __init__(self, uncached: DocumentStore, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"a read cache holds at least one document, not {capacity}")
        self.uncached = uncached
        self._capacity = capacity
        self._connected: Connected = _unwatched
        self._entries: OrderedDict[Key, Document] = OrderedDict()  # least recently used first
        self._collections: dict[str, int] = {}  # physical collection -> documents held
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self.invalidations = 0  # documents dropped for a change
        self.clears = 0  # everything dropped (a gap, a lost connection)

    @staticmethod
    @contextlib.asynccontextmanager
    async def watching(
        uncached: DocumentStore, feed: ChangeFeed, capacity: int
    ) -> AsyncIterator[CachedDocumentStore]:
        """The cache in front of `uncached`, kept current by `feed` while entered."""
        cache = CachedDocumentStore(uncached, capacity)
        async with feed.watch(cache.changed) as connected:
            cache._connected = connected
            try:
                yield cache
            finally:
                cache._connected = _unwatched
                cache._clear()

    # ------------------------------------------------------------ the feed

    def changed(self, item: FeedItem) -> None:
        """A feed item: drop what it says changed (everything, for a gap)."""
        self._generation += 1
        if isinstance(item, FeedGap):
            self._clear()
            return
        for change in item:
            self._drop_id(change.id)

    def _drop_id(self, document_id: str) -> None:
        for collection in self._collections:
            if self._entries.pop((collection, document_id), None) is not None:
                self._collections[collection] -= 1
                self.invalidations += 1

    def _drop_collection(self, collection: str) -> None:
        self._generation += 1
        if self._collections.pop(collection, 0):
            for key in [key for key in self._entries if key[0] == collection]:
                del self._entries[key]

    def _clear(self) -> None:
        self._generation += 1
        if self._entries:
            self._entries.clear()
            self._collections.clear()
            self.clears += 1

    def _serving(self) -> bool:
        """Whether the feed is connected, so the cache may answer; while it is not, changes
        go unannounced: drop everything held."""
        if self._connected():
            return True
        self._clear()
        return False

    @property
    def size(self) -> int:
        return len(self._entries)

    # ---------------------------------------------------------------- reads

    async def get(self, collection: str, document_id: str) -> Document | None:
        return (await self.get_many(collection, (document_id,))).get(document_id)

    async def get_many(self, collection: str, ids: Sequence[str]) -> dict[str, Document]:
        if not self._serving():
            return await self.uncached.get_many(collection, ids)
        entries = self._entries
        found: dict[str, Document] = {}
        missing: list[str] = []
        for document_id in dict.fromkeys(ids):
            key = (collection, document_id)
            cached = entries.get(key)
            if cached is None:
                missing.append(document_id)
            else:
                entries.move_to_end(key)
                found[document_id] = copied(cached)
        self.hits += len(found)
        if not missing:
            return found
        self.misses += len(missing)
        generation = self._generation
        loaded = await self.uncached.get_many(collection, missing)
        if generation == self._generation and self._serving():
            for document_id, document in loaded.items():
                self._keep((collection, document_id), copied(document))
        found.update(loaded)
        return found

    def _keep(self, key: Key, document: Document) -> None:
        entries = self._entries
        if entries.get(key) is None:
            self._collections[key[0]] = self._collections.get(key[0], 0) + 1
        entries[key] = document
        entries.move_to_end(key)
        while len(entries) > self._capacity:
            (collection, _), _ = entries.popitem(last=False)
            self._collections[collection] -= 1

    async def find(
        self,
        collection: str,
        filter: Mapping[str, Any],
        sort: Sequence[SortKey],
        limit: int,
        after: Sequence[Any] | None = None,
    ) -> Page:
        return await self.uncached.find(collection, filter, sort, limit, after)

    async def count(self, collection: str, filter: Mapping[str, Any]) -> int:
        return await self.uncached.count(collection, filter)

    async def changed_after(self, collection: str, position: str, limit: int) -> list[Document]:
        return await self.uncached.changed_after(collection, position, limit)

    # --------------------------------------------------------------- writes

    async def bulk_write(
        self, puts: Sequence[GuardedPut], updates: Sequence[UpdateMany] = ()
    ) -> None:
        # Dropped before and after: a read racing the write keeps nothing it read.
        self._drop_written(puts, updates)
        try:
            await self.uncached.bulk_write(puts, updates)
        finally:
            self._drop_written(puts, updates)

    def _drop_written(self, puts: Sequence[GuardedPut], updates: Sequence[UpdateMany]) -> None:
        self._generation += 1
        for put in puts:
            document_id = put.document.get("_id")  # missing: the store refuses the put
            if not isinstance(document_id, str):
                continue
            if self._entries.pop((put.collection, document_id), None) is not None:
                self._collections[put.collection] -= 1
        for update in updates:
            self._drop_collection(update.collection)

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> int:
        self._drop_collection(collection)
        try:
            return await self.uncached.delete_many(collection, filter)
        finally:
            self._drop_collection(collection)

    async def drop_collection(self, collection: str) -> None:
        self._drop_collection(collection)
        try:
            await self.uncached.drop_collection(collection)
        finally:
            self._drop_collection(collection)

    async def ensure_index(self, collection: str, keys: Sequence[SortKey]) -> None:
        await self.uncached.ensure_index(collection, keys)

    async def load_checkpoint(self, name: str) -> Checkpoint | None:
        return await self.uncached.load_checkpoint(name)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self.uncached.save_checkpoint(checkpoint)

    async def list_checkpoints(self) -> list[Checkpoint]:
        return await self.uncached.list_checkpoints()

    async def close(self) -> None:
        self._clear()
        await self.uncached.close()


def _unwatched() -> bool:
    return False
