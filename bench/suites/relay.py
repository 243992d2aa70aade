"""The Kafka relay (bench/relay.py): events/s publishing a pre-filled log, and the time from
an append's commit to a read_committed consumer's receipt at 1,000 events/s, each beside a
bare confluent-kafka transactional producer with the relay's configuration and transaction
size (the ceiling) on the same broker, in the same run."""

from __future__ import annotations

import os

from bench.figures import Run, suite
from bench.relay import kafka_address, measure

# Targets of the issue "Kafka relay".
THROUGHPUT_TARGET = 10_000.0  # events/s
CEILING_SHARE = 0.5  # of the bare producer's events/s
LATENCY_P99_TARGET_MS = 100.0


@suite("relay", order=70, title="Kafka relay", needs=("postgres", "kafka"))
async def relay(run: Run) -> None:
    events = run.scale.pick(100_000, 2_000)
    rate = run.scale.pick(1_000, 200)
    found = await measure(
        os.environ["DATABASE_URL"], kafka_address(), events, rate, run.scale.pick(10.0, 1.0)
    )
    published = run.figure(
        "relay.events_per_second",
        f"relay, log of {events:,} events -> Kafka",
        found.relay_rate,
        "events/s",
        "one transaction per batch with its checkpoint",
    )
    bare = run.figure(
        "relay.bare_producer",
        "bare transactional producer, same records, configuration and transaction size",
        found.bare_rate,
        "events/s",
        peer=True,
    )
    run.bound(published, bare, "ceiling", at_least=CEILING_SHARE)
    run.target(published, at_least=THROUGHPUT_TARGET)
    p99 = run.figure(
        "relay.commit_to_receipt_p99",
        f"relay, append commit -> read_committed receipt p99 at {rate:,} events/s",
        found.relay_p99_ms,
        "ms",
        f"p50 {found.relay_p50_ms:.1f} ms; bare producer p50 {found.bare_p50_ms:.1f} ms, "
        f"p99 {found.bare_p99_ms:.1f} ms",
        lower_is_better=True,
    )
    run.target(p99, at_most=LATENCY_P99_TARGET_MS)
