"""Event type registry: domain event classes <-> stored (type, data), with upcasting.

Payloads are stored camelCase (`orderId`, `unitPrice: {amount, currency}`), as the API and
the JSON world that reads them elsewhere name things; the domain's dataclasses stay
snake_case. Serialization goes through pydantic-core, which handles Decimal, nested frozen
dataclasses, tuples and enums both ways: each type's schema (pydantic's, for the dataclass)
gets every field's camelCase name as its alias, so no payload is renamed key by key. Each
type has a current schema version; a payload stored under an older version is upcast step
by step on read by the functions registered for (type, from_version).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import CoreSchema, SchemaSerializer, SchemaValidator

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    pass


def camel_case_keys(data: Any) -> Any:
    """`{"unit_price": {...}}` -> `{"unitPrice": {...}}`, at every depth: the upcaster of a
    payload stored snake_case."""
    if isinstance(data, dict):
        return {_camel(key): camel_case_keys(value) for key, value in data.items()}
    if isinstance(data, list):
        return [camel_case_keys(value) for value in data]
    return data


@functools.lru_cache(maxsize=1024)  # field names: a small set, each converted once
def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_case_schema(cls: type) -> CoreSchema:
    """pydantic's schema of the dataclass `cls`, each field at every depth named camelCase."""
    schema = copy.deepcopy(TypeAdapter(cls).core_schema)
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("type") == "dataclass-field":
                node["validation_alias"] = node["serialization_alias"] = _camel(node["name"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return schema


@dataclass(frozen=True, slots=True)
class EventDefinition:
    """A registered type as its current schema version writes it: the published JSON Schemas
    (schema/events/) are generated from `core_schema`."""

    type_name: str
    schema_version: int
    cls: type
    core_schema: CoreSchema


@dataclass(frozen=True, slots=True)
class _Registration:
    cls: type
    type_name: str
    schema_version: int
    core_schema: CoreSchema
    validator: SchemaValidator  # reads camelCase only: older payloads are upcast first
    serializer: SchemaSerializer


class EventTypeRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, _Registration] = {}
        self._by_class: dict[type, _Registration] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: type, *, type_name: str | None = None, schema_version: int = 1) -> None:
        name = type_name or cls.__name__
        if name in self._by_name:
            raise ValueError(f"event type {name} is registered twice")
        schema = _camel_case_schema(cls)
        registration = _Registration(
            cls, name, schema_version, schema, SchemaValidator(schema), SchemaSerializer(schema)
        )
        self._by_name[name] = registration
        self._by_class[cls] = registration

    def definitions(self) -> list[EventDefinition]:
        """Every registered type at its current schema version, by name."""
        return [
            EventDefinition(r.type_name, r.schema_version, r.cls, r.core_schema)
            for _, r in sorted(self._by_name.items())
        ]

    def schema_version_of(self, type_name: str) -> int:
        """The current schema version of `type_name` (what `upcast` brings payloads to)."""
        return self._registration_of_name(type_name).schema_version

    def add_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        """`upcaster` turns a payload of `from_version` into one of `from_version + 1`."""
        self._upcasters[(type_name, from_version)] = upcaster

    def serialize(self, event: object) -> tuple[str, dict[str, Any], int]:
        """(type name, JSON-ready camelCase data, schema version)."""
        registration = self._registration_of(event)
        data = registration.serializer.to_python(event, mode="json", by_alias=True)
        return registration.type_name, data, registration.schema_version

    def upcast(self, type_name: str, data: dict[str, Any], schema_version: int) -> dict[str, Any]:
        """The stored payload as the type's current schema version writes it."""
        registration = self._registration_of_name(type_name)
        version = schema_version
        while version < registration.schema_version:
            upcaster = self._upcasters.get((type_name, version))
            if upcaster is None:
                raise UnknownEventType(f"no upcaster for {type_name} from schema version {version}")
            data = upcaster(data)
            version += 1
        return data

    def deserialize(self, type_name: str, data: dict[str, Any], schema_version: int) -> Any:
        current = self.upcast(type_name, data, schema_version)
        return self._registration_of_name(type_name).validator.validate_python(current)

    def _registration_of_name(self, type_name: str) -> _Registration:
        registration = self._by_name.get(type_name)
        if registration is None:
            raise UnknownEventType(f"no event type {type_name!r} is registered")
        return registration

    def _registration_of(self, event: object) -> _Registration:
        registration = self._by_class.get(type(event))
        if registration is None:
            raise UnknownEventType(f"{type(event).__name__} is not a registered event type")
        return registration
