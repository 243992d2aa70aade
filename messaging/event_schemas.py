"""The published JSON Schemas of the events: one file per type and schema version,
`schema/events/<EventType>/<version>.json`, generated from the event definitions (the
registry's camelCase schema of each dataclass) and committed.

A committed version is a promise to consumers: the code may add optional properties to it
and nothing else. A property removed, renamed or retyped, or a new required one, needs a new
schema version and an upcaster (write_model/event_types.py); `export` refuses otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from write_model.registry import EventDefinition, EventTypeRegistry

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIRECTORY = Path(__file__).resolve().parent.parent / "schema" / "events"


def schema_id(type_name: str, schema_version: int) -> str:
    """The `$id` of a schema, which the relay sends as the CloudEvent's `dataschema`."""
    return f"urn:orders:event:{type_name}:{schema_version}"


class _WithoutFieldTitles(GenerateJsonSchema):
    # pydantic titles each property from its Python name ("Productid"): noise to a consumer.
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def event_schema(definition: EventDefinition) -> dict[str, Any]:
    body = _WithoutFieldTitles(by_alias=True).generate(definition.core_schema, mode="serialization")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(definition.type_name, definition.schema_version),
        **body,
        "title": definition.type_name,
    }


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_path(directory: Path, type_name: str, schema_version: int) -> Path:
    return directory / type_name / f"{schema_version}.json"


def current_schemas(registry: EventTypeRegistry) -> dict[Path, dict[str, Any]]:
    """Relative path -> schema, for every type at its current version."""
    return {
        schema_path(Path(), d.type_name, d.schema_version): event_schema(d)
        for d in registry.definitions()
    }


# --- compatibility -------------------------------------------------------------------------


def _resolved(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with every local `$ref` replaced by its definition (the event types hold no
    recursive types), and documentation keywords left out."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _resolved(defs[ref.removeprefix("#/$defs/")], defs)
        return {
            key: _resolved(value, defs)
            for key, value in node.items()
            if key not in {"$defs", "title", "description", "$id", "$schema"}
        }
    if isinstance(node, list):
        return [_resolved(value, defs) for value in node]
    return node


def _compare(old: Any, new: Any, path: str, problems: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict) and "properties" in old:
        old_properties: dict[str, Any] = old["properties"]
        new_properties: dict[str, Any] = new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        for name in sorted(old_properties.keys() - new_properties.keys()):
            problems.append(f"{path}{name}: removed")
        for name in sorted(new_required - old_required):
            problems.append(f"{path}{name}: required now (was optional or absent)")
        for name in sorted(old_required - new_required):
            if name in new_properties:
                problems.append(f"{path}{name}: optional now (was required)")
        for name in sorted(old_properties.keys() & new_properties.keys()):
            _compare(old_properties[name], new_properties[name], f"{path}{name}.", problems)
        rest_old = {k: v for k, v in old.items() if k not in {"properties", "required"}}
        rest_new = {k: v for k, v in new.items() if k not in {"properties", "required"}}
        if rest_old != rest_new:
            problems.append(f"{path.rstrip('.') or '(event)'}: changed {rest_old} -> {rest_new}")
        return
    if old != new:
        problems.append(f"{path.rstrip('.') or '(event)'}: retyped {old} -> {new}")


def incompatibilities(committed: dict[str, Any], generated: dict[str, Any]) -> list[str]:
    """What `generated` changes in the committed version `committed` beyond adding optional
    properties: empty when consumers of the committed version can read it."""
    problems: list[str] = []
    _compare(
        _resolved(committed, committed.get("$defs", {})),
        _resolved(generated, generated.get("$defs", {})),
        "",
        problems,
    )
    return problems


class IncompatibleSchemaChange(ValueError):
    """The code changes a committed schema version beyond adding optional properties."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    written: list[Path]  # new or changed files
    unchanged: int


def export(registry: EventTypeRegistry, directory: Path = SCHEMA_DIRECTORY) -> ExportResult:
    """Write each type's current schema; refuse (writing nothing) when a committed version
    would change beyond adding optional properties."""
    pending: dict[Path, str] = {}
    unchanged = 0
    problems: list[str] = []
    for relative, schema in current_schemas(registry).items():
        path = directory / relative
        text = schema_text(schema)
        if path.exists():
            committed_text = path.read_text()
            if committed_text == text:
                unchanged += 1
                continue
            problems += [
                f"{relative}: {problem}"
                for problem in incompatibilities(json.loads(committed_text), schema)
            ]
        pending[path] = text
    if problems:
        raise IncompatibleSchemaChange(
            "these changes to committed event schema versions need a new schema version and "
            "an upcaster:\n  " + "\n  ".join(problems)
        )
    for path, text in pending.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ExportResult(sorted(pending), unchanged)
