"""PostgreSQL ledger, a table beside the event store's."""

from __future__ import annotations

import asyncpg

from sagas.ledger.port import LedgerEntry

# The table lives in the event store's database: its outages are the event store's, so the
# saga process retries them instead of parking what it was doing as a dead letter.
from write_model.event_store.postgres import (
    _unavailable_when_disconnected as unavailable_when_disconnected,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_ledger (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    key text PRIMARY KEY,
    gateway text NOT NULL,
    operation text NOT NULL,
    subject text NOT NULL,
    succeeded boolean NOT NULL,
    reference text,
    reason text,
    amount numeric,
    currency text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS gateway_ledger_by_gateway ON gateway_ledger (gateway, seq);
"""

_COLUMNS = "key, gateway, operation, subject, succeeded, reference, reason, amount, currency"

# The inserted row, or the one that was there first: one round trip either way.
_RECORD = f"""
WITH inserted AS (
    INSERT INTO gateway_ledger ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (key) DO NOTHING
    RETURNING {_COLUMNS}
)
SELECT {_COLUMNS} FROM inserted
UNION ALL
SELECT {_COLUMNS} FROM gateway_ledger WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM inserted)
"""


class PostgresLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @unavailable_when_disconnected
    async def record(self, entry: LedgerEntry) -> LedgerEntry:
        row = await self._pool.fetchrow(
            _RECORD,
            entry.key,
            entry.gateway,
            entry.operation,
            entry.subject,
            entry.succeeded,
            entry.reference,
            entry.reason,
            entry.amount,
            entry.currency,
        )
        if row is None:  # inserted by a transaction that had not committed when ours began
            row = await self._pool.fetchrow(
                f"SELECT {_COLUMNS} FROM gateway_ledger WHERE key = $1", entry.key
            )
        assert row is not None, "the key is stored by now"
        return LedgerEntry(*row)

    @unavailable_when_disconnected
    async def find(self, key: str) -> LedgerEntry | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM gateway_ledger WHERE key = $1", key
        )
        return None if row is None else LedgerEntry(*row)

    @unavailable_when_disconnected
    async def entries(self, gateway: str) -> list[LedgerEntry]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM gateway_ledger WHERE gateway = $1 ORDER BY seq", gateway
        )
        return [LedgerEntry(*row) for row in rows]
