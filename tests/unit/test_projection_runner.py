"""The real ProjectionRunner and projector loop on the in-memory adapters (no I/O): dead
letters, retries that crash, rebuild switches under load, storage errors.

Events are appended to an InMemoryEventStore as the write side would; the runner reads them
back through the port, so these tests drive exactly the code the projector process runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest

from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.dead_letters.memory import InMemoryDeadLetters
from log_follower.dead_letters.port import LetterOwner
from log_follower.follower import Follower, FollowerSettings
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.source.log import LogSource
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.port import Checkpoint, Document, ProjectionState
from read_model.projections.base import DocKey, ProjectedEvent, View
from read_model.projections.customers import CustomersProjection
from read_model.projections.orders import OrdersProjection
from read_model.projector_process import (
    ProjectorDependencies,
    active_version,
    rebuild_projection,
    run_projection,
)
from read_model.service import letter_document
from read_model.status import projection_statuses
from tests.projecting import WrappedProjection, follower_parts, projection_runner
from tests.unit.appending import REGISTRY, append
from write_model.domain.customer import CustomerRegistered
from write_model.domain.money import Money
from write_model.domain.order import (
    OrderConfirmed,
    OrderCreated,
    OrderItemAdded,
    OrderSubmitted,
)
from write_model.envelope import LogPosition
from write_model.event_store.memory import InMemoryEventStore

FAST = FollowerSettings(batch_size=50, max_attempts=2, backoff_seconds=0.0)


def item(product: str, quantity: int = 1) -> OrderItemAdded:
    return OrderItemAdded(product, product.upper(), quantity, Money(Decimal("1.00"), "USD"))


@dataclass
class Breakable(WrappedProjection):
    """A projection that fails on the events `broken` says, as a bad deploy would, and
    takes `seconds_per_event` of CPU for each (a heavy projection)."""

    broken: Callable[[ProjectedEvent], bool] = lambda event: False
    seconds_per_event: float = 0.0

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        if self.broken(event):
            raise ValueError(f"projection bug on {event.recorded.stream_id}")
        if self.seconds_per_event:
            time.sleep(self.seconds_per_event)  # busy, as CPU-bound code is
        return self.inner.evolve(key, doc, event, view)


def on_stream(stream_id: str, from_version: int = 1) -> Callable[[ProjectedEvent], bool]:
    return lambda e: e.recorded.stream_id == stream_id and e.recorded.version >= from_version


@dataclass
class FlakyStore:
    """The memory store, with chosen operations failing like a dropped connection:
    `failing[method]` calls fail, counted among those whose first argument (the collection)
    is `only_on` when that is set."""

    inner: InMemoryDocumentStore
    failing: dict[str, int] = field(default_factory=dict)  # method -> failures left
    only_on: str | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            targeted = self.only_on is None or (args and args[0] == self.only_on)
            if targeted and self.failing.get(name, 0) > 0:
                self.failing[name] -= 1
                raise ConnectionError(f"{name}: connection reset")
            return await method(*args, **kwargs)

        return call


class DeadLetters:
    """The projections' letters as this suite reads them: per projection and version."""

    def __init__(self, store: InMemoryDeadLetters) -> None:
        self.store = store

    async def parked_streams(self, subscriber: str, version: int) -> set[str]:
        return await self.store.parked_keys(LetterOwner(subscriber, version))

    async def of_stream(self, subscriber: str, version: int, stream_id: str) -> list[Document]:
        letters = await self.store.of_key(LetterOwner(subscriber, version), stream_id)
        return [letter_document(letter) for letter in letters]

    async def request_retry(self, letter_id: str) -> bool:
        return await self.store.request_retry(letter_id)

    async def count(self) -> int:
        return await self.store.count()


@dataclass
class FlakyLetters(InMemoryDeadLetters):
    """Dead letters whose chosen operations fail like a dropped connection."""

    failing: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    def __getattribute__(self, name: str) -> Any:
        failing = object.__getattribute__(self, "failing")
        method = object.__getattribute__(self, name)
        if failing.get(name, 0) <= 0:
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            failing[name] -= 1
            raise ConnectionError(f"{name}: connection reset")

        return call


async def until_idle(runner: Follower) -> None:
    while (await runner.step()).events_read:
        pass


async def customer_with_orders(events: InMemoryEventStore, orders: int) -> None:
    await append(events, "Customer-c1", CustomerRegistered("c1", "Ada", "ada@example.com"))
    for n in range(orders):
        await append(events, f"Order-o{n}", OrderCreated(f"o{n}", "c1", Decimal("0.10")))


