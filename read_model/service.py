"""The read model as its readers (the GraphQL API, metrics) see it: the projections'
documents of the active collection versions, read-your-writes waits, projection statuses and
every follower's dead letters (one store, log_follower/dead_letters/, as one list). Readers never
reach into the projector's collections or checkpoints.

Projections write versioned physical collections (`orders_v1`, then `orders_v2` after a
rebuild); the active version of each projection is in its checkpoint. `ReadModel` resolves
logical names to physical ones from one `list_checkpoints` read, cached for a short
while (a setting), so a request costs no extra round trip for it.

`wait_for` is read-your-writes: it waits, bounded by a setting, until the projections'
checkpoints have all passed a log position (from a consistency token); one watcher task per
process reads them for every waiting request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from log_follower.dead_letters.memory import InMemoryDeadLetters
from log_follower.dead_letters.port import DeadLetter, DeadLetters, LetterOwner
from log_follower.status.view import FollowerStatus
from read_model.document_store.port import (
    POSITION_FIELD,
    Checkpoint,
    Document,
    DocumentStore,
    Page,
    SortKey,
)
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


# The letters' order as documents: oldest first, then by `_id` (the store's (sort key, id)).
LETTER_ORDERING: tuple[SortKey, ...] = (SortKey(POSITION_FIELD),)


class LetterList:
    """Every follower's dead letters as the API lists them: documents of one shape, in
    (`_pos`, `_id`) order (the store's (sort key, id)), one cursor for all."""

    def __init__(self, letters: DeadLetters) -> None:
        self._letters = letters

    async def get(self, letter_id: str) -> Document | None:
        letter = await self._letters.get(letter_id)
        return None if letter is None else letter_document(letter)

    async def page(self, limit: int, after: Sequence[Any] | None = None) -> list[Document]:
        """Oldest first; `after`: the `(_pos, _id)` of the last letter of the previous page."""
        seek = None if after is None else (str(after[0]), str(after[1]))
        return [letter_document(letter) for letter in await self._letters.page(limit, seek)]

    async def request_retry(self, letter_id: str) -> bool:
        """Ask the follower's leading process to retry the letter's key. False: no such
        letter."""
        return await self._letters.request_retry(letter_id)


def letter_document(letter: DeadLetter) -> Document:
    return {
        "_id": letter.id,
        POSITION_FIELD: letter.sort_key,
        "subscriber": letter.owner.follower,
        "version": letter.owner.version,
        "key": letter.key,
        "eventId": letter.event_id,
        "streamId": letter.stream_id,
        "streamVersion": letter.stream_version,
        "position": str(letter.log_position.position),
        "transactionId": str(letter.log_position.transaction_id),
        "type": letter.event_type,
        "error": letter.error,
        "attempts": letter.attempts,
        "failedAt": letter.failed_at,
        "retryRequested": letter.retry_requested,
    }


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
        letters: DeadLetters | None = None,
        followers: Callable[[], Awaitable[list[FollowerStatus]]] | None = None,
        fresh_documents: DocumentStore | None = None,
    ) -> None:
        self._documents = documents
        # The store behind a read cache in `documents`, if any: reads after a consistency
        # wait come from it (the cache may not have heard of the write yet).
        self._fresh_documents = fresh_documents if fresh_documents is not None else documents
        self._events = events
        # Every follower's letters (none given: a store of this process alone).
        self.letters = letters if letters is not None else InMemoryDeadLetters()
        self.dead_letters = LetterList(self.letters)
        self._followers = followers
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._ttl = version_ttl_seconds
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._versions: dict[str, int] | None = None
        self._checkpoints: dict[str, Checkpoint] = {}  # as the watcher last read them
        self._waiters: list[tuple[LogPosition, asyncio.Future[None]]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._moved = asyncio.Event()
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

    async def get_many(
        self, logical: str, ids: Sequence[str], *, fresh: bool = False
    ) -> dict[str, Document]:
        """`fresh`: past any read cache (after a consistency wait)."""
        documents = self._fresh_documents if fresh else self._documents
        return await documents.get_many(await self.collection(logical), ids)

    async def get(self, logical: str, document_id: str, *, fresh: bool = False) -> Document | None:
        documents = self._fresh_documents if fresh else self._documents
        return await documents.get(await self.collection(logical), document_id)

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

    async def processes(self) -> list[FollowerStatus]:
        """Every follower of the log (projections, the saga or its participants, the
        relay), as the status board and the log have them."""
        return [] if self._followers is None else await self._followers()

    # ----------------------------------------------------------- consistency

    async def wait_for(self, position: LogPosition) -> None:
        """Return once every projection the API reads has applied everything up to
        `position`, so that nested fields read from other projections (an order's
        customer, its items' products) reflect the write too; raise ReadModelBehind when
        they have not within the configured wait.

        However many requests wait, one task per process reads the checkpoints: when the
        change feed says documents were written (`checkpoints_moved`), and every
        `poll_seconds` while anyone waits (a projection that skips an event publishes
        nothing)."""
        if self._passed(position):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (position, waiter)
        self._waiters.append(entry)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="consistency-watcher")
        try:
            async with asyncio.timeout(self._wait_seconds):
                await waiter
        except TimeoutError:
            raise ReadModelBehind(self._behind_message(position)) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def checkpoints_moved(self) -> None:
        """The projector wrote documents (a change-feed notice): look at the checkpoints."""
        self._moved.set()

    def _passed(self, position: LogPosition) -> bool:
        return all(
            (found := self._checkpoints.get(name)) is not None and found.position >= position
            for name in PROJECTIONS
        )

    async def _watch(self) -> None:
        while self._waiters:
            self._moved.clear()
            try:
                listed = await self._documents.list_checkpoints()
            except Exception as error:  # the store is down, say: every waiter is told so
                for _, waiter in self._waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                return
            checkpoints = {c.name: c for c in listed}
            self._checkpoints = checkpoints
            self._note_versions(checkpoints)
            for position, waiter in list(self._waiters):
                if self._passed(position) and not waiter.done():
                    waiter.set_result(None)
            if not any(not waiter.done() for _, waiter in self._waiters):
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._moved.wait()

    def _behind_message(self, position: LogPosition) -> str:
        behind: dict[str, int] = {}
        for name in sorted(PROJECTIONS):
            found = self._checkpoints.get(name)
            if found is None or found.position < position:
                behind[name] = found.position.position if found is not None else 0
        shown = ", ".join(f"{name} at position {at}" for name, at in behind.items())
        return (
            f"the read model did not catch up with this write within {self._wait_seconds:g} s "
            f"({shown}; the write is at position {position.position}); try again shortly"
        )

    async def parked_letter(self, stream_id: str, position: LogPosition) -> Document | None:
        """A dead letter of `stream_id` at or before `position` in a version readers use:
        the read model passed that write without applying it to the stream's documents."""
        versions = await self._active_versions()
        for name in sorted(PROJECTIONS):
            owner = LetterOwner(name, versions.get(name, 1))
            for letter in await self.letters.of_key(owner, stream_id):
                if letter.log_position <= position:
                    return letter_document(letter)
        return None

    def _note_versions(self, checkpoints: Mapping[str, Checkpoint]) -> None:
        """Fresh checkpoints in hand: take their active versions (a rebuild may have
        switched one since the cache was filled)."""
        self._versions = {
            name: checkpoints[name].version for name in PROJECTIONS if name in checkpoints
        }
        self._expires = self._clock() + self._ttl
