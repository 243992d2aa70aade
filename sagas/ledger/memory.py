"""In-memory ledger: for unit tests and benchmarks only (a restart forgets every charge)."""

from __future__ import annotations

from sagas.ledger.port import LedgerEntry


class InMemoryLedger:
    def __init__(self) -> None:
        self._entries: dict[str, LedgerEntry] = {}

    async def record(self, entry: LedgerEntry) -> LedgerEntry:
        return self._entries.setdefault(entry.key, entry)

    async def find(self, key: str) -> LedgerEntry | None:
        return self._entries.get(key)

    async def entries(self, gateway: str) -> list[LedgerEntry]:
        return [entry for entry in self._entries.values() if entry.gateway == gateway]
