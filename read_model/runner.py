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
from dataclasses import dataclass, field, replace
from typing import Any

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
from read_model.document_store.rules import apply_set, matches
from read_model.projections.base import DocKey, ProjectedEvent, Projection
from write_model.envelope import LogPosition, RecordedEvent
from write_model.event_store.port import EventStore
from write_model.registry import EventTypeRegistry

log = logging.getLogger(__name__)


PARKED_BEHIND = "parked behind an earlier failed event of its stream"


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    batch_size: int = 500
    max_attempts: int = 4  # tries of a failing event before it is parked
    backoff_seconds: float = 0.05  # first retry delay; doubles each try


@dataclass
class BatchResult:
    events_read: int = 0
    events_applied: int = 0
    events_parked: int = 0
    documents_written: int = 0
    position: LogPosition | None = None


@dataclass
class _Working:
    """Documents of one batch in memory: loaded, then evolved."""

    docs: dict[DocKey, Document | None] = field(default_factory=dict)
    changed: set[DocKey] = field(default_factory=set)
    updates: list[UpdateMany] = field(default_factory=list)


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
        self._settings = settings
        self._sleep = sleep
        self._dead_letters = DeadLetters(documents)
        self._parked: set[str] | None = None  # stream ids with dead letters
        # The checkpoint as last read or saved: while a runner leads, it is the checkpoint's
        # only writer, so it is read from the store once, not once per batch.
        self._position: LogPosition | None = None
        self.state = ProjectionState.CATCHING_UP
        self.last_error: str | None = None

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

    # ------------------------------------------------------------ batch

    async def run_batch(self) -> BatchResult:
        """Project the next batch of the log. Returns what it did (events_read 0: idle)."""
        if self._parked is None:
            self._parked = await self._dead_letters.parked_streams(self.checkpoint_name)
        after = await self.position()
        recorded = await self._events.read_all(after, self._settings.batch_size)
        result = BatchResult(events_read=len(recorded))
        if not recorded:
            return result
        projected = [e for e in recorded if self.projection.handles(e.type)]
        working = _Working()
        await self._prefetch(projected, working)
        dead: list[Failure] = []
        for event in projected:
            if event.stream_id in self._parked:
                dead.append(
                    Failure(event, "parked behind an earlier failed event of its stream", 0)
                )
                continue
            error, attempts = await self._apply_with_retries(event, working)
            if error is None:
                result.events_applied += 1
            else:
                self._parked.add(event.stream_id)
                dead.append(Failure(event, error, attempts))
        result.documents_written = await self._write(working)
        if dead:
            await self._park(dead)
            result.events_parked = len(dead)
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
        self, event: RecordedEvent, working: _Working, *, retrying_parked: bool = False
    ) -> tuple[str | None, int]:
        delay = self._settings.backoff_seconds
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                staged, updates = await self._evolve(event, working, retrying_parked)
            except Exception as error:  # a projection bug or bad data: retried, then parked
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
                _apply_update_in_memory(working, update)
            return None, attempt
        raise AssertionError("unreachable")

    async def _evolve(
        self, recorded: RecordedEvent, working: _Working, retrying_parked: bool
    ) -> tuple[dict[DocKey, Document | None], Sequence[UpdateMany]]:
        """The documents the event changes, staged apart from `working` so that a failure
        leaves the batch as it was."""
        event = ProjectedEvent(
            recorded,
            self._registry.deserialize(
                recorded.type, recorded.data, recorded.metadata.schema_version
            ),
            position_key(recorded.log_position),
        )
        await self._load_missing(self.projection.reads(event), working)
        view = ChainMap({}, working.docs)
        staged = view.maps[0]
        keys = self.projection.keys(event, view)
        await self._load_missing(keys, working)
        for key in keys:
            doc = view.get(key)
            stored_position = doc.get(POSITION_FIELD, "") if doc is not None else ""
            new_position = event.position_key
            if stored_position >= new_position:
                if not retrying_parked:
                    continue  # applied before a crash: a replay must not apply it twice
                # A parked event re-applied after later events of other streams touched
                # this document: apply it, and move the guard strictly forward.
                new_position = f"{stored_position}.{time.time_ns():020d}"
            evolved = self.projection.evolve(key, doc, event, view)
            if evolved is not None:
                evolved = {**evolved, "_id": key.id, POSITION_FIELD: new_position}
            staged[key] = evolved
        return dict(staged), self.projection.effects(event)

    async def _prefetch(self, events: Sequence[RecordedEvent], working: _Working) -> None:
        """One query per collection for what the batch's events name up front."""
        wanted: set[DocKey] = set()
        for recorded in events:
            try:
                event = ProjectedEvent(
                    recorded,
                    self._registry.deserialize(
                        recorded.type, recorded.data, recorded.metadata.schema_version
                    ),
                    position_key(recorded.log_position),
                )
                wanted.update(self.projection.reads(event))
                wanted.update(self.projection.keys(event, {}))
            except Exception:
                # Prefetching is an optimization: the same event fails again in _evolve,
                # where it is retried, logged and parked.
                continue
        await self._load_missing(wanted, working)

    async def _load_missing(self, keys: Iterable[DocKey], working: _Working) -> None:
        by_collection: dict[str, list[str]] = {}
        for key in keys:
            if key not in working.docs:
                by_collection.setdefault(key.collection, []).append(key.id)
        for logical, ids in by_collection.items():
            found = await self._documents.get_many(self.collection(logical), ids)
            for document_id in ids:
                working.docs.setdefault(DocKey(logical, document_id), found.get(document_id))

    async def _write(self, working: _Working) -> int:
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

    async def _publish(self, working: _Working) -> None:
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
        await self._dead_letters.park(self.checkpoint_name, dead)
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

    async def retry_parked(self, stream_id: str) -> int:
        """Re-apply a parked stream's events in order; on success they leave the dead-letter
        collection and the stream flows again. Returns how many were applied (0: still
        failing, and the dead letters record the new error)."""
        letters = await self._dead_letters.of_stream(self.checkpoint_name, stream_id)
        if not letters:
            return 0
        first_version = min(doc["streamVersion"] for doc in letters)
        checkpoint = await self.position()
        # Only what the checkpoint has passed is parked; later events arrive normally.
        events = [
            e
            for e in await self._events.read_stream(stream_id, from_version=first_version)
            if e.log_position <= checkpoint and self.projection.handles(e.type)
        ]
        working = _Working()
        for event in events:
            error, attempts = await self._apply_with_retries(event, working, retrying_parked=True)
            if error is not None:
                await self._write(working)
                await self._dead_letters.record_retry_failure(letters, error, attempts)
                return 0
        await self._write(working)
        await self._dead_letters.remove_stream(self.checkpoint_name, stream_id)
        if self._parked is not None:
            self._parked.discard(stream_id)
        await self._publish(working)
        return len(events)


def _apply_update_in_memory(working: _Working, update: UpdateMany) -> None:
    """Keep the batch's in-memory view as the database will be after the update."""
    for key, doc in working.docs.items():
        if key.collection == update.collection and doc is not None and matches(doc, update.filter):
            working.docs[key] = apply_set(update.collection, doc, update.set)
