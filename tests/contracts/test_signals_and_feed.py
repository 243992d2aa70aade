"""Conformance of the projector's coordination ports, for the in-process and PostgreSQL
adapters: ChangeFeed (projector -> API processes), AppendSignal (writers -> projector) and
LeaderLock (one active projector per projection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from log_follower.append_signal.in_process import InProcessAppendSignal
from log_follower.append_signal.postgres import APPENDED_CHANNEL, PostgresAppendSignal
from log_follower.leader_lock.in_process import InProcessLeaderLock
from log_follower.leader_lock.postgres import PostgresLeaderLock
from log_follower.postgres_listener import PostgresListener
from read_model.change_feed.in_process import InProcessChangeFeed
from read_model.change_feed.port import DocumentChanged, FeedGap
from read_model.change_feed.postgres import PostgresChangeFeed, decode, encode
from tests.conftest import service_url
from tests.tcp_proxy import proxied


@dataclass
class Coordination:
    feed: Any
    signal: Any
    lock: Any
    poke: Any  # what a writer does after an append: wakes the signal


@pytest.fixture(params=["in-process", "postgres"])
async def coordination(request: pytest.FixtureRequest) -> AsyncIterator[Coordination]:
    if request.param == "in-process":
        signal = InProcessAppendSignal()

        async def poke() -> None:
            signal.notify()

        yield Coordination(InProcessChangeFeed(), signal, InProcessLeaderLock(), poke)
        return
    dsn = service_url("DATABASE_URL")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    listener = PostgresListener(dsn)
    await listener.start()
    signal = PostgresAppendSignal(listener)
    await signal.start()

    async def poke() -> None:
        await pool.execute("SELECT pg_notify($1, '')", APPENDED_CHANNEL)

    try:
        yield Coordination(
            PostgresChangeFeed(pool, listener), signal, PostgresLeaderLock(dsn), poke
        )
    finally:
        await signal.close()
        await listener.close()
        await pool.close()


async def next_batch(changes: AsyncIterator[list[DocumentChanged]]) -> list[DocumentChanged]:
    async with asyncio.timeout(5):
        return await anext(changes)


async def test_subscribers_receive_what_is_published_after_they_subscribe(
    coordination: Coordination, unique: str
) -> None:
    feed = coordination.feed
    batch = [DocumentChanged("orders", f"o-{unique}", 3), DocumentChanged("customers", "c", 1)]
    async with feed.subscribe() as first, feed.subscribe() as second:
        await feed.publish(batch)

        assert await next_batch(first) == batch
        assert await next_batch(second) == batch


async def test_a_watch_hears_each_batch_before_a_subscriber_can_act_on_it(
    coordination: Coordination, unique: str
) -> None:
    """A watcher (the API's read cache) is told at once, in the callback that queues the
    batch for subscribers: by the time a subscriber's iterator yields it, it was heard."""
    feed = coordination.feed
    heard: list[object] = []
    batch = [DocumentChanged("orders", f"o-{unique}", 1)]
    async with feed.watch(heard.append) as connected, feed.subscribe() as changes:
        assert connected()
        await feed.publish(batch)

        assert await next_batch(changes) == batch
        assert heard == [batch]
    await feed.publish([DocumentChanged("orders", f"o-{unique}", 2)])
    assert heard == [batch]  # a watch ends with its context


async def test_a_large_batch_arrives_whole_in_order(
    coordination: Coordination, unique: str
) -> None:
    """PostgreSQL refuses NOTIFY payloads of 8,000 bytes; large batches are split."""
    batch = [DocumentChanged("orders", f"o-{unique}-{n:05d}", n) for n in range(2_000)]
    received: list[DocumentChanged] = []
    async with coordination.feed.subscribe() as changes:
        await coordination.feed.publish(batch)
        while len(received) < len(batch):
            received.extend(await next_batch(changes))
    assert received == batch


async def test_a_wait_returns_early_when_an_append_is_signalled(
    coordination: Coordination,
) -> None:
    listener = coordination.signal.listener()
    started = time.monotonic()
    waiter = asyncio.create_task(listener.wait(10))
    await asyncio.sleep(0.05)
    await coordination.poke()
    await waiter
    assert time.monotonic() - started < 5


async def test_a_wait_without_appends_lasts_the_poll_interval(coordination: Coordination) -> None:
    listener = coordination.signal.listener()
    started = time.monotonic()
    await listener.wait(0.3)
    assert time.monotonic() - started >= 0.29


async def test_every_listener_hears_a_signal_even_while_busy(coordination: Coordination) -> None:
    """Projections share one signal: one waking up must not consume another's wake-up, and
    a signal that arrives while a listener is busy still ends its next wait at once."""
    waiting, busy = coordination.signal.listener(), coordination.signal.listener()
    woken = asyncio.create_task(waiting.wait(10))
    await asyncio.sleep(0.05)
    await coordination.poke()
    await woken
    started = time.monotonic()
    await busy.wait(10)
    assert time.monotonic() - started < 5


async def test_one_leader_at_a_time_and_the_next_takes_over(
    coordination: Coordination, unique: str
) -> None:
    lock = coordination.lock
    name = f"projection-{unique}"
    events: list[str] = []

    async def leader(label: str, hold: float) -> None:
        async with lock.hold(name):
            events.append(f"{label} leads")
            assert not lock.lost(name)
            await asyncio.sleep(hold)
            events.append(f"{label} done")

    first = asyncio.create_task(leader("first", 0.5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(leader("second", 0))
    await asyncio.gather(first, second)

    assert events == ["first leads", "first done", "second leads", "second done"]


def test_notify_payloads_stay_under_the_postgres_limit() -> None:
    batch = [DocumentChanged("orders", f"order-{n:040d}", n) for n in range(5_000)]
    payloads = encode(batch)
    assert len(payloads) > 1
    assert all(len(p.encode()) < 8_000 for p in payloads)
    assert [c for p in payloads for c in decode(p)] == batch


# ------------------------------------------------- PostgreSQL connections that drop


async def terminate(dsn: str, application_name: str) -> int:
    """pg_terminate_backend of every session with that application_name: a dropped
    connection, as a network cut or a failover gives."""
    admin = await asyncpg.connect(dsn)
    try:
        return await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            application_name,
        )
    finally:
        await admin.close()


async def test_a_dropped_listen_connection_is_replaced_and_subscribers_are_told(
    unique: str,
) -> None:
    dsn = service_url("DATABASE_URL")
    name = f"listener {unique}"
    listener = PostgresListener(dsn, application_name=name, check_seconds=0.2)
    await listener.start()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    feed = PostgresChangeFeed(pool, listener, channel=f"docs_{unique}")
    signal = PostgresAppendSignal(listener, channel=f"appended_{unique}")
    await signal.start()
    woken = signal.listener()
    try:
        async with feed.subscribe() as changes:
            assert await terminate(dsn, name) == 1
            # The reconnect itself tells the subscriber that it may have missed changes,
            assert await next_batch(changes) == FeedGap("the LISTEN connection was replaced")  # type: ignore[comparison-overlap]
            assert listener.healthy and listener.reconnects == 1
            # and wakes every follower of the log to look for appends it was not told of.
            started = time.monotonic()
            await woken.wait(10)
            assert time.monotonic() - started < 5
            # Notifications flow on the new connection.
            batch = [DocumentChanged("orders", f"o-{unique}", 2)]
            await feed.publish(batch)
            assert await next_batch(changes) == batch
    finally:
        await signal.close()
        await listener.close()
        await pool.close()


async def test_a_leader_whose_lock_connection_drops_knows_it_lost_the_lead(unique: str) -> None:
    dsn = service_url("DATABASE_URL")
    lock = PostgresLeaderLock(dsn, heartbeat_seconds=0.2)
    name = f"projection-{unique}"
    async with lock.hold(name):
        assert not lock.lost(name)
        await terminate(dsn, f"orders-lock {name}")
        deadline = time.monotonic() + 5
        while not lock.lost(name):
            assert time.monotonic() < deadline, "the dropped lock went unnoticed"
            await asyncio.sleep(0.05)
    # Another process can lead now; so can this one again.
    async with lock.hold(name):
        assert not lock.lost(name)


async def test_a_leader_whose_heartbeat_is_answered_late_keeps_the_lead(unique: str) -> None:
    """A database (or a network) slow for a moment, as under load, answers the heartbeat
    after its interval although the session, and so the lock, never stopped being this
    process's: that is not a lost lead (each false loss would cost the leader a restart)."""
    async with proxied(service_url("DATABASE_URL")) as (proxy, dsn):
        lock = PostgresLeaderLock(dsn, heartbeat_seconds=0.2)
        name = f"relay-{unique}"
        async with lock.hold(name):
            proxy.pause()
            await asyncio.sleep(1.0)  # five heartbeats without an answer
            assert not lock.lost(name)
            proxy.resume()
            await asyncio.sleep(0.5)
            assert not lock.lost(name)


async def test_a_leader_whose_lock_connection_hangs_knows_it_lost_the_lead(unique: str) -> None:
    """No answer within `answer_seconds`: the database may have ended the session and given
    the lock to a standby, so the leader stops."""
    async with proxied(service_url("DATABASE_URL")) as (proxy, dsn):
        lock = PostgresLeaderLock(dsn, heartbeat_seconds=0.2, answer_seconds=1.0)
        name = f"relay-{unique}"
        async with lock.hold(name):
            proxy.pause()
            started = time.monotonic()
            while not lock.lost(name):
                assert time.monotonic() - started < 5, "the hung connection went unnoticed"
                await asyncio.sleep(0.05)
            assert time.monotonic() - started >= 1.0


async def test_a_malformed_change_notification_is_a_gap(unique: str) -> None:
    """What it announced cannot be known: watchers (a read cache) and subscribers make up for
    it as for any gap."""
    dsn = service_url("DATABASE_URL")
    listener = PostgresListener(dsn)
    await listener.start()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    channel = f"docs_{unique}"
    feed = PostgresChangeFeed(pool, listener, channel=channel)
    try:
        async with feed.subscribe() as changes:
            await pool.execute("SELECT pg_notify($1, $2)", channel, "not json")
            assert await next_batch(changes) == FeedGap("a malformed change notification")  # type: ignore[comparison-overlap]
            batch = [DocumentChanged("orders", f"o-{unique}", 1)]
            await feed.publish(batch)
            assert await next_batch(changes) == batch
    finally:
        await listener.close()
        await pool.close()
