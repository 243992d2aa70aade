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
# Written before mypy checked more than the domain (read_model: 10 strict errors, schema 16,
# app 643 when this list was made); every package after them is checked strictly.
NOT_YET_TYPE_CHECKED = frozenset({"app", "schema", "read_model"})


def top_level_packages() -> set[str]:
    return {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_SHIPPED
    }


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


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
    checked = config["tool"]["mypy"]["files"]
    type_checked = any(path == package or path.startswith(f"{package}/") for path in checked)
    assert type_checked or package in NOT_YET_TYPE_CHECKED, f"mypy does not check {package}"
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
