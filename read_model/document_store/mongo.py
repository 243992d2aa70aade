"""The DocumentStore on MongoDB through pymongo's native asyncio client.

A guarded put is an upsert whose filter also requires the stored `_pos` to be lower:
    ReplaceOne({"_id": id, "_pos": {"$lt": new_pos}}, document, upsert=True)
When the stored document is as new or newer, the filter misses and the upsert collides with
the existing `_id`: MongoDB reports a duplicate key on the `_id` index (E11000) for that
statement alone (the puts are unordered), which is the guard working on a replay. Any other
write error (a unique secondary index, a type clash) raises DocumentWriteConflict.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC
from typing import Any, ParamSpec, TypeVar

from bson.codec_options import CodecOptions
from bson.int64 import Int64
from pymongo import AsyncMongoClient, ReplaceOne, monitoring
from pymongo import UpdateMany as UpdateManyOperation
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, PyMongoError

from read_model.document_store.port import (
    POSITION_FIELD,
    Checkpoint,
    Document,
    DocumentStoreUnavailable,
    DocumentWriteConflict,
    GuardedPut,
    Page,
    ProjectionState,
    RebuildStatus,
    SortKey,
    UpdateMany,
)
from read_model.document_store.rules import (
    check_equality_filter,
    check_guarded_put,
    now_ms,
    sort_keys_with_tiebreaker,
)
from write_model.envelope import LogPosition

CHECKPOINTS = "projection_checkpoints"
DUPLICATE_KEY = 11000


class MongoUnavailableError(ConnectionError):
    """The Mongo-wire server could not be reached (or the URL is not valid)."""


P = ParamSpec("P")
R = TypeVar("R")


def _unavailable_when_disconnected(
    method: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """The port's DocumentStoreUnavailable for a connection that failed or a server that
    could not be selected in time, so callers can tell an outage (retryable) from a bug."""

    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except ConnectionFailure as error:
            reason = str(error).split(", Timeout:")[0][:300]
            raise DocumentStoreUnavailable(
                f"MongoDB is unavailable: {type(error).__name__}: {reason}"
            ) from error

    return translated


class MongoDocumentStore:
    def __init__(
        self, client: AsyncMongoClient[Document], database: str, *, owns_client: bool = False
    ) -> None:
        """`owns_client`: close() also closes the client (as it does after `connect`)."""
        self._client = client
        # Whatever the client's options, read datetimes back tz-aware in UTC.
        self._db: AsyncDatabase[Document] = client.get_database(
            database, codec_options=CodecOptions(tz_aware=True, tzinfo=UTC)
        )
        self._owns_client = owns_client
        self._collections: dict[str, AsyncCollection[Document]] = {}

    def _collection(self, name: str) -> AsyncCollection[Document]:
        # Built once per name: pymongo builds a collection's options anew each time.
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = self._db[name]
        return found

    @classmethod
    async def connect(
        cls,
        url: str,
        database: str,
        *,
        timeout_ms: int = 5000,
        event_listeners: Sequence[monitoring._EventListener] = (),
    ) -> MongoDocumentStore:
        """A store on a new client for `url`, after a ping proves the server answers.
        `event_listeners`: pymongo monitoring listeners (command metrics, tests that count
        round trips). Errors never quote the URL (it may hold a password): the caller names
        the setting it came from."""
        try:
            client: AsyncMongoClient[Document] = AsyncMongoClient(
                url,
                tz_aware=True,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                event_listeners=list(event_listeners),
            )
        except (PyMongoError, ValueError, TypeError) as exc:
            # `from None`: a parse error may quote the URL, password included.
            raise MongoUnavailableError(f"invalid Mongo URL: {type(exc).__name__}") from None
        try:
            await client.admin.command("ping")
        except PyMongoError as exc:
            await client.close()
            reason = str(exc).split(", Timeout:")[0][:300]
            raise MongoUnavailableError(
                f"no answer within {timeout_ms / 1000:g} s: {reason}"
            ) from exc
        return cls(client, database, owns_client=True)

    @property
    def database(self) -> AsyncDatabase[Document]:
        """The pymongo database (for admin tooling and tests; projections use the port)."""
        return self._db

    # ------------------------------------------------------------------ reads

    @_unavailable_when_disconnected
    async def get(self, collection: str, document_id: str) -> Document | None:
        return await self._collection(collection).find_one({"_id": document_id})

    @_unavailable_when_disconnected
    async def get_many(self, collection: str, ids: Sequence[str]) -> dict[str, Document]:
        unique_ids = list(dict.fromkeys(ids))
        if not unique_ids:
            return {}
        cursor = self._collection(collection).find({"_id": {"$in": unique_ids}})
        return {document["_id"]: document async for document in cursor}

    @_unavailable_when_disconnected
    async def find(
        self,
        collection: str,
        filter: Mapping[str, Any],
        sort: Sequence[SortKey],
        limit: int,
        after: Sequence[Any] | None = None,
    ) -> Page:
        if limit <= 0:  # pymongo reads limit 0 as "no limit"
            raise ValueError(f"limit must be positive, got {limit}")
        check_equality_filter(filter)
        keys = sort_keys_with_tiebreaker(sort)
        query: dict[str, Any] = dict(filter)
        if after is not None:
            if len(after) != len(keys):
                raise ValueError(
                    f"`after` needs {len(keys)} values ({', '.join(k.field for k in keys)}), "
                    f"got {len(after)}"
                )
            seek = keyset_filter(keys, after)
            query = {"$and": [query, seek]} if query else seek
        cursor = (
            self._collection(collection)
            .find(query)
            .sort([(k.field, k.direction) for k in keys])
            .limit(limit + 1)
        )
        documents = [document async for document in cursor]
        return Page(documents=documents[:limit], has_next_page=len(documents) > limit)

    @_unavailable_when_disconnected
    async def count(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        if filter:
            return await self._collection(collection).count_documents(dict(filter))
        # Counting everything walks the `_id` index rather than the documents.
        return await self._collection(collection).count_documents({}, hint="_id_")

    @_unavailable_when_disconnected
    async def changed_after(self, collection: str, position: str, limit: int) -> list[Document]:
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        cursor = (
            self._collection(collection)
            .find({POSITION_FIELD: {"$gt": position}})
            .sort(POSITION_FIELD, 1)
            .limit(limit)
        )
        return [document async for document in cursor]

    # ----------------------------------------------------------------- writes

    @_unavailable_when_disconnected
    async def bulk_write(
        self, puts: Sequence[GuardedPut], updates: Sequence[UpdateMany] = ()
    ) -> None:
        for put in puts:
            check_guarded_put(put)
        for update in updates:
            check_equality_filter(update.filter)

        by_collection: dict[str, list[ReplaceOne[Document]]] = {}
        for put in puts:
            document = dict(put.document)
            by_collection.setdefault(put.collection, []).append(
                ReplaceOne(
                    {"_id": document["_id"], POSITION_FIELD: {"$lt": document[POSITION_FIELD]}},
                    document,
                    upsert=True,
                )
            )
        for collection, operations in by_collection.items():
            try:
                await self._collection(collection).bulk_write(operations, ordered=False)
            except BulkWriteError as error:
                refused = [e for e in error.details["writeErrors"] if not _guard_held(e)]
                if refused or error.details.get("writeConcernErrors"):
                    raise DocumentWriteConflict(
                        collection,
                        _messages(refused or error.details["writeConcernErrors"]),
                    ) from error

        # Consecutive updates of one collection share a command; order is kept throughout.
        run: list[UpdateManyOperation] = []
        run_collection = ""
        for update in updates:
            if not update.set:
                continue
            if update.collection != run_collection and run:
                await self._run_updates(run_collection, run)
                run = []
            run_collection = update.collection
            run.append(UpdateManyOperation(dict(update.filter), {"$set": dict(update.set)}))
        if run:
            await self._run_updates(run_collection, run)

    async def _run_updates(self, collection: str, operations: list[UpdateManyOperation]) -> None:
        try:
            await self._collection(collection).bulk_write(operations, ordered=True)
        except BulkWriteError as error:
            raise DocumentWriteConflict(
                collection,
                _messages(error.details["writeErrors"] or error.details["writeConcernErrors"]),
            ) from error

    @_unavailable_when_disconnected
    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> int:
        check_equality_filter(filter)
        result = await self._collection(collection).delete_many(dict(filter))
        return result.deleted_count

    @_unavailable_when_disconnected
    async def drop_collection(self, collection: str) -> None:
        await self._db.drop_collection(collection)

    @_unavailable_when_disconnected
    async def ensure_index(self, collection: str, keys: Sequence[SortKey]) -> None:
        if not keys:
            raise ValueError("an index needs at least one key")
        await self._collection(collection).create_index([(k.field, k.direction) for k in keys])

    async def indexes(self, collection: str) -> list[tuple[SortKey, ...]]:
        """The collection's indexes other than the implicit `_id` one. Not part of the port."""
        information = await self._collection(collection).index_information()
        return [
            tuple(SortKey.of(field, direction) for field, direction in index["key"])
            for name, index in information.items()
            if name != "_id_"
        ]

    # ------------------------------------------------------------ checkpoints

    @_unavailable_when_disconnected
    async def load_checkpoint(self, name: str) -> Checkpoint | None:
        document = await self._collection(CHECKPOINTS).find_one({"_id": name})
        return _checkpoint_from(document) if document is not None else None

    @_unavailable_when_disconnected
    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._collection(CHECKPOINTS).replace_one(
            {"_id": checkpoint.name},
            {
                "_id": checkpoint.name,
                "transaction_id": Int64(checkpoint.position.transaction_id),
                "position": Int64(checkpoint.position.position),
                "version": checkpoint.version,
                "state": str(checkpoint.state),
                "rebuild": str(checkpoint.rebuild) if checkpoint.rebuild else None,
                "last_error": checkpoint.last_error,
                "updated_at": now_ms(),
            },
            upsert=True,
        )

    @_unavailable_when_disconnected
    async def list_checkpoints(self) -> list[Checkpoint]:
        cursor = self._collection(CHECKPOINTS).find({}).sort("_id", 1)
        return [_checkpoint_from(document) async for document in cursor]

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()


