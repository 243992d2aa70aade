"""The projections' dead letters as they were parked before every follower's letters shared
one store (log_follower/dead_letters/): documents of the `dead_letters` collection beside the
read documents. `orders migrate` moves them into the one store (same ids, so a cursor or an
id an operator noted still finds its letter), then removes them here."""

from __future__ import annotations

from datetime import UTC, datetime

from log_follower.dead_letters.port import DeadLetter, DeadLetters, LetterOwner
from read_model.document_store.port import Document, DocumentStore
from write_model.envelope import LogPosition

LEGACY_COLLECTION = "dead_letters"
_PAGE = 500


def letter_of(document: Document) -> DeadLetter:
    return DeadLetter(
        owner=LetterOwner(document["subscriber"], int(document["version"])),
        key=document["streamId"],  # a projection's key is the stream
        event_id=document["eventId"],
        stream_id=document["streamId"],
        stream_version=int(document["streamVersion"]),
        log_position=LogPosition(int(document["transactionId"]), int(document["position"])),
        event_type=document["type"],
        error=document["error"],
        attempts=int(document["attempts"]),
        failed_at=_moment(document["failedAt"]),
        retry_requested=bool(document.get("retryRequested", False)),
    )


async def move_projection_letters(documents: DocumentStore, letters: DeadLetters) -> int:
    """Move every legacy letter; returns how many. Safe to run again (parking a letter
    stored already keeps it), and to crash part-way (a letter leaves MongoDB only once it is
    in the one store)."""
    moved = 0
    while True:
        page = await documents.find(LEGACY_COLLECTION, {}, [], _PAGE)
        if not page.documents:
            return moved
        await letters.park([letter_of(document) for document in page.documents])
        for document in page.documents:
            await documents.delete_many(LEGACY_COLLECTION, {"_id": document["_id"]})
        moved += len(page.documents)


def _moment(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    # MongoDB hands back naive datetimes, in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
