"""One lag run: append at a steady rate and time each append's commit to the change feed
notice of its order document at that version or later; then report the distribution.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bench.common import AppProcess, percentile, say, verdict
from bench.read_model.seeding import Append, Catalog, EventFactory, paced_order_appends
from bench.read_model.services import caught_up, lag_in_events
from read_model.change_feed.port import ChangeFeed, FeedGap, FeedItem
from read_model.document_store.port import DocumentStore
from read_model.projector_process import active_version
from read_model.runner import physical_collection
from write_model.event_store import postgres
from write_model.registry import EventTypeRegistry

LAG_P99_TARGET_MS = 100.0


@dataclass
class LagResult:
    appended_events: int
    append_seconds: float
    commits: int
    notifications: int
    lags_ms: list[float]  # sorted, one per append; inf where its change was never seen
    lag_at_end: dict[str, int]
    drain_seconds: float | None  # None: not caught up within the drain window
    drain_window: float
    first_p50: float
    last_p50: float
    orders_documents: tuple[int, int]  # before, after
    gc_pauses: tuple[int, float, float]  # this process: collections, total ms, longest ms

    @property
    def unseen(self) -> int:
        return sum(1 for lag in self.lags_ms if math.isinf(lag))


def shown_ms(value: float, window: float) -> str:
    return f"> {window * 1000:,.0f} ms (never seen)" if math.isinf(value) else f"{value:,.1f} ms"


async def paced_lag_run(
    store: postgres.PostgresEventStore,
    feed: ChangeFeed,
    documents: DocumentStore,
    catalog: Catalog,
    registry: EventTypeRegistry,
    *,
    rate: float,
    seconds: float,
    drain_seconds: float,
    run: str,
    check: AppProcess | None = None,
) -> LagResult:
    """Append `rate` events/s for `seconds` (orders of 5 events in 4 appends, each order's
    appends 50 ms apart, so many streams are in flight) and time each append's commit to the
    arrival of the change feed notice of its order document at that version or later."""
    rng = random.Random(run)
    factory = EventFactory(registry, f"bench-read-{run}")
    orders_per_second = rate / 5
    order_count = max(1, int(orders_per_second * seconds))
    plans = [
        paced_order_appends(factory, catalog, f"{run}-{n:06d}", rng) for n in range(order_count)
    ]
    spacing = 0.05
    orders_collection = physical_collection("orders", await active_version(documents, "orders"))
    orders_before = await documents.count(orders_collection, {})

    commits: list[tuple[str, int, float]] = []  # order id, version, monotonic commit time
    received: dict[str, list[tuple[int, float]]] = defaultdict(list)
    notifications = 0

    async def consume(changes: AsyncIterator[FeedItem]) -> None:
        nonlocal notifications
        async for batch in changes:
            if isinstance(batch, FeedGap):
                say(f"  the change feed had a gap ({batch.reason}): notifications were lost")
                continue
            now = time.monotonic()
            for change in batch:
                if change.collection == "orders":
                    notifications += 1
                    received[change.id].append((change.version, now))

    async def sleep_until(moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def place(appends: list[Append], start: float) -> None:
        for n, a in enumerate(appends):
            await sleep_until(start + n * spacing)
            result = await store.append_to_stream(a.stream_id, a.stream_type, a.expected, a.events)
            commits.append((a.order_id or "", result.version, time.monotonic()))

    pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - gc_started[0]) * 1000)

    # The bench's own data (seed, planned appends) is kept out of the collector's way: the
    # pauses measured below are those of what the run allocates.
    gc.collect()
    gc.freeze()
    gc.callbacks.append(on_gc)
    try:
        async with feed.subscribe() as changes:
            consumer = asyncio.create_task(consume(changes))
            await asyncio.sleep(0.2)  # the LISTEN is in place
            tasks: list[asyncio.Task[None]] = []
            t0 = time.monotonic() + 0.05
            try:
                for n, appends in enumerate(plans):
                    start = t0 + n / orders_per_second
                    await sleep_until(start)
                    if check is not None and n % 200 == 0:
                        check.check_running()
                    tasks.append(asyncio.create_task(place(appends, start)))
                await asyncio.gather(*tasks)
                append_seconds = time.monotonic() - t0
                lag_at_end = await lag_in_events(store, documents)
                drained = await caught_up(store, documents, drain_seconds, check, fail=False)
                await asyncio.sleep(0.5)  # the change notices of the last batch
            finally:
                for task in tasks:
                    task.cancel()
                consumer.cancel()
                await asyncio.gather(consumer, *tasks, return_exceptions=True)
    finally:
        gc.callbacks.remove(on_gc)
        gc.unfreeze()
    orders_after = await documents.count(orders_collection, {})

    lags: list[tuple[float, float]] = []  # commit time, lag ms (inf: never seen)
    for order_id, version, committed in commits:
        seen = next((at for v, at in received.get(order_id, ()) if v >= version), None)
        lags.append((committed, math.inf if seen is None else (seen - committed) * 1000))
    lags.sort()
    window = max(1, len(lags) // 5)
    return LagResult(
        appended_events=sum(len(a.events) for appends in plans for a in appends),
        append_seconds=append_seconds,
        commits=len(commits),
        notifications=notifications,
        lags_ms=sorted(lag for _, lag in lags),
        lag_at_end=lag_at_end,
        drain_seconds=drained,
        drain_window=drain_seconds,
        first_p50=percentile(sorted(lag for _, lag in lags[:window]), 0.5),
        last_p50=percentile(sorted(lag for _, lag in lags[-window:]), 0.5),
        orders_documents=(orders_before, orders_after),
        gc_pauses=(len(pauses), sum(pauses), max(pauses, default=0.0)),
    )


def report_lag(label: str, result: LagResult, figures: list[str]) -> None:
    lags, window = result.lags_ms, result.drain_window + 0.5
    p50, p99, worst = percentile(lags, 0.5), percentile(lags, 0.99), lags[-1] if lags else 0.0
    say(
        f"  appended {result.appended_events:,} events in {result.commits:,} appends over "
        f"{result.append_seconds:.1f} s = {result.appended_events / result.append_seconds:,.0f} "
        f"events/s; {result.notifications:,} orders change notices received; orders documents "
        f"{result.orders_documents[0]:,} -> {result.orders_documents[1]:,}"
    )
    say(
        f"  lag append commit -> change notice of its order document: p50 "
        f"{shown_ms(p50, window)}, p99 {shown_ms(p99, window)}, max {shown_ms(worst, window)} "
        f"over {len(lags):,} appends ({result.unseen:,} never seen)"
    )
    say(
        f"  p50 over the first fifth of the appends {shown_ms(result.first_p50, window)}, "
        f"over the last fifth {shown_ms(result.last_p50, window)}; garbage collection in "
        f"this process: {result.gc_pauses[0]:,} runs, {result.gc_pauses[1]:,.0f} ms in all, "
        f"longest {result.gc_pauses[2]:,.1f} ms"
    )
    behind = ", ".join(f"{name} {n:,}" for name, n in result.lag_at_end.items())
    if result.drain_seconds is None:
        drained = f"NOT caught up {result.drain_window:g} s later"
    else:
        drained = f"caught up {result.drain_seconds:.2f} s later"
    kept_up = result.drain_seconds is not None and result.drain_seconds < 1.0
    say(
        f"  events behind the head when appending stopped: {behind}; {drained} -> kept up: "
        f"{'yes' if kept_up else 'NO'}"
    )
    met = p99 < LAG_P99_TARGET_MS and kept_up
    figures.append(
        f"lag p99, {label:<33} {shown_ms(p99, window):>14}  (target < "
        f"{LAG_P99_TARGET_MS:.0f} ms: {verdict(met)}; p50 {shown_ms(p50, window)}; kept up: "
        f"{'yes' if kept_up else 'NO'})"
    )