# ------------------------------------------------------------------ retries


async def test_a_retried_event_counts_once_even_when_the_retry_crashes_and_runs_again() -> None:
    events, store = InMemoryEventStore(), InMemoryDocumentStore()
    letters = FlakyLetters()
    await customer_with_orders(events, 1)
    projection = Breakable(CustomersProjection(), on_stream("Order-o1"))
    runner = projection_runner(
        projection, events, store, REGISTRY, settings=FAST, dead_letters=letters
    )
    await append(events, "Order-o1", OrderCreated("o1", "c1", Decimal("0.10")))
    # Later orders of the same customer move the customer document past the parked event.
    for n in range(2, 5):
        await append(events, f"Order-o{n}", OrderCreated(f"o{n}", "c1", Decimal("0.10")))
    await until_idle(runner)
    customer = await store.get("customers_v1", "c1")
    assert customer is not None and customer["orderCount"] == 4  # o0, o2, o3, o4

    projection.broken = lambda event: False
    letters.failing = {"remove": 1}  # the crash: letter not yet removed
    crashing = projection_runner(
        projection, events, store, REGISTRY, settings=FAST, dead_letters=letters
    )
    with pytest.raises(ConnectionError):
        await crashing.retry_key("Order-o1")
    assert (await store.get("customers_v1", "c1"))["orderCount"] == 5  # type: ignore[index]

    restarted = projection_runner(
        projection, events, store, REGISTRY, settings=FAST, dead_letters=letters
    )
    assert await restarted.retry_key("Order-o1") is True

    customer = await store.get("customers_v1", "c1")
    assert customer is not None and customer["orderCount"] == 5, "o1 counted once"
    assert await DeadLetters(letters).parked_streams("customers", 1) == set()


async def test_a_retry_that_fails_part_way_keeps_only_the_letters_of_what_did_not_land() -> None:
    events, store = InMemoryEventStore(), InMemoryDocumentStore()
    await customer_with_orders(events, 0)
    projection = Breakable(OrdersProjection(), on_stream("Order-o1"))
    stored = InMemoryDeadLetters()
    runner = projection_runner(
        projection, events, store, REGISTRY, settings=FAST, dead_letters=stored
    )
    await append(events, "Order-o1", OrderCreated("o1", "c1", Decimal("0.10")), item("pen"))
    await append(events, "Order-o1", item("ink"), item("pad"))
    await until_idle(runner)
    letters = DeadLetters(stored)
    assert len(await letters.of_stream("orders", 1, "Order-o1")) == 4

    projection.broken = on_stream("Order-o1", from_version=3)  # a partial fix
    assert await runner.retry_key("Order-o1") is False

    left = await letters.of_stream("orders", 1, "Order-o1")
    assert [letter["streamVersion"] for letter in left] == [3, 4]
    assert "projection bug" in left[0]["error"]
    order = await store.get("orders_v1", "o1")
    assert order is not None and order["version"] == 2
    # A new event of the stream stays parked behind the ones still failing.
    await append(events, "Order-o1", item("cap"))
    await until_idle(runner)
    assert [x["streamVersion"] for x in await letters.of_stream("orders", 1, "Order-o1")] == [
        3,
        4,
        5,
    ]
    projection.broken = lambda event: False
    assert await runner.retry_key("Order-o1") is True
    order = await store.get("orders_v1", "o1")
    assert order is not None and order["version"] == 5
    assert [i["productId"] for i in order["items"]] == ["pen", "ink", "pad", "cap"]


# --------------------------------------------------------------- storage errors


