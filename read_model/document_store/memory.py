"""An in-memory DocumentStore: a dict of collections, for unit tests and `orders dev`.

It follows the Mongo adapter's semantics where the conformance suite pins them down:
equality filters match array elements and dotted paths, missing fields sort as null (first
ascending), mixed types sort in BSON type order, and `$set` paths that Mongo refuses
(`_id`, a field inside a scalar, overlapping paths) raise DocumentWriteConflict. Documents
are deep-copied in and out, so callers can never mutate stored state.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping, Sequence
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
    MISSING,
    apply_set,
    check_equality_filter,
    check_guarded_put,
    compare,
    matches,
    now_ms,
    sort_keys_with_tiebreaker,
    value_at,
)


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
        matching = [d for d in self._collections.get(collection, {}).values() if matches(d, filter)]

        def row(document: Document) -> list[Any]:
            return [value_at(document, k.field) for k in keys]

        def compare_rows(a: Sequence[Any], b: Sequence[Any]) -> int:
            for key, x, y in zip(keys, a, b, strict=True):
                c = compare(x, y)
                if c:
                    return c * key.direction
            return 0

        def compare_found(a: tuple[list[Any], Document], b: tuple[list[Any], Document]) -> int:
            return compare_rows(a[0], b[0])

        rows = sorted(((row(d), d) for d in matching), key=functools.cmp_to_key(compare_found))
        if after is not None:
            rows = [(r, d) for r, d in rows if compare_rows(r, list(after)) > 0]
        documents = [copy.deepcopy(d) for _, d in rows[: limit + 1]]
        return Page(documents=documents[:limit], has_next_page=len(documents) > limit)

    async def count(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        return sum(1 for d in self._collections.get(collection, {}).values() if matches(d, filter))

    async def changed_after(self, collection: str, position: str, limit: int) -> list[Document]:
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        newer = [
            d
            for d in self._collections.get(collection, {}).values()
            if isinstance(d.get(POSITION_FIELD), str) and d[POSITION_FIELD] > position
        ]
        newer.sort(key=lambda d: d[POSITION_FIELD])
        return [copy.deepcopy(d) for d in newer[:limit]]

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
                stored_position = stored.get(POSITION_FIELD, MISSING)
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
            stored_collection = self._collections.get(update.collection, {})
            for document_id, document in list(stored_collection.items()):
                if matches(document, update.filter):
                    stored_collection[document_id] = apply_set(
                        update.collection, document, update.set
                    )

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        stored = self._collections.get(collection, {})
        doomed = [i for i, d in stored.items() if matches(d, filter)]
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
        return checkpoint  # frozen: safe to share

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._checkpoints[checkpoint.name] = dataclasses.replace(checkpoint, updated_at=now_ms())

    async def list_checkpoints(self) -> list[Checkpoint]:
        return [self._checkpoints[n] for n in sorted(self._checkpoints)]

    async def close(self) -> None:
        pass
