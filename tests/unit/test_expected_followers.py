"""The followers a deployment is expected to run, which `processes`, /readyz and /metrics
show even before (or without) a process leading them."""

from __future__ import annotations

from app.backends import expected_followers
from app.settings import Settings
from log_follower.consumer import FollowerKind
from messaging.relay import RELAY


def test_the_relay_is_expected_once_kafka_is_configured_and_not_before() -> None:
    without = dict(expected_followers(Settings(kafka_bootstrap_servers=None)))
    configured = dict(expected_followers(Settings(kafka_bootstrap_servers="kafka:9092")))
    assert RELAY not in without
    assert configured[RELAY] is FollowerKind.RELAY
    assert {name: kind for name, kind in configured.items() if name != RELAY} == without
