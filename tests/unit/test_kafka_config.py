"""KAFKA_RDKAFKA_<KEY> settings reach librdkafka as <key>, and their values never show."""

from __future__ import annotations

from messaging.kafka_config import mask_text, masked, producer_config, rdkafka_overrides

ENVIRON = {
    "KAFKA_RDKAFKA_SASL_PASSWORD": "hunter2",
    "KAFKA_RDKAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_RDKAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
    "KAFKA_TOPIC_PREFIX": "not-a-librdkafka-key",
    "KAFKA_RDKAFKA_": "no key",
}


def test_the_overrides_are_lowercase_dotted_keys() -> None:
    assert rdkafka_overrides(ENVIRON) == {
        "sasl.password": "hunter2",
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": "/etc/ca.pem",
    }


def test_the_producer_is_idempotent_transactional_and_partitions_as_java_clients() -> None:
    config = producer_config("k:9092", "relay-1", ENVIRON, timeout_seconds=30)
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert config["transactional.id"] == "relay-1"
    assert config["partitioner"] == "murmur2_random"
    assert config["sasl.password"] == "hunter2"


def test_override_values_are_masked_in_the_configuration_and_in_messages() -> None:
    shown = masked(producer_config("k:9092", "relay-1", ENVIRON, timeout_seconds=30), ENVIRON)
    assert "hunter2" not in str(shown) and "/etc/ca.pem" not in str(shown)
    assert shown["bootstrap.servers"] == "k:9092"
    assert mask_text("auth failed for hunter2 (SASL_SSL)", ENVIRON) == "auth failed for *** (***)"
