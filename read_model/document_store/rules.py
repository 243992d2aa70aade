"""What every DocumentStore adapter checks and assumes the same way: equality filters only,
guarded puts carry `_id` and `_pos`, `_id` as the last sort key, millisecond timestamps; and
MongoDB's document semantics where code outside MongoDB needs them (the memory adapter, the
projector's in-memory view of a batch): equality matching with array membership and dotted
paths, `$set` paths, BSON sort order."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from read_model.document_store.port import (
    POSITION_FIELD,
    Document,
    DocumentWriteConflict,
    GuardedPut,
    SortKey,
)

MISSING = object()  # a path that leads nowhere (unlike a stored null)

# Values that cannot change once made: a copy of a document shares them.
_IMMUTABLE = frozenset({str, int, float, bool, type(None), datetime, date, Decimal, UUID, bytes})


def copied(value: Any) -> Any:
    """A copy of a document (or any value in one) that shares nothing mutable with it.
    Documents are trees of dicts and lists over immutable scalars, so this walks them
    directly, several times faster than `copy.deepcopy` and its memo; any other value is
    deep-copied."""
    kind = type(value)
    # Most values are scalars: checked inline, without a call each (a third of the cost).
    if kind is dict:
        return {
            key: item if type(item) in _IMMUTABLE else copied(item) for key, item in value.items()
        }
    if kind is list:
        return [item if type(item) in _IMMUTABLE else copied(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


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


# ------------------------------------------------------------- matching, paths


def matches(document: Document, filter: Mapping[str, Any]) -> bool:
    return all(_field_matches(document, field, value) for field, value in filter.items())


def _field_matches(document: Document, field: str, expected: Any) -> bool:
    candidates = _resolve(document, field.split("."))
    if expected is None and (not candidates or any(c is MISSING for c in candidates)):
        return True
    for candidate in candidates:
        if candidate is MISSING:
            continue
        if _equal(candidate, expected):
            return True
        if isinstance(candidate, list) and any(_equal(e, expected) for e in candidate):
            return True
    return False


def _resolve(value: Any, path: list[str]) -> list[Any]:
    """Every value at `path`, descending into array elements like Mongo does."""
    if not path:
        return [value]
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        return _resolve(value[head], rest) if head in value else [MISSING]
    if isinstance(value, list):
        found: list[Any] = []
        if head.isdigit() and int(head) < len(value):
            found.extend(_resolve(value[int(head)], rest))
        for element in value:
            if isinstance(element, Mapping):
                found.extend(_resolve(element, path))
        return found or [MISSING]
    return [MISSING]


def value_at(document: Document, field: str) -> Any:
    """The value a sort uses: the field at a dotted path, None when missing."""
    value: Any = document
    for part in field.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def apply_set(collection: str, document: Document, fields: Mapping[str, Any]) -> Document:
    """A copy of `document` with `$set` of `fields` (dotted paths) applied as MongoDB does;
    paths MongoDB refuses raise DocumentWriteConflict."""
    paths = [path.split(".") for path in fields]
    _check_set_paths(collection, paths)
    changed: Document = copied(document)
    for path, value in zip(paths, fields.values(), strict=True):
        _set_path(collection, changed, path, copied(value))
    return changed


def _check_set_paths(collection: str, paths: list[list[str]]) -> None:
    for path in paths:
        if path[0] == "_id":
            raise DocumentWriteConflict(
                collection,
                [
                    f"Performing an update on the path {'.'.join(path)!r} would modify "
                    "the immutable field '_id'"
                ],
            )
    for a in paths:
        for b in paths:
            if a is not b and a[: len(b)] == b:
                raise DocumentWriteConflict(
                    collection,
                    [
                        f"Updating the path {'.'.join(a)!r} would create a conflict at "
                        f"{'.'.join(b)!r}"
                    ],
                )


def _set_path(collection: str, document: Any, path: list[str], value: Any) -> None:
    target = document
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(target, dict):
            if last:
                target[part] = value
            else:
                target = target.setdefault(part, {})
        elif isinstance(target, list) and part.isdigit():
            index = int(part)
            target.extend([None] * (index + 1 - len(target)))
            if last:
                target[index] = value
            else:
                if target[index] is None:
                    target[index] = {}
                target = target[index]
        else:
            raise DocumentWriteConflict(
                collection,
                [f"Cannot create field {part!r} in element {{{path[i - 1]}: {target!r}}}"],
            )


# ------------------------------------------------------- BSON-like comparison


def _type_rank(value: Any) -> int:
    # BSON sort order: null < numbers < strings < objects < arrays < binary < bool < date.
    if value is None or value is MISSING:
        return 1
    if isinstance(value, bool):
        return 8
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, Mapping):
        return 4
    if isinstance(value, list | tuple):
        return 5
    if isinstance(value, bytes):
        return 6
    if isinstance(value, datetime):
        return 9
    return 7  # ObjectId and other rarities


def compare(a: Any, b: Any) -> int:
    rank_a, rank_b = _type_rank(a), _type_rank(b)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if rank_a == 1:
        return 0
    if rank_a == 4:
        return _compare_sequences(
            [x for kv in a.items() for x in kv], [x for kv in b.items() for x in kv]
        )
    if rank_a == 5:
        return _compare_sequences(list(a), list(b))
    if rank_a == 9:
        a, b = _aware(a), _aware(b)
    if rank_a == 7:
        a, b = str(a), str(b)
    return int(a > b) - int(a < b)


def _compare_sequences(a: list[Any], b: list[Any]) -> int:
    for x, y in zip(a, b, strict=False):
        c = compare(x, y)
        if c:
            return c
    return (len(a) > len(b)) - (len(a) < len(b))


def _equal(a: Any, b: Any) -> bool:
    return _type_rank(a) == _type_rank(b) and compare(a, b) == 0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
