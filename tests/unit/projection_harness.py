"""Play domain events through a projection on the projector's own runner, in memory.

h = ProjectionHarness(OrdersProjection())
h.given(("Customer-c1", CustomerRegistered("c1", "Ada", "ada@example.com")))
h.when(("Order-o1", OrderCreated("o1", "c1", Decimal("0.10"))))
assert h.doc("orders", "o1")["customerName"] == "Ada"

The events are appended to an in-memory event store, one append each (so the Nth event is
at log position N, occurred one minute after the previous: `at(N)`), and the projection's
follower, as the projector process builds it (`projection_follower`: the follower loop and
`ProjectionConsumer`), follows the log into an in-memory document store, `batch_size`
events a batch. The projection is watched on the way: `evolve` must leave its input
document unchanged. A projection that fails parks the event, and the harness fails the
test with the parked event's error.

The harness is synchronous for the given / when / then tests: the harnesses run their
stores and followers on an event loop of their own.
"""

from __future__ import annotations

import asyncio
import atexit
import copy
import uuid
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from log_follower.dead_letters.memory import InMemoryDeadLetters
from log_follower.decoded import DecodedEvents
from log_follower.follower import FollowerSettings
from read_model.document_store.memory import InMemoryDocumentStore
from read_model.document_store.port import POSITION_FIELD, Document, position_key
from read_model.projections.base import DocKey, ProjectedEvent, Projection, View
from read_model.runner import physical_collection
from tests.projecting import WrappedProjection, projection_runner
from write_model.envelope import EventMetadata, NewEvent, RecordedEvent
from write_model.event_store.memory import InMemoryEventStore
from write_model.event_store.port import ANY
from write_model.event_types import build_registry

T0 = datetime(2025, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=1)
# The collection version the harness's follower writes (its documents' physical names).
VERSION = 1

Played = tuple[str, Any]  # (stream id, domain event)
T = TypeVar("T")

_REGISTRY = build_registry()
# The harnesses' event loop: one for all of them, never set as the thread's current loop
# (the async tests' is), closed when the tests end.
_RUNNER = asyncio.Runner(loop_factory=asyncio.new_event_loop)
atexit.register(_RUNNER.close)


def at(position: int) -> datetime:
    """When the event at log position `position` (1-based) occurred."""
    return T0 + STEP * position


class LeavesItsInputUnchanged(WrappedProjection):
    """The projection, with every `evolve` checked not to change the document it is given
    (the runner's batch shares that document with the events after it)."""

    def evolve(
        self, key: DocKey, doc: Document | None, event: ProjectedEvent, view: View
    ) -> Document | None:
        before = copy.deepcopy(doc)
        evolved = self.inner.evolve(key, doc, event, view)
        assert doc == before, f"evolve changed its input document {key}"
        return evolved


class ProjectionHarness:
    def __init__(self, projection: Projection, *, batch_size: int = 1) -> None:
        self.projection = projection
        self.events = InMemoryEventStore()
        self.documents = InMemoryDocumentStore()
        self.dead_letters = InMemoryDeadLetters()
        self.recorded: list[RecordedEvent] = []
        self._follower = projection_runner(
            LeavesItsInputUnchanged(projection),
            self.events,
            self.documents,
            _REGISTRY,
            version=VERSION,
            # A failing event is parked at once: the harness reports it (below).
            settings=FollowerSettings(batch_size=batch_size, max_attempts=1, backoff_seconds=0),
            dead_letters=self.dead_letters,
        )

    # ------------------------------------------------------------- given / when

    def given(self, *events: Played) -> ProjectionHarness:
        return self.play(events)

    def when(self, *events: Played) -> ProjectionHarness:
        return self.play(events)

    def play(self, events: Iterable[Played]) -> ProjectionHarness:
        """Append the events to the log and follow it to its end (with any event appended
        by `record` before them)."""
        for stream_id, event in events:
            self.record(stream_id, event)
        self._run(self._follow())
        return self

    # ------------------------------------------------------------------- then

    def doc(self, collection: str, document_id: str) -> Document | None:
        """The stored document without the runner's `_pos`."""
        found = self.store.get(DocKey(collection, document_id))
        return None if found is None else _without_position(found)

    def docs(self, collection: str) -> dict[str, Document]:
        return {
            key.id: _without_position(doc)
            for key, doc in sorted(self.store.items())
            if key.collection == collection
        }

    @property
    def store(self) -> dict[DocKey, Document]:
        """Every document of the projection's collections, as stored (with `_pos`)."""
        return self._run(self._stored())

    @property
    def last(self) -> RecordedEvent:
        return self.recorded[-1]

    # ---------------------------------------------------------------- recording

    def record(self, stream_id: str, event: Any) -> RecordedEvent:
        """Append the event to the log (the next `play` follows it) and return it as the
        store recorded it."""
        return self._run(self._append(stream_id, event))

    async def _append(self, stream_id: str, event: Any) -> RecordedEvent:
        type_name, data, schema_version = _REGISTRY.serialize(event)
        position = len(self.recorded) + 1
        new = NewEvent(
            uuid.UUID(int=position),
            type_name,
            data,
            EventMetadata(correlation_id=f"c{position}", schema_version=schema_version),
            at(position),
        )
        appended = await self.events.append_to_stream(
            stream_id, stream_id.split("-")[0], ANY, [new]
        )
        [recorded] = await self.events.read_stream(stream_id, from_version=appended.version)
        self.recorded.append(recorded)
        return recorded

    # ---------------------------------------------------------------- following

    async def _follow(self) -> None:
        while (await self._follower.step()).events_read:
            pass
        letters = await self.dead_letters.page(limit=1)
        if letters:
            letter = letters[0]
            raise AssertionError(
                f"{self.projection.name} parked {letter.event_type} of {letter.key}: {letter.error}"
            )

    async def _stored(self) -> dict[DocKey, Document]:
        stored: dict[DocKey, Document] = {}
        for logical in self.projection.collections:
            page = await self.documents.find(
                physical_collection(logical, VERSION), {}, [], limit=10**6
            )
            stored.update((DocKey(logical, doc["_id"]), doc) for doc in page.documents)
        return stored

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return _RUNNER.run(work)


def projected(recorded: RecordedEvent) -> ProjectedEvent:
    """The event as the runner hands it to a projection: upcast and deserialized."""
    return ProjectedEvent(
        recorded, DecodedEvents(_REGISTRY).decode(recorded), position_key(recorded.log_position)
    )


def _without_position(doc: Document) -> Document:
    return {field: value for field, value in doc.items() if field != POSITION_FIELD}
