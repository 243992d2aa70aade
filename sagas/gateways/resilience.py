"""Around every gateway call: a timeout, retries of transient failures waiting by the one
backoff (write_model/backoff.py, through tenacity), and a circuit breaker per gateway that
opens after repeated failures (calls then fail fast with a clear reason) and lets a trial
call through after a cool-down. A refusal (a declined card) is an answer, not a failure of
the gateway."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sagas.gateways.port import (
    GatewayOutcome,
    PaymentGateway,
    ShippingGateway,
    TransientGatewayError,
)
from write_model import backoff
from write_model.domain.money import Money
from write_model.domain.order import Address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallPolicy:
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 0.05  # the one backoff's first bound (write_model/backoff.py)
    max_backoff_seconds: float = 2.0
    breaker_failures: int = 5  # consecutive failed calls that open the breaker
    breaker_cooldown_seconds: float = 10.0


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failures_to_open: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._failures_to_open = failures_to_open
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def open(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at < self._cooldown

    def allows(self) -> bool:
        """Closed, or open past its cool-down (then this call is the trial)."""
        return not self.open

    def succeeded(self) -> None:
        if self._opened_at is not None:
            log.info("%s gateway: circuit closed again", self.name)
        self._failures = 0
        self._opened_at = None

    def failed(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._failures_to_open:
            if not self.open:
                log.warning(
                    "%s gateway: circuit open after %d failures, for %.0f s",
                    self.name,
                    self._failures,
                    self._cooldown,
                )
            self._opened_at = self._clock()


class Resilient:
    """Runs calls to one gateway under a `CallPolicy` and that gateway's breaker."""

    def __init__(self, name: str, policy: CallPolicy, breaker: CircuitBreaker | None = None):
        self.name = name
        self._policy = policy
        self.breaker = breaker or CircuitBreaker(
            name, policy.breaker_failures, policy.breaker_cooldown_seconds
        )

    async def call(self, attempt: Callable[[], Awaitable[GatewayOutcome]]) -> GatewayOutcome:
        policy = self._policy
        if not self.breaker.allows():
            return GatewayOutcome.out_of_reach(
                f"{self.name} gateway unavailable: circuit open after repeated failures"
            )
        retried = (TransientGatewayError, TimeoutError)
        try:
            async for tried in backoff.retrying(
                retried,
                attempts=policy.max_attempts,
                first_seconds=policy.backoff_seconds,
                max_seconds=policy.max_backoff_seconds,
            ):
                with tried:
                    outcome = await asyncio.wait_for(attempt(), policy.timeout_seconds)
        except retried as error:
            why = (
                f"timed out after {policy.timeout_seconds:g} s"
                if isinstance(error, TimeoutError)
                else str(error)
            )
            self.breaker.failed()
            return GatewayOutcome.out_of_reach(
                f"{self.name} gateway failed after {policy.max_attempts} attempts: {why}"
            )
        self.breaker.succeeded()
        return outcome


class ResilientPayments:
    def __init__(self, inner: PaymentGateway, policy: CallPolicy) -> None:
        self._inner = inner
        self.calls = Resilient("payment", policy)

    async def charge(self, key: str, customer_id: str, amount: Money) -> GatewayOutcome:
        return await self.calls.call(lambda: self._inner.charge(key, customer_id, amount))

    async def refund(self, key: str, charge_key: str) -> GatewayOutcome:
        return await self.calls.call(lambda: self._inner.refund(key, charge_key))


class ResilientShipping:
    def __init__(self, inner: ShippingGateway, policy: CallPolicy) -> None:
        self._inner = inner
        self.calls = Resilient("shipping", policy)

    async def create(self, key: str, order_id: str, address: Address) -> GatewayOutcome:
        return await self.calls.call(lambda: self._inner.create(key, order_id, address))

    async def cancel(self, key: str, shipment_key: str) -> GatewayOutcome:
        return await self.calls.call(lambda: self._inner.cancel(key, shipment_key))
