"""Live order updates for GraphQL subscriptions: one change-feed subscription per API
process, fanned out to the process's subscribers.

`LiveOrders.running()` (entered by the server's lifespan) subscribes to the change feed
once and starts a background task. For each batch the projector publishes, the task
loads every changed order that has at least one local watcher, once, with one read of the
active orders collection, and offers it to the matching watchers. Each watcher has a
bounded queue that drops its oldest document when full, so a slow subscriber cannot grow
memory; a dropped document is superseded by a later one of the same order (or, for a
filter watcher, was one of many).

Where the feed says changes may have been missed (a FeedGap: its connection was replaced,
or this process fell behind), every watched order is loaded again, and every order written
since the last one seen (by `_pos`) is offered to the filter watchers, so no subscriber
misses an update made during the gap.

`LiveOrders.order_updates(id, after_version)` first yields the current document when it
is newer than `after_version`, then every newer version the projector writes, never one
at or below the last sent. (The projector may fold quick successive writes to an order
into one document write; only the version it wrote is published, and so delivered.)
`LiveOrders.orders_updates(match)` yields every update whose loaded document matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from read_model.bounded_queue import DropOldestQueue
from read_model.change_feed.port import ChangeBatch, ChangeFeed, FeedGap, FeedItem
from read_model.document_store.port import POSITION_FIELD, Document, position_key
from read_model.projections.orders import ORDERS, OrdersProjection
from read_model.service import ReadModel

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
# Orders re-read per query after a gap, and at most this many pages of them.
RESYNC_PAGE = 500
RESYNC_PAGES = 20
# How many orders a filter watcher remembers the last sent version of (to skip repeats).
REMEMBERED_VERSIONS = 10_000

Match = Callable[[Document], bool]


@dataclass(eq=False)
class _Watcher:
    """One subscription: the documents offered to it, oldest first."""

    match: Match
    queue: DropOldestQueue[Document] = field(default_factory=lambda: DropOldestQueue(QUEUE_SIZE))


def matches_filter(query: Mapping[str, Any]) -> Match:
    """A predicate on an order document: equality on each of `query`'s fields (the
    `OrderFilter.as_query()` shape: customerId, status)."""
    items = tuple(query.items())
    return lambda doc: all(doc.get(key) == value for key, value in items)


class LiveOrders:
    def __init__(self, feed: ChangeFeed, read_model: ReadModel) -> None:
        self._feed = feed
        self._read_model = read_model
        self._by_id: dict[str, set[_Watcher]] = {}
        self._filtered: set[_Watcher] = set()
        self._seen_position = ""  # the highest `_pos` of an order this process loaded
        self.gaps = 0  # FeedGaps made up for, for /metrics

    # ----------------------------------------------------------- lifecycle

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Subscribe to the change feed (before returning, so no change published after
        the server started is missed) and fan batches out until exited."""
        async with self._feed.subscribe() as batches:
            since = await self._read_model.position(OrdersProjection.name)
            self._seen_position = position_key(since)
            task = asyncio.create_task(self._pump(batches), name="live-orders")
            task.add_done_callback(_report_end)
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pump(self, items: AsyncIterator[FeedItem]) -> None:
        missed: FeedGap | None = None
        async for item in items:
            # Documents were written, so checkpoints moved: consistency waits look now.
            self._read_model.checkpoints_moved()
            try:
                if missed is not None:
                    await self.resync(missed)
                    missed = None
                if isinstance(item, FeedGap):
                    await self.resync(item)
                else:
                    await self.deliver(item)
            except Exception as error:
                # The read store unreachable, say: what this item announced is made up for
                # by a resync as soon as a later item can be delivered.
                log.warning("live updates: delivering %r failed: %r", item, error)
                missed = FeedGap(f"a delivery failed ({type(error).__name__})")

    async def deliver(self, batch: ChangeBatch) -> None:
        """Load each changed order that someone watches, once, and offer it to them."""
        wanted = sorted(
            {
                change.id
                for change in batch
                if change.collection == ORDERS and (self._filtered or change.id in self._by_id)
            }
        )
        if not wanted:
            return
        docs = await self._read_model.get_many(ORDERS, wanted)
        for order_id in wanted:
            if (doc := docs.get(order_id)) is not None:
                self._offer(doc)

    async def resync(self, gap: FeedGap) -> None:
        """After changes may have been missed: every watched order as it is now, and every
        order written since the last one seen to the filter watchers."""
        self.gaps += 1
        log.info("live updates: resyncing subscribers (%s)", gap.reason)
        if self._by_id:
            docs = await self._read_model.get_many(ORDERS, sorted(self._by_id))
            for doc in docs.values():
                self._offer(doc)
        if not self._filtered:
            return
        for _ in range(RESYNC_PAGES):
            changed = await self._read_model.changed_after(ORDERS, self._seen_position, RESYNC_PAGE)
            for doc in changed:
                self._offer(doc)
            if len(changed) < RESYNC_PAGE:
                return
        log.warning(
            "live updates: more than %s orders changed during the gap; filter subscribers "
            "get the first of them, and every later change as usual",
            RESYNC_PAGE * RESYNC_PAGES,
        )

    def _offer(self, doc: Document) -> None:
        self._seen_position = max(self._seen_position, doc.get(POSITION_FIELD, ""))
        for watcher in (*self._by_id.get(doc["_id"], ()), *self._filtered):
            if watcher.match(doc):
                watcher.queue.offer(doc)

    # ------------------------------------------------------------ watching

    def watchers(self, order_id: str | None = None) -> int:
        """How many subscriptions watch `order_id` (None: how many watch by filter)."""
        if order_id is None:
            return len(self._filtered)
        return len(self._by_id.get(order_id, ()))

    @contextlib.contextmanager
    def _watching(self, order_id: str | None, match: Match) -> Iterator[_Watcher]:
        watcher = _Watcher(match)
        if order_id is None:
            self._filtered.add(watcher)
        else:
            self._by_id.setdefault(order_id, set()).add(watcher)
        try:
            yield watcher
        finally:
            if order_id is None:
                self._filtered.discard(watcher)
            else:
                watchers = self._by_id.get(order_id)
                if watchers is not None:
                    watchers.discard(watcher)
                    if not watchers:
                        del self._by_id[order_id]
            if watcher.queue.dropped:
                log.info(
                    "live updates: a slow subscriber missed %s superseded documents",
                    watcher.queue.dropped,
                )

    async def order_updates(
        self, order_id: str, after_version: int | None
    ) -> AsyncIterator[Document]:
        """The order's document when newer than `after_version` (any, when None), then each
        newer version as the projector writes it. An order that does not exist yet sends
        nothing until it is created."""
        with self._watching(order_id, lambda doc: True) as watcher:
            # Watching before reading: a version written meanwhile is queued, not lost.
            last = (after_version if after_version is not None else 0, "")
            current = await self._read_model.get(ORDERS, order_id)
            if current is not None and (after_version is None or current["version"] > last[0]):
                last = _written(current)
                yield current
            # While it waits, a subscription holds no document (its own copy, for the first):
            # thousands of them wait at once.
            current = None
            while True:
                doc = await watcher.queue.get()
                if _written(doc) > last:
                    last = _written(doc)
                    yield doc
                del doc

    async def orders_updates(self, match: Match) -> AsyncIterator[Document]:
        """Every order document the projector writes from now on that `match`es."""
        last: OrderedDict[str, tuple[int, str]] = OrderedDict()
        if not self._filtered:
            # Nobody watched by filter, so orders were loaded only for id watchers: a gap
            # from now on is made up for from where the projection is now.
            since = position_key(await self._read_model.position(OrdersProjection.name))
            self._seen_position = max(self._seen_position, since)
        with self._watching(None, match) as watcher:
            while True:
                doc = await watcher.queue.get()
                order_id, written = doc["_id"], _written(doc)
                if last.get(order_id, (0, "")) >= written:
                    continue  # seen already (the same version loaded for two batches)
                last[order_id] = written
                last.move_to_end(order_id)
                if len(last) > REMEMBERED_VERSIONS:
                    last.popitem(last=False)
                yield doc


def _written(doc: Document) -> tuple[int, str]:
    """Which write of the order a document is: its version, then the last event applied
    (`_pos`), since the fulfillment saga's events change the order without its version."""
    return doc["version"], doc.get(POSITION_FIELD, "")


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error(
            "live updates stopped: subscriptions receive nothing more: %s",
            error,
            exc_info=(type(error), error, error.__traceback__),
        )
