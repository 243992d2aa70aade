"""The in-process change feed: a subscriber that falls behind is told what it lost."""

from __future__ import annotations

from read_model.change_feed.in_process import InProcessChangeFeed
from read_model.change_feed.port import DocumentChanged, FeedGap


async def test_a_subscriber_that_falls_behind_gets_a_gap_then_the_newest_batches() -> None:
    feed = InProcessChangeFeed(queue_size=3)
    batches = [[DocumentChanged("orders", f"o{n}", n)] for n in range(1, 6)]
    async with feed.subscribe() as changes:
        for batch in batches:
            await feed.publish(batch)

        received = [await anext(changes) for _ in range(4)]

    assert received == [FeedGap("2 change batches dropped (slow consumer)"), *batches[2:]]
