"""SQLite ledger in the embedded event store's file, so `orders dev` never charges twice
across a restart."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiosqlite

from sagas.ledger.port import LedgerEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    gateway TEXT NOT NULL,
    operation TEXT NOT NULL,
    subject TEXT NOT NULL,
    succeeded INTEGER NOT NULL,
    reference TEXT,
    reason TEXT,
    amount TEXT,
    currency TEXT
);
"""

_COLUMNS = "key, gateway, operation, subject, succeeded, reference, reason, amount, currency"


class SqliteLedger:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection  # autocommit, schema in place (sagas.storage)

    async def record(self, entry: LedgerEntry) -> LedgerEntry:
        await self._connection.execute(
            f"INSERT INTO gateway_ledger ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (
                entry.key,
                entry.gateway,
                entry.operation,
                entry.subject,
                int(entry.succeeded),
                entry.reference,
                entry.reason,
                None if entry.amount is None else str(entry.amount),
                entry.currency,
            ),
        )
        stored = await self.find(entry.key)
        assert stored is not None, "an entry just inserted or kept is there"
        return stored

    async def find(self, key: str) -> LedgerEntry | None:
        async with self._connection.execute(
            f"SELECT {_COLUMNS} FROM gateway_ledger WHERE key = ?", (key,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _entry(row)

    async def entries(self, gateway: str) -> list[LedgerEntry]:
        async with self._connection.execute(
            f"SELECT {_COLUMNS} FROM gateway_ledger WHERE gateway = ? ORDER BY seq", (gateway,)
        ) as cursor:
            return [_entry(row) for row in await cursor.fetchall()]


def _entry(row: Any) -> LedgerEntry:
    key, gateway, operation, subject, succeeded, reference, reason, amount, currency = row
    return LedgerEntry(
        key,
        gateway,
        operation,
        subject,
        bool(succeeded),
        reference,
        reason,
        None if amount is None else Decimal(amount),
        currency,
    )
