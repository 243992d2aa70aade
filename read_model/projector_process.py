"""The projector process's loop: lead a projection (or stand by), follow the log, sleep
when it is quiet, act on dead-letter retry requests, and switch to a rebuilt version.

Rebuild: `rebuild_projection` builds version n+1 from position zero under the checkpoint
`<name>:rebuild`, leaving version n serving readers. When it has caught up it marks itself
ready; the leading projector (or the rebuild itself, when no projector runs) catches the
new version up to the head, moves the `<name>` checkpoint to it, which switches readers,
and drops the old collections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from read_model.append_signal.port import AppendListener, AppendSignal
from read_model.change_feed.port import ChangeFeed
from read_model.dead_letters import DeadLetters
from read_model.document_store.port import (
    Checkpoint,
    DocumentStore,
    ProjectionState,
    RebuildStatus,
)
from read_model.leader_lock.port import LeaderLock
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


async def active_version(documents: DocumentStore, name: str) -> int:
    checkpoint = await documents.load_checkpoint(name)
    return checkpoint.version if checkpoint else 1


def make_runner(
    deps: ProjectorDependencies, projection: Projection, version: int, checkpoint_name: str
) -> ProjectionRunner:
    return ProjectionRunner(
        projection,
        deps.events,
        deps.documents,
        deps.registry,
        feed=deps.feed,
        version=version,
        checkpoint_name=checkpoint_name,
        settings=deps.settings,
    )


async def run_projection(
    deps: ProjectorDependencies, projection: Projection, stop: asyncio.Event
) -> None:
    """Lead `projection` and follow the log until `stop` is set; stand by while another
    process leads it; lead again if leadership is lost."""
    appended = deps.signal.listener()
    while not stop.is_set():
        async with deps.lock.hold(projection.name):
            version = await active_version(deps.documents, projection.name)
            runner = make_runner(deps, projection, version, projection.name)
            await runner.ensure_indexes()
            await _follow(deps, runner, stop, appended)


async def _follow(
    deps: ProjectorDependencies,
    runner: ProjectionRunner,
    stop: asyncio.Event,
    appended: AppendListener,
) -> None:
    name = runner.projection.name
    failures = 0
    while not stop.is_set():
        if deps.lock.lost(name):
            log.error("lost leadership of projection %s; standing by again", name)
            return
        try:
            result = await runner.run_batch()
            if failures and not result.events_read:
                # Recovered with nothing new to read: the checkpoint still says FAILED.
                runner.state, runner.last_error = ProjectionState.RUNNING, None
                await runner.save_checkpoint(await runner.position())
            failures = 0
            if result.events_read >= deps.settings.batch_size:
                continue
            await _retry_requested(runner, deps.documents)
            switched = await _switch_if_rebuilt(deps, runner)
            if switched is not None:
                runner = switched
                continue
        except Exception as error:  # storage down or a bug outside any one event: back off
            failures += 1
            runner.state = ProjectionState.FAILED
            runner.last_error = f"{type(error).__name__}: {error}"
            delay = min(0.1 * 2**failures, 5.0)
            log.exception(
                "projection %s batch failed (try %s); retrying in %.1fs", name, failures, delay
            )
            await _sleep_or_stop(stop, delay)
            continue
        await _wait(appended, stop, deps.poll_seconds)


async def _retry_requested(runner: ProjectionRunner, documents: DocumentStore) -> None:
    """Dead letters an operator asked to retry (`retryDeadLetter`) are re-applied here, by
    the leading projector, so no other process writes these documents meanwhile."""
    dead_letters = DeadLetters(documents)
    for stream_id in await dead_letters.retry_requested(runner.checkpoint_name):
        applied = await runner.retry_parked(stream_id)
        if applied == 0:
            await dead_letters.clear_retry_request(runner.checkpoint_name, stream_id)
        log.info(
            "retried parked stream %s for %s: %s events applied",
            stream_id,
            runner.checkpoint_name,
            applied,
        )


async def _switch_if_rebuilt(
    deps: ProjectorDependencies, runner: ProjectionRunner
) -> ProjectionRunner | None:
    rebuilt = await deps.documents.load_checkpoint(runner.projection.name + REBUILD_SUFFIX)
    if rebuilt is None or rebuilt.rebuild != RebuildStatus.READY:
        return None
    return await switch_to_rebuilt(deps, runner.projection, rebuilt)


async def switch_to_rebuilt(
    deps: ProjectorDependencies, projection: Projection, rebuilt: Checkpoint
) -> ProjectionRunner:
    """Catch the rebuilt version up, point readers at it, drop the old collections.
    Called only by the process that leads the projection."""
    new_version = rebuilt.version
    builder = make_runner(deps, projection, new_version, rebuilt.name)
    while (await builder.run_batch()).events_read:
        pass
    old_version = await active_version(deps.documents, projection.name)
    live = make_runner(deps, projection, new_version, projection.name)
    live.state = ProjectionState.RUNNING
    await live.save_checkpoint(await builder.position())
    await deps.documents.save_checkpoint(
        Checkpoint(
            rebuilt.name,
            await builder.position(),
            version=new_version,
            state=ProjectionState.STOPPED,
            rebuild=RebuildStatus.SWITCHED,
        )
    )
    if old_version != new_version:
        for logical in projection.collections:
            await deps.documents.drop_collection(physical_collection(logical, old_version))
    log.info("projection %s switched to version %s", projection.name, new_version)
    return live


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
    whatever the number of documents."""
    current = await active_version(deps.documents, projection.name)
    new_version = current + 1
    name = projection.name + REBUILD_SUFFIX
    for logical in projection.collections:
        await deps.documents.drop_collection(physical_collection(logical, new_version))
    await DeadLetters(deps.documents).remove_subscriber(name)
    await deps.documents.save_checkpoint(
        Checkpoint(
            name,
            LogPosition.start(),
            version=new_version,
            state=ProjectionState.REBUILDING,
            rebuild=RebuildStatus.BUILDING,
        )
    )
    # No change feed: readers still see the old version, so nothing they watch changed.
    builder = ProjectionRunner(
        projection,
        deps.events,
        deps.documents,
        deps.registry,
        version=new_version,
        checkpoint_name=name,
        settings=deps.settings,
    )
    await builder.ensure_indexes()
    builder.state = ProjectionState.REBUILDING
    while True:
        result = await builder.run_batch()
        progress(await builder.position(), await deps.events.head_position())
        if result.events_read < deps.settings.batch_size:
            break
    await builder.save_checkpoint(await builder.position(), RebuildStatus.READY)
    # A leading projector switches at its next quiet moment; when none runs, do it here.
    async with contextlib.AsyncExitStack() as leading:
        try:
            async with asyncio.timeout(take_over_seconds):
                await leading.enter_async_context(deps.lock.hold(projection.name))
        except TimeoutError:
            log.info(
                "projection %s: the leading projector switches to version %s when quiet",
                projection.name,
                new_version,
            )
            return new_version
        rebuilt = await deps.documents.load_checkpoint(name)
        if rebuilt is not None and rebuilt.rebuild == RebuildStatus.READY:
            await switch_to_rebuilt(deps, projection, rebuilt)
    return new_version


async def _wait(appended: AppendListener, stop: asyncio.Event, poll_seconds: float) -> None:
    waiter = asyncio.create_task(appended.wait(poll_seconds))
    stopper = asyncio.create_task(stop.wait())
    _, pending = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return
