"""schema/schema.graphql, the committed export of the schema the server serves, is what the
code gives (schema/contract.graphql is compared with the code in test_schema_contract.py)."""

from __future__ import annotations

import difflib
from pathlib import Path

from click.testing import CliRunner

from app.cli import main
from schema.export import HEADER, schema_sdl

COMMITTED = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_the_committed_schema_is_the_code_s_schema() -> None:
    committed = COMMITTED.read_text()
    exported = schema_sdl()
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            exported.splitlines(keepends=True),
            "schema/schema.graphql (committed)",
            "the code's schema",
        )
    )
    assert not diff, (
        "schema/schema.graphql differs from the code; regenerate it with "
        f"`orders schema export --output schema/schema.graphql`:\n{diff}"
    )


def test_the_export_command_prints_the_labelled_schema() -> None:
    result = CliRunner().invoke(main, ["schema", "export"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(HEADER)
    assert "type Mutation {" in result.output
    assert "type Subscription {" in result.output
