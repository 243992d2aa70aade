"""The projector process's loop: lead a projection (or stand by), follow the log, sleep
when it is quiet, and between batches (at least every `maintenance_seconds`, however busy
the log) act on dead-letter retry requests and move a rebuild towards its switch.

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
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from log_follower.append_signal.port import AppendListener, AppendSignal
from read_model.change_feed.port import ChangeFeed
from read_model.dead_letters import DeadLetters
from read_model.document_store.port import (
    Checkpoint,
    DocumentStore,
    ProjectionState,
    RebuildStatus,
)
from log_follower.leader_lock.leading import (
    lead_until_stopped,
    sleep_or_stop,
    wait_for_append_or_stop,
)
from log_follower.leader_lock.port import LeaderLock
from read_model.projections.base import Projection
from read_model.runner import ProjectionRunner, RunnerSettings, physical_collection
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
    signal: AppendSignal
    lock: LeaderLock
    settings: RunnerSettings = field(default_factory=RunnerSettings)
    poll_seconds: float = 1.0
    # Retry requests and rebuild switches are looked at least this often, even under load.
    maintenance_seconds: float = 1.0
    # How long the old version outlives a switch: longer than readers cache versions.
    old_version_grace_seconds: float = 30.0
    # A leader saves its checkpoint at least this often, moving or not: its heartbeat.
    heartbeat_seconds: float = 2.0


async def active_version(documents: DocumentStore, name: str) -> int:
    checkpoint = await documents.load_checkpoint(name)
    return checkpoint.version if checkpoint else 1


def make_runner(
    deps: ProjectorDependencies, projection: Projection, version: int, *, rebuild: bool = False
) -> ProjectionRunner:
    """The runner of `projection`'s collections at `version`: the live one, or (`rebuild`)
    the one building a new version, which publishes nothing (readers see the old version)."""
    return ProjectionRunner(
        projection,
        deps.events,
        deps.documents,
        deps.registry,
        feed=None if rebuild else deps.feed,
        version=version,
        checkpoint_name=projection.name + REBUILD_SUFFIX if rebuild else projection.name,
        subscriber=projection.name,
        settings=deps.settings,
    )


def lock_name(projection: Projection) -> str:
    return f"projection {projection.name}"


async def run_projection(
    deps: ProjectorDependencies, projection: Projection, stop: asyncio.Event
) -> None:
    """Lead `projection` and follow the log until `stop` is set; stand by while another
    process leads it; lead again if leadership is lost (log_follower/leader_lock/leading.py)."""
    appended = deps.signal.listener()

    async def follow() -> None:
        version = await active_version(deps.documents, projection.name)
        runner = make_runner(deps, projection, version)
        await runner.ensure_indexes()
        await _Follower(deps, runner, stop, appended).follow()

    await lead_until_stopped(deps.lock, lock_name(projection), stop, follow)


@dataclass
class _Switch:
    """A rebuilt version being caught up to `target`, batch by batch between live ones."""

    builder: ProjectionRunner
    target: LogPosition


class _Follower:
    def __init__(
        self,
        deps: ProjectorDependencies,
        runner: ProjectionRunner,
        stop: asyncio.Event,
        appended: AppendListener,
    ) -> None:
        self.deps = deps
        self.runner = runner
        self.stop = stop
        self.appended = appended
        self.switch: _Switch | None = None
        self.dead_letters = DeadLetters(deps.documents)
        self._maintained_at = -float("inf")

    @property
    def name(self) -> str:
        return self.runner.projection.name

    async def follow(self) -> None:
        failures = 0
        while not self.stop.is_set():
            if self.deps.lock.lost(lock_name(self.runner.projection)):
                log.error("lost leadership of projection %s; standing by again", self.name)
                return
            try:
                result = await self.runner.run_batch()
                if failures and not result.events_read:
                    # Recovered with nothing new to read: the checkpoint still says FAILED.
                    self.runner.state = ProjectionState.RUNNING
                    self.runner.last_error = None
                    await self.runner.save_checkpoint(await self.runner.position())
                failures = 0
                busy = result.events_read >= self.deps.settings.batch_size
                await self._maintain(busy)
                if busy or self.switch is not None:
                    continue
            except Exception as error:  # storage down or a bug outside any event: back off
                failures += 1
                self.runner.state = ProjectionState.FAILED
                self.runner.last_error = f"{type(error).__name__}: {error}"
                delay = min(0.1 * 2**failures, 5.0)
                log.exception(
                    "projection %s batch failed (try %s); retrying in %.1fs",
                    self.name,
                    failures,
                    delay,
                )
                await sleep_or_stop(self.stop, delay)
                continue
            await wait_for_append_or_stop(self.appended, self.stop, self.deps.poll_seconds)

    async def _maintain(self, busy: bool) -> None:
        """Between live batches: one batch of a switch in progress; and, when the log is
        quiet or `maintenance_seconds` passed, retry requests and rebuild checks."""
        if self.switch is not None:
            await self._advance_switch()
        now = time.monotonic()
        if now - self.runner.saved_at >= self.deps.heartbeat_seconds:
            await self.runner.save_checkpoint(await self.runner.position())
        if busy and now - self._maintained_at < self.deps.maintenance_seconds:
            return
        self._maintained_at = now
        await self._retry_requested()
        if self.switch is None:
            await self._start_switch_if_rebuilt()
        await self._drop_old_version_if_due()

    async def _retry_requested(self) -> None:
        """Dead letters an operator asked to retry (`retryDeadLetter`) are re-applied here,
        by the leading projector, so no other process writes these documents meanwhile."""
        runner = self.runner
        for stream_id in await self.dead_letters.retry_requested(runner.subscriber, runner.version):
            retried = await runner.retry_parked(stream_id)
            if not retried.done:
                await self.dead_letters.clear_retry_request(
                    runner.subscriber, runner.version, stream_id
                )
            log.info(
                "retried parked stream %s of projection %s: %s events applied%s",
                stream_id,
                self.name,
                retried.applied,
                "" if retried.done else "; it still fails",
            )

    async def _start_switch_if_rebuilt(self) -> None:
        rebuilt = await self.deps.documents.load_checkpoint(self.name + REBUILD_SUFFIX)
        if rebuilt is None or rebuilt.rebuild != RebuildStatus.READY:
            return
        projection = self.runner.projection
        builder = make_runner(self.deps, projection, rebuilt.version, rebuild=True)
        builder.state = ProjectionState.REBUILDING
        self.switch = _Switch(builder, await self.runner.position())
        log.info(
            "projection %s: catching version %s up to switch to it", self.name, rebuilt.version
        )

    async def _advance_switch(self) -> None:
        assert self.switch is not None
        builder = self.switch.builder
        if await builder.position() < self.switch.target:
            await builder.run_batch()
            return
        self.runner = await hand_over(self.deps, builder)
        self.switch = None

    async def _drop_old_version_if_due(self) -> None:
        rebuilt = await self.deps.documents.load_checkpoint(self.name + REBUILD_SUFFIX)
        if rebuilt is None or rebuilt.rebuild != RebuildStatus.SWITCHED:
            return
        switched_at = rebuilt.updated_at
        if switched_at is not None:
            age = (datetime.now(UTC) - switched_at).total_seconds()
            if age < self.deps.old_version_grace_seconds:
                return
        await retire_old_version(self.deps, self.runner.projection, rebuilt)


async def hand_over(deps: ProjectorDependencies, builder: ProjectionRunner) -> ProjectionRunner:
    """Point readers at the builder's version (its position becomes the projection's
    checkpoint) and return the live runner of that version. Called only by the process
    that leads the projection."""
    projection = builder.projection
    position = await builder.position()
    live = make_runner(deps, projection, builder.version)
    live.state = ProjectionState.RUNNING
    await live.save_checkpoint(position)
    builder.state = ProjectionState.STOPPED
    await builder.save_checkpoint(position, RebuildStatus.SWITCHED)
    log.info("projection %s switched to version %s", projection.name, builder.version)
    return live


async def retire_old_version(
    deps: ProjectorDependencies, projection: Projection, rebuilt: Checkpoint
) -> None:
    """Drop the collections and dead letters of the version before `rebuilt`'s."""
    old_version = rebuilt.version - 1
    for logical in projection.collections:
        await deps.documents.drop_collection(physical_collection(logical, old_version))
    await DeadLetters(deps.documents).remove_version(projection.name, old_version)
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
    builder = make_runner(deps, projection, new_version, rebuild=True)
    for logical in projection.collections:
        await deps.documents.drop_collection(physical_collection(logical, new_version))
    await DeadLetters(deps.documents).remove_version(projection.name, new_version)
    builder.state = ProjectionState.REBUILDING
    await builder.save_checkpoint(LogPosition.start(), RebuildStatus.BUILDING)
    await builder.ensure_indexes()
    head = await deps.events.head_position()
    while True:
        result = await builder.run_batch()
        done = await builder.position()
        progress(done, max(head, done))
        if done >= head or result.events_read == 0:
            break
    await builder.save_checkpoint(await builder.position(), RebuildStatus.READY)
    # A leading projector switches between its batches; when none runs, do it here.
    async with contextlib.AsyncExitStack() as leading:
        try:
            async with asyncio.timeout(take_over_seconds):
                await leading.enter_async_context(deps.lock.hold(lock_name(projection)))
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
                if not (await builder.run_batch()).events_read:
                    break
            await hand_over(deps, builder)
    return new_version
