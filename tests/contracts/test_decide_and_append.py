"""The one decide-and-append (write_model/decide_and_append.py) over every EventStore
adapter: writers racing on the same streams lose no update, and decisions on several
streams land together or not at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.contracts.harness import StoreHarness
from tests.tally import TALLY, Add, tally_registry
from write_model.command_context import CommandContext, Principal
from write_model.decide_and_append import ConcurrencyConflict, DecideAndAppend, Decision

CONTEXT = CommandContext("corr-1", principal=Principal.system("test"))


def writer(harness: StoreHarness, max_attempts: int = 200) -> DecideAndAppend:
    return DecideAndAppend(
        harness.store,
        tally_registry(),
        clock=lambda: datetime.now(UTC),
        max_attempts=max_attempts,
        first_backoff_seconds=0.001,
        max_backoff_seconds=0.02,
    )


async def test_racing_writers_lose_no_update(harness: StoreHarness, unique: str) -> None:
    write = writer(harness)

    await asyncio.gather(
        *(write.one(Decision(TALLY, unique, Add(n)), CONTEXT) for n in range(1, 21))
    )

    events = await harness.store.read_stream(f"Tally-{unique}")
    assert sorted(e.data["amount"] for e in events) == list(range(1, 21))
    # Each decided on the tally as the one before it left it.
    running = 0
    for event in events:
        running += event.data["amount"]
        assert event.data["total"] == running


async def test_racing_writers_on_two_streams_move_them_together(
    harness: StoreHarness, unique: str
) -> None:
    write = writer(harness)

    async def move(n: int) -> None:
        out, into = (f"a-{unique}", f"b-{unique}") if n % 2 else (f"b-{unique}", f"a-{unique}")
        await write.together(
            [Decision(TALLY, out, Add(-n)), Decision(TALLY, into, Add(n))], CONTEXT
        )

    await asyncio.gather(*(move(n) for n in range(1, 13)))

    found = await harness.store.read_streams([f"Tally-a-{unique}", f"Tally-b-{unique}"])
    a, b = found[f"Tally-a-{unique}"], found[f"Tally-b-{unique}"]
    assert len(a) == len(b) == 12
    assert a[-1].data["total"] + b[-1].data["total"] == 0  # every move landed whole
    assert {e.transaction_id for e in a} == {e.transaction_id for e in b}


async def test_a_stale_expected_version_on_one_stream_writes_neither(
    harness: StoreHarness, unique: str
) -> None:
    write = writer(harness)
    await write.one(Decision(TALLY, f"a-{unique}", Add(1)), CONTEXT)

    with pytest.raises(ConcurrencyConflict):
        await write.together(
            [
                Decision(TALLY, f"b-{unique}", Add(5)),
                Decision(TALLY, f"a-{unique}", Add(5), expected_version=2),
            ],
            CONTEXT,
        )

    assert await harness.store.stream_version(f"Tally-b-{unique}") == 0
    assert await harness.store.stream_version(f"Tally-a-{unique}") == 1
