"""An in-memory DocumentStore: a dict of collections, for unit tests and `orders dev`.

It follows the Mongo adapter's semantics where the conformance suite pins them down:
equality filters match array elements and dotted paths, missing fields sort as null (first
ascending), mixed types sort in BSON type order, and `$set` paths that Mongo refuses
(`_id`, a field inside a scalar, overlapping paths) raise DocumentWriteConflict. Documents
are deep-copied in and out, so callers can never mutate stored state.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from read_model.document_store.port import (
    POSITION_FIELD,
    Checkpoint,
    Document,
    DocumentWriteConflict,
    GuardedPut,
    Page,
    SortKey,
    UpdateMany,
)
from read_model.document_store.rules import (
    check_equality_filter,
    check_guarded_put,
    now_ms,
    sort_keys_with_tiebreaker,
)

_MISSING = object()


class InMemoryDocumentStore:
    def __init__(self) -> None:
        self._collections: dict[str, dict[str, Document]] = {}
        self._indexes: dict[str, list[tuple[SortKey, ...]]] = {}
        self._checkpoints: dict[str, Checkpoint] = {}

    # ------------------------------------------------------------------ reads

    async def get(self, collection: str, document_id: str) -> Document | None:
        document = self._collections.get(collection, {}).get(document_id)
        return copy.deepcopy(document) if document is not None else None

    async def get_many(self, collection: str, ids: Sequence[str]) -> dict[str, Document]:
        stored = self._collections.get(collection, {})
        return {i: copy.deepcopy(stored[i]) for i in dict.fromkeys(ids) if i in stored}

    async def find(
        self,
        collection: str,
        filter: Mapping[str, Any],
        sort: Sequence[SortKey],
        limit: int,
        after: Sequence[Any] | None = None,
    ) -> Page:
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        check_equality_filter(filter)
        keys = sort_keys_with_tiebreaker(sort)
        if after is not None and len(after) != len(keys):
            raise ValueError(
                f"`after` needs {len(keys)} values ({', '.join(k.field for k in keys)}), "
                f"got {len(after)}"
            )
        matching = [
            d for d in self._collections.get(collection, {}).values() if _matches(d, filter)
        ]

        def row(document: Document) -> list[Any]:
            return [_get_path(document, k.field) for k in keys]

        def compare_rows(a: Sequence[Any], b: Sequence[Any]) -> int:
            for key, x, y in zip(keys, a, b, strict=True):
                c = _compare(x, y)
                if c:
                    return c * key.direction
            return 0

        rows = sorted(
            ((row(d), d) for d in matching),
            key=functools.cmp_to_key(lambda a, b: compare_rows(a[0], b[0])),
        )
        if after is not None:
            rows = [(r, d) for r, d in rows if compare_rows(r, list(after)) > 0]
        documents = [copy.deepcopy(d) for _, d in rows[: limit + 1]]
        return Page(documents=documents[:limit], has_next_page=len(documents) > limit)

    async def count(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        return sum(1 for d in self._collections.get(collection, {}).values() if _matches(d, filter))

    # ----------------------------------------------------------------- writes

    async def bulk_write(
        self, puts: Sequence[GuardedPut], updates: Sequence[UpdateMany] = ()
    ) -> None:
        for put in puts:
            check_guarded_put(put)
        for update in updates:
            check_equality_filter(update.filter)
        for put in puts:
            stored_collection = self._collections.setdefault(put.collection, {})
            document_id = put.document["_id"]
            stored = stored_collection.get(document_id)
            if stored is not None:
                stored_position = stored.get(POSITION_FIELD, _MISSING)
                if not isinstance(stored_position, str):
                    raise DocumentWriteConflict(
                        put.collection,
                        [f"stored document {document_id!r} has no {POSITION_FIELD} to guard by"],
                    )
                if stored_position >= put.document[POSITION_FIELD]:
                    continue  # already applied: a replay
            stored_collection[document_id] = copy.deepcopy(dict(put.document))
        for update in updates:
            if not update.set:
                continue
            paths = [p.split(".") for p in update.set]
            _check_set_paths(update.collection, paths)
            stored_collection = self._collections.get(update.collection, {})
            for document_id, document in list(stored_collection.items()):
                if not _matches(document, update.filter):
                    continue
                changed = copy.deepcopy(document)
                for path, value in zip(paths, update.set.values(), strict=True):
                    _set_path(update.collection, changed, path, copy.deepcopy(value))
                stored_collection[document_id] = changed

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        stored = self._collections.get(collection, {})
        doomed = [i for i, d in stored.items() if _matches(d, filter)]
        for document_id in doomed:
            del stored[document_id]
        return len(doomed)

    async def drop_collection(self, collection: str) -> None:
        self._collections.pop(collection, None)
        self._indexes.pop(collection, None)

    async def ensure_index(self, collection: str, keys: Sequence[SortKey]) -> None:
        if not keys:
            raise ValueError("an index needs at least one key")
        index = tuple(SortKey(k.field, k.direction) for k in keys)
        known = self._indexes.setdefault(collection, [])
        if index not in known:
            known.append(index)

    async def indexes(self, collection: str) -> list[tuple[SortKey, ...]]:
        """The indexes made by ensure_index (not the implicit `_id` one). Not part of the port."""
        return list(self._indexes.get(collection, []))

    # ------------------------------------------------------------ checkpoints

    async def load_checkpoint(self, name: str) -> Checkpoint | None:
        checkpoint = self._checkpoints.get(name)
        return copy.deepcopy(checkpoint) if checkpoint is not None else None

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._checkpoints[checkpoint.name] = Checkpoint(
            name=checkpoint.name,
            position=checkpoint.position,
            state=checkpoint.state,
            last_error=checkpoint.last_error,
            updated_at=now_ms(),
            extra=copy.deepcopy(dict(checkpoint.extra)),
        )

    async def list_checkpoints(self) -> list[Checkpoint]:
        return [copy.deepcopy(self._checkpoints[n]) for n in sorted(self._checkpoints)]

    async def close(self) -> None:
        pass


# ------------------------------------------------------------- matching, paths


def _matches(document: Document, filter: Mapping[str, Any]) -> bool:
    return all(_field_matches(document, field, value) for field, value in filter.items())


def _field_matches(document: Document, field: str, expected: Any) -> bool:
    candidates = _resolve(document, field.split("."))
    if expected is None and (not candidates or any(c is _MISSING for c in candidates)):
        return True
    for candidate in candidates:
        if candidate is _MISSING:
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
        return _resolve(value[head], rest) if head in value else [_MISSING]
    if isinstance(value, list):
        found: list[Any] = []
        if head.isdigit() and int(head) < len(value):
            found.extend(_resolve(value[int(head)], rest))
        for element in value:
            if isinstance(element, Mapping):
                found.extend(_resolve(element, path))
        return found or [_MISSING]
    return [_MISSING]


def _get_path(document: Document, field: str) -> Any:
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
    if value is None or value is _MISSING:
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


def _compare(a: Any, b: Any) -> int:
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
    return (a > b) - (a < b)


def _compare_sequences(a: list[Any], b: list[Any]) -> int:
    for x, y in zip(a, b, strict=False):
        c = _compare(x, y)
        if c:
            return c
    return (len(a) > len(b)) - (len(a) < len(b))


def _equal(a: Any, b: Any) -> bool:
    return _type_rank(a) == _type_rank(b) and _compare(a, b) == 0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
