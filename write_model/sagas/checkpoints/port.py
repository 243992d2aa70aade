"""SubscriberCheckpoints port. Adapters: memory, sqlite, postgres (same conformance suite,
tests/contracts/test_gateway_ledger.py)."""

from __future__ import annotations

from typing import Protocol

from write_model.envelope import LogPosition


class SubscriberCheckpoints(Protocol):
    async def load(self, subscriber: str) -> LogPosition | None:
        """Where `subscriber` stopped; None before its first save."""
        ...

    async def save(self, subscriber: str, position: LogPosition) -> None: ...
