"""examples/confirmed-orders-per-customer stands alone, as a team outside Orders would
write it: it imports only the standard library and what its requirements.txt installs,
its README's links lead to files that exist, and the README's "Consuming events" links it.
(tests/e2e/test_example_consumer.py runs it.)"""

from __future__ import annotations

import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

from tests.unit.test_runtime_dependencies import imported_modules

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "confirmed-orders-per-customer"


def test_the_example_imports_only_the_standard_library_and_its_requirements() -> None:
    lines = (EXAMPLE / "requirements.txt").read_text().splitlines()
    required = {Requirement(line).name.lower() for line in lines if line.strip()}
    distributions = packages_distributions()
    imported = imported_modules(EXAMPLE / "confirmed_orders.py")
    outside = {
        module: distributions.get(module, ["(not installed)"])
        for module in imported - set(sys.stdlib_module_names)
        if not {name.lower() for name in distributions.get(module, [])} & required
    }
    assert outside == {}, "imported from outside the standard library and requirements.txt"
    assert "confluent_kafka" in imported


def test_the_examples_links_lead_to_files_that_exist() -> None:
    readme = (EXAMPLE / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert targets
    missing = [target for target in targets if not (EXAMPLE / target).exists()]
    assert missing == []


def test_consuming_events_in_the_readme_links_the_example() -> None:
    readme = (ROOT / "README.md").read_text()
    consuming = readme.split("## Consuming events", 1)[1].split("\n## ", 1)[0]
    assert "](examples/confirmed-orders-per-customer/)" in consuming
