"""An in-memory DocumentStore: a dict of collections, for unit tests and `orders dev`.

It follows the Mongo adapter's semantics where the conformance suite pins them down:
equality filters match array elements and dotted paths, missing fields sort as null (first
ascending), mixed types sort in BSON type order, and `$set` paths that Mongo refuses
(`_id`, a field inside a scalar, overlapping paths) raise DocumentWriteConflict. Documents
are deep-copied in and out, so callers can never mutate stored state.
"""

from __future__ import annotations

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
    copied,
    matches,
    now_ms,
    sort_keys_with_tiebreaker,
    value_at,
)


def _strings(value: Any) -> tuple[str, ...]:
    """The string values a top-level field holds (itself, or its array's elements): the
    only values an equality filter on a string can match."""
    if type(value) is str:
        return (value,)
    if type(value) is list:
        return tuple(item for item in value if type(item) is str)
    return ()


class InMemoryDocumentStore:
    def __init__(self) -> None:
        self._collections: dict[str, dict[str, Document]] = {}
        self._indexes: dict[str, list[tuple[SortKey, ...]]] = {}
        self._checkpoints: dict[str, Checkpoint] = {}
        # Equality lookups by string value, per collection and top-level field: made the
        # first time a filter asks for that field, kept current by every write after. Without
        # them each filtered read or update scans the collection, and a rebuild's renames
        # (an update of every order of a customer or product) grow with the log squared.
        self._by_value: dict[str, dict[str, dict[str, set[str]]]] = {}

    # ------------------------------------------------------------------ reads

    async def get(self, collection: str, document_id: str) -> Document | None:
        document = self._collections.get(collection, {}).get(document_id)
        return copied(document) if document is not None else None

    async def get_many(self, collection: str, ids: Sequence[str]) -> dict[str, Document]:
        stored = self._collections.get(collection, {})
        return {i: copied(stored[i]) for i in dict.fromkeys(ids) if i in stored}

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
        matching = [d for _, d in self._matching(collection, filter)]

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
        documents = [copied(d) for _, d in rows[: limit + 1]]
        return Page(documents=documents[:limit], has_next_page=len(documents) > limit)

    async def count(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        return len(self._matching(collection, filter))

    async def changed_after(self, collection: str, position: str, limit: int) -> list[Document]:
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        newer = [
            d
            for d in self._collections.get(collection, {}).values()
            if isinstance(d.get(POSITION_FIELD), str) and d[POSITION_FIELD] > position
        ]
        newer.sort(key=lambda d: d[POSITION_FIELD])
        return [copied(d) for d in newer[:limit]]

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
            self._store(put.collection, document_id, copied(dict(put.document)))
        for update in updates:
            if not update.set:
                continue
            for document_id, document in self._matching(update.collection, update.filter):
                changed = apply_set(update.collection, document, update.set)
                self._store(update.collection, document_id, changed)

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        doomed = [document_id for document_id, _ in self._matching(collection, filter)]
        for document_id in doomed:
            self._store(collection, document_id, None)
        return len(doomed)

    async def drop_collection(self, collection: str) -> None:
        self._collections.pop(collection, None)
        self._indexes.pop(collection, None)
        self._by_value.pop(collection, None)

    # ------------------------------------------------------- equality lookups

    def _matching(self, collection: str, filter: Mapping[str, Any]) -> list[tuple[str, Document]]:
        """The (id, document) pairs `filter` matches: looked up by a string-valued
        top-level field when the filter has one, else found by a scan."""
        stored = self._collections.get(collection, {})
        for field, value in filter.items():
            if type(value) is str and "." not in field:
                ids = self._lookup(collection, field).get(value, ())
                candidates = [(i, stored[i]) for i in ids]
                break
        else:
            candidates = list(stored.items())
        return [(i, d) for i, d in candidates if matches(d, filter)]

    def _lookup(self, collection: str, field: str) -> dict[str, set[str]]:
        fields = self._by_value.setdefault(collection, {})
        lookup = fields.get(field)
        if lookup is None:
            lookup = fields[field] = {}
            for document_id, document in self._collections.get(collection, {}).items():
                for value in _strings(document.get(field)):
                    lookup.setdefault(value, set()).add(document_id)
        return lookup

    def _store(self, collection: str, document_id: str, document: Document | None) -> None:
        """Put (None: delete) a document, keeping the collection's lookups current."""
        stored = self._collections.setdefault(collection, {})
        old = stored.get(document_id)
        if document is None:
            stored.pop(document_id, None)
        else:
            stored[document_id] = document
        for field, lookup in self._by_value.get(collection, {}).items():
            for value in _strings(old.get(field)) if old is not None else ():
                ids = lookup[value]
                ids.discard(document_id)
                if not ids:
                    del lookup[value]
            for value in _strings(document.get(field)) if document is not None else ():
                lookup.setdefault(value, set()).add(document_id)

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
