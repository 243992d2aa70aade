"""Per-adapter harnesses for the EventStore conformance suite.

Each harness builds its adapter and can hold one append open (uncommitted) while others
commit, which the gap-free reading test needs. Where an adapter cannot hold an append open
(memory commits atomically at once), holding is a real no-op: the append lands at release.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from write_model.envelope import NewEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import EventStore, ExpectedVersion


class StoreHarness(Protocol):
    store: EventStore

    def held_append(
        self, stream_id: str, expected: ExpectedVersion, events: Sequence[NewEvent]
    ) -> contextlib.AbstractAsyncContextManager[None]: ...


@dataclass
class MemoryHarness:
    store: InMemoryEventStore

    @contextlib.asynccontextmanager
    async def held_append(
        self, stream_id: str, expected: ExpectedVersion, events: Sequence[NewEvent]
    ) -> AsyncIterator[None]:
        yield
        await self.store.append_to_stream(stream_id, "Test", expected, events)


@contextlib.asynccontextmanager
async def memory_harness() -> AsyncIterator[StoreHarness]:
    yield MemoryHarness(InMemoryEventStore())


@contextlib.asynccontextmanager
async def postgres_harness(dsn: str) -> AsyncIterator[StoreHarness]:
    from write_model.event_store import postgres

    pool = await postgres.create_pool(dsn, min_size=1, max_size=30)
    await postgres.migrate(pool)
    store = postgres.PostgresEventStore(pool)

    @dataclass
    class PostgresHarness:
        store: postgres.PostgresEventStore

        @contextlib.asynccontextmanager
        async def held_append(
            self, stream_id: str, expected: ExpectedVersion, events: Sequence[NewEvent]
        ) -> AsyncIterator[None]:
            async with pool.acquire() as connection, connection.transaction():
                await store.append_on(connection, stream_id, "Test", expected, events)
                yield

    try:
        yield PostgresHarness(store)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def sqlite_harness() -> AsyncIterator[StoreHarness]:
    from write_model.event_store import sqlite

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "events.db")
        store = await sqlite.SqliteEventStore.open(path)

        @dataclass
        class SqliteHarness:
            store: sqlite.SqliteEventStore

            @contextlib.asynccontextmanager
            async def held_append(
                self, stream_id: str, expected: ExpectedVersion, events: Sequence[NewEvent]
            ) -> AsyncIterator[None]:
                # A second connection holds the database's write lock, as another process
                # appending would; the store's own appends wait for it.
                connection = await sqlite.connect(path)
                try:
                    await connection.execute("BEGIN IMMEDIATE")
                    await sqlite.append_on(connection, stream_id, "Test", expected, events)
                    yield
                    await connection.commit()
                finally:
                    await connection.close()

        try:
            yield SqliteHarness(store)
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def announcing_harness() -> AsyncIterator[StoreHarness]:
    """The SQLite store as `orders dev` uses it: behind AnnouncingEventStore."""
    from write_model.event_store.announcing import AnnouncingEventStore

    async with sqlite_harness() as inner:

        @dataclass
        class AnnouncingHarness:
            store: AnnouncingEventStore

            def held_append(
                self, stream_id: str, expected: ExpectedVersion, events: Sequence[NewEvent]
            ) -> contextlib.AbstractAsyncContextManager[None]:
                return inner.held_append(stream_id, expected, events)

        yield AnnouncingHarness(AnnouncingEventStore(inner.store, [lambda _: None]))
