"""Change feed port: the projector publishes which documents it wrote, API processes listen."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DocumentChanged:
    collection: str  # logical collection, e.g. "orders"
    id: str
    version: int


@dataclass(frozen=True, slots=True)
class FeedGap:
    """Changes may have been missed here (the feed's connection dropped, or the subscriber
    fell behind and lost batches): a subscriber re-reads what it watches."""

    reason: str


ChangeBatch = list[DocumentChanged]
FeedItem = ChangeBatch | FeedGap
# How many batches a subscriber may fall behind before it loses the oldest.
SUBSCRIBER_QUEUE_SIZE = 1000
# Whether a watch is connected now: while it is not, changes may be published unseen.
Connected = Callable[[], bool]


class ChangeFeed(Protocol):
    async def publish(self, changes: Sequence[DocumentChanged]) -> None: ...

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[FeedItem]]:
        """Batches of changes published after the subscription started, and a FeedGap
        wherever some may have been lost."""
        ...

    def watch(
        self, on_item: Callable[[FeedItem], None]
    ) -> contextlib.AbstractAsyncContextManager[Connected]:
        """Call `on_item` with each batch published from now on, and a FeedGap wherever
        some may have been lost, at once as each arrives: before any subscriber's iterator
        yields it (subscriptions are watches feeding a queue), so what `on_item` does (drop
        cached documents) is done before a subscriber acts on the same change. Yields
        whether the watch is connected now."""
        ...
