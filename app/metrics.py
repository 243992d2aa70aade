"""Prometheus metrics of an API process (and of the ops port of the projector and saga
processes), served on /metrics.

Each app gets its own registry (so tests can build several apps in one process). Request
and command metrics are recorded as they happen; projector lag and dead letters (the
projections' and the saga's, by `source`) are read from the stores when /metrics is scraped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from log_follower.status.view import FollowerStatus
from read_model.service import ReadModel

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
STORES_TIMEOUT_SECONDS = 2.0
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "orders_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "orders_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.command_seconds = Histogram(
            "orders_command_duration_seconds",
            "Command handling latency by mutation and outcome",
            ["command", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.appended = Counter(
            "orders_events_appended",
            "Events appended to the event store by commands",
            ["stream_type"],
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "orders_projection_lag_events",
            "Events in the log a projection has not applied yet (read at scrape)",
            ["projection"],
            registry=self.registry,
        )
        self.projection_position = Gauge(
            "orders_projection_position",
            "Global log position a projection has applied up to (read at scrape)",
            ["projection"],
            registry=self.registry,
        )
        self.listener_connected = Gauge(
            "orders_postgres_listener_connected",
            "1 while the process's PostgreSQL LISTEN connection is up",
            registry=self.registry,
        )
        self.feed_gaps = Gauge(
            "orders_change_feed_gaps",
            "Change-feed gaps (reconnects, batches dropped for a slow consumer) made up for "
            "by re-reading watched documents, since start",
            registry=self.registry,
        )
        self.read_cache = Gauge(
            "orders_read_cache_documents",
            "Reads by id of the API's read cache since start (hits, misses), documents it "
            "dropped for a change (invalidated), times it dropped everything (cleared: a "
            "change-feed gap or its connection down), and what it holds now (held)",
            ["outcome"],
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "orders_dead_letters",
            "Events parked as dead letters, by follower (a projection, the saga or a "
            "participant); read at scrape",
            ["follower"],
            registry=self.registry,
        )
        # Every follower of the log (the `processes` query's figures), read at scrape.
        self.follower_leading = Gauge(
            "orders_follower_leading",
            "1 while a process leads the follower (its last report is fresh)",
            ["follower", "kind"],
            registry=self.registry,
        )
        self.follower_lag = Gauge(
            "orders_follower_lag_events",
            "Events in the log after the follower's position",
            ["follower", "kind"],
            registry=self.registry,
        )
        self.follower_position = Gauge(
            "orders_follower_position",
            "Global log position the follower has handled up to",
            ["follower", "kind"],
            registry=self.registry,
        )
        self.follower_oldest_unhandled = Gauge(
            "orders_follower_oldest_unhandled_seconds",
            "Age of the oldest event the follower has not handled (0: none waits)",
            ["follower", "kind"],
            registry=self.registry,
        )
        self.follower_heartbeat_age = Gauge(
            "orders_follower_heartbeat_age_seconds",
            "Seconds since the follower's leader last reported (absent: it never did)",
            ["follower", "kind"],
            registry=self.registry,
        )

    # ---------------------------------------------------------- recording

    def request_finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def command_finished(
        self, command: str, outcome: str, seconds: float, stream_type: str, appended: int
    ) -> None:
        self.command_seconds.labels(command, outcome).observe(seconds)
        if appended:
            self.appended.labels(stream_type).inc(appended)

    # ------------------------------------------------------------ scraping

    def render_local(self) -> bytes:
        """The exposition text of what this process recorded, without reading the stores."""
        return generate_latest(self.registry)

    def _followers(self, statuses: list[FollowerStatus]) -> None:
        now = datetime.now(UTC)
        for status in statuses:
            labels = (status.name, status.kind.value)
            self.dead_letters.labels(status.name).set(status.parked)
            self.follower_leading.labels(*labels).set(1 if status.leading else 0)
            self.follower_lag.labels(*labels).set(status.lag)
            self.follower_position.labels(*labels).set(status.position.position)
            self.follower_oldest_unhandled.labels(*labels).set(
                status.oldest_unhandled_seconds or 0.0
            )
            if status.heartbeat_at is not None:
                age = (now - status.heartbeat_at).total_seconds()
                self.follower_heartbeat_age.labels(*labels).set(age)

    async def render(
        self,
        read_model: ReadModel | None,
        followers: Callable[[], Awaitable[list[FollowerStatus]]] | None = None,
    ) -> bytes:
        """The exposition text, after reading projector state (`read_model`; None in a
        process without the read store, the saga's) and every follower's status from the
        stores (skipped, and logged, when they do not answer within
        STORES_TIMEOUT_SECONDS)."""
        try:
            async with asyncio.timeout(STORES_TIMEOUT_SECONDS):
                if read_model is not None:
                    for status in await read_model.statuses():
                        self.projection_lag.labels(status.name).set(status.lag)
                        self.projection_position.labels(status.name).set(status.position.position)
                if followers is not None:
                    self._followers(await followers())
        except Exception:
            log.warning("projector metrics not refreshed", exc_info=True)
        return generate_latest(self.registry)
