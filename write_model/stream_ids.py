"""Stream ids: `<StreamType>-<entityId>`, e.g. `Order-7f3a` or `CustomerEmail-ada@example.com`.

The one place that builds and parses them. A stream type never holds the separator; an
entity id may (uuids do), so parsing splits at the first one.
"""

from __future__ import annotations

SEPARATOR = "-"


def stream_id(stream_type: str, entity_id: str) -> str:
    return f"{stream_type}{SEPARATOR}{entity_id}"


def stream_type(stream_id: str) -> str:
    """`Order-7f3a` -> `Order`."""
    return _parts(stream_id)[0]


def entity_id(stream_id: str, of_type: str | None = None) -> str:
    """`Order-7f3a` -> `7f3a`. With `of_type`, a stream of another type is a ValueError."""
    kind, entity = _parts(stream_id)
    if of_type is not None and kind != of_type:
        raise ValueError(f"{stream_id!r} is not a {of_type} stream")
    return entity


def _parts(stream_id: str) -> tuple[str, str]:
    kind, separator, entity = stream_id.partition(SEPARATOR)
    if not (kind and separator and entity):
        raise ValueError(f"{stream_id!r} is not a stream id (<StreamType>-<entityId>)")
    return kind, entity
