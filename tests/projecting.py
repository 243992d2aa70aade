"""A projection's follower on the given stores, for tests that drive it batch by batch
(`step()`) or retry a parked stream (`retry_key`), with the follower layer's in-memory
checkpoint-free parts: the projection's checkpoint is the document store's, as in
production; its letters go to `dead_letters` (a fresh in-memory store by default)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.checkpoint.memory import InMemoryCheckpoint
from log_follower.dead_letters.memory import InMemoryDeadLetters
from log_follower.dead_letters.port import DeadLetters
from log_follower.follower import Follower, FollowerParts, FollowerSettings
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from read_model.change_feed.port import ChangeFeed
from read_model.document_store.port import Document, DocumentStore, UpdateMany
from read_model.projections.base import DocKey, Owner, ProjectedEvent, Projection, View
from read_model.projector_process import ProjectorDependencies, projection_follower
from write_model.event_store.port import EventStore
from write_model.registry import EventTypeRegistry


def follower_parts(
    events: EventStore,
    *,
    settings: FollowerSettings | None = None,
    dead_letters: DeadLetters | None = None,
    **kwargs: Any,
) -> FollowerParts:
    return FollowerParts(
        source=LogSource(events, InProcessLeaderLock(), InProcessAppendSignal()),
        checkpoint=InMemoryCheckpoint(),
        dead_letters=dead_letters if dead_letters is not None else InMemoryDeadLetters(),
        settings=settings or FollowerSettings(),
        **kwargs,
    )


def projector_dependencies(
    events: EventStore,
    documents: DocumentStore,
    registry: EventTypeRegistry,
    *,
    feed: ChangeFeed | None = None,
    **kwargs: Any,
) -> ProjectorDependencies:
    return ProjectorDependencies(
        events, documents, registry, feed, follower_parts(events, **kwargs)
    )


def projection_runner(
    projection: Projection,
    events: EventStore,
    documents: DocumentStore,
    registry: EventTypeRegistry,
    *,
    version: int = 1,
    feed: ChangeFeed | None = None,
    **kwargs: Any,
) -> Follower:
    deps = projector_dependencies(events, documents, registry, feed=feed, **kwargs)
    return projection_follower(deps, projection, version)


@dataclass
class WrappedProjection:
    """`inner` in every respect but what a subclass overrides (a test's failure, a check)."""

    inner: Projection

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def collections(self) -> tuple[str, ...]:
        return self.inner.collections

    @property
    def owners(self) -> Mapping[str, Owner]:
        return self.inner.owners

    def handles(self, event_type: str) -> bool:
        return self.inner.handles(event_type)

    def reads(self, event: ProjectedEvent) -> Sequence[DocKey]:
        return self.inner.reads(event)

    def keys(self, event: ProjectedEvent, view: View) -> Sequence[DocKey]:
        return self.inner.keys(event, view)

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        return self.inner.evolve(key, doc, event, view)

    def effects(self, event: ProjectedEvent) -> Sequence[UpdateMany]:
        return self.inner.effects(event)

    def indexes(self) -> Mapping[str, Sequence[Sequence[tuple[str, int]]]]:
        return self.inner.indexes()