async def test_a_storage_error_fails_the_batch_and_parks_nothing() -> None:
    events, memory = InMemoryEventStore(), InMemoryDocumentStore()
    stored = InMemoryDeadLetters()
    await customer_with_orders(events, 2)
    runner = projection_runner(CustomersProjection(), events, memory, REGISTRY, settings=FAST)
    await until_idle(runner)
    total = Money(Decimal("2.00"), "USD")
    await append(events, "Order-o1", OrderSubmitted(total, Money.zero("USD"), total))
    # The confirmation names its customer only through the order's lookup document, so
    # the customer is read in the middle of the batch: that read fails, twice.
    await append(events, "Order-o1", OrderConfirmed())
    store = FlakyStore(memory, {"get_many": 2}, only_on="customers_v1")
    runner = projection_runner(
        CustomersProjection(), events, store, REGISTRY, settings=FAST, dead_letters=stored
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await runner.step()
    for method in ("bulk_write", "save_checkpoint"):
        store.failing, store.only_on = {method: 1}, None
        with pytest.raises(ConnectionError):
            await runner.step()

    await until_idle(runner)

    customer = await memory.get("customers_v1", "c1")
    assert customer is not None and customer["lifetimeValue"]["amount"] == "2.00"
    assert await DeadLetters(stored).count() == 0, "a healthy stream was parked"


async def test_a_stream_is_skipped_only_once_its_letters_are_stored() -> None:
    events, memory = InMemoryEventStore(), InMemoryDocumentStore()
    await customer_with_orders(events, 0)
    projection = Breakable(OrdersProjection(), on_stream("Order-o1"))
    stored = FlakyLetters(failing={"park": 1})
    runner = projection_runner(
        projection, events, memory, REGISTRY, settings=FAST, dead_letters=stored
    )
    await append(events, "Order-o1", OrderCreated("o1", "c1", Decimal("0.10")))
    await append(events, "Order-o2", OrderCreated("o2", "c1", Decimal("0.10")))
    with pytest.raises(ConnectionError):
        await runner.step()

    await until_idle(runner)

    [letter] = await DeadLetters(stored).of_stream("orders", 1, "Order-o1")
    assert "projection bug" in letter["error"] and letter["attempts"] == FAST.max_attempts
    assert await memory.get("orders_v1", "o2") is not None


# ------------------------------------------------------------------ rebuilds


def dependencies(
    events: InMemoryEventStore,
    store: Any,
    letters: InMemoryDeadLetters,
    batch_size: int = 50,
    lock: InProcessLeaderLock | None = None,
) -> ProjectorDependencies:
    settings = FollowerSettings(
        batch_size=batch_size,
        max_attempts=2,
        backoff_seconds=0.0,
        poll_seconds=0.01,
        maintenance_seconds=0.05,
    )
    parts = follower_parts(events, settings=settings, dead_letters=letters)
    if lock is not None:
        parts = replace(parts, source=LogSource(events, lock, InProcessAppendSignal()))
    return ProjectorDependencies(
        events=events,
        documents=store,
        registry=REGISTRY,
        feed=None,
        parts=parts,
        old_version_grace_seconds=0.0,
    )


async def eventually(condition: Callable[[], Any], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def test_letters_follow_their_version_through_a_rebuild_and_switch() -> None:
    events, store = InMemoryEventStore(), InMemoryDocumentStore()
    await customer_with_orders(events, 0)
    await append(events, "Order-o1", OrderCreated("o1", "c1", Decimal("0.10")))
    await append(events, "Order-o2", OrderCreated("o2", "c1", Decimal("0.10")))
    stored = InMemoryDeadLetters()
    letters = DeadLetters(stored)
    # Version 1 fails on o1 (a bug since fixed); the rebuild fails on o2 (a new one).
    live = Breakable(OrdersProjection(), on_stream("Order-o1"))
    runner = projection_runner(live, events, store, REGISTRY, settings=FAST, dead_letters=stored)
    await until_idle(runner)
    assert await letters.parked_streams("orders", 1) == {"Order-o1"}

    rebuilt = Breakable(OrdersProjection(), on_stream("Order-o2"))
    deps = dependencies(events, store, stored)
    assert await rebuild_projection(deps, rebuilt, take_over_seconds=1) == 2

    assert await active_version(store, "orders") == 2
    assert await letters.parked_streams("orders", 2) == {"Order-o2"}
    stop = asyncio.Event()
    leading = asyncio.create_task(run_projection(deps, OrdersProjection(), stop))
    try:
        # The new version is not blocked by the old version's letters, and those go with it.
        await append(events, "Order-o1", item("pen"))

        async def o1_flows() -> bool:
            order = await store.get("orders_v2", "o1")
            return order is not None and order["version"] == 2

        await eventually(o1_flows, "o1 reached version 2 in the new version")
        await eventually(
            lambda: _no_letters(letters, "orders", 1), "the old version's letters were dropped"
        )
        # The rebuild's letter is the live version's now: a retry request clears it.
        [letter] = await letters.of_stream("orders", 2, "Order-o2")
        assert await letters.request_retry(letter["_id"])
        await eventually(lambda: _no_letters(letters, "orders", 2), "o2 was retried")
        assert await store.get("orders_v2", "o2") is not None
    finally:
        stop.set()
        await leading


async def _no_letters(letters: DeadLetters, subscriber: str, version: int) -> bool:
    return not await letters.parked_streams(subscriber, version)


@dataclass
class CheckpointRecorder:
    """The memory store, remembering each save of the live `orders` checkpoint and where
    that checkpoint was when dead letters were deleted (a retry landing)."""

    inner: InMemoryDocumentStore
    saved: list[Checkpoint] = field(default_factory=list)
    retried_at: list[LogPosition] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.name == "orders":
            self.saved.append(checkpoint)
        await self.inner.save_checkpoint(checkpoint)

    async def letters_removed(self) -> None:
        live = await self.inner.load_checkpoint("orders")
        self.retried_at.append(live.position if live else LogPosition.start())


@dataclass
class RecordedLetters(InMemoryDeadLetters):
    """Letters that tell the recorder when they are removed (a retry landing)."""

    recorder: CheckpointRecorder | None = None

    def __post_init__(self) -> None:
        super().__init__()

    async def remove(self, letter_ids: Sequence[str]) -> None:
        if self.recorder is not None:
            await self.recorder.letters_removed()
        await super().remove(letter_ids)


async def test_retries_and_switches_do_not_wait_for_the_projector_to_catch_up() -> None:
    events, memory = InMemoryEventStore(), InMemoryDocumentStore()
    await customer_with_orders(events, 0)
    await append(events, "Order-o0", OrderCreated("o0", "c1", Decimal("0.10")))
    broken = Breakable(OrdersProjection(), on_stream("Order-o0"))
    stored = RecordedLetters()
    await until_idle(
        projection_runner(broken, events, memory, REGISTRY, settings=FAST, dead_letters=stored)
    )
    [letter] = await DeadLetters(stored).of_stream("orders", 1, "Order-o0")
    # A rebuild made ready while another process led (its switch is left to the leader),
    # a retry requested, and a long backlog: every batch the projector reads is full.
    held = InProcessLeaderLock()
    deps = dependencies(events, memory, stored, batch_size=10, lock=held)
    async with held.hold("orders"):
        version = await rebuild_projection(deps, OrdersProjection(), take_over_seconds=0.01)
    assert await DeadLetters(stored).request_retry(letter["_id"])
    for n in range(1, 400):
        await append(events, f"Order-b{n}", OrderCreated(f"b{n}", "c1", Decimal("0.10")))
    head = await events.head_position()

    store = CheckpointRecorder(memory)
    stored.recorder = store
    stop = asyncio.Event()
    leading = asyncio.create_task(
        run_projection(replace(deps, documents=store), OrdersProjection(), stop)
    )
    try:
        await eventually(
            lambda: _at_head(memory, version, head), "the projector caught up in the new version"
        )
    finally:
        stop.set()
        await leading

    assert store.retried_at and store.retried_at[0] < head, "the retry waited for the backlog"
    first_of_new_version = next(c for c in store.saved if c.version == version)
    assert first_of_new_version.position < head, "the switch waited for the backlog"
    assert await memory.get(f"orders_v{version}", "o0") is not None
    assert await memory.count(f"orders_v{version}", {}) == 400


async def _at_head(store: InMemoryDocumentStore, version: int, head: LogPosition) -> bool:
    checkpoint = await store.load_checkpoint("orders")
    return checkpoint is not None and checkpoint.version == version and checkpoint.position >= head


# ------------------------------------------------------------------- liveness


async def test_a_projection_whose_leader_went_quiet_while_events_wait_is_stopped() -> None:
    events, store = InMemoryEventStore(), InMemoryDocumentStore()
    await customer_with_orders(events, 1)
    runner = projection_runner(OrdersProjection(), events, store, REGISTRY, settings=FAST)
    await until_idle(runner)

    async def state() -> ProjectionState:
        statuses = await projection_statuses(events, store, stale_seconds=0.2)
        [status] = [s for s in statuses if s.name == OrdersProjection.name]
        return status.state

    assert await state() == ProjectionState.RUNNING
    await asyncio.sleep(0.3)
    assert await state() == ProjectionState.RUNNING, "quiet, but nothing waits for it"
    await append(events, "Order-o9", OrderCreated("o9", "c1", Decimal("0.10")))
    assert await state() == ProjectionState.STOPPED
    # A leader that beats (saves its checkpoint without moving) is alive, lag or not.
    await runner.save(await runner.position())
    assert await state() == ProjectionState.RUNNING
