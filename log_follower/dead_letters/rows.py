"""A letter as a row of the SQL adapters' `dead_letters` table (sqlite, postgres)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from log_follower.dead_letters.port import DeadLetter, LetterOwner
from write_model.envelope import LogPosition

COLUMNS = (
    "id, sort_key, follower, version, key, event_id, stream_id, stream_version, "
    "transaction_id, position, event_type, error, attempts, failed_at, retry_requested"
)
SELECT = f"SELECT {COLUMNS} FROM dead_letters"
IN_ORDER = "ORDER BY sort_key, id"
FAILED_AT = 13  # the column's index in COLUMNS


def as_row(letter: DeadLetter) -> tuple[Any, ...]:
    """In COLUMNS order."""
    return (
        letter.id,
        letter.sort_key,
        letter.owner.follower,
        letter.owner.version,
        letter.key,
        letter.event_id,
        letter.stream_id,
        letter.stream_version,
        letter.log_position.transaction_id,
        letter.log_position.position,
        letter.event_type,
        letter.error,
        letter.attempts,
        letter.failed_at,
        letter.retry_requested,
    )


def from_row(row: Any, failed_at: datetime) -> DeadLetter:
    """`row` in COLUMNS order; `failed_at` as the adapter reads its column."""
    (_, _, follower, version, key, event_id, stream_id, stream_version) = row[:8]
    transaction_id, position, event_type, error, attempts, _, retry_requested = row[8:]
    return DeadLetter(
        owner=LetterOwner(follower, None if version is None else int(version)),
        key=key,
        event_id=event_id,
        stream_id=stream_id,
        stream_version=int(stream_version),
        log_position=LogPosition(int(transaction_id), int(position)),
        event_type=event_type,
        error=error,
        attempts=int(attempts),
        failed_at=failed_at,
        retry_requested=bool(retry_requested),
    )
