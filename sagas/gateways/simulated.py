"""Simulated gateways for demos and tests: deterministic rules, a seeded failure rate,
added latency or a hang, and every outcome kept in the durable ledger under its key, so a
repeated call returns the first outcome and nothing is charged, refunded or shipped twice."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sagas.gateways.port import GatewayOutcome, TransientGatewayError
from sagas.ledger.port import GatewayLedger, LedgerEntry
from write_model.domain.money import Money
from write_model.domain.order import Address

_REFERENCES = uuid.UUID("0b7f4a52-36f1-4c0e-9a1f-3d0d6c2e8a41")


@dataclass(frozen=True)
class Behaviour:
    """How a simulated provider answers, whatever the request."""

    failure_rate: float = 0.0  # share of calls that fail transiently (retried)
    seed: int | None = None
    latency_seconds: float = 0.0
    # Charges and shipments never answer (only the caller's timeout ends them); refunds and
    # cancels still do, so a timed-out step can be cleaned up and the order rejected.
    hang: bool = False


WELL_BEHAVED = Behaviour()


@dataclass(frozen=True)
class PaymentRules:
    decline_above: Decimal | None = None
    decline_customers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ShippingRules:
    fail_countries: frozenset[str] = frozenset()


@dataclass
class _Provider:
    gateway: str
    ledger: GatewayLedger
    behaviour: Behaviour
    sleep: Callable[[float], object] = asyncio.sleep
    calls: int = 0  # requests that reached the provider (retries included)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.behaviour.seed)

    async def answer(self, *, undoing: bool = False) -> None:
        """Latency, a hang, or a transient failure, before the provider decides anything."""
        self.calls += 1
        if self.behaviour.hang and not undoing:
            await asyncio.Event().wait()
        if self.behaviour.latency_seconds:
            await asyncio.sleep(self.behaviour.latency_seconds)
        if self._random.random() < self.behaviour.failure_rate:
            raise TransientGatewayError(f"simulated {self.gateway} provider error")

    async def undo(self, key: str, done_key: str, operation: str, subject: str) -> GatewayOutcome:
        """Undo what was done under `done_key`, or void that key so it is never done."""
        first = await self.ledger.find(key)
        if first is not None:
            return _outcome(first)
        await self.answer(undoing=True)
        void = LedgerEntry(done_key, self.gateway, "void", subject, False, reason="cancelled")
        done = await self.ledger.record(void)
        if done.succeeded:
            undone = LedgerEntry(
                key,
                self.gateway,
                operation,
                done.subject,
                True,
                _reference(operation, key),
                amount=done.amount,
                currency=done.currency,
            )
        else:
            undone = LedgerEntry(
                key, self.gateway, operation, done.subject, True, reason="nothing to undo"
            )
        return _outcome(await self.ledger.record(undone))


class SimulatedPayments:
    def __init__(
        self, ledger: GatewayLedger, rules: PaymentRules, behaviour: Behaviour = WELL_BEHAVED
    ) -> None:
        self._provider = _Provider("payment", ledger, behaviour)
        self._rules = rules

    @property
    def calls(self) -> int:
        return self._provider.calls

    async def charge(self, key: str, customer_id: str, amount: Money) -> GatewayOutcome:
        first = await self._provider.ledger.find(key)
        if first is not None:
            return _outcome(first)
        await self._provider.answer()
        refusal = self._refusal(customer_id, amount)
        entry = LedgerEntry(
            key,
            "payment",
            "charge",
            customer_id,
            refusal is None,
            None if refusal else _reference("charge", key),
            refusal,
            amount.amount,
            amount.currency,
        )
        return _outcome(await self._provider.ledger.record(entry))

    async def refund(self, key: str, charge_key: str) -> GatewayOutcome:
        return await self._provider.undo(key, charge_key, "refund", "")

    def _refusal(self, customer_id: str, amount: Money) -> str | None:
        if customer_id in self._rules.decline_customers:
            return f"payment declined for customer {customer_id}"
        limit = self._rules.decline_above
        if limit is not None and amount.amount > limit:
            return f"payment declined: {amount.amount} {amount.currency} is above {limit}"
        return None


class SimulatedShipping:
    def __init__(
        self, ledger: GatewayLedger, rules: ShippingRules, behaviour: Behaviour = WELL_BEHAVED
    ) -> None:
        self._provider = _Provider("shipping", ledger, behaviour)
        self._rules = rules

    @property
    def calls(self) -> int:
        return self._provider.calls

    async def create(self, key: str, order_id: str, address: Address) -> GatewayOutcome:
        first = await self._provider.ledger.find(key)
        if first is not None:
            return _outcome(first)
        await self._provider.answer()
        refusal = (
            f"no shipping to {address.country}"
            if address.country in self._rules.fail_countries
            else None
        )
        entry = LedgerEntry(
            key,
            "shipping",
            "create",
            order_id,
            refusal is None,
            None if refusal else _reference("shipment", key),
            refusal,
        )
        return _outcome(await self._provider.ledger.record(entry))

    async def cancel(self, key: str, shipment_key: str) -> GatewayOutcome:
        return await self._provider.undo(key, shipment_key, "cancel", "")


def _reference(kind: str, key: str) -> str:
    return f"{kind}-{uuid.uuid5(_REFERENCES, key).hex[:12]}"


def _outcome(entry: LedgerEntry) -> GatewayOutcome:
    if entry.succeeded:
        return GatewayOutcome.done(entry.reference)
    return GatewayOutcome.refused(entry.reason or f"{entry.operation} refused")