def keyset_filter(keys: Sequence[SortKey], after: Sequence[Any]) -> dict[str, Any]:
    """Documents after the row `after` in the order `keys`, for any mix of directions:
    (k1 past v1) or (k1 = v1 and k2 past v2) or ... Null (and missing) sorts first."""
    branches: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        value = after[i]
        branch: dict[str, Any] = {k.field: after[j] for j, k in enumerate(keys[:i])}
        if key.direction == 1:
            # Everything but null sorts after null; $gt does not cross types, null never passes.
            branch[key.field] = {"$ne": None} if value is None else {"$gt": value}
        elif value is None:
            continue  # nothing sorts below null
        else:
            # $lt does not match null/missing, which sorts last in a descending order.
            branch["$or"] = [{key.field: {"$lt": value}}, {key.field: None}]
        branches.append(branch)
    return {"$or": branches}


def _checkpoint_from(document: Mapping[str, Any]) -> Checkpoint:
    updated_at = document.get("updated_at")
    return Checkpoint(
        name=document["_id"],
        position=LogPosition(int(document["transaction_id"]), int(document["position"])),
        version=int(document.get("version", 1)),
        state=ProjectionState(document.get("state", ProjectionState.RUNNING)),
        rebuild=RebuildStatus(document["rebuild"]) if document.get("rebuild") else None,
        last_error=document.get("last_error"),
        updated_at=updated_at.astimezone(UTC) if updated_at is not None else None,
    )


def _guard_held(error: Mapping[str, Any]) -> bool:
    """A write error that is the position guard refusing an older document: the upsert's
    filter missed because the stored `_pos` is as new, and the insert collided on `_id`."""
    return error.get("code") == DUPLICATE_KEY and set(error.get("keyPattern") or {}) == {"_id"}


def _messages(errors: Sequence[Any]) -> list[str]:
    return [f"{e.get('errmsg', e)} (code {e.get('code')})" for e in errors]
