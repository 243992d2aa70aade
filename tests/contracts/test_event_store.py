"""EventStore conformance: every adapter (memory, sqlite, postgres) passes all of it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import pytest

from tests.contracts.harness import StoreHarness
from write_model.envelope import EventMetadata, LogPosition, NewEvent, RecordedEvent
from write_model.event_store.port import (
    ANY,
    NO_STREAM,
    DuplicateEventError,
    ExpectedVersion,
    IdempotencyKey,
    IdempotencyKeyConflict,
    Snapshot,
    StreamAppend,
    WrongExpectedVersion,
    last_of,
)

NOW = datetime(2026, 11, 26, 13, 24, tzinfo=UTC)


def new_event(n: int = 0, type_: str = "ThingHappened", **metadata: str) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        type=type_,
        data={"n": n, "amount": "12.30", "nested": {"list": [1, 2]}},
        metadata=EventMetadata(
            correlation_id=metadata.get("correlation", "corr-1"),
            causation_id=metadata.get("causation"),
            user_id="u-1",
        ),
        occurred_at=NOW,
    )


async def read_everything_after(store, after: LogPosition) -> list[RecordedEvent]:
    found: list[RecordedEvent] = []
    while batch := await store.read_all(after, limit=50):
        found.extend(batch)
        after = batch[-1].log_position
    return found


# ------------------------------------------------------------ streams


async def test_append_and_read_a_stream(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    sent = [new_event(1), new_event(2), new_event(3)]

    result = await store.append_to_stream(stream, "Thing", NO_STREAM, sent)

    assert result.stream_id == stream
    assert result.version == 3
    read = await store.read_stream(stream)
    assert [e.version for e in read] == [1, 2, 3]
    assert [e.event_id for e in read] == [e.event_id for e in sent]
    assert read[0].data == {"n": 1, "amount": "12.30", "nested": {"list": [1, 2]}}
    assert read[0].metadata == sent[0].metadata
    assert read[0].occurred_at == NOW
    assert read[0].stream_id == stream and read[0].type == "ThingHappened"
    assert result.log_position == read[-1].log_position
    assert await store.stream_version(stream) == 3


async def test_read_stream_from_and_to_a_version(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    await store.append_to_stream(stream, "Thing", NO_STREAM, [new_event(i) for i in range(5)])

    assert [e.version for e in await store.read_stream(stream, from_version=3)] == [3, 4, 5]
    assert [e.version for e in await store.read_stream(stream, 2, to_version=3)] == [2, 3]


async def test_read_several_streams_at_once(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    await store.append_to_stream(f"A-{unique}", "A", NO_STREAM, [new_event(1), new_event(2)])
    await store.append_to_stream(f"B-{unique}", "B", NO_STREAM, [new_event(3)])

    found = await store.read_streams([f"B-{unique}", f"None-{unique}", f"A-{unique}"])

    assert set(found) == {f"A-{unique}", f"B-{unique}", f"None-{unique}"}
    assert [e.data["n"] for e in found[f"A-{unique}"]] == [1, 2]
    assert [e.version for e in found[f"A-{unique}"]] == [1, 2]
    assert [e.data["n"] for e in found[f"B-{unique}"]] == [3]
    assert found[f"None-{unique}"] == []


async def test_unknown_stream_is_empty_at_version_zero(harness: StoreHarness, unique: str) -> None:
    assert await harness.store.read_stream(f"Nothing-{unique}") == []
    assert await harness.store.stream_version(f"Nothing-{unique}") == 0


async def test_positions_grow_across_streams(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    first = await store.append_to_stream(f"A-{unique}", "A", NO_STREAM, [new_event()])
    second = await store.append_to_stream(f"B-{unique}", "B", NO_STREAM, [new_event()])
    assert second.log_position > first.log_position


# ------------------------------------------------------- expected version


async def test_exact_expected_version_appends(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    await store.append_to_stream(stream, "Thing", NO_STREAM, [new_event(1)])
    result = await store.append_to_stream(stream, "Thing", 1, [new_event(2), new_event(3)])
    assert result.version == 3


async def test_stale_expected_version_raises_and_appends_nothing(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    await store.append_to_stream(stream, "Thing", NO_STREAM, [new_event(1), new_event(2)])

    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append_to_stream(stream, "Thing", 1, [new_event(3), new_event(4)])

    assert raised.value.expected == 1
    assert raised.value.actual == 2
    assert raised.value.stream_id == stream
    assert await store.stream_version(stream) == 2
    assert len(await store.read_stream(stream)) == 2


async def test_expected_version_on_missing_stream_reports_zero(
    harness: StoreHarness, unique: str
) -> None:
    with pytest.raises(WrongExpectedVersion) as raised:
        await harness.store.append_to_stream(f"Thing-{unique}", "Thing", 3, [new_event()])
    assert (raised.value.expected, raised.value.actual) == (3, 0)


async def test_no_stream_on_existing_stream_raises(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    await store.append_to_stream(stream, "Thing", NO_STREAM, [new_event()])

    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append_to_stream(stream, "Thing", NO_STREAM, [new_event()])

    assert raised.value.expected is NO_STREAM
    assert raised.value.actual == 1
    assert await store.stream_version(stream) == 1


async def test_any_appends_to_new_and_existing_streams(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    assert (await store.append_to_stream(stream, "Thing", ANY, [new_event()])).version == 1
    assert (await store.append_to_stream(stream, "Thing", ANY, [new_event()])).version == 2


async def test_empty_append_checks_the_version_and_writes_nothing(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    appended = await store.append_to_stream(stream, "Thing", NO_STREAM, [new_event()])

    result = await store.append_to_stream(stream, "Thing", 1, [])

    assert result.version == 1
    assert result.log_position == appended.log_position
    with pytest.raises(WrongExpectedVersion):
        await store.append_to_stream(stream, "Thing", 2, [])
    assert await store.stream_version(stream) == 1


# ---------------------------------------------------------- event ids


async def test_an_event_id_stored_on_another_stream_is_refused(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    event = new_event()
    await store.append_to_stream(f"A-{unique}", "A", NO_STREAM, [event])

    with pytest.raises(DuplicateEventError):
        await store.append_to_stream(f"B-{unique}", "B", NO_STREAM, [event])
    with pytest.raises(DuplicateEventError):
        await store.append_to_stream(f"B-{unique}", "B", NO_STREAM, [new_event(), event])

    assert await store.stream_version(f"B-{unique}") == 0
    assert await store.read_stream(f"B-{unique}") == []


async def test_repeating_an_append_returns_its_first_result_and_adds_nothing(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    await store.append_to_stream(stream, "Thing", NO_STREAM, [new_event(0)])
    batch = [new_event(1), new_event(2)]
    key = IdempotencyKey(f"key-{unique}", "doThing")
    first = await store.append_to_stream(stream, "Thing", 1, batch, idempotency=(key, "fp"))
    later = await store.append_to_stream(stream, "Thing", 3, [new_event(3)])

    # A writer that lost the answer sends the same batch again, with its stale version:
    # the first answer, nothing appended, no conflict.
    again = await store.append_to_stream(stream, "Thing", 1, batch)
    anyhow = await store.append_to_stream(stream, "Thing", ANY, batch)
    # With its key, the key's record answers (the bus replays it).
    with pytest.raises(IdempotencyKeyConflict):
        await store.append_to_stream(stream, "Thing", 1, batch, idempotency=(key, "fp"))

    assert again == first and anyhow == first
    assert again.consistency_token == first.consistency_token
    assert [e.data["n"] for e in await store.read_stream(stream)] == [0, 1, 2, 3]
    assert await store.stream_version(stream) == 4
    assert await store.head_position() == later.log_position


async def test_a_partial_repeat_is_refused_and_adds_nothing(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    one, two, three = new_event(1), new_event(2), new_event(3)
    await store.append_to_stream(stream, "Thing", NO_STREAM, [one, two])
    await store.append_to_stream(stream, "Thing", 2, [three])

    refused = [
        [one],  # a part of an append
        [one, two, new_event(9)],  # an append's events and a new one
        [two, one],  # another order
        [two, three],  # parts of two appends
        [three, three],  # an id twice
    ]
    for batch in refused:
        with pytest.raises(DuplicateEventError):
            await store.append_to_stream(stream, "Thing", ANY, batch)

    assert [e.data["n"] for e in await store.read_stream(stream)] == [1, 2, 3]
    assert await store.stream_version(stream) == 3


async def test_a_new_batch_with_an_id_twice_is_refused(harness: StoreHarness, unique: str) -> None:
    event = new_event()
    with pytest.raises(DuplicateEventError):
        await harness.store.append_to_stream(f"T-{unique}", "T", NO_STREAM, [event, event])
    assert await harness.store.stream_version(f"T-{unique}") == 0


@pytest.mark.parametrize("expected", [ANY, NO_STREAM], ids=["any", "no-stream"])
async def test_concurrent_repeats_of_an_append_land_once(
    harness: StoreHarness, unique: str, expected: ExpectedVersion
) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    batch = [new_event(1), new_event(2)]

    results = await asyncio.gather(
        *(store.append_to_stream(stream, "Thing", expected, batch) for _ in range(8))
    )

    assert len(set(results)) == 1 and results[0].version == 2
    assert [e.data["n"] for e in await store.read_stream(stream)] == [1, 2]


# ------------------------------------------------------ several streams


async def test_an_append_to_several_streams_lands_in_one_transaction(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    a, b, c = f"A-{unique}", f"B-{unique}", f"C-{unique}"
    await store.append_to_stream(b, "B", NO_STREAM, [new_event(0)])
    before = await store.head_position()
    parts = [
        StreamAppend(c, "C", ANY, [new_event(1)]),
        StreamAppend(a, "A", NO_STREAM, [new_event(2), new_event(3)]),
        StreamAppend(b, "B", 1, [new_event(4)]),
    ]

    results = await store.append_to_streams(parts)

    assert [(r.stream_id, r.version) for r in results] == [(c, 1), (a, 2), (b, 2)]
    found = await store.read_streams([a, b, c])
    assert [e.data["n"] for e in found[a]] == [2, 3]
    assert [e.data["n"] for e in found[b]] == [0, 4]
    assert [e.data["n"] for e in found[c]] == [1]
    for result in results:
        assert result.log_position == found[result.stream_id][-1].log_position
    # One transaction: read from the log, its events come together, after everything before.
    ours = [e for e in await read_everything_after(store, before) if e.stream_id.endswith(unique)]
    assert sorted(e.data["n"] for e in ours) == [1, 2, 3, 4]
    assert len({e.transaction_id for e in ours}) == 1
    assert last_of(results).log_position == ours[-1].log_position
    assert await store.head_position() == ours[-1].log_position
    assert await store.count_after(before) == 4


@pytest.mark.parametrize("conflicting", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("kind", ["stale", "no-stream"])
async def test_a_conflict_on_any_stream_appends_nothing(
    harness: StoreHarness, unique: str, conflicting: int, kind: str
) -> None:
    """Wherever the conflicting stream sorts among the others (an adapter may write the
    ones before it first), the whole append is refused and nothing of it is kept."""
    store = harness.store
    streams = [f"S{n}-{unique}" for n in range(3)]
    for stream in streams:
        await store.append_to_stream(stream, "S", NO_STREAM, [new_event(0), new_event(1)])
    head = await store.head_position()
    wrong: ExpectedVersion = 1 if kind == "stale" else NO_STREAM
    parts = [
        StreamAppend(stream, "S", wrong if n == conflicting else 2, [new_event(n + 10)])
        for n, stream in enumerate(streams)
    ]

    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append_to_streams(parts)

    assert raised.value.stream_id == streams[conflicting]
    assert (raised.value.expected, raised.value.actual) == (wrong, 2)
    found = await store.read_streams(streams)
    assert all([e.data["n"] for e in found[stream]] == [0, 1] for stream in streams)
    assert [await store.stream_version(stream) for stream in streams] == [2, 2, 2]
    assert await store.head_position() == head
    # The same append at the right versions lands whole.
    parts[conflicting] = StreamAppend(streams[conflicting], "S", 2, parts[conflicting].events)
    assert [r.version for r in await store.append_to_streams(parts)] == [3, 3, 3]


async def test_a_part_without_events_makes_the_append_depend_on_its_version(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    guard, target = f"Guard-{unique}", f"Target-{unique}"
    last = await store.append_to_stream(guard, "G", NO_STREAM, [new_event(0)])

    results = await store.append_to_streams(
        [StreamAppend(target, "T", NO_STREAM, [new_event(1)]), StreamAppend(guard, "G", 1, [])]
    )
    assert results[1] == last  # the guard as it is: its version and last event
    await store.append_to_stream(guard, "G", 1, [new_event(2)])
    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append_to_streams(
            [StreamAppend(target, "T", 1, [new_event(3)]), StreamAppend(guard, "G", 1, [])]
        )

    assert (raised.value.stream_id, raised.value.actual) == (guard, 2)
    assert [e.data["n"] for e in await store.read_stream(target)] == [1]


async def test_repeating_an_append_to_several_streams_returns_its_first_results(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    a, b = f"A-{unique}", f"B-{unique}"
    await store.append_to_stream(a, "A", NO_STREAM, [new_event(0)])
    parts = [
        StreamAppend(a, "A", 1, [new_event(1), new_event(2)]),
        StreamAppend(b, "B", NO_STREAM, [new_event(3)]),
    ]
    first = await store.append_to_streams(parts)
    await store.append_to_stream(a, "A", 3, [new_event(4)])
    head = await store.head_position()

    # A writer that lost the answer sends it again, with its stale versions, or with ANY.
    again = await store.append_to_streams(parts)
    anyhow = await store.append_to_streams(
        [StreamAppend(p.stream_id, p.stream_id[0], ANY, p.events) for p in parts]
    )

    assert again == first and anyhow == first
    assert [e.data["n"] for e in await store.read_stream(a)] == [0, 1, 2, 4]
    assert [e.data["n"] for e in await store.read_stream(b)] == [3]
    assert await store.head_position() == head


async def test_a_partial_repeat_across_streams_is_refused_and_adds_nothing(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    a, b, c = f"A-{unique}", f"B-{unique}", f"C-{unique}"
    one, two, three = new_event(1), new_event(2), new_event(3)
    await store.append_to_streams(
        [StreamAppend(a, "A", NO_STREAM, [one]), StreamAppend(b, "B", NO_STREAM, [two])]
    )
    await store.append_to_stream(c, "C", NO_STREAM, [three])
    head = await store.head_position()

    twice = new_event(8)
    refused = [
        [StreamAppend(a, "A", ANY, [one]), StreamAppend(c, "C", ANY, [new_event(9)])],
        [StreamAppend(a, "A", ANY, [one]), StreamAppend(c, "C", ANY, [three])],  # two appends
        [StreamAppend(a, "A", ANY, [two]), StreamAppend(b, "B", ANY, [one])],  # regrouped
        [StreamAppend(a, "A", ANY, [twice]), StreamAppend(c, "C", ANY, [twice])],  # an id twice
    ]
    for parts in refused:
        with pytest.raises(DuplicateEventError):
            await store.append_to_streams(parts)

    assert await store.head_position() == head
    found = await store.read_streams([a, b, c])
    assert [[e.data["n"] for e in found[s]] for s in (a, b, c)] == [[1], [2], [3]]


async def test_an_idempotency_key_answers_with_the_first_streams_result(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    key = IdempotencyKey(f"key-{unique}", "doThings")
    parts = [
        StreamAppend(f"Main-{unique}", "M", NO_STREAM, [new_event(1)]),
        StreamAppend(f"Side-{unique}", "S", NO_STREAM, [new_event(2), new_event(3)]),
    ]

    results = await store.append_to_streams(parts, idempotency=(key, "fp"))
    with pytest.raises(IdempotencyKeyConflict):
        await store.append_to_streams(
            [StreamAppend(f"Other-{unique}", "O", NO_STREAM, [new_event(4)])],
            idempotency=(key, "fp"),
        )

    record = await store.find_idempotency_record(key)
    assert record is not None and record.result == results[0]
    assert await store.stream_version(f"Other-{unique}") == 0


async def test_an_append_naming_a_stream_twice_or_none_is_refused(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    twice = [
        StreamAppend(f"A-{unique}", "A", ANY, [new_event(1)]),
        StreamAppend(f"A-{unique}", "A", ANY, [new_event(2)]),
    ]
    with pytest.raises(ValueError, match="twice"):
        await store.append_to_streams(twice)
    with pytest.raises(ValueError, match="at least one"):
        await store.append_to_streams([])
    with pytest.raises(ValueError, match=">= 1"):
        await store.append_to_streams([StreamAppend(f"A-{unique}", "A", 0, [new_event()])])
    assert await store.stream_version(f"A-{unique}") == 0


async def test_concurrent_appends_to_shared_streams_in_any_order_all_land(
    harness: StoreHarness, unique: str
) -> None:
    """Writers name the same streams in opposite orders: none waits on another for ever,
    and each writer's events land together."""
    store = harness.store
    a, b = f"A-{unique}", f"B-{unique}"

    async def writer(n: int) -> list[int]:
        parts = [
            StreamAppend(a, "A", ANY, [new_event(n)]),
            StreamAppend(b, "B", ANY, [new_event(n)]),
        ]
        results = await store.append_to_streams(parts if n % 2 else parts[::-1])
        return [r.version for r in results]

    await asyncio.gather(*(writer(n) for n in range(20)))

    found = await store.read_streams([a, b])
    assert sorted(e.data["n"] for e in found[a]) == list(range(20))
    assert [e.version for e in found[b]] == list(range(1, 21))
    by_transaction = {e.transaction_id: [] for e in found[a]}
    for event in found[a] + found[b]:
        by_transaction[event.transaction_id].append(event.data["n"])
    assert all(len(set(ns)) == 1 and len(ns) == 2 for ns in by_transaction.values())


