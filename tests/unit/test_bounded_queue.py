"""DropOldestQueue: a slow consumer loses the oldest items, never memory, and a waiting
consumer wakes for the next item."""

from __future__ import annotations

import asyncio

from read_model.bounded_queue import DropOldestQueue


def test_a_full_queue_drops_its_oldest_items_and_counts_them() -> None:
    async def scenario() -> None:
        queue: DropOldestQueue[int] = DropOldestQueue(3)
        for item in range(5):
            queue.offer(item)
        assert queue.dropped == 2
        assert [await queue.get() for _ in range(3)] == [2, 3, 4]
        assert queue.empty()

    asyncio.run(scenario())


def test_waiting_consumers_each_get_the_next_items_in_order() -> None:
    async def scenario() -> None:
        queue: DropOldestQueue[str] = DropOldestQueue(10)
        first = asyncio.create_task(queue.get())
        second = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        assert not first.done() and not second.done()
        queue.offer("a")
        await asyncio.sleep(0)
        queue.offer("b")
        assert sorted(await asyncio.gather(first, second)) == ["a", "b"]
        assert queue.dropped == 0

    asyncio.run(scenario())


def test_a_consumer_that_stops_waiting_loses_no_item() -> None:
    async def scenario() -> None:
        queue: DropOldestQueue[int] = DropOldestQueue(10)
        gone = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        queue.offer(7)
        assert await asyncio.wait_for(queue.get(), 1) == 7

    asyncio.run(scenario())


def test_a_queue_without_a_bound_keeps_every_item_in_order() -> None:
    async def scenario() -> None:
        queue: DropOldestQueue[int] = DropOldestQueue(None)
        for item in range(1_000):
            queue.offer(item)
        assert queue.dropped == 0
        assert [await queue.get() for _ in range(1_000)] == list(range(1_000))
        assert queue.empty()

    asyncio.run(scenario())
