"""docker-compose.yml as Docker Compose itself reads it: Debian's `docker-compose config`
(tests/services/docker-compose installs it) resolves and validates the file. No Docker engine
runs here, so nothing is started."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "tests" / "services" / "docker-compose"


def compose_config(env_file: Path, *more: str) -> dict[str, object]:
    """`more`: options before `config`, such as more files and profiles."""
    files = [str(COMPOSE), "--env-file", str(env_file), "--file", "docker-compose.yml"]
    done = subprocess.run(
        [*files, *more, "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, object] = yaml.safe_load(done.stdout)
    return config


def test_docker_compose_accepts_the_file_with_kafka_and_the_relay(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    services = compose_config(env_file)["services"]
    assert isinstance(services, dict)
    kafka, relay = services["kafka"], services["relay"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["healthcheck"]["test"] and kafka["restart"] == "unless-stopped"
    assert relay["command"] == ["orders", "relay"]
    assert relay["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert relay["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert relay["healthcheck"]["test"] and relay["restart"] == "unless-stopped"


def test_the_kafka_profile_runs_the_three_participants_over_kafka(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    services = compose_config(env_file, "--profile", "kafka")["services"]
    assert isinstance(services, dict)
    for name in ("inventory", "payment", "shipping"):
        service = services[name]
        assert service["command"] == ["orders", "participant", name]
        assert service["profiles"] == ["kafka"]
        environment = service["environment"]
        assert environment["SAGA_MODE"] == "choreography"
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert environment["OPS_PORT"] == "9000"
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "readyz" in " ".join(service["healthcheck"]["test"])
        # Scaled with --scale: nothing in it that only one instance may have.
        assert "container_name" not in service and "ports" not in service


def test_docker_compose_refuses_a_stack_without_a_postgres_password(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ORDERS_PORT=8000\n")
    done = subprocess.run(
        [str(COMPOSE), "--env-file", str(env_file), "--file", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
    )
    assert done.returncode != 0 and "POSTGRES_PASSWORD" in done.stderr


def test_the_example_consumer_joins_the_stack_in_its_profile(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text() + "KAFKA_TOPIC_PREFIX=shop.\n")
    example = "examples/confirmed-orders-per-customer"
    config = compose_config(env_file, "--file", f"{example}/compose.yaml", "--profile", "example")
    services = config["services"]
    assert isinstance(services, dict)
    consumer = services["confirmed-orders"]
    assert consumer["profiles"] == ["example"]
    assert Path(consumer["build"]["context"]) == ROOT / example
    assert consumer["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert consumer["environment"]["ORDER_EVENTS_TOPIC"] == "shop.order-events"
    assert consumer["depends_on"]["kafka"]["condition"] == "service_healthy"
