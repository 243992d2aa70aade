"""Every top-level package of the project is built, shipped, type-checked and held to the
layers' import rules: listed in pyproject.toml's package discovery, copied by the
Dockerfile, in mypy's files and among import-linter's root packages (whose contracts
`make lint` runs)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Packages that are not part of the installed application.
NOT_SHIPPED = {"tests", "bench"}


def top_level_packages() -> set[str]:
    return {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_SHIPPED
    }


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def type_checked(package: str) -> bool:
    """mypy checks the whole package (`make lint`)."""
    return package in pyproject()["tool"]["mypy"]["files"]


def test_the_project_has_the_layers_packages() -> None:
    assert {"write_model", "log_follower", "read_model", "sagas", "schema", "app"} <= (
        top_level_packages()
    )


@pytest.mark.parametrize("package", sorted(top_level_packages()))
def test_a_top_level_package_is_discovered_shipped_checked_and_layered(package: str) -> None:
    config = pyproject()
    discovered = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert f"{package}*" in discovered, f"pyproject.toml's package discovery lacks {package}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^COPY {package} {package}$", dockerfile, re.MULTILINE), (
        f"the Dockerfile does not copy {package}"
    )
    assert type_checked(package), f"mypy does not check {package}"
    linter = config["tool"]["importlinter"]
    assert package in linter["root_packages"], f"import-linter does not know {package}"
    layers = [
        name.strip()
        for contract in linter["contracts"]
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for name in layer.split("|")
    ]
    assert package in layers, f"no layers contract places {package}"


def test_the_benchmarks_are_type_checked_and_the_tests_are_not() -> None:
    assert type_checked("bench")
    assert not type_checked("tests")


def test_every_type_ignore_names_its_error_and_says_why() -> None:
    """mypy refuses an ignore without an error code (`enable_error_code`); a reason is ours:
    a comment on the line or on the line above it."""
    unexplained = []
    for package in sorted(pyproject()["tool"]["mypy"]["files"]):
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines, start=1):
                if "type: ignore" not in line:
                    continue
                said_after = re.search(r"type: ignore\[[a-z-, ]+\]\s*#\s*\w", line)
                said_before = number > 1 and lines[number - 2].strip().startswith("#")
                if not (said_after or said_before):
                    unexplained.append(f"{path.relative_to(ROOT)}:{number}")
    assert not unexplained, f"type: ignore without a reason: {unexplained}"
