"""Every `orders` command works from the wheel without extras: each module the packages
import (at the top or inside a function) is the standard library, the project's own, or a
distribution the runtime dependencies of pyproject.toml bring (not the `dev` extra's)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The packages the wheel ships (pyproject.toml's package discovery).
PACKAGES = tuple(
    pattern.rstrip("*")
    for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
)


def runtime_distributions() -> set[str]:
    """The runtime dependencies of pyproject.toml and everything they require."""
    pending = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        extras = requirement.extras
        if name in found and not extras:
            continue
        found.add(name)
        try:
            needs = requires(requirement.name) or []
        except PackageNotFoundError:
            continue  # a dependency of another platform
        for text in needs:
            needed = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(e) for e in environments):
                pending.append(needed)
    return found


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_every_module_the_packages_import_comes_with_the_runtime_dependencies() -> None:
    runtime = runtime_distributions()
    distributions = packages_distributions()
    missing = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in imported_modules(path):
                if module in sys.stdlib_module_names or module in PACKAGES:
                    continue
                names = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
                if not names & runtime:
                    missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert missing == {}, f"imported but not a runtime dependency (pyproject.toml): {missing}"
