"""Gateway ports. Every call carries a deterministic idempotency key: a provider that sees
a key again returns its first outcome and does nothing twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from write_model.domain.money import Money
from write_model.domain.order import Address


@dataclass(frozen=True, slots=True)
class GatewayOutcome:
    succeeded: bool
    reference: str | None = None  # payment id, refund id, shipment id
    reason: str | None = None  # why it was refused or could not be done
    # Not the provider's answer but its absence (timeouts, an open breaker): worth retrying.
    unavailable: bool = False

    @staticmethod
    def done(reference: str | None) -> GatewayOutcome:
        return GatewayOutcome(True, reference)

    @staticmethod
    def refused(reason: str) -> GatewayOutcome:
        return GatewayOutcome(False, reason=reason)

    @staticmethod
    def out_of_reach(reason: str) -> GatewayOutcome:
        return GatewayOutcome(False, reason=reason, unavailable=True)


class TransientGatewayError(Exception):
    """The provider could not answer this time (network, 5xx): retry the same call."""


class PaymentGateway(Protocol):
    async def charge(self, key: str, customer_id: str, amount: Money) -> GatewayOutcome: ...

    async def refund(self, key: str, charge_key: str) -> GatewayOutcome:
        """Refund the charge made under `charge_key`; when there was none, make sure a late
        charge under that key is refused, and succeed with nothing refunded."""
        ...


class ShippingGateway(Protocol):
    async def create(self, key: str, order_id: str, address: Address) -> GatewayOutcome: ...

    async def cancel(self, key: str, shipment_key: str) -> GatewayOutcome:
        """Cancel the shipment created under `shipment_key` (or make sure none will be)."""
        ...
