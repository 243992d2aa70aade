"""docker-compose.yml, .env.example and the Dockerfile, read as Docker would read them
(there is no Docker engine on the test machines: these files are parsed, never run)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DATABASES = ("postgres", "mongo")
# What every Orders process needs (app/stores.py require_services); MONGO_DB names the
# database the API and the projector share.
REQUIRED_BY_THE_APP = {"DATABASE_URL", "MONGO_URL", "MONGO_DB"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]


def orders_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if s.get("command", [""])[0] == "orders"}


def one_shot(services: dict[str, dict[str, Any]]) -> set[str]:
    """Jobs others wait for to complete (the migration), not long-running services."""
    return {
        needed
        for service in services.values()
        for needed, condition in service.get("depends_on", {}).items()
        if condition.get("condition") == "service_completed_successfully"
    }


def test_every_service_has_an_image_a_health_check_and_a_restart_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    assert {"postgres", "mongo", "kafka", "migrate", "api", "projector", "saga", "relay"} <= set(
        services
    )
    jobs = one_shot(services)
    assert jobs == {"migrate"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if name in jobs:
            assert service["restart"] == "on-failure", name
        else:
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["test"], name


def test_the_app_is_one_image_built_once(services: dict[str, dict[str, Any]]) -> None:
    apps = orders_services(services)
    participants = {"inventory", "payment", "shipping"}  # the `kafka` profile
    assert set(apps) == {"migrate", "api", "projector", "saga", "relay", *participants}
    assert {service["image"] for service in apps.values()} == {"orders:local"}
    assert [name for name, service in apps.items() if "build" in service] == ["migrate"]


def test_the_app_gets_every_variable_it_requires_and_only_settings_it_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    for name, service in orders_services(services).items():
        environment = set(service["environment"])
        assert REQUIRED_BY_THE_APP <= environment, name
        assert environment <= settings, f"{name}: not settings: {environment - settings}"
        assert service["environment"]["MONGO_URL"].endswith("?replicaSet=rs0")


def test_the_migration_runs_before_the_app(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "projector", "saga"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_databases_are_not_published_and_mongo_is_a_replica_set(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in DATABASES:
        assert "ports" not in services[name], name
    assert services["mongo"]["command"][:2] == ["--replSet", "rs0"]


def test_secrets_come_from_the_env_file() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in compose
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    used = set(re.findall(r"\$\{([A-Z_]+)", compose))
    assert used == set(example)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_image_runs_as_a_user_with_a_port_a_command_and_a_health_check() -> None:
    lines = [
        line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()
    ]
    instructions = [line.split()[0] for line in lines if not line.startswith("#")]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 3 and " AS graphiql-assets" in stages[0]  # assets in their own stage
    final = lines[lines.index(stages[-1]) :]
    user = next(line for line in final if line.startswith("USER "))
    assert user.split()[1] not in ("root", "0")
    for instruction in ("EXPOSE", "CMD", "HEALTHCHECK"):
        assert instruction in instructions


def test_the_image_installs_the_wheel_without_extras() -> None:
    """What tests/e2e/test_wheel.py installs and runs, the image installs: the wheel built
    from the sources, its dependencies pinned by uv.lock, no dev extra."""
    text = (ROOT / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM ") :]
    assert "uv build --wheel" in text
    assert "pip install --no-cache-dir --no-deps /tmp/wheels/orders-*.whl" in final
    assert "--extra" not in text and "[dev]" not in text
    assert "COPY app" not in final  # the code comes only from the wheel


def test_the_build_context_leaves_out_local_environments_and_built_files() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {
        ".git",
        ".venv",
        ".orders",
        ".env",
        "app/graphiql_assets/dist",
        "node_modules",
    } <= ignored


def test_the_readme_says_how_to_seed_the_compose_stack(services: dict[str, dict[str, Any]]) -> None:
    """A documented `docker compose run` of `orders seed` in a service that has the stack's
    stores (seeding goes through the API's mutations, in process)."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"docker compose run --rm (\S+) orders seed", readme)
    assert found is not None
    service = services[found[1]]
    assert {"DATABASE_URL", "MONGO_URL"} <= set(service["environment"])
