"""The README says what the code does: its settings table is the settings class's fields
with their defaults, and its GraphQL examples are valid against the served schema
(tests/e2e/test_quick_start.py runs them against `orders dev`)."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import parse, validate

from app.settings import Settings
from schema.export import schema

README = Path(__file__).resolve().parents[2] / "README.md"


def settings_table() -> str:
    def default(value: object) -> str:
        if value is None:
            return "unset"
        if isinstance(value, bool):
            return "`true`" if value else "`false`"
        return f"`{value}`"

    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} needs a description for the README"
        rows.append(f"| `{name.upper()}` | {default(field.default)} | {field.description} |")
    return "\n".join(rows) + "\n"


def readme_graphql() -> list[str]:
    return re.findall(r"```graphql\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_settings_table_lists_every_setting_with_its_default() -> None:
    text = README.read_text()
    documented = text[
        text.index("<!-- settings:start -->\n") + 24 : text.index("<!-- settings:end -->")
    ]
    assert documented == settings_table(), (
        "README.md's settings table differs from app/settings.py; between the settings "
        f"markers it should read:\n{settings_table()}"
    )


def test_the_graphql_examples_are_valid_against_the_schema() -> None:
    examples = readme_graphql()
    assert len(examples) >= 2  # a mutation and a query
    for example in examples:
        assert validate(schema._schema, parse(example)) == [], example


def test_every_contributor_note_in_docs_is_linked_from_the_readme() -> None:
    text = README.read_text()
    notes = sorted(path.name for path in (README.parent / "docs").glob("*.md"))
    assert notes, "docs/ has no notes"
    for name in notes:
        assert f"](docs/{name})" in text, f"README.md does not link docs/{name}"


def test_the_readme_says_how_to_run_the_cli_that_make_dev_installs() -> None:
    quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "`.venv/bin/orders`" in quick_start
    assert "source .venv/bin/activate" in quick_start
