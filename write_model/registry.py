"""Event type registry: domain event classes <-> stored (type, data), with upcasting.

Payloads are stored camelCase (`orderId`, `unitPrice: {amount, currency}`), as the API and
the JSON world that reads them elsewhere name things; the domain's dataclasses stay
snake_case. Serialization goes through pydantic's TypeAdapter, which handles Decimal, nested
frozen dataclasses, tuples and enums both ways. Each type has a current schema version; a
payload stored under an older version is upcast step by step on read by the functions
registered for (type, from_version).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


class UnknownEventType(LookupError):
    pass


def camel_case_keys(data: Any) -> Any:
    """`{"unit_price": {...}}` -> `{"unitPrice": {...}}`, at every depth."""
    return _renamed_keys(data, _camel)


def snake_case_keys(data: Any) -> Any:
    """`{"unitPrice": {...}}` -> `{"unit_price": {...}}`, at every depth."""
    return _renamed_keys(data, _snake)


def _renamed_keys(data: Any, rename: Callable[[str], str]) -> Any:
    # Scalars are passed over without a call: this runs for every payload the bus reads.
    if isinstance(data, dict):
        return {
            rename(key): _renamed_keys(value, rename) if isinstance(value, dict | list) else value
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [
            _renamed_keys(value, rename) if isinstance(value, dict | list) else value
            for value in data
        ]
    return data


# Keys are the events' field names, a small set: each is converted once (the bus converts
# every payload it writes and reads).
@functools.lru_cache(maxsize=4096)
def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.lru_cache(maxsize=4096)
def _snake(name: str) -> str:
    return _UPPER.sub("_", name).lower()


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
        for owner, field in _fields(cls):
            if _snake(_camel(field)) != field:
                raise ValueError(
                    f"{cls.__name__}: {owner.__name__}.{field} does not survive camelCase and back"
                )
        registration = _Registration(cls, name, schema_version, TypeAdapter(cls))
        self._by_name[name] = registration
        self._by_class[cls] = registration

    def add_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        """`upcaster` turns a payload of `from_version` into one of `from_version + 1`."""
        self._upcasters[(type_name, from_version)] = upcaster

    def serialize(self, event: object) -> tuple[str, dict[str, Any], int]:
        """(type name, JSON-ready camelCase data, schema version)."""
        registration = self._registration_of(event)
        data = camel_case_keys(registration.adapter.dump_python(event, mode="json"))
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
        return self._registration_of_name(type_name).adapter.validate_python(
            snake_case_keys(current)
        )

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


def _fields(cls: type) -> set[tuple[type, str]]:
    """(dataclass, field name) of a dataclass and of those its fields hold, at any depth."""
    names: set[tuple[type, str]] = set()
    seen: set[type] = set()
    pending = [cls]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        hints = typing.get_type_hints(current)
        for field in dataclasses.fields(current):
            names.add((current, field.name))
            pending.extend(_dataclasses_in(hints[field.name]))
    return names


def _dataclasses_in(hint: Any) -> list[type]:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return [hint]
    return [found for arg in typing.get_args(hint) for found in _dataclasses_in(arg)]