# ------------------------------------------------------------ snapshots


async def test_a_saved_snapshot_is_loaded(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    snapshot = Snapshot(3, 1, {"name": "Ink", "amount": "12.30", "held": [["o-1", 2]]})

    await store.save_snapshot(f"Thing-{unique}", snapshot)

    assert await store.load_snapshot(f"Thing-{unique}") == snapshot
    assert await store.load_snapshot(f"Other-{unique}") is None


async def test_the_newest_snapshot_wins_and_an_older_save_is_ignored(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    await store.save_snapshot(stream, Snapshot(100, 1, {"at": 100}))
    await store.save_snapshot(stream, Snapshot(200, 1, {"at": 200}))

    await store.save_snapshot(stream, Snapshot(150, 1, {"at": 150}))
    assert await store.load_snapshot(stream) == Snapshot(200, 1, {"at": 200})

    # The same version saved again (e.g. under a new state schema) replaces it.
    await store.save_snapshot(stream, Snapshot(200, 2, {"at": 200, "schema": 2}))
    assert await store.load_snapshot(stream) == Snapshot(200, 2, {"at": 200, "schema": 2})


async def test_read_from_snapshots_reads_only_the_events_after_them(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    with_snapshot, stale, plain, none = (f"{n}-{unique}" for n in ("W", "S", "P", "N"))
    for stream in (with_snapshot, stale, plain):
        await store.append_to_stream(stream, "T", NO_STREAM, [new_event(n) for n in range(5)])
    await store.save_snapshot(with_snapshot, Snapshot(3, 2, {"sum": 3}))
    await store.save_snapshot(stale, Snapshot(4, 1, {"sum": 6}))

    found = await store.read_from_snapshots({with_snapshot: 2, stale: 2, plain: 2, none: None})

    assert set(found) == {with_snapshot, stale, plain, none}
    assert found[with_snapshot].snapshot == Snapshot(3, 2, {"sum": 3})
    assert [e.version for e in found[with_snapshot].events] == [4, 5]
    assert found[stale].snapshot is None  # of another schema version: as if there were none
    assert [e.version for e in found[stale].events] == [1, 2, 3, 4, 5]
    assert found[plain].snapshot is None and len(found[plain].events) == 5
    assert found[none].snapshot is None and found[none].events == []
    assert [found[s].version for s in (with_snapshot, stale, plain, none)] == [5, 5, 5, 0]
    assert found[with_snapshot].events[0].data == {
        "n": 3,
        "amount": "12.30",
        "nested": {"list": [1, 2]},
    }


async def test_a_snapshot_at_the_head_leaves_nothing_to_read_unless_unused(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    stream = f"T-{unique}"
    await store.append_to_stream(stream, "T", NO_STREAM, [new_event(n) for n in range(3)])
    await store.save_snapshot(stream, Snapshot(3, 1, {"sum": 3}))

    used, unused = [(await store.read_from_snapshots({stream: v}))[stream] for v in (1, None)]

    assert used.snapshot == Snapshot(3, 1, {"sum": 3})
    assert used.events == [] and used.version == 3
    # A reader that uses no snapshot reads every event, even where one is stored.
    assert unused.snapshot is None
    assert [e.version for e in unused.events] == [1, 2, 3]


# -------------------------------------------------------- idempotency


async def test_idempotency_key_is_stored_with_the_append(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    stream = f"Thing-{unique}"
    key = IdempotencyKey(f"key-{unique}", "createThing")
    result = await store.append_to_stream(
        stream, "Thing", NO_STREAM, [new_event()], idempotency=(key, "fp-1")
    )

    record = await store.find_idempotency_record(key)

    assert record is not None
    assert (record.key, record.fingerprint, record.result) == (key.key, "fp-1", result)
    assert await store.find_idempotency_record(IdempotencyKey(f"other-{unique}", "x")) is None


async def test_reused_idempotency_key_appends_nothing(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    key = IdempotencyKey(f"key-{unique}", "createThing")
    await store.append_to_stream(
        f"A-{unique}", "A", NO_STREAM, [new_event()], idempotency=(key, "x")
    )

    with pytest.raises(IdempotencyKeyConflict):
        await store.append_to_stream(
            f"B-{unique}", "B", NO_STREAM, [new_event()], idempotency=(key, "x")
        )

    assert await store.stream_version(f"B-{unique}") == 0


async def test_idempotency_keys_are_scoped_by_mutation_and_principal(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    key = f"key-{unique}"
    scopes = [
        IdempotencyKey(key, "createThing"),
        IdempotencyKey(key, "renameThing"),
        IdempotencyKey(key, "createThing", principal="customer-1"),
        IdempotencyKey(key, "createThing", principal="customer-2"),
    ]
    results = [
        await store.append_to_stream(
            f"T{n}-{unique}", "T", NO_STREAM, [new_event()], idempotency=(scoped, f"fp-{n}")
        )
        for n, scoped in enumerate(scopes)
    ]

    for n, scoped in enumerate(scopes):
        record = await store.find_idempotency_record(scoped)
        assert record is not None
        assert (record.fingerprint, record.result) == (f"fp-{n}", results[n])
    assert await store.find_idempotency_record(IdempotencyKey(key, "deleteThing")) is None


# -------------------------------------------------------- concurrency


async def test_concurrent_appenders_lose_no_update(harness: StoreHarness, unique: str) -> None:
    """20 writers read the version, then append with it: each version is won exactly once,
    and every loser hears of it with the versions involved."""
    store = harness.store
    stream = f"Counter-{unique}"
    await store.append_to_stream(stream, "Counter", NO_STREAM, [new_event(0)])
    start = asyncio.Event()

    async def writer(n: int) -> int | WrongExpectedVersion:
        await start.wait()
        version = await store.stream_version(stream)
        await asyncio.sleep(0)
        try:
            return (
                await store.append_to_stream(stream, "Counter", version, [new_event(n)])
            ).version
        except WrongExpectedVersion as conflict:
            return conflict

    tasks = [asyncio.create_task(writer(n)) for n in range(1, 21)]
    start.set()
    outcomes = await asyncio.gather(*tasks)

    won = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if isinstance(o, WrongExpectedVersion)]
    assert len(won) + len(lost) == 20
    assert len(won) >= 1
    assert sorted(won) == list(range(2, 2 + len(won)))  # one winner per version, no gaps
    assert all(c.actual > c.expected for c in lost)  # type: ignore[operator]
    events = await store.read_stream(stream)
    assert [e.version for e in events] == list(range(1, 2 + len(won)))
    assert len({e.data["n"] for e in events}) == len(events)


async def test_concurrent_retrying_appenders_all_land(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    stream = f"Counter-{unique}"

    async def writer(n: int) -> None:
        while True:
            version = await store.stream_version(stream)
            try:
                await store.append_to_stream(
                    stream, "Counter", version or NO_STREAM, [new_event(n)]
                )
                return
            except WrongExpectedVersion:
                await asyncio.sleep(0)

    await asyncio.gather(*(writer(n) for n in range(20)))

    events = await store.read_stream(stream)
    assert sorted(e.data["n"] for e in events) == list(range(20))
    assert [e.version for e in events] == list(range(1, 21))


# --------------------------------------------------------- global log


async def test_read_all_from_a_checkpoint(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    before = await store.head_position()
    a = [new_event(1), new_event(2)]
    b = [new_event(3)]
    await store.append_to_stream(f"A-{unique}", "A", NO_STREAM, a)
    await store.append_to_stream(f"B-{unique}", "B", NO_STREAM, b)

    ours = [e for e in await read_everything_after(store, before) if e.stream_id.endswith(unique)]

    assert [e.event_id for e in ours] == [e.event_id for e in a + b]
    middle = ours[0].log_position
    after_first = [
        e for e in await read_everything_after(store, middle) if e.stream_id.endswith(unique)
    ]
    assert [e.event_id for e in after_first] == [a[1].event_id, b[0].event_id]
    assert await store.head_position() >= ours[-1].log_position


async def test_count_after_counts_what_read_all_would_still_return(
    harness: StoreHarness, unique: str
) -> None:
    store = harness.store
    before = await store.head_position()
    await store.append_to_stream(f"A-{unique}", "A", NO_STREAM, [new_event(1), new_event(2)])
    await store.append_to_stream(f"B-{unique}", "B", NO_STREAM, [new_event(3)])
    first = (await store.read_all(before, limit=1))[0].log_position

    assert await store.count_after(before) == 3
    assert await store.count_after(first) == 2
    assert await store.count_after(await store.head_position()) == 0
    # An append still open is not counted, as read_all does not return it yet.
    head = await store.head_position()
    async with harness.held_append(f"Held-{unique}", NO_STREAM, [new_event(4)]):
        assert await store.count_after(head) == 0
    assert await store.count_after(head) == 1


async def test_an_append_cancelled_in_flight_is_whole_or_absent(
    harness: StoreHarness, unique: str
) -> None:
    """A caller cancelled while its append waits (SQLite: for the write lock another
    connection holds) leaves the store taking the next append, with the cancelled one
    either all there or not at all."""
    store = harness.store
    stream = f"Cancelled-{unique}"
    async with harness.held_append(f"Held-{unique}", NO_STREAM, [new_event(0)]):
        pending = asyncio.create_task(
            store.append_to_stream(stream, "Thing", NO_STREAM, [new_event(1), new_event(2)])
        )
        await asyncio.sleep(0.05)
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending

    after = await store.append_to_stream(stream, "Thing", ANY, [new_event(3)])

    read = await store.read_stream(stream)
    assert [e.data["n"] for e in read] in ([1, 2, 3], [3])
    assert after.version == len(read)
    assert await store.stream_version(f"Held-{unique}") == 1


async def test_read_all_respects_the_limit(harness: StoreHarness, unique: str) -> None:
    store = harness.store
    before = await store.head_position()
    await store.append_to_stream(f"A-{unique}", "A", NO_STREAM, [new_event(i) for i in range(5)])
    assert len(await store.read_all(before, limit=2)) == 2


async def test_reader_never_passes_an_open_append(harness: StoreHarness, unique: str) -> None:
    """One append stays uncommitted while later ones commit. A reader polling the global log
    must not move past the open one, and must see it once it commits: never a gap."""
    store = harness.store
    start = await store.head_position()
    held = [new_event(100), new_event(101)]
    seen: list[RecordedEvent] = []
    checkpoint = start

    async def poll() -> None:
        nonlocal checkpoint
        batch = await read_everything_after(store, checkpoint)
        if batch:
            seen.extend(batch)
            checkpoint = batch[-1].log_position

    async with harness.held_append(f"Held-{unique}", NO_STREAM, held):
        later = [
            asyncio.create_task(
                store.append_to_stream(f"Later{n}-{unique}", "L", NO_STREAM, [new_event(n)])
            )
            for n in range(5)
        ]
        # Let the later appends commit where the adapter allows it, polling meanwhile.
        for _ in range(10):
            await asyncio.sleep(0.02)
            await poll()
        assert not any(e.stream_id == f"Held-{unique}" for e in seen)
    await asyncio.gather(*later)
    await poll()

    ours = [e for e in seen if e.stream_id.endswith(unique)]
    assert len(ours) == 7, "every event is read, the held ones included"
    assert len({e.event_id for e in ours}) == 7, "and each exactly once"
    positions = [e.log_position for e in seen]
    assert positions == sorted(positions)
    # A complete re-read from the same start gives exactly what the poller saw.
    assert [e.event_id for e in await read_everything_after(store, start)] == [
        e.event_id for e in seen
    ]
