"""What one batch of the projector works with: the documents it loaded and evolved, and the
failures of a projection's own code (apart from storage errors)."""

from __future__ import annotations

from dataclasses import dataclass, field

from read_model.document_store.port import Document, UpdateMany
from read_model.document_store.rules import apply_set, matches
from read_model.projections.base import DocKey


@dataclass
class Working:
    """Documents of one batch in memory: loaded, then evolved."""

    docs: dict[DocKey, Document | None] = field(default_factory=dict)
    changed: set[DocKey] = field(default_factory=set)
    updates: list[UpdateMany] = field(default_factory=list)


class EventFailed(Exception):
    """The projection's own code failed on an event (the cause says how)."""


class _EventFailure:
    """What the projection's code raises inside it is re-raised as EventFailed. A class,
    not a generator context manager: it is entered three times per event."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: object
    ) -> None:
        if isinstance(error, Exception):
            raise EventFailed() from error


_EVENT_FAILURE = _EventFailure()


def event_failure() -> _EventFailure:
    return _EVENT_FAILURE


def apply_update_in_memory(working: Working, update: UpdateMany) -> None:
    """Keep the batch's in-memory view as the database will be after the update."""
    for key, doc in working.docs.items():
        if key.collection == update.collection and doc is not None and matches(doc, update.filter):
            working.docs[key] = apply_set(update.collection, doc, update.set)
