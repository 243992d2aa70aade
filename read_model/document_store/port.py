"""The DocumentStore port: where projections keep read documents. Adapters: mongo, memory.

Every adapter passes tests/contracts/test_document_store.py. Writes are single-document
atomic operations with a guard (no multi-document transactions), so any MongoDB deployment
serves them.

Replays are made harmless by a position guard: every document carries `_pos`, the sortable
log position (see `position_key`) of the last event applied to it. A guarded put replaces a
document only when the stored one has a lower `_pos` (or does not exist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from log_follower.dead_letters.port import position_key
from write_model.envelope import LogPosition

__all__ = ["position_key"]  # the follower layer's: documents and letters sort alike

Document = dict[str, Any]
POSITION_FIELD = "_pos"


class DocumentStoreUnavailable(ConnectionError):
    """The document store cannot be reached right now (a restart, a network cut): retryable."""


class DocumentWriteConflict(Exception):
    """The store refused part of a bulk write for a reason other than the position guard
    (e.g. an update that would change `_id`, a unique index, a type clash on a dotted path).
    Statements before the refused one were applied; the rest of that bulk write was not."""

    def __init__(self, collection: str, messages: Sequence[str]) -> None:
        self.collection = collection
        self.messages = list(messages)
        super().__init__(f"write to {collection!r} refused: " + "; ".join(self.messages))


@dataclass(frozen=True, slots=True)
class GuardedPut:
    """Replace `document` (which has `_id` and `_pos`) unless the stored one is as new."""

    collection: str
    document: Document


@dataclass(frozen=True, slots=True)
class UpdateMany:
    """Set fields on every document matching an equality filter (cross-document effects,
    e.g. a customer's new name on that customer's orders). Applied after the puts of the
    same bulk write, in the order given; replays re-run them in log order, so the last
    one wins as it did the first time."""

    collection: str
    filter: Mapping[str, Any]
    set: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    direction: Literal[1, -1] = 1

    @staticmethod
    def of(field: str, direction: object) -> SortKey:
        """A key whose direction comes as a number (1 or -1) from elsewhere: a
        projection's index, a server's index information."""
        if direction == 1:
            return SortKey(field, 1)
        if direction == -1:
            return SortKey(field, -1)
        raise ValueError(f"{field}: a direction is 1 or -1, not {direction!r}")


@dataclass(frozen=True, slots=True)
class Page:
    documents: list[Document]
    has_next_page: bool


class ProjectionState(StrEnum):
    RUNNING = "RUNNING"  # at the head of the log
    CATCHING_UP = "CATCHING_UP"  # its last batch was full: more is waiting
    REBUILDING = "REBUILDING"  # a new version being built from position zero
    STOPPED = "STOPPED"
    FAILED = "FAILED"  # its last batch failed (storage down, a bug); retried with backoff


class RebuildStatus(StrEnum):
    BUILDING = "BUILDING"
    READY = "READY"  # caught up once; the leading projector switches readers to it
    SWITCHED = "SWITCHED"  # readers use it now, under the projection's own checkpoint
    RETIRED = "RETIRED"  # and the version before it is dropped


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A subscriber's progress through the log, with what `projections status` shows.
    `version`: the collection version it writes (`orders_v<version>`); `rebuild`: set on a
    rebuild's own checkpoint (`<name>:rebuild`)."""

    name: str
    position: LogPosition
    version: int = 1
    state: ProjectionState = ProjectionState.RUNNING
    rebuild: RebuildStatus | None = None
    last_error: str | None = None
    updated_at: datetime | None = None  # set by the store when saved


class DocumentStore(Protocol):
    async def get(self, collection: str, document_id: str) -> Document | None: ...

    async def get_many(self, collection: str, ids: Sequence[str]) -> dict[str, Document]:
        """The documents that exist among `ids`, by id, in one round trip."""
        ...

    async def find(
        self,
        collection: str,
        filter: Mapping[str, Any],
        sort: Sequence[SortKey],
        limit: int,
        after: Sequence[Any] | None = None,
    ) -> Page:
        """Documents matching an equality `filter`, ordered by `sort` then `_id` ascending
        (always appended as the tie-breaker). `after` is the values of the sort fields and
        `_id` of the last document of the previous page (keyset pagination: stable under
        inserts)."""
        ...

    async def count(self, collection: str, filter: Mapping[str, Any]) -> int: ...

    async def changed_after(self, collection: str, position: str, limit: int) -> list[Document]:
        """Documents whose `_pos` is above `position` (a position_key), lowest first: what
        changed since a reader last looked (a subscriber catching up after a gap)."""
        ...

    async def bulk_write(
        self, puts: Sequence[GuardedPut], updates: Sequence[UpdateMany] = ()
    ) -> None:
        """All puts (guarded, any order), then the updates in order. Not atomic: a crash
        part-way leaves some applied; replaying the same writes converges."""
        ...

    async def delete_many(self, collection: str, filter: Mapping[str, Any]) -> int: ...

    async def drop_collection(self, collection: str) -> None: ...

    async def ensure_index(self, collection: str, keys: Sequence[SortKey]) -> None: ...

    async def load_checkpoint(self, name: str) -> Checkpoint | None: ...

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    async def list_checkpoints(self) -> list[Checkpoint]: ...

    async def close(self) -> None: ...
