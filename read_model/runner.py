"""The projector: one projection's documents kept current, as the follower's consumer
(log_follower/): the follower reads the log, retries, parks and checkpoints; this applies.

Per batch: load every document the batch needs (one query per collection, plus rare lazy
loads for keys only known mid-batch); apply the events in memory; write the changed
documents in one guarded bulk write; publish the changed ids on the change feed. A stream
(the key) whose event fails is left out from that event on and returned as failed; the
follower hands it again, then parks it with its later events, so that stream keeps its
order while the others keep flowing.

Crash anywhere and the batch is simply read again. Each document records in `_pos` the last
event applied to it, so an event at or below that is skipped in memory and the guarded put
never regresses a document: a restart converges to what a clean rebuild gives.
"""

from __future__ import annotations

import logging
import time
from collections import ChainMap
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from typing import Any

from log_follower.consumer import Batch, FollowerKind, KeyFailure, is_connection_error
from log_follower.decoded import DecodedEvents
from read_model.batch import EventFailed, Working, apply_update_in_memory, event_failure
from read_model.change_feed.port import ChangeFeed, DocumentChanged
from read_model.document_store.port import (
    POSITION_FIELD,
    Document,
    DocumentStore,
    GuardedPut,
    SortKey,
    UpdateMany,
    position_key,
)
from read_model.projections.base import DocKey, ProjectedEvent, Projection
from write_model.envelope import RecordedEvent
from write_model.registry import EventTypeRegistry

log = logging.getLogger(__name__)


# Parked events applied to a document by a retry, by event id: a retry run again after a
# crash skips them. Only the crash window needs covering, so a few suffice.
RETRIED_FIELD = "_retried"
REMEMBERED_RETRIES = 50
# Documents an update changed in place, read per query to publish them.
UPDATED_PAGE = 500


def physical_collection(logical: str, version: int) -> str:
    return f"{logical}_v{version}"


