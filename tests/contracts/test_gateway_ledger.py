"""Conformance suite of the saga's ledger port, run against every adapter: the
GatewayLedger (the first outcome under a key is kept)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sagas.ledger.port import LedgerEntry
from tests.contracts.conftest import Stores


def charge(key: str, succeeded: bool = True, amount: str = "12.50") -> LedgerEntry:
    return LedgerEntry(
        key,
        "payment",
        "charge",
        "customer-1",
        succeeded,
        "pay-1" if succeeded else None,
        None if succeeded else "declined",
        Decimal(amount),
        "USD",
    )


async def test_the_first_outcome_under_a_key_is_kept(saga_storage: Stores, unique: str) -> None:
    ledger = saga_storage.ledger
    first = charge(f"{unique}:charge")

    assert await ledger.record(first) == first
    assert await ledger.record(charge(f"{unique}:charge", succeeded=False)) == first
    assert await ledger.find(f"{unique}:charge") == first
    assert await ledger.find(f"{unique}:other") is None


async def test_concurrent_records_under_one_key_keep_one(saga_storage: Stores, unique: str) -> None:
    key = f"{unique}:race"
    candidates = [charge(key, amount=f"{n}.00") for n in range(1, 9)]

    stored = await asyncio.gather(*(saga_storage.ledger.record(c) for c in candidates))

    assert len(set(stored)) == 1 and stored[0] in candidates
    mine = [e for e in await saga_storage.ledger.entries("payment") if e.key == key]
    assert mine == [stored[0]]


async def test_entries_are_listed_per_gateway_in_recording_order(
    saga_storage: Stores, unique: str
) -> None:
    ledger = saga_storage.ledger
    keys = [f"{unique}:{n}" for n in range(3)]
    for key in keys:
        await ledger.record(charge(key))
    shipment = LedgerEntry(f"{unique}:ship", "shipping", "create", "order-1", True, "ship-1")
    await ledger.record(shipment)

    payments = [e.key for e in await ledger.entries("payment") if e.key.startswith(unique)]
    assert payments == keys
    assert [e for e in await ledger.entries("shipping") if e.key.startswith(unique)] == [shipment]


async def test_an_entry_without_amount_or_reference_round_trips(
    saga_storage: Stores, unique: str
) -> None:
    void = LedgerEntry(f"{unique}:void", "payment", "void", "", False, reason="cancelled")

    assert await saga_storage.ledger.record(void) == void
    assert await saga_storage.ledger.find(void.key) == void
