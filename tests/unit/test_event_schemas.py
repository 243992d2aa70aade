"""The published event schemas (schema/events/) are the code's, and a committed version only
ever gains optional properties."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from messaging.event_schemas import (
    SCHEMA_DIRECTORY,
    IncompatibleSchemaChange,
    current_schemas,
    export,
    incompatibilities,
    schema_text,
)
from write_model.event_types import EVENT_TYPES, build_registry


def test_the_committed_schema_files_are_what_the_code_generates() -> None:
    generated = current_schemas(build_registry())
    assert len(generated) == len(EVENT_TYPES)
    differing = [
        str(relative)
        for relative, schema in generated.items()
        if not (SCHEMA_DIRECTORY / relative).exists()
        or (SCHEMA_DIRECTORY / relative).read_text() != schema_text(schema)
    ]
    assert differing == [], "run `orders schema export-events` and commit schema/events/"


def _order_item_added() -> dict[str, Any]:
    return json.loads((SCHEMA_DIRECTORY / "OrderItemAdded" / "3.json").read_text())


def test_adding_an_optional_property_is_compatible() -> None:
    committed = _order_item_added()
    changed = copy.deepcopy(committed)
    changed["properties"]["giftWrap"] = {"type": "boolean"}
    changed["$defs"]["Money"]["properties"]["minorUnits"] = {"type": "integer"}
    assert incompatibilities(committed, changed) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["properties"].pop("quantity"), "quantity: removed"),
        (
            lambda s: s["properties"].__setitem__("qty", s["properties"].pop("quantity")),
            "quantity: removed",
        ),
        (lambda s: s["properties"].__setitem__("quantity", {"type": "string"}), "retyped"),
        (
            lambda s: s["$defs"]["Money"]["properties"].__setitem__("amount", {"type": "number"}),
            "unitPrice.amount: retyped",
        ),
        (
            lambda s: (
                s["properties"].__setitem__("note", {"type": "string"}),
                s["required"].append("note"),
            ),
            "note: required now",
        ),
        (lambda s: s["required"].remove("productName"), "productName: optional now"),
    ],
    ids=["removed", "renamed", "retyped", "retyped-nested", "new-required", "made-optional"],
)
def test_any_other_change_to_a_committed_version_is_refused(change: Any, problem: str) -> None:
    committed = _order_item_added()
    changed = copy.deepcopy(committed)
    change(changed)
    problems = incompatibilities(committed, changed)
    assert any(problem in found for found in problems), problems


def test_export_writes_every_schema_then_nothing_more(tmp_path: Path) -> None:
    first = export(build_registry(), tmp_path)
    assert len(first.written) == len(EVENT_TYPES) and first.unchanged == 0
    again = export(build_registry(), tmp_path)
    assert again.written == [] and again.unchanged == len(EVENT_TYPES)


def test_export_refuses_an_incompatible_change_and_writes_nothing(tmp_path: Path) -> None:
    export(build_registry(), tmp_path)
    # As if the code had dropped a field the committed version promised: the file has more.
    committed_path = tmp_path / "OrderItemAdded" / "3.json"
    committed = json.loads(committed_path.read_text())
    committed["properties"]["couponCode"] = {"type": "string"}
    committed["required"].append("couponCode")
    committed_path.write_text(schema_text(committed))
    # And a compatible difference elsewhere, which must not be written either.
    other_path = tmp_path / "OrderCreated" / "2.json"
    other = json.loads(other_path.read_text())
    other["description"] = "older wording"
    other_path.write_text(schema_text(other))
    before = {path: path.read_text() for path in tmp_path.rglob("*.json")}

    with pytest.raises(
        IncompatibleSchemaChange, match=r"OrderItemAdded/3.json: couponCode: removed"
    ):
        export(build_registry(), tmp_path)
    assert {path: path.read_text() for path in tmp_path.rglob("*.json")} == before
