"""The saga process loop (`orders saga`, or a task of `orders dev`): lead through the leader
lock (another process stands by hot and takes over when this one dies), follow the log from
the subscriber checkpoint with the event store's gap-free reading, hand each batch to the
orchestrator, then save the checkpoint. A batch is handled whole before the checkpoint
moves, so a crash re-reads it and the orchestrator, which does nothing twice, finishes what
was begun."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from read_model.append_signal.port import AppendListener, AppendSignal
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
    an outage (at takeover, or of the lock's connection) is retried with backoff."""
    appended = deps.signal.listener()
    failures = 0
    while not stop.is_set():
        turn = asyncio.create_task(_lead(deps, stop, appended))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({turn, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        try:
            await turn
            failures = 0
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        except Exception as error:
            failures += 1
            delay = min(0.1 * 2**failures, 5.0) * random.uniform(0.5, 1.5)
            log.warning(
                "saga: cannot lead (%s: %s); retrying in %.1fs", type(error).__name__, error, delay
            )
            await _sleep_or_stop(stop, delay)


async def _lead(deps: SagaDependencies, stop: asyncio.Event, appended: AppendListener) -> None:
    async with deps.lock.hold(SUBSCRIBER):
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
                await _sleep_or_stop(stop, delay)
                continue
            if len(events) < deps.batch_size:
                waiting = asyncio.create_task(appended.wait(deps.poll_seconds))
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                stopped.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
