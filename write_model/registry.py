"""Event type registry: domain event classes <-> stored (type, data), with upcasting.

Serialization goes through pydantic's TypeAdapter, which handles Decimal, nested frozen
dataclasses, tuples and enums both ways. Each type has a current schema version; a payload
stored under an older version is upcast step by step on read by the functions registered
for (type, from_version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class _Registration:
    cls: type
    type_name: str
    schema_version: int
    adapter: TypeAdapter[Any]


class EventTypeRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, _Registration] = {}
        self._by_class: dict[type, _Registration] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: type, *, type_name: str | None = None, schema_version: int = 1) -> None:
        name = type_name or cls.__name__
        if name in self._by_name:
            raise ValueError(f"event type {name} is registered twice")
        registration = _Registration(cls, name, schema_version, TypeAdapter(cls))
        self._by_name[name] = registration
        self._by_class[cls] = registration

    def register_all(self, classes: Iterable[type]) -> None:
        for cls in classes:
            self.register(cls)

    def add_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        """`upcaster` turns a payload of `from_version` into one of `from_version + 1`."""
        self._upcasters[(type_name, from_version)] = upcaster

    def type_name(self, event: object) -> str:
        return self._registration_of(event).type_name

    def schema_version(self, event: object) -> int:
        return self._registration_of(event).schema_version

    def serialize(self, event: object) -> tuple[str, dict[str, Any], int]:
        """(type name, JSON-ready data, schema version)."""
        registration = self._registration_of(event)
        data = registration.adapter.dump_python(event, mode="json")
        return registration.type_name, data, registration.schema_version

    def deserialize(self, type_name: str, data: dict[str, Any], schema_version: int) -> Any:
        registration = self._by_name.get(type_name)
        if registration is None:
            raise UnknownEventType(f"no event type {type_name!r} is registered")
        version = schema_version
        while version < registration.schema_version:
            upcaster = self._upcasters.get((type_name, version))
            if upcaster is None:
                raise UnknownEventType(f"no upcaster for {type_name} from schema version {version}")
            data = upcaster(data)
            version += 1
        return registration.adapter.validate_python(data)

    def _registration_of(self, event: object) -> _Registration:
        registration = self._by_class.get(type(event))
        if registration is None:
            raise UnknownEventType(f"{type(event).__name__} is not a registered event type")
        return registration
