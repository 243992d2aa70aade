"""The read model as its readers (the GraphQL API, metrics) see it: the projections'
documents of the active collection versions, read-your-writes waits, projection statuses and
dead letters. Readers never reach into the projector's collections or checkpoints.

Projections write versioned physical collections (`orders_v1`, then `orders_v2` after a
rebuild); the active version of each projection is in its checkpoint. `ReadModel` resolves
logical names to physical ones from one `list_checkpoints` read, cached for a short
while (a setting), so a request costs no extra round trip for it.

`wait_for` is read-your-writes: it polls the projections' checkpoints until they have all
passed a log position (from a consistency token), bounded by a setting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from read_model.dead_letters import DeadLetters
from read_model.document_store.port import Checkpoint, Document, DocumentStore, Page, SortKey
from read_model.projections import ALL_PROJECTIONS
from read_model.runner import physical_collection
from read_model.status import ProjectionStatus, projection_statuses
from write_model.envelope import LogPosition
from write_model.event_store.port import EventStore

# Logical collection -> the projection that writes it.
PROJECTION_OF: Mapping[str, str] = {
    logical: projection.name for projection in ALL_PROJECTIONS for logical in projection.collections
}
PROJECTIONS: frozenset[str] = frozenset(PROJECTION_OF.values())


class ReadModelBehind(Exception):
    """The projections did not pass a position within the configured wait."""


class ReadModel:
    def __init__(
        self,
        documents: DocumentStore,
        events: EventStore,
        *,
        wait_seconds: float,
        poll_seconds: float,
        version_ttl_seconds: float,
        stale_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._documents = documents
        self._events = events
        self.dead_letters = DeadLetters(documents)
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._ttl = version_ttl_seconds
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._versions: dict[str, int] | None = None
        self._expires = 0.0
        self._refreshing = asyncio.Lock()

    # --------------------------------------------------------------- naming

    async def collection(self, logical: str) -> str:
        projection = PROJECTION_OF[logical]
        versions = await self._active_versions()
        return physical_collection(logical, versions.get(projection, 1))

    async def _active_versions(self) -> dict[str, int]:
        versions = self._versions
        if versions is not None and self._clock() < self._expires:
            return versions
        async with self._refreshing:
            if self._versions is not None and self._clock() < self._expires:
                return self._versions
            checkpoints = await self._documents.list_checkpoints()
            self._note_versions({c.name: c for c in checkpoints})
            assert self._versions is not None
            return self._versions

    # ---------------------------------------------------------------- reads

    async def get_many(self, logical: str, ids: Sequence[str]) -> dict[str, Document]:
        return await self._documents.get_many(await self.collection(logical), ids)

    async def get(self, logical: str, document_id: str) -> Document | None:
        return await self._documents.get(await self.collection(logical), document_id)

    async def find(
        self,
        logical: str,
        filter: Mapping[str, Any],
        sort: Sequence[SortKey],
        limit: int,
        after: Sequence[Any] | None = None,
    ) -> Page:
        collection = await self.collection(logical)
        return await self._documents.find(collection, filter, sort, limit, after)

    async def count(self, logical: str, filter: Mapping[str, Any]) -> int:
        return await self._documents.count(await self.collection(logical), filter)

    async def changed_after(self, logical: str, position: str, limit: int) -> list[Document]:
        return await self._documents.changed_after(await self.collection(logical), position, limit)

    async def position(self, projection: str) -> LogPosition:
        """How far `projection` has applied the log."""
        checkpoint = await self._documents.load_checkpoint(projection)
        return checkpoint.position if checkpoint else LogPosition.start()

    async def statuses(self) -> list[ProjectionStatus]:
        return await projection_statuses(self._events, self._documents, self._stale_seconds)

    # ----------------------------------------------------------- consistency

    async def wait_for(self, position: LogPosition) -> None:
        """Return once every projection the API reads has applied everything up to
        `position`, so that nested fields read from other projections (an order's
        customer, its items' products) reflect the write too; raise ReadModelBehind when
        they have not within the configured wait. One read of the checkpoints per poll."""
        deadline = self._clock() + self._wait_seconds
        while True:
            checkpoints = {c.name: c for c in await self._documents.list_checkpoints()}
            behind = sorted(
                name
                for name in PROJECTIONS
                if (found := checkpoints.get(name)) is None or found.position < position
            )
            if not behind:
                self._note_versions(checkpoints)
                return
            if self._clock() >= deadline:
                reached = {
                    name: checkpoints[name].position.position if name in checkpoints else 0
                    for name in behind
                }
                shown = ", ".join(f"{name} at position {at}" for name, at in reached.items())
                raise ReadModelBehind(
                    f"the read model did not catch up with this write within "
                    f"{self._wait_seconds:g} s ({shown}; the write is at position "
                    f"{position.position}); try again shortly"
                )
            await asyncio.sleep(self._poll_seconds)

    def _note_versions(self, checkpoints: Mapping[str, Checkpoint]) -> None:
        """Fresh checkpoints in hand: take their active versions (a rebuild may have
        switched one since the cache was filled)."""
        self._versions = {
            name: checkpoints[name].version for name in PROJECTIONS if name in checkpoints
        }
        self._expires = self._clock() + self._ttl
