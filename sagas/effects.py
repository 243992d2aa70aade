"""Running a fulfillment step's effects: step commands through the CommandBus under the
action's idempotency keys, gateway calls under theirs. Shared by the orchestrator
(sagas/orchestrator.py) and the choreography participants
(sagas/choreography/), so both modes do exactly the same things to stock,
payments and shipments."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import assert_never

from sagas.gateways.port import GatewayOutcome, PaymentGateway, ShippingGateway
from write_model import commands
from write_model.backoff import pause
from write_model.bus import CommandBus, CommandOutcome, Idempotency
from write_model.command_context import CommandContext
from write_model.domain import fulfillment
from write_model.domain.errors import DomainError
from write_model.domain.fulfillment import (
    CancelShipment,
    ChargePayment,
    CreateShipment,
    RecordStepFailed,
    RecordStepSucceeded,
    RefundPayment,
    ReleaseLines,
    ReserveLines,
)

log = logging.getLogger(__name__)

MAX_UNANSWERED_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Gateways:
    payments: PaymentGateway
    shipping: ShippingGateway


class CompensationRefused(RuntimeError):
    """A provider refused to undo what it did: a person has to look at it."""


class StepEffects:
    def __init__(self, bus: CommandBus, gateways: Gateways, *, retry_seconds: float = 0.2):
        self._bus = bus
        self._gateways = gateways
        self._retry_seconds = retry_seconds

    async def run_step(
        self,
        step: fulfillment.Step,
        run: ReserveLines | ChargePayment | CreateShipment,
        context: CommandContext,
    ) -> RecordStepSucceeded | RecordStepFailed:
        match run:
            case ReserveLines(order_id, lines):
                for line in lines:
                    reserve = commands.ReserveStock(
                        product_id=line.product_id, order_id=order_id, quantity=line.quantity
                    )
                    try:
                        await self.dispatch(reserve, line.idempotency_key, context)
                    except DomainError as refused:
                        return RecordStepFailed(step, refused.message)
                reserved = sum(line.quantity for line in lines)
                return RecordStepSucceeded(step, f"{reserved} units reserved")
            case ChargePayment(key, customer_id, amount):
                charged = await self._gateways.payments.charge(key, customer_id, amount)
                return _step_outcome(step, charged)
            case CreateShipment(key, order_id, address, ship_lines):
                created = await self._gateways.shipping.create(key, order_id, address)
                if created.succeeded:
                    for line in ship_lines:
                        ship = commands.ShipReservedStock(
                            product_id=line.product_id, order_id=order_id
                        )
                        await self.dispatch(ship, line.idempotency_key, context)
                return _step_outcome(step, created)
            case _:
                assert_never(run)

    async def undo(
        self, undo: ReleaseLines | RefundPayment | CancelShipment, context: CommandContext
    ) -> None:
        match undo:
            case ReleaseLines(order_id, lines):
                for line in lines:
                    release = commands.ReleaseStockReservation(
                        product_id=line.product_id, order_id=order_id
                    )
                    await self.dispatch(release, line.idempotency_key, context)
            case RefundPayment(charge_key, key):
                payments = self._gateways.payments
                await self._until_answered(lambda: payments.refund(key, charge_key), key)
            case CancelShipment(shipment_key, key, order_id, return_lines):
                shipping = self._gateways.shipping
                await self._until_answered(lambda: shipping.cancel(key, shipment_key), key)
                for line in return_lines:
                    give_back = commands.ReturnShippedStock(
                        product_id=line.product_id, order_id=order_id
                    )
                    await self.dispatch(give_back, line.idempotency_key, context)
            case _:
                assert_never(undo)

    async def _until_answered(
        self, call: Callable[[], Awaitable[GatewayOutcome]], key: str
    ) -> None:
        """A compensation cannot fail for good: a gateway out of reach is asked again,
        after the one backoff (write_model/backoff.py)."""
        failures = 0
        while True:
            outcome = await call()
            if outcome.succeeded:
                return
            if not outcome.unavailable:
                raise CompensationRefused(f"{key}: {outcome.reason}")
            failures += 1
            log.warning("%s: %s; asking again (%d)", key, outcome.reason, failures)
            await pause(failures, self._retry_seconds, MAX_UNANSWERED_WAIT_SECONDS)

    async def dispatch(
        self, command: commands.Command, key: str, context: CommandContext
    ) -> CommandOutcome:
        """Through the bus under the effect's key. Contention on a hot product is retried
        by the bus (decide-and-append); past its bound, the ConcurrencyConflict fails this
        trigger, which the follower retries and, failing still, parks: never a failed
        step."""
        idempotency = Idempotency(key, fingerprint=key, expect_new=True)
        return await self._bus.dispatch(command, context, idempotency)

    async def dispatch_or_refused(
        self, command: commands.Command, key: str, context: CommandContext
    ) -> bool:
        try:
            await self.dispatch(command, key, context)
        except DomainError as refused:
            log.info("%s refused: %s", type(command).__name__, refused.message)
            return False
        return True


def _step_outcome(
    step: fulfillment.Step, outcome: GatewayOutcome
) -> RecordStepSucceeded | RecordStepFailed:
    if outcome.succeeded:
        return RecordStepSucceeded(step, outcome.reference)
    return RecordStepFailed(step, outcome.reason or f"{step} failed")
