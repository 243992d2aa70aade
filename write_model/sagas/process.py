"""The subscriber loop of the saga process (`orders saga`, or a task of `orders dev`): lead
through the leader lock (another process stands by hot and takes over when this one dies),
follow the log from the subscriber's checkpoint with the event store's gap-free reading, hand
each batch to a `Reaction`, then save the checkpoint.

A reaction (the fulfillment orchestrator; each choreography participant) says which events
concern it and under which key (the saga, the order): the loop handles each key's events in
log order and different keys at once, within `concurrency`. A batch is handled whole before
the checkpoint moves, so a crash re-reads it and the reaction, which does nothing twice,
finishes what was begun."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from read_model.append_signal.port import AppendListener, AppendSignal
from read_model.leader_lock.leading import (
    lead_until_stopped,
    sleep_or_stop,
    wait_for_append_or_stop,
)
from read_model.leader_lock.port import LeaderLock
from write_model.envelope import LogPosition, RecordedEvent
from write_model.event_store.port import EventStore
from write_model.sagas.checkpoints.port import SubscriberCheckpoints

log = logging.getLogger(__name__)


class Reaction(Protocol):
    """Events of the log -> effects, idempotently (handling an event again does nothing)."""

    @property
    def subscriber(self) -> str:
        """The name of its checkpoint and leader lock, e.g. "saga:fulfillment"."""
        ...

    def key_of(self, event: RecordedEvent) -> str | None:
        """What the event concerns (events of one key are handled in log order), or None
        when the reaction ignores it."""
        ...

    async def react(self, key: str, events: Sequence[RecordedEvent]) -> None:
        """Handle the key's events of a batch, in log order."""
        ...


@dataclass(frozen=True)
class SubscriberDependencies:
    events: EventStore
    checkpoints: SubscriberCheckpoints
    signal: AppendSignal
    lock: LeaderLock
    reaction: Reaction
    concurrency: int = 32
    batch_size: int = 500
    poll_seconds: float = 1.0


async def react_to(
    reaction: Reaction, events: Sequence[RecordedEvent], slots: asyncio.Semaphore
) -> None:
    """Hand a batch of the log to `reaction`: each key's events in log order, keys at once
    (as many as `slots` lets through)."""
    per_key: dict[str, list[RecordedEvent]] = {}
    for recorded in events:
        key = reaction.key_of(recorded)
        if key is not None:
            per_key.setdefault(key, []).append(recorded)

    async def react(key: str, of_key: list[RecordedEvent]) -> None:
        async with slots:
            await reaction.react(key, of_key)

    async with asyncio.TaskGroup() as running:
        for key, of_key in per_key.items():
            running.create_task(react(key, of_key))


async def run_subscriber(deps: SubscriberDependencies, stop: asyncio.Event) -> None:
    """Lead the reaction and follow the log until `stop`; stand by while another process
    leads; an outage (at takeover, or of the lock's connection) is retried with backoff
    (read_model/leader_lock/leading.py, as for the projections)."""
    appended = deps.signal.listener()
    subscriber = deps.reaction.subscriber
    await lead_until_stopped(deps.lock, subscriber, stop, lambda: _follow(deps, stop, appended))


async def _follow(
    deps: SubscriberDependencies, stop: asyncio.Event, appended: AppendListener
) -> None:
    subscriber = deps.reaction.subscriber
    log.info("saga: leading %s", subscriber)
    slots = asyncio.Semaphore(deps.concurrency)
    position = await deps.checkpoints.load(subscriber) or LogPosition.start()
    failures = 0
    while not stop.is_set():
        if deps.lock.lost(subscriber):
            log.error("saga: lost leadership of %s; standing by again", subscriber)
            return
        try:
            events = await deps.events.read_all(position, deps.batch_size)
            if events:
                await react_to(deps.reaction, events, slots)
                position = events[-1].log_position
                await deps.checkpoints.save(subscriber, position)
            failures = 0
        except Exception:  # storage down or a bug: the batch is handled again later
            failures += 1
            delay = min(0.1 * 2**failures, 5.0)
            log.exception(
                "saga: %s's batch after %s failed (try %s); retrying in %.1fs",
                subscriber,
                position,
                failures,
                delay,
            )
            await sleep_or_stop(stop, delay)
            continue
        if len(events) < deps.batch_size:
            await wait_for_append_or_stop(appended, stop, deps.poll_seconds)
