"""The benchmarks `make bench` runs: every module of this package that registers a suite
with `bench.figures.suite` (adding a module is all it takes)."""

from __future__ import annotations

import importlib
import pkgutil

from bench.figures import SUITES, Suite


def discover() -> list[Suite]:
    """Import every module of this package; the registered suites in their order."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return sorted(SUITES.values(), key=lambda s: (s.order, s.name))
