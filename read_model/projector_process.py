"""The projector process: each projection a follower of the log (log_follower/), whose
consumer is the projection at its active collection version; between batches (at least
every maintenance interval, however busy the log) it moves a rebuild towards its switch.

Rebuild: `rebuild_projection` builds version n+1 from position zero under the checkpoint
`<name>:rebuild`, leaving version n serving readers, then marks it READY. The leading
projector (or the rebuild itself, when no projector runs) then runs the new version's
batches between its own until the new version reaches the head captured when the switch
began, and hands over: the `<name>` checkpoint moves to the new version, which switches
readers, and the new version's runner follows the log from there. The old version's
collections and dead letters are dropped `old_version_grace_seconds` later, once every
reader has refreshed its cached versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from log_follower.dead_letters.port import LetterOwner
from log_follower.decoded import DecodedEvents
from log_follower.follower import Follower, FollowerParts
from read_model.change_feed.port import ChangeFeed
from read_model.document_store.port import (
    Checkpoint,
    DocumentStore,
    RebuildStatus,
)
from read_model.projection_checkpoint import ProjectionCheckpoint
from read_model.projections.base import Projection
from read_model.runner import ProjectionConsumer, physical_collection
from write_model.envelope import LogPosition
from write_model.event_store.port import EventStore
from write_model.registry import EventTypeRegistry

log = logging.getLogger(__name__)

REBUILD_SUFFIX = ":rebuild"


@dataclass(frozen=True)
class ProjectorDependencies:
    events: EventStore
    documents: DocumentStore
    registry: EventTypeRegistry
    feed: ChangeFeed | None
    # The followers' source (this process's shared reader), dead letters and settings.
    parts: FollowerParts
    # How long the old version outlives a switch: longer than readers cache versions.
    old_version_grace_seconds: float = 30.0
    # A rebuild reads on its own (it is far behind the live followers).
    rebuild_parts: FollowerParts | None = field(default=None)
    # The process's projections decode each event once between them.
    decoded: DecodedEvents | None = field(default=None)


async def active_version(documents: DocumentStore, name: str) -> int:
    checkpoint = await documents.load_checkpoint(name)
    return checkpoint.version if checkpoint else 1


def projection_follower(
    deps: ProjectorDependencies, projection: Projection, version: int, *, rebuild: bool = False
) -> Follower:
    """The follower of `projection`'s collections at `version`: the live one, or (`rebuild`)
    the one building a new version under the checkpoint `<name>:rebuild`, which publishes
    nothing (readers see the old version) and files its letters under the new version."""
    consumer = ProjectionConsumer(
        projection,
        deps.documents,
        deps.registry,
        feed=None if rebuild else deps.feed,
        version=version,
        decoded=deps.decoded,
    )
    parts = deps.rebuild_parts or deps.parts if rebuild else deps.parts
    return Follower(
        consumer,
        parts,
        checkpoint_name=projection.name + REBUILD_SUFFIX if rebuild else projection.name,
        owner=LetterOwner(projection.name, version),
        checkpoint=ProjectionCheckpoint(
            deps.documents, version, RebuildStatus.BUILDING if rebuild else None
        ),
    )


def _consumer(follower: Follower) -> ProjectionConsumer:
    consumer = follower.consumer
    assert isinstance(consumer, ProjectionConsumer)
    return consumer


async def run_projection(
    deps: ProjectorDependencies, projection: Projection, stop: asyncio.Event
) -> None:
    """Lead `projection` and follow the log until `stop` is set; stand by while another
    process leads it; lead again if leadership is lost."""
    follower = projection_follower(deps, projection, 1)
    switching = _Switching(deps)

    async def start(follower: Follower) -> None:
        version = await active_version(deps.documents, projection.name)
        fresh = projection_follower(deps, projection, version)
        follower.use(fresh.consumer, fresh.owner, await fresh.position())
        follower.checkpoint = fresh.checkpoint
        switching.switch = None
        await _consumer(follower).ensure_indexes()

    await follower.run(stop, start=start, upkeep=switching.upkeep)


@dataclass
class _Switch:
    """A rebuilt version being caught up to `target`, batch by batch between live ones."""

    builder: Follower
    target: LogPosition


class _Switching:
    """The projector's upkeep between live batches: one batch of a switch in progress; and,
    when maintenance is due, rebuild checks and dropping a retired version."""

    def __init__(self, deps: ProjectorDependencies) -> None:
        self.deps = deps
        self.switch: _Switch | None = None

    async def upkeep(self, follower: Follower, due: bool) -> bool:
        if self.switch is not None:
            await self._advance(follower)
        if due:
            if self.switch is None:
                await self._start_if_rebuilt(follower)
            await self._drop_old_version_if_due(follower)
        return self.switch is not None  # more to do at once

    async def _start_if_rebuilt(self, follower: Follower) -> None:
        name = follower.name
        rebuilt = await self.deps.documents.load_checkpoint(name + REBUILD_SUFFIX)
        if rebuilt is None or rebuilt.rebuild != RebuildStatus.READY:
            return
        projection = _consumer(follower).projection
        builder = projection_follower(self.deps, projection, rebuilt.version, rebuild=True)
        assert isinstance(builder.checkpoint, ProjectionCheckpoint)
        builder.checkpoint.rebuild = RebuildStatus.READY
        self.switch = _Switch(builder, await follower.position())
        log.info("projection %s: catching version %s up to switch to it", name, rebuilt.version)

    async def _advance(self, follower: Follower) -> None:
        assert self.switch is not None
        builder = self.switch.builder
        if await builder.position() < self.switch.target:
            await builder.step()
            return
        await hand_over(self.deps, builder, follower)
        self.switch = None

    async def _drop_old_version_if_due(self, follower: Follower) -> None:
        rebuilt = await self.deps.documents.load_checkpoint(follower.name + REBUILD_SUFFIX)
        if rebuilt is None or rebuilt.rebuild != RebuildStatus.SWITCHED:
            return
        switched_at = rebuilt.updated_at
        if switched_at is not None:
            age = (datetime.now(UTC) - switched_at).total_seconds()
            if age < self.deps.old_version_grace_seconds:
                return
        await retire_old_version(self.deps, _consumer(follower).projection, rebuilt)


async def hand_over(
    deps: ProjectorDependencies, builder: Follower, live: Follower | None = None
) -> None:
    """Point readers at the builder's version (its position becomes the projection's
    checkpoint); `live`, the leading follower, follows on with that version. Called only by
    the process that leads the projection."""
    projection = _consumer(builder).projection
    version = _consumer(builder).version
    position = await builder.position()
    switched = live or projection_follower(deps, projection, version)
    fresh = projection_follower(deps, projection, version)
    switched.use(fresh.consumer, fresh.owner, position)
    switched.checkpoint = fresh.checkpoint
    await switched.save(position)
    assert isinstance(builder.checkpoint, ProjectionCheckpoint)
    builder.checkpoint.rebuild = RebuildStatus.SWITCHED
    await builder.save(position)
    log.info("projection %s switched to version %s", projection.name, version)


async def retire_old_version(
    deps: ProjectorDependencies, projection: Projection, rebuilt: Checkpoint
) -> None:
    """Drop the collections and dead letters of the version before `rebuilt`'s."""
    old_version = rebuilt.version - 1
    for logical in projection.collections:
        await deps.documents.drop_collection(physical_collection(logical, old_version))
    await deps.parts.dead_letters.remove_owner(LetterOwner(projection.name, old_version))
    await deps.documents.save_checkpoint(replace(rebuilt, rebuild=RebuildStatus.RETIRED))
    log.info("projection %s: dropped version %s", projection.name, old_version)


