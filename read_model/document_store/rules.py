"""What every DocumentStore adapter checks and assumes the same way: equality filters only,
guarded puts carry `_id` and `_pos`, `_id` as the last sort key, millisecond timestamps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from read_model.document_store.port import POSITION_FIELD, GuardedPut, SortKey


def sort_keys_with_tiebreaker(sort: Sequence[SortKey]) -> list[SortKey]:
    """The sort as given, then `_id` ascending unless `_id` is already one of the keys."""
    keys = list(sort)
    for key in keys:
        if key.direction not in (1, -1):
            raise ValueError(f"sort direction must be 1 or -1, got {key.direction!r}")
    if not any(k.field == "_id" for k in keys):
        keys.append(SortKey("_id", 1))
    return keys


def check_guarded_put(put: GuardedPut) -> None:
    document = put.document
    if "_id" not in document:
        raise ValueError(f"a guarded put into {put.collection!r} needs an _id")
    if not isinstance(document.get(POSITION_FIELD), str):
        raise ValueError(
            f"a guarded put of {document['_id']!r} into {put.collection!r} needs "
            f"{POSITION_FIELD} as a position_key string"
        )


def now_ms() -> datetime:
    """Now in UTC, truncated to the millisecond precision BSON keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def check_equality_filter(filter: Mapping[str, Any]) -> None:
    for field, value in filter.items():
        if field.startswith("$") or (
            isinstance(value, Mapping) and any(str(k).startswith("$") for k in value)
        ):
            raise ValueError(f"only equality filters are supported, got {field!r}: {value!r}")
