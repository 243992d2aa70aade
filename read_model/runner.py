"""The projector runner: reads the log in order from a checkpoint and keeps one projection's
documents current.

Per batch: read events after the checkpoint; load every document the batch needs (one
query per collection, plus rare lazy loads for keys only known mid-batch); apply the events
in memory; write the changed documents in one guarded bulk write; then save the checkpoint;
then publish the changed ids on the change feed.

Crash anywhere and the batch is simply read again. Each document records in `_pos` the last
event applied to it, so an event at or below that is skipped in memory and the guarded put
never regresses a document: a restart converges to what a clean rebuild gives.

A failing event is retried with exponential backoff, then parked as a dead letter
(read_model/dead_letters.py) with every later event of its stream, so that stream keeps its
order while the others keep flowing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from read_model.batch import (
    BatchResult,
    EventFailed,
    RetryResult,
    Working,
    apply_update_in_memory,
    event_failure,
)
from read_model.change_feed.port import ChangeFeed, DocumentChanged
from read_model.dead_letters import DeadLetters, Failure
from read_model.document_store.port import (
    POSITION_FIELD,
    Checkpoint,
    Document,
    DocumentStore,
    GuardedPut,
    ProjectionState,
    RebuildStatus,
    SortKey,
    UpdateMany,
    position_key,
)
from read_model.projections.base import DocKey, ProjectedEvent, Projection
from write_model.envelope import LogPosition, RecordedEvent
from write_model.event_store.port import EventStore
from write_model.registry import EventTypeRegistry

log = logging.getLogger(__name__)


PARKED_BEHIND = "parked behind an earlier failed event of its stream"
# Parked events applied to a document by a retry, by event id: a retry run again after a
# crash skips them. Only the crash window needs covering, so a few suffice.
RETRIED_FIELD = "_retried"
REMEMBERED_RETRIES = 50


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    batch_size: int = 500
    max_attempts: int = 4  # tries of a failing event before it is parked
    backoff_seconds: float = 0.05  # first retry delay; doubles each try


def physical_collection(logical: str, version: int) -> str:
    return f"{logical}_v{version}"


class ProjectionRunner:
    def __init__(
        self,
        projection: Projection,
        events: EventStore,
        documents: DocumentStore,
        registry: EventTypeRegistry,
        *,
        feed: ChangeFeed | None = None,
        version: int = 1,
        checkpoint_name: str | None = None,
        subscriber: str | None = None,
        settings: RunnerSettings = RunnerSettings(),
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.projection = projection
        self._events = events
        self._documents = documents
        self._registry = registry
        self._feed = feed
        self.version = version
        self.checkpoint_name = checkpoint_name or projection.name
        # Whose dead letters these are: a rebuild (checkpoint `<name>:rebuild`) files them
        # under the projection's name and its new version, so they are the live ones once
        # readers switch to that version.
        self.subscriber = subscriber or self.checkpoint_name
        self._settings = settings
        self._sleep = sleep
        self._dead_letters = DeadLetters(documents)
        self._parked: set[str] | None = None  # stream ids with dead letters
        # The checkpoint as last read or saved: while a runner leads, it is the checkpoint's
        # only writer, so it is read from the store once, not once per batch.
        self._position: LogPosition | None = None
        self.state = ProjectionState.CATCHING_UP
        self.last_error: str | None = None
        self.saved_at = -float("inf")  # time.monotonic() of the last checkpoint save

    # ----------------------------------------------------------- naming

    def collection(self, logical: str) -> str:
        return physical_collection(logical, self.version)

    async def ensure_indexes(self) -> None:
        for logical, indexes in self.projection.indexes().items():
            for keys in indexes:
                await self._documents.ensure_index(
                    self.collection(logical),
                    [SortKey(f, d) for f, d in keys],  # type: ignore[arg-type]
                )
        await self._dead_letters.ensure_indexes()

    # ------------------------------------------------------- checkpoint

    async def position(self) -> LogPosition:
        if self._position is None:
            checkpoint = await self._documents.load_checkpoint(self.checkpoint_name)
            self._position = checkpoint.position if checkpoint else LogPosition.start()
        return self._position

    async def save_checkpoint(
        self, position: LogPosition, rebuild: RebuildStatus | None = None
    ) -> None:
        await self._documents.save_checkpoint(
            Checkpoint(
                self.checkpoint_name,
                position,
                version=self.version,
                state=self.state,
                rebuild=rebuild,
                last_error=self.last_error,
            )
        )
        self._position = position
        self.saved_at = time.monotonic()

    # ------------------------------------------------------------ batch

    async def run_batch(self) -> BatchResult:
        """Project the next batch of the log. Returns what it did (events_read 0: idle).
        A storage error (or any error outside one event's projection) propagates, and the
        batch is read again next time; the parked streams are then re-read from the store,
        since what this batch would have parked was not recorded."""
        try:
            return await self._run_batch()
        except BaseException:
            self._parked = None
            raise

    async def _run_batch(self) -> BatchResult:
        if self._parked is None:
            self._parked = await self._dead_letters.parked_streams(self.subscriber, self.version)
        after = await self.position()
        recorded = await self._events.read_all(after, self._settings.batch_size)
        result = BatchResult(events_read=len(recorded))
        if not recorded:
            return result
        projected = [e for e in recorded if self.projection.handles(e.type)]
        working = Working()
        await self._prefetch(projected, working)
        dead: list[Failure] = []
        parking = set(self._parked)  # streams parked so far, this batch's included
        for event in projected:
            if event.stream_id in parking:
                dead.append(Failure(event, PARKED_BEHIND, 0))
                continue
            error, attempts = await self._apply_with_retries(event, working)
            if error is None:
                result.events_applied += 1
            else:
                parking.add(event.stream_id)
                dead.append(Failure(event, error, attempts))
        if dead:
            # Recorded before anything else is written: a stream is skipped only once its
            # letters are durable, so a crash never leaves a failed event unaccounted for.
            await self._park(dead)
            self._parked = parking
            result.events_parked = len(dead)
        result.documents_written = await self._write(working)
        position = recorded[-1].log_position
        if self.state != ProjectionState.REBUILDING:
            full = len(recorded) >= self._settings.batch_size
            self.state = ProjectionState.CATCHING_UP if full else ProjectionState.RUNNING
        self.last_error = None
        await self.save_checkpoint(position)
        result.position = position
        await self._publish(working)
        return result

    async def _apply_with_retries(
        self, event: RecordedEvent, working: Working, *, retrying_parked: bool = False
    ) -> tuple[str | None, int]:
        delay = self._settings.backoff_seconds
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                staged, updates = await self._evolve(event, working, retrying_parked)
            except EventFailed as failed:  # a projection bug or bad data: retried, then parked
                error = failed.__cause__
                log.warning(
                    "projection %s failed on event %s (%s #%s) attempt %s: %r",
                    self.projection.name,
                    event.event_id,
                    event.stream_id,
                    event.version,
                    attempt,
                    error,
                )
                if attempt == self._settings.max_attempts:
                    return f"{type(error).__name__}: {error}", attempt
                await self._sleep(delay)
                delay *= 2
                continue
            working.docs.update(staged)
            working.changed.update(staged)
            for update in updates:
                working.updates.append(update)
                apply_update_in_memory(working, update)
            return None, attempt
        raise AssertionError("unreachable")

    async def _evolve(
        self, recorded: RecordedEvent, working: Working, retrying_parked: bool
    ) -> tuple[dict[DocKey, Document | None], Sequence[UpdateMany]]:
        """The documents the event changes, staged apart from `working` so that a failure
        leaves the batch as it was. What the projection's own code raises (and a payload
        that cannot be read) is the event's failure, EventFailed; storage errors are not."""
        with event_failure():
            event = self._projected(recorded)
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
            self._registry.deserialize(
                recorded.type, recorded.data, recorded.metadata.schema_version
            ),
            position_key(recorded.log_position),
        )

    async def _prefetch(self, events: Sequence[RecordedEvent], working: Working) -> None:
        """One query per collection for what the batch's events name up front."""
        wanted: set[DocKey] = set()
        for recorded in events:
            try:
                event = self._projected(recorded)
                wanted.update(self.projection.reads(event))
                wanted.update(self.projection.keys(event, {}))
            except Exception:
                # Prefetching is an optimization: the same event fails again in _evolve,
                # where it is retried, logged and parked.
                continue
        await self._load_missing(wanted, working)

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
        if self._feed is None or not working.changed:
            return
        changes = [
            DocumentChanged(key.collection, key.id, int(doc.get("version", 0)))
            for key in sorted(working.changed)
            if (doc := working.docs[key]) is not None
        ]
        try:
            await self._feed.publish(changes)
        except Exception:
            # Live updates are best effort: the documents and checkpoint are already safe.
            log.exception("publishing %s document changes failed", len(changes))

    # ----------------------------------------------------- dead letters

    async def _park(self, dead: Sequence[Failure]) -> None:
        await self._dead_letters.park(self.subscriber, self.version, dead)
        for failure in dead:
            event = failure.event
            log.error(
                "projection %s parked event %s (%s #%s): %s",
                self.projection.name,
                event.event_id,
                event.stream_id,
                event.version,
                failure.error,
            )

    async def retry_parked(self, stream_id: str) -> RetryResult:
        """Re-apply a parked stream's events in order; each leaves the dead letters as soon
        as its documents are written, and the stream flows again once all have (`done`);
        an event that still fails stops the retry, and the letters left record the error.
        Safe to crash anywhere: a document records the ids of the parked events applied to
        it (`_retried`), so a retry run again never applies one twice."""
        letters = await self._dead_letters.of_stream(self.subscriber, self.version, stream_id)
        if not letters:
            return RetryResult(0, done=True)
        first_version = min(doc["streamVersion"] for doc in letters)
        checkpoint = await self.position()
        # Only what the checkpoint has passed is parked; later events arrive normally.
        events = [
            e
            for e in await self._events.read_stream(stream_id, from_version=first_version)
            if e.log_position <= checkpoint and self.projection.handles(e.type)
        ]
        by_event = {letter["eventId"]: letter for letter in letters}
        applied = 0
        for event in events:
            working = Working()
            error, attempts = await self._apply_with_retries(event, working, retrying_parked=True)
            if error is not None:
                left = await self._dead_letters.of_stream(self.subscriber, self.version, stream_id)
                await self._dead_letters.record_retry_failure(left, error, attempts)
                return RetryResult(applied, done=False)
            await self._write(working)
            if (letter := by_event.get(str(event.event_id))) is not None:
                await self._dead_letters.remove(letter["_id"])
            await self._publish(working)
            applied += 1
        # Letters of events the projection no longer handles, if any, go too.
        await self._dead_letters.remove_stream(self.subscriber, self.version, stream_id)
        if self._parked is not None:
            self._parked.discard(stream_id)
        return RetryResult(applied, done=True)
