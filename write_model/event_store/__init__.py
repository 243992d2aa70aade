from write_model.event_store.port import (
    ANY,
    NO_STREAM,
    DuplicateEventError,
    EventStore,
    ExpectedVersion,
    IdempotencyKey,
    IdempotencyKeyConflict,
    IdempotencyRecord,
    Snapshot,
    StreamFromSnapshot,
    WrongExpectedVersion,
)

__all__ = [
    "ANY",
    "NO_STREAM",
    "DuplicateEventError",
    "EventStore",
    "ExpectedVersion",
    "IdempotencyKey",
    "IdempotencyKeyConflict",
    "IdempotencyRecord",
    "Snapshot",
    "StreamFromSnapshot",
    "WrongExpectedVersion",
]
