"""Conformance suite of the DeadLetters port (log_follower/dead_letters/), run against every
adapter (memory, sqlite, postgres): park, a key's letters in log order, every letter in
(position, id) order after a cursor, retry requests, failures of a retry, removal, count;
letters of a projection's collection versions kept apart."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from log_follower import storage as follower_storage
from log_follower.dead_letters.port import (
    PARKED_BEHIND,
    DeadLetter,
    DeadLetters,
    LetterOwner,
    position_key,
)
from tests.contracts.conftest import Stores
from write_model.envelope import LogPosition

FAILED_AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def letter(
    subscriber: str,
    key: str,
    at: LogPosition,
    *,
    version: int = 1,
    error: str = "ValueError: poison",
    attempts: int = 4,
    event_id: str | None = None,
    collection_version: int | None = None,
) -> DeadLetter:
    return DeadLetter(
        owner=LetterOwner(subscriber, collection_version),
        key=key,
        event_id=event_id or str(uuid.uuid4()),
        stream_id=f"Order-{key}",
        stream_version=version,
        log_position=at,
        event_type="OrderSubmitted",
        error=error,
        attempts=attempts,
        failed_at=FAILED_AT,
    )


def far_away() -> int:
    """A transaction id no other test's letters are near, so pages of the shared table
    hold only this test's letters where it looks."""
    return random.randrange(10**12, 10**15)


async def test_parked_letters_round_trip_and_are_listed_per_key_in_log_order(
    saga_storage: Stores, unique: str
) -> None:
    letters = saga_storage.followers.dead_letters
    subscriber = f"saga:{unique}"
    base = far_away()
    late = letter(subscriber, "o-1", LogPosition(base + 9, 3), version=2, attempts=0)
    early = letter(subscriber, "o-1", LogPosition(base + 2, 7), version=1)
    other = letter(subscriber, "o-2", LogPosition(base + 5, 5))
    elsewhere = letter(f"{subscriber}-other", "o-1", LogPosition(base + 1, 1))

    await letters.park([late, early, other])
    await letters.park([elsewhere])

    assert await letters.of_key(LetterOwner(subscriber), "o-1") == [early, late]
    assert await letters.of_key(LetterOwner(subscriber), "o-3") == []
    assert await letters.parked_keys(LetterOwner(subscriber)) == {"o-1", "o-2"}
    assert await letters.get(early.id) == early
    assert await letters.get(f"{subscriber}:nope") is None


async def test_parking_a_letter_again_keeps_the_first(saga_storage: Stores, unique: str) -> None:
    letters = saga_storage.followers.dead_letters
    first = letter(f"saga:{unique}", "o-1", LogPosition(far_away(), 1))
    again = letter(
        first.owner.follower,
        "o-1",
        first.log_position,
        error=PARKED_BEHIND,
        attempts=0,
        event_id=first.event_id,
    )

    await letters.park([first])
    await letters.park([again])

    assert await letters.of_key(LetterOwner(first.owner.follower), "o-1") == [first]


async def test_every_letter_is_paged_in_position_then_id_order_after_a_cursor(
    saga_storage: Stores, unique: str
) -> None:
    letters = saga_storage.followers.dead_letters
    base = far_away()
    # Two letters at one position (two subscribers, one event): ordered by id.
    shared_event = str(uuid.uuid4())
    parked = [
        letter(f"saga:{unique}-b", "o-1", LogPosition(base + 1, 40), event_id=shared_event),
        letter(f"saga:{unique}-a", "o-1", LogPosition(base + 1, 40), event_id=shared_event),
        letter(f"saga:{unique}-a", "o-2", LogPosition(base + 3, 2)),
        letter(f"saga:{unique}-a", "o-3", LogPosition(base + 2, 99)),
    ]
    await letters.park(parked)
    in_order = sorted(parked, key=lambda found: (found.sort_key, found.id))
    cursor = (position_key(LogPosition(base, 0)), "")

    first_page = await letters.page(2, cursor)
    rest = await letters.page(2, (first_page[-1].sort_key, first_page[-1].id))

    assert [found.id for found in first_page + rest] == [found.id for found in in_order]
    assert in_order[0].owner.follower == f"saga:{unique}-a"  # "a" sorts before "b"
    everything = await letters.page(100_000)
    mine = [found for found in everything if found.owner.follower.startswith(f"saga:{unique}")]
    assert mine == in_order


async def test_a_retry_request_marks_every_letter_of_the_key(
    saga_storage: Stores, unique: str
) -> None:
    letters = saga_storage.followers.dead_letters
    subscriber = f"saga:{unique}"
    base = far_away()
    failing = letter(subscriber, "o-1", LogPosition(base + 1, 1))
    behind = letter(subscriber, "o-1", LogPosition(base + 2, 2), error=PARKED_BEHIND, attempts=0)
    untouched = letter(subscriber, "o-2", LogPosition(base + 3, 3))
    await letters.park([failing, behind, untouched])

    assert await letters.retry_requested(LetterOwner(subscriber)) == []
    assert await letters.request_retry(behind.id) is True
    assert await letters.request_retry(f"{subscriber}:missing") is False

    assert await letters.retry_requested(LetterOwner(subscriber)) == ["o-1"]
    assert [
        found.retry_requested for found in await letters.of_key(LetterOwner(subscriber), "o-1")
    ] == [
        True,
        True,
    ]
    assert (await letters.get(untouched.id)) == untouched
    assert await letters.retry_requested(LetterOwner(f"{subscriber}-other")) == []


