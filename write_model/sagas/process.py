"""The subscriber loop of the saga process (`orders saga`, or a task of `orders dev`): lead
through the leader lock (another process stands by hot and takes over when this one dies),
follow the log from the subscriber's checkpoint with the event store's gap-free reading, hand
each batch to a `Reaction`, then save the checkpoint.

A reaction (the fulfillment orchestrator; each choreography participant) says which events
concern it and under which key (the saga, the order): the loop handles each key's events in
log order and different keys at once, within `concurrency`. A batch is handled whole before
the checkpoint moves, so a crash re-reads it and the reaction, which does nothing twice,
finishes what was begun.

Keys fail alone. A key whose reaction raises (a bug, a poison event, a compensation a
provider refuses) is tried `max_attempts` times with backoff, then its events from the
failing one on are parked as dead letters (write_model/sagas/dead_letters/), and every later
event of that key is parked behind them, so the key keeps its order while the others flow
and the checkpoint moves on. An outage (a store out of reach: `is_outage`) is no fault of
a key: the batch fails and is read again later, and nothing is parked. An operator's
`retryDeadLetter` marks a key; the leading process hands the key's parked events to the
reaction again between batches (at least every `maintenance_seconds`, however busy the
log): done, the letters go and the key flows again; failed, the letters record why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from log_follower.append_signal.port import AppendListener, AppendSignal
from log_follower.leader_lock.leading import (
    lead_until_stopped,
    sleep_or_stop,
    wait_for_append_or_stop,
)
from log_follower.leader_lock.port import LeaderLock
from write_model.envelope import LogPosition, RecordedEvent
from write_model.event_store.port import EventStore
from write_model.sagas.checkpoints.port import SubscriberCheckpoints
from write_model.sagas.dead_letters.port import PARKED_BEHIND, SagaDeadLetters, SagaLetter

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


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SubscriberDependencies:
    events: EventStore
    checkpoints: SubscriberCheckpoints
    dead_letters: SagaDeadLetters
    signal: AppendSignal
    lock: LeaderLock
    reaction: Reaction
    concurrency: int = 32
    batch_size: int = 500
    poll_seconds: float = 1.0
    max_attempts: int = 4  # tries of a key's failing event before it is parked
    backoff_seconds: float = 0.1  # first wait between those tries; doubled each time
    # Retry requests are looked at least this often, even under load.
    maintenance_seconds: float = 1.0
    clock: Callable[[], datetime] = utc_now  # when a letter failed


def is_outage(error: BaseException) -> bool:
    """A store or the network out of reach (the event store's EventStoreUnavailable, the
    saga's tables', which translate a lost connection to it, a timeout): not the fault of
    the event being handled, so it is never parked."""
    return isinstance(error, OSError)  # ConnectionError and TimeoutError are OSErrors


async def react_to(
    reaction: Reaction, events: Sequence[RecordedEvent], slots: asyncio.Semaphore
) -> None:
    """Hand a batch of the log to `reaction`: each key's events in log order, keys at once
    (as many as `slots` lets through). Any failure fails the whole batch: the loop below
    isolates keys; this is for callers that drive a reaction directly (tests, tools)."""

    async def react(key: str, of_key: list[RecordedEvent]) -> None:
        async with slots:
            await reaction.react(key, of_key)

    async with asyncio.TaskGroup() as running:
        for key, of_key in _per_key(reaction, events).items():
            running.create_task(react(key, of_key))


def _per_key(reaction: Reaction, events: Sequence[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    per_key: dict[str, list[RecordedEvent]] = {}
    for recorded in events:
        key = reaction.key_of(recorded)
        if key is not None:
            per_key.setdefault(key, []).append(recorded)
    return per_key


async def run_subscriber(deps: SubscriberDependencies, stop: asyncio.Event) -> None:
    """Lead the reaction and follow the log until `stop`; stand by while another process
    leads; an outage (at takeover, or of the lock's connection) is retried with backoff
    (log_follower/leader_lock/leading.py, as for the projections)."""
    appended = deps.signal.listener()
    subscriber = deps.reaction.subscriber
    await lead_until_stopped(
        deps.lock, subscriber, stop, lambda: _Follower(deps, stop, appended).follow()
    )


class _Follower:
    def __init__(
        self, deps: SubscriberDependencies, stop: asyncio.Event, appended: AppendListener
    ) -> None:
        self.deps = deps
        self.stop = stop
        self.appended = appended
        self.subscriber = deps.reaction.subscriber
        self.slots = asyncio.Semaphore(deps.concurrency)
        # Keys with letters, as the store has them: re-read after a failed batch, since what
        # that batch would have parked may not have been recorded.
        self.parked: set[str] | None = None
        self._maintained_at = -float("inf")

    async def follow(self) -> None:
        deps = self.deps
        log.info("saga: leading %s", self.subscriber)
        position = await deps.checkpoints.load(self.subscriber) or LogPosition.start()
        failures = 0
        while not self.stop.is_set():
            if deps.lock.lost(self.subscriber):
                log.error("saga: lost leadership of %s; standing by again", self.subscriber)
                return
            try:
                if self.parked is None:
                    self.parked = await deps.dead_letters.parked_keys(self.subscriber)
                events = await deps.events.read_all(position, deps.batch_size)
                if events:
                    await self._handle(events)
                    position = events[-1].log_position
                    await deps.checkpoints.save(self.subscriber, position)
                busy = len(events) >= deps.batch_size
                await self._maintain(busy)
                failures = 0
            except Exception:  # an outage, or a bug outside any key: the batch is read again
                self.parked = None
                failures += 1
                delay = min(0.1 * 2**failures, 5.0)
                log.exception(
                    "saga: %s's batch after %s failed (try %s); retrying in %.1fs",
                    self.subscriber,
                    position,
                    failures,
                    delay,
                )
                await sleep_or_stop(self.stop, delay)
                continue
            if not busy:
                await wait_for_append_or_stop(self.appended, self.stop, deps.poll_seconds)

    # ------------------------------------------------------------- batches

    async def _handle(self, events: Sequence[RecordedEvent]) -> None:
        async def handle(key: str, of_key: list[RecordedEvent]) -> None:
            async with self.slots:
                letters = await self._react_or_letters(key, of_key)
            if letters:
                await self._park(key, letters)

        async with asyncio.TaskGroup() as running:
            for key, of_key in _per_key(self.deps.reaction, events).items():
                running.create_task(handle(key, of_key))

    async def _react_or_letters(
        self, key: str, events: Sequence[RecordedEvent]
    ) -> list[SagaLetter]:
        """React to the key's events; what is to be parked when that keeps failing."""
        assert self.parked is not None
        if key in self.parked:
            return [self._letter(key, event, PARKED_BEHIND, 0) for event in events]
        if len(events) > 1:
            try:
                await self.deps.reaction.react(key, events)
                return []
            except Exception as error:
                if is_outage(error):
                    raise
                log.warning(
                    "saga: %s failed on key %s (%s events: %s: %s); trying them one by one",
                    self.subscriber,
                    key,
                    len(events),
                    type(error).__name__,
                    error,
                )
        for index, event in enumerate(events):
            failed = await self._with_retries(key, [event])
            if failed is not None:
                error, attempts = failed
                return [
                    self._letter(key, event, error, attempts),
                    *(self._letter(key, later, PARKED_BEHIND, 0) for later in events[index + 1 :]),
                ]
        return []

    async def _with_retries(
        self, key: str, events: Sequence[RecordedEvent]
    ) -> tuple[str, int] | None:
        """None when the reaction handled `events` within `max_attempts` tries; else the
        last error and the tries. An outage is raised at once."""
        delay = self.deps.backoff_seconds
        for attempt in range(1, self.deps.max_attempts + 1):
            try:
                await self.deps.reaction.react(key, events)
                return None
            except Exception as error:
                if is_outage(error):
                    raise
                last = attempt == self.deps.max_attempts
                log.warning(
                    "saga: %s failed on key %s (event %s) try %s of %s: %s: %s",
                    self.subscriber,
                    key,
                    events[0].event_id,
                    attempt,
                    self.deps.max_attempts,
                    type(error).__name__,
                    error,
                    exc_info=error if last else None,
                )
                if last:
                    return f"{type(error).__name__}: {error}", attempt
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _letter(self, key: str, event: RecordedEvent, error: str, attempts: int) -> SagaLetter:
        return SagaLetter(
            subscriber=self.subscriber,
            key=key,
            event_id=str(event.event_id),
            stream_id=event.stream_id,
            stream_version=event.version,
            log_position=event.log_position,
            event_type=event.type,
            error=error,
            attempts=attempts,
            failed_at=self.deps.clock(),
        )

    async def _park(self, key: str, letters: Sequence[SagaLetter]) -> None:
        # Recorded before the checkpoint moves past them: a crash never loses one.
        await self.deps.dead_letters.park(letters)
        assert self.parked is not None
        self.parked.add(key)
        for letter in letters:
            log.error(
                "saga: %s parked event %s (%s #%s, %s) of key %s as dead letter %s: %s",
                self.subscriber,
                letter.event_id,
                letter.stream_id,
                letter.stream_version,
                letter.event_type,
                key,
                letter.id,
                letter.error,
            )

    # ------------------------------------------------------------- retries

    async def _maintain(self, busy: bool) -> None:
        now = time.monotonic()
        if busy and now - self._maintained_at < self.deps.maintenance_seconds:
            return
        self._maintained_at = now
        for key in await self.deps.dead_letters.retry_requested(self.subscriber):
            await self._retry(key)

    async def _retry(self, key: str) -> None:
        """Hand the key's parked events to the reaction again (an operator asked): here, by
        the leading process, between batches, so nothing else handles the key meanwhile."""
        dead_letters = self.deps.dead_letters
        letters = await dead_letters.of_key(self.subscriber, key)
        if not letters:
            return
        events = await self._parked_events(letters)
        failed = await self._with_retries(key, events) if events else None
        if failed is None:
            await dead_letters.remove([letter.id for letter in letters])
            if self.parked is not None:
                self.parked.discard(key)
            log.info(
                "saga: %s retried key %s: its %s parked events are handled",
                self.subscriber,
                key,
                len(events),
            )
            return
        error, attempts = failed
        await dead_letters.record_retry_failure(
            self.subscriber, key, error, attempts, self.deps.clock()
        )
        log.error("saga: %s retried key %s: it still fails: %s", self.subscriber, key, error)

    async def _parked_events(self, letters: Sequence[SagaLetter]) -> list[RecordedEvent]:
        """The letters' events as the event store has them, in log order."""
        wanted = {letter.event_id for letter in letters}
        by_stream: dict[str, list[int]] = {}
        for letter in letters:
            by_stream.setdefault(letter.stream_id, []).append(letter.stream_version)
        found: list[RecordedEvent] = []
        for stream_id, versions in by_stream.items():
            read = await self.deps.events.read_stream(stream_id, min(versions), max(versions))
            found.extend(event for event in read if str(event.event_id) in wanted)
        return sorted(found, key=lambda event: (event.transaction_id, event.position))