async def rebuild_projection(
    deps: ProjectorDependencies,
    projection: Projection,
    progress: Callable[[LogPosition, LogPosition], None] = lambda done, head: None,
    take_over_seconds: float = 2.0,
) -> int:
    """Build a new version of `projection` from position zero; returns the new version.
    Readers keep the old version until the new one has caught up and is switched to.

    The new version's collections are written batch by batch like the live projection's
    (guarded bulk writes of at most `batch_size` events' documents), so memory stays bounded
    whatever the number of documents. Its dead letters are filed under the new version."""
    current = await active_version(deps.documents, projection.name)
    new_version = current + 1
    builder = projection_follower(deps, projection, new_version, rebuild=True)
    for logical in projection.collections:
        await deps.documents.drop_collection(physical_collection(logical, new_version))
    await deps.parts.dead_letters.remove_owner(builder.owner)
    await builder.save(LogPosition.start())
    await _consumer(builder).ensure_indexes()
    head = await deps.events.head_position()
    while True:
        result = await builder.step()
        done = await builder.position()
        progress(done, max(head, done))
        if done >= head or result.events_read == 0:
            break
    assert isinstance(builder.checkpoint, ProjectionCheckpoint)
    builder.checkpoint.rebuild = RebuildStatus.READY
    await builder.save(await builder.position())
    # A leading projector switches between its batches; when none runs, do it here.
    async with contextlib.AsyncExitStack() as leading:
        try:
            async with asyncio.timeout(take_over_seconds):
                await leading.enter_async_context(deps.parts.source.lead(projection.name))
        except TimeoutError:
            log.info(
                "projection %s: the leading projector switches to version %s",
                projection.name,
                new_version,
            )
            return new_version
        rebuilt = await deps.documents.load_checkpoint(builder.checkpoint_name)
        if rebuilt is not None and rebuilt.rebuild == RebuildStatus.READY:
            # Nobody else projects meanwhile: catch up to the head as it is now and switch;
            # the next leading projector drops the old version after the grace period.
            target = await deps.events.head_position()
            while await builder.position() < target:
                if not (await builder.step()).events_read:
                    break
            await hand_over(deps, builder)
    return new_version
