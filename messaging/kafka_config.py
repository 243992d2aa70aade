"""The relay's librdkafka configuration: fixed choices, settings, and KAFKA_RDKAFKA_<KEY>
overrides (a managed cluster's SASL and TLS), with the overrides' values masked wherever the
configuration is shown."""

from __future__ import annotations

from collections.abc import Mapping

RDKAFKA_PREFIX = "KAFKA_RDKAFKA_"
MASK = "***"
# The largest record the relay sends, and what its topics accept. The largest event the API
# can append (an order of MAX_LINES lines of the longest names, as the saga's
# FulfillmentStarted) is about 130 KB: tests/integration/test_relay.py sends it.
MAX_RECORD_BYTES = 1_048_576


def rdkafka_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """KAFKA_RDKAFKA_SASL_MECHANISM=PLAIN -> {"sasl.mechanism": "PLAIN"}."""
    return {
        name[len(RDKAFKA_PREFIX) :].lower().replace("_", "."): value
        for name, value in environ.items()
        if name.upper().startswith(RDKAFKA_PREFIX) and len(name) > len(RDKAFKA_PREFIX)
    }


def client_config(bootstrap_servers: str, environ: Mapping[str, str]) -> dict[str, str]:
    """What every Kafka client of the relay shares (producer, admin, checkpoint reader)."""
    return {"bootstrap.servers": bootstrap_servers, **rdkafka_overrides(environ)}


def producer_config(
    bootstrap_servers: str,
    transactional_id: str,
    environ: Mapping[str, str],
    *,
    timeout_seconds: float,
) -> dict[str, str | int | bool]:
    """The relay's producer, which the relay benchmark's bare producer uses too."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "transactional.id": transactional_id,
        # The partition Java clients pick for a key (librdkafka's default is crc32).
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": MAX_RECORD_BYTES + 65_536,  # a record and its request overhead
        "transaction.timeout.ms": int(max(timeout_seconds * 2, 60) * 1000),
        # Bounded in-flight records: a broker away fills it, and the relay waits (QUEUE_FULL).
        "queue.buffering.max.messages": 100_000,
        **client_config(bootstrap_servers, environ),
    }


def masked(config: Mapping[str, object], environ: Mapping[str, str]) -> dict[str, object]:
    """`config` to show: the values that came from KAFKA_RDKAFKA_* replaced by ***."""
    secret = rdkafka_overrides(environ).keys()
    return {key: (MASK if key in secret else value) for key, value in config.items()}


def mask_text(text: str, environ: Mapping[str, str]) -> str:
    """`text` with every KAFKA_RDKAFKA_* value replaced by *** (librdkafka's messages may
    quote its configuration)."""
    for value in sorted(rdkafka_overrides(environ).values(), key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text
