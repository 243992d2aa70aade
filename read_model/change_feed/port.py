"""Change feed port: the projector publishes which documents it wrote, API processes listen."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
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


class ChangeFeed(Protocol):
    async def publish(self, changes: Sequence[DocumentChanged]) -> None: ...

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[FeedItem]]:
        """Batches of changes published after the subscription started, and a FeedGap
        wherever some may have been lost."""
        ...
