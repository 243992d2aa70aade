"""The follower (log_follower/follower.py) on the in-memory adapters (no I/O), with the
saga's orchestrator and with test consumers that implement only the consumer interface
(a KeyHandler made a Consumer by PerKeyConsumer): a key that keeps failing is parked as dead
letters while the other keys flow, later events of a parked key are parked behind it, an
outage parks nothing and is retried, an operator's retry handles a fixed key or records that
it still fails, and the follower reports its status."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from app.wiring import saga_reactions, simulated_gateways
from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.checkpoint.port import FollowerState
from log_follower.consumer import FollowerKind, KeyHandler, PerKeyConsumer
from log_follower.dead_letters.port import PARKED_BEHIND, DeadLetter, LetterOwner
from log_follower.follower import Follower, FollowerSettings
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from log_follower.source.shared import SharedReader
from log_follower.status.port import FollowerReport
from log_follower.storage import FollowerStores, memory_stores
from sagas import storage
from sagas.orchestrator import (
    FULFILLMENT,
    SUBSCRIBER,
    FulfillmentOrchestrator,
)
from tests.integration.write_side import build_bus, customer_and_product
from tests.projecting import follower_parts
from tests.subscriber_loop import eventually, subscriber_running
from write_model import commands
from write_model.command_context import CommandContext
from write_model.domain.order import Address
from write_model.envelope import EventMetadata, LogPosition, NewEvent, RecordedEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import ANY, EventStoreUnavailable
from write_model.event_types import build_registry

MAX_ATTEMPTS = 3
CONTEXT = CommandContext(correlation_id="saga-dead-letter-test")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")


@dataclass
class Counting:
    """A reaction that counts how often each key was handed to the inner one."""

    inner: KeyHandler
    tries: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def kind(self) -> FollowerKind:
        return self.inner.kind

    def key_of(self, event: RecordedEvent) -> str | None:
        return self.inner.key_of(event)

    async def handle_key(self, key: str, events: Sequence[RecordedEvent]) -> None:
        self.tries[key] += 1
        await self.inner.handle_key(key, events)


@dataclass
class Scripted:
    """A reaction keyed by stream id that records what it handled, in order; a key in
    `broken` raises (a bug), and the next `outages` calls raise an outage."""

    name: str = "saga:scripted"
    kind: FollowerKind = FollowerKind.SAGA
    broken: set[str] = field(default_factory=set)
    outages: int = 0
    handled: list[tuple[str, int]] = field(default_factory=list)
    failures: int = 0
    seconds_per_call: float = 0.0  # a slow reaction keeps the loop busy

    def key_of(self, event: RecordedEvent) -> str | None:
        return event.stream_id

    async def handle_key(self, key: str, events: Sequence[RecordedEvent]) -> None:
        await asyncio.sleep(self.seconds_per_call)
        for event in events:
            if self.outages:
                self.outages -= 1
                raise EventStoreUnavailable("PostgreSQL is unavailable: connection reset")
            if (key, event.version) in self.handled:
                continue  # as a real reaction: nothing twice
            if event.data.get("poison") and key in self.broken:
                self.failures += 1
                raise ValueError(f"cannot use this payload (failure {self.failures})")
            self.handled.append((key, event.version))


@dataclass
class World:
    events: InMemoryEventStore = field(default_factory=InMemoryEventStore)
    saga: FollowerStores = field(default_factory=memory_stores)
    ledger: object = field(default_factory=storage.memory_ledger)

    def deps(self, reaction: KeyHandler, batch_size: int = 500) -> Follower:
        settings = FollowerSettings(
            poll_seconds=0.01,
            batch_size=batch_size,
            max_attempts=MAX_ATTEMPTS,
            backoff_seconds=0.001,
            maintenance_seconds=0.01,
        )
        parts = follower_parts(self.events, settings=settings, dead_letters=self.saga.dead_letters)
        parts = replace(parts, checkpoint=self.saga.checkpoint, status=self.saga.status)
        return Follower(PerKeyConsumer(reaction), parts)

    async def append(self, stream_id: str, *payloads: dict[str, object]) -> None:
        await self.events.append_to_stream(
            stream_id,
            stream_id.split("-")[0],
            ANY,
            [
                NewEvent(
                    uuid.uuid4(),
                    "Noted",
                    dict(payload),
                    EventMetadata("saga-dead-letter-test"),
                    datetime.now(UTC),
                )
                for payload in payloads
            ],
        )

    async def letters(self, subscriber: str, key: str) -> list[DeadLetter]:
        return await self.saga.dead_letters.of_key(LetterOwner(subscriber), key)

    async def caught_up(self, subscriber: str) -> bool:
        checkpoint = await self.saga.checkpoint.load(subscriber)
        return checkpoint is not None and checkpoint >= await self.events.head_position()


def orchestrator(world: World) -> FulfillmentOrchestrator:
    bus, gateways = build_bus(world.events), simulated_gateways(world.ledger)
    [orchestrator] = saga_reactions("orchestration", world.events, build_registry(), bus, gateways)
    assert isinstance(orchestrator, FulfillmentOrchestrator)
    return orchestrator


async def submitted_order(world: World, unique: str) -> str:
    bus = build_bus(world.events)
    await customer_and_product(bus, CONTEXT, unique, price="5.00", stock=10)
    create = commands.CreateOrder(
        order_id=f"o-{unique}",
        customer_id=f"c-{unique}",
        items=(commands.OrderItem(f"p-{unique}", 2),),
        shipping_address=ADDRESS,
    )
    await bus.dispatch(create, CONTEXT)
    await bus.dispatch(commands.SubmitOrder(order_id=f"o-{unique}"), CONTEXT)
    return f"o-{unique}"


async def raw_order_event(world: World, order_id: str, type_name: str) -> None:
    """An order event the saga reacts to, with a payload it cannot use (a poison event)."""
    await world.events.append_to_stream(
        f"Order-{order_id}",
        "Order",
        ANY,
        [
            NewEvent(
                uuid.uuid4(),
                type_name,
                {"subtotal": "not money"},
                EventMetadata("poison"),
                datetime.now(UTC),
            )
        ],
    )


async def test_a_poison_order_is_parked_after_its_tries_while_another_saga_completes(
    unique: str,
) -> None:
    world = World()
    reaction = Counting(orchestrator(world))
    await raw_order_event(world, "o-poison", "OrderSubmitted")
    healthy = await submitted_order(world, unique)

    async with subscriber_running(world.deps(reaction)):
        await eventually(lambda: world.caught_up(SUBSCRIBER))
        saga = await world.events.read_stream(FULFILLMENT.stream_id(healthy))

    assert saga[-1].type == "FulfillmentCompleted"
    [letter] = await world.letters(SUBSCRIBER, "o-poison")
    assert letter.attempts == MAX_ATTEMPTS and reaction.tries["o-poison"] == MAX_ATTEMPTS
    assert letter.stream_id == "Order-o-poison" and letter.event_type == "OrderSubmitted"
    assert letter.error  # the exception, by type and message
    assert await world.saga.dead_letters.parked_keys(LetterOwner(SUBSCRIBER)) == {"o-poison"}


async def test_later_events_of_a_parked_key_are_parked_behind_it_in_order(unique: str) -> None:
    world = World()
    reaction = Counting(orchestrator(world))
    await raw_order_event(world, "o-poison", "OrderSubmitted")

    async with subscriber_running(world.deps(reaction)):
        await eventually(lambda: world.caught_up(SUBSCRIBER))
        await raw_order_event(world, "o-poison", "OrderCancelled")
        healthy = await submitted_order(world, unique)  # after it, other keys still flow
        await eventually(lambda: world.caught_up(SUBSCRIBER))

    letters = await world.letters(SUBSCRIBER, "o-poison")
    assert [(f.event_type, f.attempts, f.error) for f in letters[1:]] == [
        ("OrderCancelled", 0, PARKED_BEHIND)
    ]
    assert [f.event_type for f in letters] == ["OrderSubmitted", "OrderCancelled"]
    assert reaction.tries["o-poison"] == MAX_ATTEMPTS, "the later event was not handled"
    saga = await world.events.read_stream(FULFILLMENT.stream_id(healthy))
    assert saga[-1].type == "FulfillmentCompleted"


async def test_the_events_of_a_key_from_the_failing_one_on_are_parked(unique: str) -> None:
    world = World()
    reaction = Scripted(broken={f"Job-{unique}"})
    await world.append(f"Job-{unique}", {"n": 1}, {"poison": True}, {"n": 3})
    await world.append(f"Job-{unique}-other", {"n": 1})

    async with subscriber_running(world.deps(reaction)):
        await eventually(lambda: world.caught_up(reaction.name))

    assert reaction.handled == [(f"Job-{unique}", 1), (f"Job-{unique}-other", 1)]
    letters = await world.letters(reaction.name, f"Job-{unique}")
    assert [(f.stream_version, f.attempts) for f in letters] == [(2, MAX_ATTEMPTS), (3, 0)]
    # Tried once with the key's three events, then event by event: the second, N times.
    last = MAX_ATTEMPTS + 1
    assert letters[0].error == f"ValueError: cannot use this payload (failure {last})"


async def test_an_outage_parks_nothing_and_the_batch_is_handled_once_it_is_over(
    unique: str,
) -> None:
    world = World()
    # As many outages in a row as a key is tried: it would be parked, were it a bug.
    reaction = Scripted(outages=MAX_ATTEMPTS)
    await world.append(f"Job-{unique}", {"n": 1})

    async with subscriber_running(world.deps(reaction)):
        await eventually(lambda: world.caught_up(reaction.name))

    assert reaction.outages == 0
    assert reaction.handled == [(f"Job-{unique}", 1)]
    assert await world.saga.dead_letters.count() == 0


async def test_a_retried_key_that_was_fixed_is_handled_and_its_letters_go(unique: str) -> None:
    world = World()
    key = f"Job-{unique}"
    reaction = Scripted(broken={key})
    await world.append(key, {"poison": True}, {"n": 2})

    async with subscriber_running(world.deps(reaction)):
        await eventually(lambda: world.caught_up(reaction.name))
        letters = await world.letters(reaction.name, key)
        assert len(letters) == 2 and reaction.handled == []
        reaction.broken.clear()  # the bug is fixed
        assert await world.saga.dead_letters.request_retry(letters[-1].id)
        await eventually(lambda: _no_letters(world, reaction.name, key))
        await world.append(key, {"n": 3})  # the key flows again
        await eventually(lambda: world.caught_up(reaction.name))
        await eventually(lambda: _handled(reaction, 3))

    assert reaction.handled == [(key, 1), (key, 2), (key, 3)]
    assert await world.saga.dead_letters.count() == 0


async def test_a_retry_that_fails_again_records_the_error_and_the_tries(unique: str) -> None:
    world = World()
    key = f"Job-{unique}"
    reaction = Scripted(broken={key})
    await world.append(key, {"poison": True})

    async with subscriber_running(world.deps(reaction)):
        await eventually(lambda: world.caught_up(reaction.name))
        [parked] = await world.letters(reaction.name, key)
        assert await world.saga.dead_letters.request_retry(parked.id)
        await eventually(lambda: _attempts(world, reaction.name, key, 2 * MAX_ATTEMPTS))

    [retried] = await world.letters(reaction.name, key)
    assert retried == replace(
        parked,
        attempts=2 * MAX_ATTEMPTS,
        error=f"ValueError: cannot use this payload (failure {2 * MAX_ATTEMPTS})",
        failed_at=retried.failed_at,
    )
    assert retried.failed_at >= parked.failed_at and not retried.retry_requested
    assert reaction.handled == []


async def test_a_retry_is_acted_on_while_the_log_is_busy(unique: str) -> None:
    world = World()
    key = f"Job-{unique}"
    reaction = Scripted(broken={key}, seconds_per_call=0.005)
    await world.append(key, {"poison": True})

    async with subscriber_running(world.deps(reaction, batch_size=1)):
        [parked] = await eventually(lambda: world.letters(reaction.name, key))
        reaction.broken.clear()
        # A backlog of other keys, a batch of one event each: about 2 s of work.
        for n in range(400):
            await world.append(f"Job-{unique}-{n}", {"n": n})
        assert await world.saga.dead_letters.request_retry(parked.id)
        await eventually(lambda: _no_letters(world, reaction.name, key))
        retried_while_busy = not await world.caught_up(reaction.name)

    assert retried_while_busy, "the retry waited for the log to go quiet"
    assert (key, 1) in reaction.handled


async def _no_letters(world: World, subscriber: str, key: str) -> bool:
    return not await world.letters(subscriber, key)


async def _handled(reaction: Scripted, count: int) -> bool:
    return len(reaction.handled) >= count


async def _attempts(world: World, subscriber: str, key: str, attempts: int) -> bool:
    letters = await world.letters(subscriber, key)
    return bool(letters) and letters[0].attempts == attempts


@dataclass
class CountingSource:
    """The log source, counting the reads that returned events."""

    inner: LogSource
    reads_with_events: int = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def read(self, after: LogPosition, limit: int) -> Sequence[RecordedEvent]:
        events = await self.inner.read(after, limit)
        self.reads_with_events += bool(events)
        return events


async def test_a_new_consumer_gets_lock_checkpoint_status_and_the_shared_reader(
    unique: str,
) -> None:
    """Two consumers that implement the consumer interface alone (a relay-like kind), in
    one process: each leads, keeps its checkpoint and reports its status; the log is read
    once for both."""
    world = World()
    for n in range(3):
        await world.append(f"Job-{unique}-{n}", {"n": 1}, {"n": 2})
    source = CountingSource(LogSource(world.events, InProcessLeaderLock(), InProcessAppendSignal()))
    parts = replace(
        follower_parts(world.events, dead_letters=world.saga.dead_letters),
        source=SharedReader(source),  # type: ignore[arg-type]
        checkpoint=world.saga.checkpoint,
        status=world.saga.status,
        # The log's six events are one full batch: shared (a short one is read by each).
        settings=FollowerSettings(
            batch_size=6, poll_seconds=0.01, maintenance_seconds=0.01, heartbeat_seconds=0.01
        ),
    )
    first = Scripted(name=f"relay:{unique}-a", kind=FollowerKind.RELAY)
    second = Scripted(name=f"relay:{unique}-b", kind=FollowerKind.RELAY)
    followers = [Follower(PerKeyConsumer(consumer), parts) for consumer in (first, second)]

    async with subscriber_running(followers[0]), subscriber_running(followers[1]):
        await eventually(lambda: world.caught_up(first.name))
        await eventually(lambda: world.caught_up(second.name))
        head = await world.events.head_position()

        async def reported() -> dict[str, FollowerReport] | None:
            reports = {r.follower: r for r in await world.saga.status.reports()}
            at_head = all(
                name in reports and reports[name].position == head
                for name in (first.name, second.name)
            )
            return reports if at_head else None

        reports = await eventually(reported)

    handled = sorted((f"Job-{unique}-{n}", v) for n in range(3) for v in (1, 2))
    assert sorted(first.handled) == sorted(second.handled) == handled
    assert source.reads_with_events == 1, "the batch was read once for both"
    for consumer in (first, second):
        report = reports[consumer.name]
        assert (report.kind, report.leading, report.position) == (FollowerKind.RELAY, True, head)
    stopped = {report.follower: report for report in await world.saga.status.reports()}
    assert not stopped[first.name].leading, "a follower that stops says so"


async def test_a_busy_follower_reports_at_every_heartbeat(unique: str) -> None:
    """A follower whose every batch is full saves its checkpoint each batch; its status is
    reported at the heartbeat all the same, so it never looks unled while it works."""
    world = World()
    for n in range(60):
        await world.append(f"Job-{unique}-{n}", {"n": n})
    slow = Scripted(name=f"saga:{unique}", seconds_per_call=0.02)
    parts = replace(
        follower_parts(world.events, dead_letters=world.saga.dead_letters),
        checkpoint=world.saga.checkpoint,
        status=world.saga.status,
        settings=FollowerSettings(batch_size=1, heartbeat_seconds=0.05, poll_seconds=0.01),
    )
    reports: list[LogPosition] = []
    async with subscriber_running(Follower(PerKeyConsumer(slow), parts)):
        while len(slow.handled) < 40:
            for report in await world.saga.status.reports():
                if report.follower == slow.name and (not reports or reports[-1] != report.position):
                    reports.append(report.position)
            await asyncio.sleep(0.02)

    assert len(reports) >= 3, "the status moved while the follower was busy"


async def test_a_follower_waiting_out_an_outage_reports_it_and_keeps_leading(
    unique: str,
) -> None:
    """Batches that keep failing on an outage: the status shows the follower led, FAILED with
    the error, its heartbeat moving (not a follower nobody leads), and nothing parked."""
    world = World()
    await world.append(f"Job-{unique}", {"n": 1})
    down = Scripted(name=f"saga:{unique}", outages=10**6)
    parts = replace(
        follower_parts(world.events, dead_letters=world.saga.dead_letters),
        checkpoint=world.saga.checkpoint,
        status=world.saga.status,
        settings=FollowerSettings(heartbeat_seconds=0.05, poll_seconds=0.01, max_attempts=1),
    )

    async def report() -> FollowerReport | None:
        return next((r for r in await world.saga.status.reports() if r.follower == down.name), None)

    heartbeats: set[datetime] = set()
    async with subscriber_running(Follower(PerKeyConsumer(down), parts)):
        for _ in range(250):  # 5 s at most; the heartbeat is 0.05 s, the retries 0.1-0.4 s
            current = await report()
            if current is not None and current.state == FollowerState.FAILED:
                heartbeats.add(current.heartbeat_at)
            if len(heartbeats) == 3:
                break
            await asyncio.sleep(0.02)
        failing = await report()

    assert len(heartbeats) == 3, "the failing follower's heartbeat moved"
    assert failing is not None and failing.leading
    assert failing.last_error is not None and "unavailable" in failing.last_error
    assert down.handled == [] and await world.saga.dead_letters.count() == 0
