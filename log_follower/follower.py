"""The follower: the one loop that follows the log for a consumer (log_follower/consumer.py).

While this process leads the follower (`Source.lead`; another process stands by hot and takes
over when this one dies), it reads gap-free batches after its checkpoint, hands each batch to
the consumer, then saves the checkpoint. A batch is done whole before the checkpoint moves, so
a crash re-reads it and the consumer, which does nothing twice, finishes what was begun.

Keys fail alone. The keys a consumer returns as failed are handed again, alone, up to
`max_attempts` tries in all with backoff; a key that still fails has its events from the
failing one on parked as dead letters, and every later event of that key is parked behind
them, so the key keeps its order while the others flow and the checkpoint moves on. An
outage (the consumer's `is_outage`) is no fault of a key: the batch fails and is read again
after a backoff, and nothing is parked. An operator's `retryDeadLetter` marks a key; the
leading process hands the key's parked events to the consumer again between batches, at
least every `maintenance_seconds` however busy the log: handled, the letters go and the key
flows again; failed, the letters left record why.

The leader saves its checkpoint and reports its status at least every `heartbeat_seconds`,
moving or not: the heartbeat that `processes`, `projections` and /readyz judge it by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from log_follower.checkpoint.port import Checkpoint, FollowerState, Progress
from log_follower.consumer import Batch, Consumer, KeyFailure
from log_follower.dead_letters.port import PARKED_BEHIND, DeadLetter, DeadLetters, LetterOwner
from log_follower.leader_lock.leading import (
    FIRST_RETRY_SECONDS,
    MAX_RETRY_SECONDS,
    lead_until_stopped,
    sleep_or_stop,
    wait_for_append_or_stop,
)
from log_follower.source.port import Source
from log_follower.status.port import FollowerReport, StatusBoard
from write_model import backoff
from write_model.envelope import LogPosition, RecordedEvent

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class FollowerSettings:
    batch_size: int = 500
    poll_seconds: float = 1.0
    heartbeat_seconds: float = 2.0
    max_attempts: int = 4  # tries of a failing key before it is parked
    # Waits between those tries: the one backoff (write_model/backoff.py) from this.
    backoff_seconds: float = 0.1
    concurrency: int = 32  # keys handled at once, for consumers that work per key
    # Retry requests (and a consumer's own upkeep) are looked at least this often.
    maintenance_seconds: float = 1.0

    def key_retry_delay(self, failures: int) -> float:
        """The wait before a failing key's next try, after `failures` failed tries."""
        return backoff.delay(failures, self.backoff_seconds, MAX_RETRY_SECONDS)


@dataclass(frozen=True)
class FollowerParts:
    """What the followers of a process share: the source (one reader for all of them), the
    stores in the event store's database, the settings."""

    source: Source
    checkpoint: Checkpoint
    dead_letters: DeadLetters
    status: StatusBoard | None = None
    settings: FollowerSettings = field(default_factory=FollowerSettings)
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class StepResult:
    events_read: int = 0
    events_handled: int = 0  # handed to the consumer and not parked
    events_parked: int = 0
    position: LogPosition | None = None


# Upkeep a consumer's process runs between batches while it leads (the projector's rebuild
# switch): `due` says maintenance is due (at least every `maintenance_seconds`, and whenever
# the log is quiet). It may replace the follower's consumer (`Follower.use`). Returns True
# when it has more to do at once (the follower reads on without waiting).
Upkeep = Callable[["Follower", bool], Awaitable[bool]]


