"""A letter as a row of the SQL adapters' `saga_dead_letters` table (sqlite, postgres)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from write_model.envelope import LogPosition
from write_model.sagas.dead_letters.port import SagaLetter

COLUMNS = (
    "id, sort_key, subscriber, key, event_id, stream_id, stream_version, transaction_id, "
    "position, event_type, error, attempts, failed_at, retry_requested"
)
SELECT = f"SELECT {COLUMNS} FROM saga_dead_letters"
IN_ORDER = "ORDER BY sort_key, id"


def as_row(letter: SagaLetter) -> tuple[Any, ...]:
    """In COLUMNS order."""
    return (
        letter.id,
        letter.sort_key,
        letter.subscriber,
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


def from_row(row: Any, failed_at: datetime) -> SagaLetter:
    """`row` in COLUMNS order; `failed_at` as the adapter reads its column."""
    (_, _, subscriber, key, event_id, stream_id, version, transaction_id, position) = row[:9]
    event_type, error, attempts, _, retry_requested = row[9:]
    return SagaLetter(
        subscriber=subscriber,
        key=key,
        event_id=event_id,
        stream_id=stream_id,
        stream_version=int(version),
        log_position=LogPosition(int(transaction_id), int(position)),
        event_type=event_type,
        error=error,
        attempts=int(attempts),
        failed_at=failed_at,
        retry_requested=bool(retry_requested),
    )
