"""The one decide-and-append (write_model/decide_and_append.py) over the in-memory store:
load, decide, append at the loaded version, retry a conflict within a bound, ids from the
caller's key, several streams in one append. A racing writer is a real second append to
the same store, made just before ours lands."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from tests.tally import SNAPSHOTTED_TALLY, TALLY, Add, Added, tally_registry
from write_model.backoff import retrying
from write_model.command_context import CommandContext, Principal
from write_model.decide_and_append import (
    ConcurrencyConflict,
    DecideAndAppend,
    Decision,
    derived_event_id,
)
from write_model.envelope import AppendResult, EventMetadata, NewEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import (
    ANY,
    AppendsThroughStreams,
    IdempotencyKey,
    IdempotencyKeyConflict,
    StreamAppend,
)

CONTEXT = CommandContext("corr-1", principal=Principal.system("test"))
NOW = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)


class RacedStore(AppendsThroughStreams):
    """The in-memory store, where another writer appends to `stream` just before each of
    the next `races` appends: those appends find the stream moved."""

    def __init__(self, stream: str, races: int) -> None:
        self.inner = InMemoryEventStore()
        self.stream = stream
        self.races = races
        self.tries = 0
        self.reads = 0

    def __getattr__(self, name: str):  # reads go to the store as they are
        return getattr(self.inner, name)

    async def append_to_streams(
        self,
        appends: Sequence[StreamAppend],
        *,
        idempotency: tuple[IdempotencyKey, str] | None = None,
    ) -> list[AppendResult]:
        self.tries += 1
        if self.races > 0:
            self.races -= 1
            total = (await self.load_total()) + 100
            raced = NewEvent(
                uuid.uuid4(),
                "Added",
                {"amount": 100, "total": total},
                EventMetadata("other-writer"),
                NOW,
            )
            await self.inner.append_to_stream(self.stream, "Tally", ANY, [raced])
        return await self.inner.append_to_streams(appends, idempotency=idempotency)

    async def read_from_snapshots(self, schema_versions):
        self.reads += 1
        return await self.inner.read_from_snapshots(schema_versions)

    async def load_total(self) -> int:
        events = await self.inner.read_stream(self.stream)
        return events[-1].data["total"] if events else 0


def writer(store, *, max_attempts: int = 5, snapshot_every: int = 0, **kwargs) -> DecideAndAppend:
    return DecideAndAppend(
        store,
        tally_registry(),
        clock=lambda: NOW,
        max_attempts=max_attempts,
        first_backoff_seconds=0.0001,
        snapshot_every=snapshot_every,
        **kwargs,
    )


async def totals(store, stream: str) -> list[int]:
    return [e.data["total"] for e in await store.read_stream(stream)]


async def test_loads_decides_and_appends_at_the_loaded_version() -> None:
    store = InMemoryEventStore()
    write = writer(store)

    first = await write.one(Decision(TALLY, "t1", Add(5)), CONTEXT)
    second = await write.one(Decision(TALLY, "t1", Add(3)), CONTEXT)

    assert (first.version, first.events, first.state()) == (1, (Added(5, 5),), 5)
    assert (second.version, second.events, second.state()) == (2, (Added(3, 8),), 8)
    assert second.result is not None and second.result.version == 2
    assert await totals(store, "Tally-t1") == [5, 8]
    [recorded] = await store.read_stream("Tally-t1", from_version=2)
    assert recorded.metadata.correlation_id == "corr-1"
    assert recorded.metadata.user_id == CONTEXT.principal.user_id


async def test_a_conflict_is_decided_again_on_the_stream_as_it_is_now() -> None:
    store = RacedStore("Tally-t1", races=2)
    write = writer(store)

    decided = await write.one(Decision(TALLY, "t1", Add(5)), CONTEXT)

    # Two other writers got in first; ours was decided on their total, not on 0.
    assert await totals(store, "Tally-t1") == [100, 200, 205]
    assert (decided.version, decided.state(), store.tries) == (3, 205, 3)


async def test_a_stream_that_keeps_moving_is_a_concurrency_conflict_past_the_bound() -> None:
    store = RacedStore("Tally-t1", races=1_000)
    write = writer(store, max_attempts=4)

    with pytest.raises(ConcurrencyConflict) as raised:
        await write.one(Decision(TALLY, "t1", Add(5)), CONTEXT)

    assert (raised.value.stream_id, raised.value.tries) == ("Tally-t1", 4)
    assert (raised.value.expected, raised.value.actual) == (3, 4)
    assert store.tries == 4
    assert 5 not in [total % 100 for total in await totals(store, "Tally-t1")]


async def test_the_senders_expected_version_is_tried_once() -> None:
    store = RacedStore("Tally-t1", races=1)
    write = writer(store)
    await store.inner.append_to_stream(
        "Tally-t1",
        "Tally",
        ANY,
        [NewEvent(uuid.uuid4(), "Added", {"amount": 1, "total": 1}, EventMetadata("c"), NOW)],
    )

    with pytest.raises(ConcurrencyConflict) as stale:
        await write.one(Decision(TALLY, "t1", Add(5), expected_version=3), CONTEXT)
    assert (stale.value.expected, stale.value.actual, stale.value.tries) == (3, 1, None)
    assert store.tries == 0  # refused at load: nothing sent

    with pytest.raises(ConcurrencyConflict) as raced:
        await write.one(Decision(TALLY, "t1", Add(5), expected_version=1), CONTEXT)
    assert (raced.value.tries, store.tries) == (1, 1)
    assert await totals(store, "Tally-t1") == [1, 101]


async def test_what_the_caller_loaded_serves_the_first_try_only() -> None:
    store = RacedStore("Tally-t1", races=1)
    write = writer(store)

    # The caller read the tally at 0 (its stream empty): the first try decides on that,
    # loses the race, and the second decides on the stream as read.
    decided = await write.one(Decision(TALLY, "t1", Add(5), loaded=(0, 0)), CONTEXT)

    assert await totals(store, "Tally-t1") == [100, 105]
    assert decided.version == 2
    assert store.reads == 1  # the second try's: what the caller loaded is not read again
    await write.one(Decision(TALLY, "t1", Add(1), loaded=(105, 2)), CONTEXT)
    assert store.reads == 1


async def test_event_ids_derive_from_the_callers_key_else_are_new() -> None:
    ids = iter([uuid.UUID(int=1), uuid.UUID(int=2)])
    store = InMemoryEventStore()
    write = writer(store, new_event_id=lambda: next(ids))

    await write.one(Decision(TALLY, "random", Add(1)), CONTEXT)
    keyed = await write.one(Decision(TALLY, "keyed", Add(1)), CONTEXT, key="trigger-7")
    # Sent again after a crash that lost the answer: same ids, the first answer, no event.
    again = await write.one(
        Decision(TALLY, "keyed", Add(1), loaded=(0, 0)), CONTEXT, key="trigger-7"
    )
    elsewhere = await writer(InMemoryEventStore()).one(
        Decision(TALLY, "keyed", Add(1)), CONTEXT, key="trigger-7"
    )

    [random_event] = await store.read_stream("Tally-random")
    assert random_event.event_id == uuid.UUID(int=1)
    [keyed_event] = await store.read_stream("Tally-keyed")
    # The bus's scheme of before this module, unchanged: commands sent again across the
    # upgrade still get the ids they got.
    assert keyed_event.event_id == uuid.uuid5(
        uuid.UUID("0b6f3d52-8e1a-4c7d-a2f9-5d4e3c2b1a07"), "trigger-7\nTally-keyed\n0"
    )
    assert again.result == keyed.result
    assert elsewhere.result is not None and elsewhere.result.version == 1
    assert [e.event_id for e in await store.read_stream("Tally-keyed")] == [keyed_event.event_id]


async def test_the_idempotency_record_is_stored_with_the_append() -> None:
    store = InMemoryEventStore()
    write = writer(store)
    key = (IdempotencyKey("k-1", "addToTally"), "fingerprint")

    decided = await write.one(Decision(TALLY, "t1", Add(2)), CONTEXT, idempotency=key)
    with pytest.raises(IdempotencyKeyConflict):
        await write.one(Decision(TALLY, "t1", Add(2)), CONTEXT, idempotency=key)

    record = await store.find_idempotency_record(key[0])
    assert record is not None and record.result == decided.result
    assert await totals(store, "Tally-t1") == [2]


async def test_nothing_decided_appends_only_when_asked() -> None:
    store = InMemoryEventStore()
    write = writer(store)
    await write.one(Decision(TALLY, "t1", Add(2)), CONTEXT)
    head = await store.head_position()

    skipped = await write.one(Decision(TALLY, "t1", Add(0)), CONTEXT, append_empty=False)
    checked = await write.one(Decision(TALLY, "t1", Add(0)), CONTEXT)

    assert (skipped.result, skipped.version, skipped.events) == (None, 1, ())
    assert checked.result is not None and checked.result.log_position == head
    assert await store.head_position() == head


async def test_decisions_on_several_streams_land_together_or_not_at_all() -> None:
    store = RacedStore("Tally-b", races=1)
    write = writer(store)

    decided = await write.together(
        [Decision(TALLY, "a", Add(1)), Decision(TALLY, "b", Add(2))], CONTEXT, key="k"
    )

    # b moved under the first try: neither landed then; both were decided again together.
    assert await totals(store, "Tally-a") == [1]
    assert await totals(store, "Tally-b") == [100, 102]
    [a], [b] = (await store.read_stream("Tally-a"), await store.read_stream("Tally-b", 2))
    assert a.transaction_id == b.transaction_id
    assert [d.version for d in decided] == [1, 2]
    # Left out of the append when it decides nothing.
    head = await store.head_position()
    moved = await write.together(
        [Decision(TALLY, "a", Add(0)), Decision(TALLY, "b", Add(3))], CONTEXT, append_empty=False
    )
    assert [d.result is None for d in moved] == [True, False]
    assert await store.count_after(head) == 1


async def test_before_decisions_are_appended_first_with_the_same_key() -> None:
    store = InMemoryEventStore()
    write = writer(store)
    reserve = Decision(TALLY, "reserved", Add(1))

    await write.one(Decision(TALLY, "main", Add(5), before=(reserve,)), CONTEXT, key="cmd-1")

    [reserved] = await store.read_stream("Tally-reserved")
    [main] = await store.read_stream("Tally-main")
    assert reserved.position < main.position
    assert reserved.transaction_id != main.transaction_id
    assert reserved.event_id == derived_event_id("cmd-1", "Tally-reserved", 0)


async def test_a_snapshot_is_saved_when_an_append_crosses_the_interval() -> None:
    store = InMemoryEventStore()
    write = writer(store, snapshot_every=3)

    for amount in (1, 2):
        await write.one(Decision(SNAPSHOTTED_TALLY, "t1", Add(amount)), CONTEXT)
    assert await store.load_snapshot("Tally-t1") is None
    await write.one(Decision(SNAPSHOTTED_TALLY, "t1", Add(4)), CONTEXT)

    snapshot = await store.load_snapshot("Tally-t1")
    assert snapshot is not None and (snapshot.version, snapshot.data) == (3, {"total": 7})


# ---------------------------------------------------------------- backoff


async def test_the_backoff_waits_within_its_jittered_bounds_and_stops() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    tries = 0
    with pytest.raises(TimeoutError, match="try 6"):
        async for attempt in retrying(
            TimeoutError, attempts=6, first_seconds=0.01, max_seconds=0.05, sleep=sleep
        ):
            with attempt:
                tries += 1
                raise TimeoutError(f"try {tries}")

    assert tries == 6 and len(waits) == 5
    bounds = [min(0.01 * 2**n, 0.05) for n in range(1, 6)]
    assert all(0 <= wait <= bound for wait, bound in zip(waits, bounds, strict=True))


async def test_the_backoff_without_a_bound_tries_until_it_succeeds_and_lets_others_through() -> (
    None
):
    async def sleep(seconds: float) -> None:
        return None

    tries = 0
    async for attempt in retrying(
        ConnectionError, attempts=None, first_seconds=0.01, max_seconds=0.05, sleep=sleep
    ):
        with attempt:
            tries += 1
            if tries < 30:
                raise ConnectionError("down")
    assert tries == 30

    with pytest.raises(ValueError):
        async for attempt in retrying(
            ConnectionError, attempts=None, first_seconds=0.01, max_seconds=0.05, sleep=sleep
        ):
            with attempt:
                raise ValueError("a bug is not retried")


async def test_the_backoff_within_a_time_cuts_its_last_wait_short_and_stops() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    tries = 0
    with pytest.raises(ConnectionError, match="down"):
        async for attempt in retrying(
            ConnectionError,
            attempts=None,
            within_seconds=0.2,
            first_seconds=0.02,
            max_seconds=0.08,
            sleep=sleep,
        ):
            with attempt:
                tries += 1
                raise ConnectionError("down")

    # A try after each wait, the waits never past the time given (each is cut to what is
    # left of it), and at least one wait: the first try fails at once.
    assert tries == len(waits) + 1 >= 2
    assert sum(waits) <= 0.2
