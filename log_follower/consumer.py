"""The consumer port: what a follower hands each batch of the log to.

A consumer implements `Consumer` and gets from the follower (log_follower/follower.py) its
leader lock, checkpoint, retries, dead letters, status and the process's shared reader.
Consumers that work per key (the saga's reactions) build `handle` from `handle_per_key`,
which runs each key's events in log order and different keys concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from write_model.envelope import LogPosition, RecordedEvent

log = logging.getLogger(__name__)


class FollowerKind(StrEnum):
    PROJECTION = "projection"
    SAGA = "saga"
    PARTICIPANT = "participant"
    RELAY = "relay"


@dataclass(frozen=True, slots=True)
class Batch:
    """Events of the log in log order, each of a key the consumer handles and that is not
    parked. `end`: the position the follower's checkpoint moves to once the batch is done
    (the last event read, which may be one the consumer does not handle): a consumer that
    stores its checkpoint with its own effects (the relay, in its Kafka transaction) writes
    this one. `redelivered`: the events were handed before (a retry of failed keys, or of
    parked letters an operator asked to retry), so some may have taken effect already."""

    events: Sequence[RecordedEvent]
    end: LogPosition
    redelivered: bool = False


@dataclass(frozen=True, slots=True)
class KeyFailure:
    """A key whose events failed: at `event` (earlier events of the key in the batch took
    effect; `event` and the key's later ones did not), with `error`."""

    key: str
    event: RecordedEvent
    error: BaseException


class Consumer(Protocol):
    """Events of the log -> effects. Handling an event again must do nothing more (a crash
    re-reads the batch; a retry hands a failed key's events again)."""

    @property
    def name(self) -> str:
        """The follower's name: its checkpoint, leader lock, dead letters and status."""
        ...

    @property
    def kind(self) -> FollowerKind: ...

    def key_of(self, event: RecordedEvent) -> str | None:
        """What the event concerns (a key's events are handled in log order, and a failing
        key is retried and parked alone), or None when the consumer ignores the event."""
        ...

    async def handle(self, batch: Batch) -> Sequence[KeyFailure]:
        """Take effect for the batch's events; return the keys that failed, each with its
        failing event. Raising instead fails the whole batch (it is read again after a
        backoff, nothing is parked): for outages and errors outside any key."""
        ...

    def is_outage(self, error: BaseException) -> bool:
        """True for an error that is no fault of the event (a store, a broker, the network
        out of reach): waited out with backoff, never parked. `is_connection_error` is the
        default; a consumer adds its own kinds (e.g. a Kafka error that is retriable)."""
        ...


def is_connection_error(error: BaseException) -> bool:
    """The outages every store adapter of this project raises: OSError (ConnectionError,
    TimeoutError, the event store's EventStoreUnavailable, the document store's
    DocumentStoreUnavailable)."""
    return isinstance(error, OSError)


PerKeyHandler = Callable[[str, Sequence[RecordedEvent]], Awaitable[None]]


class KeyHandler(Protocol):
    """What a consumer that works per key implements (the orchestrator, a choreography
    participant, a test reaction); `PerKeyConsumer` makes it a Consumer."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> FollowerKind: ...

    def key_of(self, event: RecordedEvent) -> str | None: ...

    async def handle_key(self, key: str, events: Sequence[RecordedEvent]) -> None:
        """Take effect for the key's events of a batch, in log order; raise when that fails."""
        ...


class PerKeyConsumer:
    """A KeyHandler as a Consumer: each key's events in log order, up to `concurrency` keys
    at once; outages as `is_outage` says (connection errors by default)."""

    def __init__(
        self,
        handler: KeyHandler,
        concurrency: int = 32,
        is_outage: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.handler = handler
        self._slots = asyncio.Semaphore(concurrency)
        self._is_outage = is_outage or is_connection_error

    @property
    def name(self) -> str:
        return self.handler.name

    @property
    def kind(self) -> FollowerKind:
        return self.handler.kind

    def key_of(self, event: RecordedEvent) -> str | None:
        return self.handler.key_of(event)

    async def handle(self, batch: Batch) -> Sequence[KeyFailure]:
        return await handle_per_key(
            batch, self.handler.key_of, self.handler.handle_key, self._slots, self._is_outage
        )

    def is_outage(self, error: BaseException) -> bool:
        return self._is_outage(error)


async def handle_per_key(
    batch: Batch,
    key_of: Callable[[RecordedEvent], str | None],
    handler: PerKeyHandler,
    slots: asyncio.Semaphore,
    is_outage: Callable[[BaseException], bool],
) -> list[KeyFailure]:
    """`Consumer.handle` for consumers that work per key: `handler(key, events)` for each
    key's events in log order, keys at once (as many as `slots` lets through). A key whose
    events fail together is tried event by event (a handler does nothing twice) to find the
    failing one (at once when they are redelivered: they failed together before). An outage
    of any key fails the batch."""

    async def one_key(key: str, events: list[RecordedEvent]) -> KeyFailure | None:
        async with slots:
            # Redelivered events failed together before: look for the failing one at once.
            if not (batch.redelivered and len(events) > 1):
                try:
                    await handler(key, events)
                    return None
                except Exception as error:
                    if is_outage(error) or len(events) == 1:
                        return KeyFailure(key, events[0], error)
                    log.warning(
                        "key %s failed on its %s events (%s: %s); trying them one by one",
                        key,
                        len(events),
                        type(error).__name__,
                        error,
                    )
            for event in events:
                try:
                    await handler(key, [event])
                except Exception as error:
                    return KeyFailure(key, event, error)
            return None

    per_key: dict[str, list[RecordedEvent]] = {}
    for event in batch.events:
        key = key_of(event)
        if key is not None:
            per_key.setdefault(key, []).append(event)
    async with asyncio.TaskGroup() as running:
        tasks = [running.create_task(one_key(key, events)) for key, events in per_key.items()]
    failures = [failure for task in tasks if (failure := task.result()) is not None]
    for failure in failures:
        if is_outage(failure.error):
            raise failure.error
    return failures