class ProjectionConsumer:
    """The consumer of one projection at one collection version (`version`): the live one,
    or a rebuild's, which publishes nothing (`feed` None: readers see the old version)."""

    kind = FollowerKind.PROJECTION

    def __init__(
        self,
        projection: Projection,
        documents: DocumentStore,
        registry: EventTypeRegistry,
        *,
        feed: ChangeFeed | None = None,
        version: int = 1,
        decoded: DecodedEvents | None = None,
    ) -> None:
        self.projection = projection
        self._documents = documents
        # Shared by the process's projections (ProjectorDependencies.decoded).
        self._decoded = decoded or DecodedEvents(registry)
        self._feed = feed
        self.version = version

    @property
    def name(self) -> str:
        return self.projection.name

    def key_of(self, event: RecordedEvent) -> str | None:
        """A stream's events apply in order: the stream is the key."""
        return event.stream_id if self.projection.handles(event.type) else None

    def is_outage(self, error: BaseException) -> bool:
        return is_connection_error(error)  # DocumentStoreUnavailable is a ConnectionError

    def collection(self, logical: str) -> str:
        return physical_collection(logical, self.version)

    async def ensure_indexes(self) -> None:
        for logical, indexes in self.projection.indexes().items():
            for keys in indexes:
                await self._documents.ensure_index(
                    self.collection(logical),
                    [SortKey.of(f, d) for f, d in keys],
                )

    async def handle(self, batch: Batch) -> list[KeyFailure]:
        """Apply the batch; a storage error (or any error outside one event's projection)
        propagates. Redelivered events (a retry) are applied even where a later event of
        another stream moved a document's guard meanwhile (`_evolve`)."""
        working = Working()
        projected = await self._prefetch(batch.events, working)
        failed: dict[str, KeyFailure] = {}
        for index, event in enumerate(batch.events):
            if event.stream_id in failed:
                continue  # behind its stream's failed event
            try:
                staged, updates = await self._evolve(
                    event, working, batch.redelivered, projected.get(index)
                )
            except EventFailed as failure:  # a projection bug or bad data
                error = failure.__cause__ or failure
                failed[event.stream_id] = KeyFailure(event.stream_id, event, error)
                continue
            working.docs.update(staged)
            working.changed.update(staged)
            for update in updates:
                working.updates.append(update)
                apply_update_in_memory(working, update)
        await self._write(working)
        await self._publish(working)
        return list(failed.values())

    async def _evolve(
        self,
        recorded: RecordedEvent,
        working: Working,
        retrying_parked: bool,
        projected: ProjectedEvent | None = None,
    ) -> tuple[dict[DocKey, Document | None], Sequence[UpdateMany]]:
        """The documents the event changes, staged apart from `working` so that a failure
        leaves the batch as it was. What the projection's own code raises (and a payload
        that cannot be read) is the event's failure, EventFailed; storage errors are not.
        `projected`: the event as the prefetch decoded it."""
        with event_failure():
            event = projected or self._projected(recorded)
            reads = self.projection.reads(event)
        await self._load_missing(reads, working)
        view = ChainMap({}, working.docs)
        staged = view.maps[0]
        with event_failure():
            keys = self.projection.keys(event, view)
        await self._load_missing(keys, working)
        event_id = str(recorded.event_id)
        for key in keys:
            doc = view.get(key)
            stored_position = doc.get(POSITION_FIELD, "") if doc is not None else ""
            new_position = event.position_key
            retried: list[str] = list(doc.get(RETRIED_FIELD, ())) if doc is not None else []
            if retrying_parked:
                if event_id in retried:
                    continue  # a retry that crashed after writing this document
                if stored_position >= new_position:
                    # Later events of other streams touched this document while the event
                    # was parked: apply it now, moving the guard strictly forward.
                    new_position = f"{stored_position}.{time.time_ns():020d}"
                retried = [*retried[-(REMEMBERED_RETRIES - 1) :], event_id]
            elif stored_position >= new_position:
                continue  # applied before a crash: a replay must not apply it twice
            with event_failure():
                evolved = self.projection.evolve(key, doc, event, view)
            if evolved is not None:
                evolved = {**evolved, "_id": key.id, POSITION_FIELD: new_position}
                if retried:
                    evolved[RETRIED_FIELD] = retried
            staged[key] = evolved
        with event_failure():
            effects = self.projection.effects(event)
        return dict(staged), effects

    def _projected(self, recorded: RecordedEvent) -> ProjectedEvent:
        return ProjectedEvent(
            recorded,
            self._decoded.decode(recorded),
            position_key(recorded.log_position),
        )

    async def _prefetch(
        self, events: Sequence[RecordedEvent], working: Working
    ) -> dict[int, ProjectedEvent]:
        """One query per collection for what the batch's events name up front. Returns the
        events it decoded, by their index in `events`, for _evolve."""
        wanted: set[DocKey] = set()
        projected: dict[int, ProjectedEvent] = {}
        for index, recorded in enumerate(events):
            try:
                event = self._projected(recorded)
                wanted.update(self.projection.reads(event))
                wanted.update(self.projection.keys(event, {}))
            except Exception:
                # Prefetching is an optimization: the same event fails again in _evolve,
                # where it is retried, logged and parked.
                continue
            projected[index] = event
        await self._load_missing(wanted, working)
        return projected

    async def _load_missing(self, keys: Iterable[DocKey], working: Working) -> None:
        by_collection: dict[str, list[str]] = {}
        for key in keys:
            if key not in working.docs:
                by_collection.setdefault(key.collection, []).append(key.id)
        for logical, ids in by_collection.items():
            found = await self._documents.get_many(self.collection(logical), ids)
            for document_id in ids:
                working.docs.setdefault(DocKey(logical, document_id), found.get(document_id))

    async def _write(self, working: Working) -> int:
        puts = [
            GuardedPut(self.collection(key.collection), doc)
            for key in sorted(working.changed)
            if (doc := working.docs[key]) is not None
        ]
        updates = [
            replace(update, collection=self.collection(update.collection))
            for update in working.updates
        ]
        if puts or updates:
            await self._documents.bulk_write(puts, updates)
        return len(puts)

    async def _publish(self, working: Working) -> None:
        if self._feed is None or not (working.changed or working.updates):
            return
        changes = [
            DocumentChanged(key.collection, key.id, int(doc.get("version", 0)))
            for key in sorted(working.changed)
            if (doc := working.docs[key]) is not None
        ]
        # The documents an update changed in place are written documents too (an API's read
        # cache drops them): found after the write, so a failed read fails the batch, which
        # is applied again (harmlessly) and published then.
        published = {(change.collection, change.id) for change in changes}
        for update in working.updates:
            async for doc in self._matching(update):
                if (update.collection, doc["_id"]) not in published:
                    published.add((update.collection, doc["_id"]))
                    changes.append(
                        DocumentChanged(update.collection, doc["_id"], int(doc.get("version", 0)))
                    )
        if not changes:
            return
        try:
            await self._feed.publish(changes)
        except Exception:
            # Live updates are best effort: the documents and checkpoint are already safe.
            log.exception("publishing %s document changes failed", len(changes))

    async def _matching(self, update: UpdateMany) -> AsyncIterator[Document]:
        """Every document of the update's collection its filter matches, a page at a time."""
        collection = self.collection(update.collection)
        after: list[Any] | None = None
        while True:
            page = await self._documents.find(collection, update.filter, (), UPDATED_PAGE, after)
            for doc in page.documents:
                yield doc
            if not page.has_next_page:
                return
            after = [page.documents[-1]["_id"]]
