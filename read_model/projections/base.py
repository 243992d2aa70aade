"""What a projection is: pure functions from events to read documents.

A projection names the documents an event touches (`keys`) and those it only reads
(`reads`), evolves each touched document (`evolve(key, doc, event, view) -> doc | None`),
and may emit cross-document effects (`effects`), such as a customer's new name set on every
order of that customer. No I/O: the projector runner loads, applies and writes.

Each projection also declares, per collection, whose its documents are (`owners`): the
field that names the customer a document belongs to, or PUBLIC. The scoped read model
(read_model/scoped.py) narrows every read by it and refuses a collection that declares
nothing, so a new customer-owned collection cannot leak by being forgotten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from read_model.document_store.port import Document, UpdateMany
from write_model.envelope import RecordedEvent


@dataclass(frozen=True, slots=True, order=True)
class DocKey:
    collection: str  # the projection's logical collection name, e.g. "orders"
    id: str


@dataclass(frozen=True, slots=True)
class ProjectedEvent:
    recorded: RecordedEvent  # the envelope: stream, version, position, occurred_at
    event: Any  # the domain event, upcast and deserialized
    position_key: str  # sortable form of the log position (document_store.position_key)


View = Mapping[DocKey, Document | None]


class _Public(Enum):
    PUBLIC = "public"


PUBLIC = _Public.PUBLIC
"""Every principal may read the collection's documents (the catalog)."""

Owner = str | _Public
"""Who may read a collection's documents: the document field naming the customer each
belongs to (a customer reads its own only; staff and the system read all), or PUBLIC."""


class Projection(Protocol):
    name: str
    collections: tuple[str, ...]  # logical names; the runner maps them to versioned ones
    owners: Mapping[str, Owner]  # per collection: whose its documents are (see above)

    def handles(self, event_type: str) -> bool: ...

    def keys(self, event: ProjectedEvent, view: View) -> Sequence[DocKey]:
        """Documents this event evolves, in the order `evolve` is called for them. `view`
        holds the documents named by `reads(event)` (loaded first, and reflecting earlier
        events of the batch), so the keys may depend on a lookup document."""
        ...

    def reads(self, event: ProjectedEvent) -> Sequence[DocKey]:
        """Documents this event only looks at (e.g. a customer's name for a new order)."""
        ...

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        """The document after the event; None means it does not exist (or is deleted)."""
        ...

    def effects(self, event: ProjectedEvent) -> Sequence[UpdateMany]:
        """Cross-document updates (logical collection names), applied after the puts."""
        ...

    def indexes(self) -> Mapping[str, Sequence[Sequence[tuple[str, int]]]]:
        """Per logical collection, the compound indexes its queries need."""
        ...
