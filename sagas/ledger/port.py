"""GatewayLedger port. Adapters: memory, sqlite (`orders dev`), postgres.

Every adapter passes tests/contracts/test_gateway_ledger.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    key: str  # the call's idempotency key
    gateway: str  # "payment" | "shipping"
    operation: str  # charge, refund, create, cancel; "void": a key closed before its call
    subject: str  # the customer charged, the order shipped
    succeeded: bool
    reference: str | None = None
    reason: str | None = None
    amount: Decimal | None = None
    currency: str | None = None


class GatewayLedger(Protocol):
    async def record(self, entry: LedgerEntry) -> LedgerEntry:
        """Store `entry` unless its key is stored; return the stored one (the first)."""
        ...

    async def find(self, key: str) -> LedgerEntry | None: ...

    async def entries(self, gateway: str) -> list[LedgerEntry]:
        """Every entry of one gateway, in the order they were recorded."""
        ...