async def test_a_failed_retry_records_the_error_and_the_tries_and_clears_the_request(
    saga_storage: Stores, unique: str
) -> None:
    letters = saga_storage.followers.dead_letters
    subscriber = f"saga:{unique}"
    base = far_away()
    failing = letter(subscriber, "o-1", LogPosition(base + 1, 1), attempts=4)
    behind = letter(subscriber, "o-1", LogPosition(base + 2, 2), error=PARKED_BEHIND, attempts=0)
    await letters.park([failing, behind])
    await letters.request_retry(failing.id)
    again_at = FAILED_AT + timedelta(hours=1)

    await letters.record_retry_failure(LetterOwner(subscriber), "o-1", "KeyError: 'x'", 3, again_at)

    found = await letters.of_key(LetterOwner(subscriber), "o-1")
    assert [(f.error, f.attempts, f.failed_at, f.retry_requested) for f in found] == [
        ("KeyError: 'x'", 7, again_at, False),
        ("KeyError: 'x'", 3, again_at, False),
    ]
    assert await letters.retry_requested(LetterOwner(subscriber)) == []


async def test_removed_letters_are_gone_and_the_count_follows(
    saga_storage: Stores, unique: str
) -> None:
    letters = saga_storage.followers.dead_letters
    subscriber = f"saga:{unique}"
    base = far_away()
    before = await letters.count()
    parked = [letter(subscriber, "o-1", LogPosition(base + n, n)) for n in range(1, 4)]
    await letters.park(parked)
    assert await letters.count() == before + 3

    await letters.remove([parked[0].id, parked[2].id])

    assert await letters.of_key(LetterOwner(subscriber), "o-1") == [parked[1]]
    assert await letters.count() == before + 1
    await letters.remove([parked[1].id])
    assert await letters.parked_keys(LetterOwner(subscriber)) == set()
    assert await letters.count() == before


async def test_letters_of_each_collection_version_are_apart_and_dropped_together(
    saga_storage: Stores, unique: str
) -> None:
    letters: DeadLetters = saga_storage.followers.dead_letters
    base = far_away()
    old = letter(unique, "Order-1", LogPosition(base + 1, 1), collection_version=1)
    new = letter(
        unique, "Order-1", LogPosition(base + 1, 1), collection_version=2, event_id=old.event_id
    )
    await letters.park([old, new])

    assert old.id != new.id
    assert await letters.of_key(LetterOwner(unique, 1), "Order-1") == [old]
    assert await letters.parked_keys(LetterOwner(unique)) == set()
    assert await letters.count(unique) == 2
    await letters.remove_owner(LetterOwner(unique, 1))

    assert await letters.of_key(LetterOwner(unique, 1), "Order-1") == []
    assert await letters.of_key(LetterOwner(unique, 2), "Order-1") == [new]
    assert await letters.count(unique) == 1


async def test_the_sagas_letters_of_an_older_sqlite_file_move_into_the_one_store(
    tmp_path: Path, unique: str
) -> None:
    """`orders dev` on a file of an earlier version: the saga's own letters table is moved
    into the one store when the file is opened, ids kept."""
    path = tmp_path / "events.db"
    async with follower_storage.sqlite_connection(path) as connection:
        await connection.executescript(
            "CREATE TABLE saga_dead_letters (id TEXT PRIMARY KEY, sort_key TEXT NOT NULL, "
            "subscriber TEXT NOT NULL, key TEXT NOT NULL, event_id TEXT NOT NULL, "
            "stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL, "
            "transaction_id INTEGER NOT NULL, position INTEGER NOT NULL, "
            "event_type TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, "
            "failed_at TEXT NOT NULL, retry_requested INTEGER NOT NULL DEFAULT 0);"
        )
        old = letter("saga:fulfillment", f"o-{unique}", LogPosition(7, 9))
        await connection.execute(
            "INSERT INTO saga_dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                old.id,
                old.sort_key,
                "saga:fulfillment",
                old.key,
                old.event_id,
                old.stream_id,
                old.stream_version,
                7,
                9,
                old.event_type,
                old.error,
                old.attempts,
                old.failed_at.isoformat(),
            ),
        )
    async with follower_storage.sqlite_connection(path) as connection:
        await follower_storage.migrate_sqlite(connection)
        await follower_storage.migrate_sqlite(connection)  # again: nothing more
        letters = follower_storage.sqlite_stores(connection).dead_letters

        assert await letters.page(10) == [old]
        assert await letters.request_retry(old.id)
        assert await letters.retry_requested(LetterOwner("saga:fulfillment")) == [old.key]
