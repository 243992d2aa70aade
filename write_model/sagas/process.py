"""The saga process loop (`orders saga`, or a task of `orders dev`): lead through the leader
lock (another process stands by hot and takes over when this one dies), follow the log from
the subscriber checkpoint with the event store's gap-free reading, hand each batch to the
orchestrator, then save the checkpoint. A batch is handled whole before the checkpoint
moves, so a crash re-reads it and the orchestrator, which does nothing twice, finishes what
was begun."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from read_model.append_signal.port import AppendListener, AppendSignal
from read_model.leader_lock.leading import (
    lead_until_stopped,
    sleep_or_stop,
    wait_for_append_or_stop,
)
from read_model.leader_lock.port import LeaderLock
from write_model.envelope import LogPosition
from write_model.event_store.port import EventStore
from write_model.sagas.checkpoints.port import SubscriberCheckpoints
from write_model.sagas.orchestrator import FulfillmentOrchestrator

log = logging.getLogger(__name__)

SUBSCRIBER = "saga:fulfillment"


@dataclass(frozen=True)
class SagaDependencies:
    events: EventStore
    checkpoints: SubscriberCheckpoints
    signal: AppendSignal
    lock: LeaderLock
    orchestrator: FulfillmentOrchestrator
    batch_size: int = 500
    poll_seconds: float = 1.0


async def run_saga(deps: SagaDependencies, stop: asyncio.Event) -> None:
    """Lead the saga and follow the log until `stop`; stand by while another process leads;
    an outage (at takeover, or of the lock's connection) is retried with backoff
    (read_model/leader_lock/leading.py, as for the projections)."""
    appended = deps.signal.listener()
    await lead_until_stopped(deps.lock, SUBSCRIBER, stop, lambda: _follow(deps, stop, appended))


async def _follow(deps: SagaDependencies, stop: asyncio.Event, appended: AppendListener) -> None:
    log.info("saga: leading %s", SUBSCRIBER)
    position = await deps.checkpoints.load(SUBSCRIBER) or LogPosition.start()
    failures = 0
    while not stop.is_set():
        if deps.lock.lost(SUBSCRIBER):
            log.error("saga: lost leadership; standing by again")
            return
        try:
            events = await deps.events.read_all(position, deps.batch_size)
            if events:
                await deps.orchestrator.handle(events)
                position = events[-1].log_position
                await deps.checkpoints.save(SUBSCRIBER, position)
            failures = 0
        except Exception:  # storage down or a bug: the batch is handled again later
            failures += 1
            delay = min(0.1 * 2**failures, 5.0)
            log.exception(
                "saga: batch after %s failed (try %s); retrying in %.1fs",
                position,
                failures,
                delay,
            )
            await sleep_or_stop(stop, delay)
            continue
        if len(events) < deps.batch_size:
            await wait_for_append_or_stop(appended, stop, deps.poll_seconds)
