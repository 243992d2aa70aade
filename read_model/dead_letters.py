"""Dead letters: events a subscriber (a projection, later the saga) could not apply, parked
with every later event of the same stream so that stream keeps its order while the others
keep flowing.

One document per parked event in the `dead_letters` collection, `_id` =
`<subscriber>:v<version>:<event id>`, carrying the event's log position in `_pos`. Letters
belong to a version of the subscriber's collections: a rebuild parks under the version it
builds, so its letters become the live ones when readers switch to it, and the old version's
go with its collections. An operator asks for a retry (`retryDeadLetter`: `retryRequested`
set on the stream's letters); the subscriber's leading process re-applies the stream.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from read_model.document_store.port import (
    POSITION_FIELD,
    Document,
    DocumentStore,
    GuardedPut,
    SortKey,
    UpdateMany,
    position_key,
)
from write_model.envelope import RecordedEvent

DEAD_LETTERS = "dead_letters"
# The queries below: a subscriber's letters (by stream, in log order), all in log order.
DEAD_LETTER_INDEXES: tuple[tuple[SortKey, ...], ...] = (
    (SortKey("subscriber"), SortKey("version"), SortKey("streamId"), SortKey(POSITION_FIELD)),
    (SortKey(POSITION_FIELD), SortKey("_id")),
    (SortKey("streamId"), SortKey(POSITION_FIELD)),
)
ORDERING: tuple[SortKey, ...] = (SortKey(POSITION_FIELD),)  # oldest first, then by `_id`
# More letters than any one query reads at once: a subscriber this far gone is failing on
# every stream, and its letters are read in pages by the API.
_ALL = 100_000


@dataclass(frozen=True, slots=True)
class Failure:
    """An event that is to be parked: why, and after how many tries."""

    event: RecordedEvent
    error: str
    attempts: int


class DeadLetters:
    """The dead-letter collection, through the DocumentStore port."""

    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents

    async def ensure_indexes(self) -> None:
        for keys in DEAD_LETTER_INDEXES:
            await self._documents.ensure_index(DEAD_LETTERS, keys)

    # ------------------------------------------------------------- subscriber

    async def parked_streams(self, subscriber: str, version: int) -> set[str]:
        page = await self._documents.find(DEAD_LETTERS, _of(subscriber, version), [], _ALL)
        return {doc["streamId"] for doc in page.documents}

    async def park(self, subscriber: str, version: int, failures: Sequence[Failure]) -> None:
        now = datetime.now(UTC)
        await self._documents.bulk_write(
            [GuardedPut(DEAD_LETTERS, _letter(subscriber, version, f, now)) for f in failures]
        )

    async def of_stream(self, subscriber: str, version: int, stream_id: str) -> list[Document]:
        """The stream's letters, in log order."""
        page = await self._documents.find(
            DEAD_LETTERS, {**_of(subscriber, version), "streamId": stream_id}, ORDERING, _ALL
        )
        return page.documents

    async def remove(self, letter_id: str) -> None:
        await self._documents.delete_many(DEAD_LETTERS, {"_id": letter_id})

    async def remove_stream(self, subscriber: str, version: int, stream_id: str) -> None:
        await self._documents.delete_many(
            DEAD_LETTERS, {**_of(subscriber, version), "streamId": stream_id}
        )

    async def remove_version(self, subscriber: str, version: int) -> None:
        await self._documents.delete_many(DEAD_LETTERS, _of(subscriber, version))

    async def record_retry_failure(
        self, letters: Sequence[Document], error: str, attempts: int
    ) -> None:
        now = datetime.now(UTC)
        await self._documents.bulk_write(
            [
                GuardedPut(
                    DEAD_LETTERS,
                    {
                        **letter,
                        # Advance the guard so the new error replaces the old record.
                        POSITION_FIELD: f"{letter[POSITION_FIELD]}.{time.time_ns():020d}",
                        "error": error,
                        "attempts": letter["attempts"] + attempts,
                        "failedAt": now,
                    },
                )
                for letter in letters
            ]
        )

    # --------------------------------------------------------------- retries

    async def request_retry(self, letter_id: str) -> bool:
        """Ask the subscriber's leading process to retry the letter's stream. False: no such
        letter."""
        letter = await self._documents.get(DEAD_LETTERS, letter_id)
        if letter is None:
            return False
        await self._set_retry_requested(
            letter["subscriber"], letter["version"], letter["streamId"], True
        )
        return True

    async def retry_requested(self, subscriber: str, version: int) -> list[str]:
        """The streams an operator asked to retry, sorted."""
        page = await self._documents.find(
            DEAD_LETTERS, {**_of(subscriber, version), "retryRequested": True}, [], _ALL
        )
        return sorted({doc["streamId"] for doc in page.documents})

    async def clear_retry_request(self, subscriber: str, version: int, stream_id: str) -> None:
        await self._set_retry_requested(subscriber, version, stream_id, False)

    async def _set_retry_requested(
        self, subscriber: str, version: int, stream_id: str, value: bool
    ) -> None:
        await self._documents.bulk_write(
            [],
            [
                UpdateMany(
                    DEAD_LETTERS,
                    {**_of(subscriber, version), "streamId": stream_id},
                    {"retryRequested": value},
                )
            ],
        )

    # ---------------------------------------------------------- operators

    async def of_stream_anywhere(self, stream_id: str) -> list[Document]:
        """The stream's letters of every subscriber and version, in log order."""
        page = await self._documents.find(DEAD_LETTERS, {"streamId": stream_id}, ORDERING, _ALL)
        return page.documents

    async def get(self, letter_id: str) -> Document | None:
        return await self._documents.get(DEAD_LETTERS, letter_id)

    async def page(self, limit: int, after: Sequence[Any] | None = None) -> list[Document]:
        """Letters of every subscriber, oldest first; `after`: the `(_pos, _id)` of the last
        letter of the previous page."""
        found = await self._documents.find(DEAD_LETTERS, {}, ORDERING, limit, after)
        return found.documents

    async def count(self) -> int:
        return await self._documents.count(DEAD_LETTERS, {})


def _of(subscriber: str, version: int) -> dict[str, Any]:
    return {"subscriber": subscriber, "version": version}


def _letter(subscriber: str, version: int, failure: Failure, now: datetime) -> Document:
    event = failure.event
    return {
        "_id": f"{subscriber}:v{version}:{event.event_id}",
        POSITION_FIELD: position_key(event.log_position),
        "subscriber": subscriber,
        "version": version,
        "eventId": str(event.event_id),
        "streamId": event.stream_id,
        "streamVersion": event.version,
        "position": str(event.position),
        "transactionId": str(event.transaction_id),
        "type": event.type,
        "error": failure.error,
        "attempts": failure.attempts,
        "failedAt": now,
    }