class Follower:
    """One consumer following the log. `checkpoint_name` defaults to the consumer's name;
    `owner`: whose dead letters it parks and retries (a projection's collection version)."""

    def __init__(
        self,
        consumer: Consumer,
        parts: FollowerParts,
        *,
        checkpoint_name: str | None = None,
        owner: LetterOwner | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.consumer = consumer
        self.parts = parts
        self.settings = parts.settings
        self.checkpoint_name = checkpoint_name or consumer.name
        self.owner = owner or LetterOwner(consumer.name)
        self.checkpoint = checkpoint or parts.checkpoint
        self.state = FollowerState.CATCHING_UP
        self.last_error: str | None = None
        self.saved_at = -float("inf")  # time.monotonic() of the last checkpoint save
        self.reported_at = -float("inf")  # and of the last status report
        self.leader_since: datetime | None = None
        # The checkpoint as last read or saved: while leading, this follower is its only
        # writer, so it is read once, not once per batch.
        self._position: LogPosition | None = None
        # Keys with letters, as the store has them: re-read after a failed batch, since what
        # that batch would have parked may not have been recorded.
        self._parked: set[str] | None = None
        self._maintained_at = -float("inf")

    @property
    def name(self) -> str:
        return self.consumer.name

    def use(self, consumer: Consumer, owner: LetterOwner, position: LogPosition) -> None:
        """Follow on with another consumer from `position` (a projection switching to its
        rebuilt version): its letters are `owner`'s."""
        self.consumer = consumer
        self.owner = owner
        self._position = position
        self._parked = None

    # ----------------------------------------------------------- checkpoint

    async def position(self) -> LogPosition:
        if self._position is None:
            self._position = await self.checkpoint.load(self.checkpoint_name) or LogPosition.start()
        return self._position

    async def save(self, position: LogPosition) -> None:
        await self.checkpoint.save(
            self.checkpoint_name, Progress(position, self.state, self.last_error)
        )
        self._position = position
        self.saved_at = time.monotonic()

    async def report(self, *, leading: bool = True) -> None:
        board = self.parts.status
        if board is None or self.leader_since is None:
            return
        self.reported_at = time.monotonic()
        now = self.parts.clock()
        await board.report(
            FollowerReport(
                follower=self.checkpoint_name,
                kind=self.consumer.kind,
                leader=this_process(),
                leader_since=self.leader_since,
                heartbeat_at=now,
                position=await self.position(),
                state=self.state,
                last_error=self.last_error,
                leading=leading,
            )
        )

    # ---------------------------------------------------------------- batch

    async def step(self) -> StepResult:
        """Follow the next batch of the log (events_read 0: nothing new). An outage, or an
        error outside any key, propagates: the batch is read again next time."""
        try:
            return await self._step()
        except BaseException:
            self._parked = None
            raise

    async def _step(self) -> StepResult:
        if self._parked is None:
            self._parked = await self.parts.dead_letters.parked_keys(self.owner)
        after = await self.position()
        read = await self.parts.source.read(after, self.settings.batch_size)
        result = StepResult(events_read=len(read))
        if not read:
            return result
        end = read[-1].log_position
        handed: list[tuple[str, RecordedEvent]] = []
        letters: list[DeadLetter] = []
        for event in read:
            key = self.consumer.key_of(event)
            if key is None:
                continue
            if key in self._parked:
                letters.append(self._letter(key, event, PARKED_BEHIND, 0))
            else:
                handed.append((key, event))
        failures, attempts = await self._handle_with_retries([e for _, e in handed], end)
        parking = set()
        for failure in failures:
            parking.add(failure.key)
            error = f"{type(failure.error).__name__}: {failure.error}"
            failed_at = failure.event.log_position
            letters.append(self._letter(failure.key, failure.event, error, attempts, failure.error))
            letters.extend(
                self._letter(key, event, PARKED_BEHIND, 0)
                for key, event in handed
                if key == failure.key and event.log_position > failed_at
            )
        if letters:
            # Recorded before the checkpoint moves past them: a crash never loses one.
            await self._park(letters)
            self._parked |= parking
            result.events_parked = len(letters)
        result.events_handled = len(handed) - sum(1 for letter in letters if letter.key in parking)
        full = len(read) >= self.settings.batch_size
        self.state = FollowerState.CATCHING_UP if full else FollowerState.RUNNING
        self.last_error = None
        await self.save(end)
        result.position = end
        return result

    async def _handle_with_retries(
        self, events: Sequence[RecordedEvent], end: LogPosition, *, redelivered: bool = False
    ) -> tuple[list[KeyFailure], int]:
        """Hand `events` to the consumer; hand the keys that failed again, alone (from their
        failing event on), until they succeed or have been tried `max_attempts` times. The
        keys failed at the last try, and the tries. An outage is raised at once."""
        if not events:
            return [], 0
        failures = list(await self.consumer.handle(Batch(events, end, redelivered)))
        attempt = 1
        while True:
            for failure in failures:
                if self.consumer.is_outage(failure.error):
                    raise failure.error
            if not failures or attempt == self.settings.max_attempts:
                break
            for failure in failures:
                self._log_failure(failure, attempt, last=False)
            await self.parts.sleep(self.settings.key_retry_delay(attempt))
            attempt += 1
            again = [
                event
                for failure in failures
                for event in events
                if self.consumer.key_of(event) == failure.key
                and event.log_position >= failure.event.log_position
            ]
            again.sort(key=lambda event: event.log_position)
            failures = list(await self.consumer.handle(Batch(again, end, redelivered=True)))
        for failure in failures:
            self._log_failure(failure, attempt, last=True)
        return failures, attempt

    def _log_failure(self, failure: KeyFailure, attempt: int, *, last: bool) -> None:
        event = failure.event
        log.log(
            logging.ERROR if last else logging.WARNING,
            "%s failed on key %s (event %s, %s #%s) try %s of %s: %s: %s",
            self.name,
            failure.key,
            event.event_id,
            event.stream_id,
            event.version,
            attempt,
            self.settings.max_attempts,
            type(failure.error).__name__,
            failure.error,
            exc_info=failure.error if last else None,
        )

    def _letter(
        self,
        key: str,
        event: RecordedEvent,
        error: str,
        attempts: int,
        cause: BaseException | None = None,
    ) -> DeadLetter:
        return DeadLetter(
            owner=self.owner,
            key=key,
            event_id=str(event.event_id),
            stream_id=event.stream_id,
            stream_version=event.version,
            log_position=event.log_position,
            event_type=event.type,
            error=error,
            attempts=attempts,
            failed_at=self.parts.clock(),
            cause=cause,
        )

    async def _park(self, letters: Sequence[DeadLetter]) -> None:
        await self.parts.dead_letters.park(letters)
        for letter in letters:
            log.error(
                "%s parked event %s (%s #%s, %s) of key %s as dead letter %s: %s",
                self.name,
                letter.event_id,
                letter.stream_id,
                letter.stream_version,
                letter.event_type,
                letter.key,
                letter.id,
                letter.error,
            )

    # --------------------------------------------------------------- retries

    async def retry_requested(self) -> None:
        """Hand the parked events of every key an operator asked to retry to the consumer
        again: here, by the leading process, between batches, so nothing else handles the
        key meanwhile."""
        for key in await self.parts.dead_letters.retry_requested(self.owner):
            await self.retry_key(key)

    async def retry_key(self, key: str) -> bool:
        """True when the key's parked events are all handled now and the key flows again."""
        dead_letters = self.parts.dead_letters
        letters = await dead_letters.of_key(self.owner, key)
        if not letters:
            return True
        events = await self.parts.source.events_of(
            [(letter.stream_id, letter.stream_version) for letter in letters]
        )
        failures, attempts = await self._handle_with_retries(
            events, await self.position(), redelivered=True
        )
        if not failures:
            await dead_letters.remove([letter.id for letter in letters])
            if self._parked is not None:
                self._parked.discard(key)
            log.info(
                "%s retried key %s: its %s parked events are handled", self.name, key, len(events)
            )
            return True
        failed_at = failures[0].event.log_position
        handled = [letter.id for letter in letters if letter.log_position < failed_at]
        if handled:
            await dead_letters.remove(handled)
        error = failures[0].error
        await dead_letters.record_retry_failure(
            self.owner, key, f"{type(error).__name__}: {error}", attempts, self.parts.clock()
        )
        log.error("%s retried key %s: it still fails: %s", self.name, key, error)
        return False

    # ------------------------------------------------------------------ loop

    async def follow(self, stop: asyncio.Event, upkeep: Upkeep | None = None) -> None:
        """Follow batch after batch until `stop`, or until leadership is lost; call this
        while leading (`run` does)."""
        source = self.parts.source
        appended = source.listener()
        self.leader_since = self.parts.clock()
        log.info("leading %s %s", self.consumer.kind, self.checkpoint_name)
        failures = 0
        try:
            await self.report()
            while not stop.is_set():
                if source.lost(self.checkpoint_name):
                    # The lock's connection went, or (Kafka) the group's assignment changed.
                    log.warning(
                        "lost leadership of %s; leading again when it may", self.checkpoint_name
                    )
                    return
                try:
                    result = await self.step()
                    if failures and not result.events_read:
                        # Recovered with nothing new to read: the checkpoint still says FAILED.
                        self.state, self.last_error = FollowerState.RUNNING, None
                        await self.save(await self.position())
                    failures = 0
                    busy = result.events_read >= self.settings.batch_size
                    busy = await self._maintain(busy, upkeep) or busy
                except Exception as error:  # an outage, or a bug outside any key
                    failures += 1
                    self.state = FollowerState.FAILED
                    self.last_error = f"{type(error).__name__}: {error}"
                    delay = backoff.delay(failures, FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS)
                    log.exception(
                        "%s: batch after %s failed (try %s); retrying in %.1fs",
                        self.checkpoint_name,
                        self._position,
                        failures,
                        delay,
                    )
                    await self._report_failing()
                    await sleep_or_stop(stop, delay)
                    continue
                if not busy:
                    await wait_for_append_or_stop(appended, stop, self.settings.poll_seconds)
        finally:
            try:
                await self.report(leading=False)
            except Exception as error:  # the board's store is down: the heartbeat ages out
                log.warning("%s: could not report stopping: %s", self.checkpoint_name, error)

    async def _report_failing(self) -> None:
        """The heartbeat while batches fail (an outage waited out): the status shows this
        process leading, FAILED with the error, not a follower nobody leads. The board may
        live in the store that is down: then the heartbeat ages out, as it must."""
        if time.monotonic() - self.reported_at < self.settings.heartbeat_seconds:
            return
        try:
            await self.report()
        except Exception as error:
            log.warning("%s: could not report its status: %s", self.checkpoint_name, error)

    async def _maintain(self, busy: bool, upkeep: Upkeep | None) -> bool:
        """Heartbeat, retry requests, the upkeep; True when the upkeep has more to do."""
        now = time.monotonic()
        if now - self.saved_at >= self.settings.heartbeat_seconds:
            await self.save(await self.position())
        # Reported apart from saving: a busy follower saves every batch, and reports too.
        if now - self.reported_at >= self.settings.heartbeat_seconds:
            await self.report()
        due = not busy or now - self._maintained_at >= self.settings.maintenance_seconds
        if due:
            self._maintained_at = now
            await self.retry_requested()
        return upkeep is not None and await upkeep(self, due)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        start: Callable[[Follower], Awaitable[None]] | None = None,
        upkeep: Upkeep | None = None,
    ) -> None:
        """Lead and follow until `stop`; stand by while another process leads; lead again
        if leadership is lost. `start` runs each time this process takes the lead."""

        async def lead() -> None:
            self._position = None  # another leader may have moved it meanwhile
            self._parked = None
            if start is not None:
                await start(self)
            await self.follow(stop, upkeep)

        await lead_until_stopped(_Leadership(self.parts.source), self.checkpoint_name, stop, lead)


class _Leadership:
    """The source's leadership as the LeaderLock that `lead_until_stopped` takes."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def hold(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._source.lead(name)

    def lost(self, name: str) -> bool:
        return self._source.lost(name)
