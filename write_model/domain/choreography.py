"""The fulfillment saga as a choreography: three participants and no coordinator.

Each participant owns one step of the saga (write_model/domain/fulfillment.py) and a stream
of its own, `<Participant>-<orderId>`, on which it records what it did. It reacts to the
previous participant's events (inventory to OrderSubmitted, payment to InventoryReserved,
shipping to PaymentCharged), and failures travel back the same way: PaymentFailed makes
inventory release; ShipmentFailed makes payment refund, and its PaymentRefunded makes
inventory release. OrderCancelled reaches every participant, and each undoes its own step.

`respond` says how a participant answers a trigger given its own state; `decide`/`evolve`
record what it did, each recording idempotent, so a trigger handled again after a crash
records nothing twice. Running the effects is sagas/choreography/.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from write_model.domain.fulfillment import Step


class Participant(StrEnum):
    INVENTORY = "Inventory"
    PAYMENT = "Payment"
    SHIPPING = "Shipping"


STEP_OF: dict[Participant, Step] = {
    Participant.INVENTORY: Step.RESERVE_INVENTORY,
    Participant.PAYMENT: Step.PROCESS_PAYMENT,
    Participant.SHIPPING: Step.CREATE_SHIPMENT,
}


class Response(StrEnum):
    ACT = "act"  # run my step
    UNDO = "undo"  # a later step failed: undo mine
    CANCEL = "cancel"  # the order was cancelled: undo whatever my step began


# Which events each participant follows, and what they ask of it.
TRIGGERS: dict[Participant, dict[str, Response]] = {
    Participant.INVENTORY: {
        "OrderSubmitted": Response.ACT,
        "PaymentFailed": Response.UNDO,
        "PaymentRefunded": Response.UNDO,
        "OrderCancelled": Response.CANCEL,
    },
    Participant.PAYMENT: {
        "InventoryReserved": Response.ACT,
        "ShipmentFailed": Response.UNDO,
        "OrderCancelled": Response.CANCEL,
    },
    Participant.SHIPPING: {
        "PaymentCharged": Response.ACT,
        "OrderCancelled": Response.CANCEL,
    },
}


class Standing(StrEnum):
    DONE = "DONE"  # reserved, charged, shipped
    FAILED = "FAILED"  # and cleaned up after
    UNDONE = "UNDONE"  # released, refunded, cancelled


@dataclass(frozen=True, slots=True)
class Participation:
    participant: Participant
    standing: Standing
    detail: str | None = None  # "2 units reserved", the payment id, the shipment id, why


ParticipantState = Participation | None
initial_state: ParticipantState = None


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class RecordDone:
    order_id: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class RecordFailed:
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordUndone:
    order_id: str


ParticipantCommand = RecordDone | RecordFailed | RecordUndone

# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class InventoryReserved:
    order_id: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class InventoryReservationFailed:
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class InventoryReleased:
    order_id: str


@dataclass(frozen=True, slots=True)
class PaymentCharged:
    order_id: str
    payment_id: str | None


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PaymentRefunded:
    order_id: str


@dataclass(frozen=True, slots=True)
class ShipmentCreated:
    order_id: str
    shipment_id: str | None


@dataclass(frozen=True, slots=True)
class ShipmentFailed:
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ShipmentCancelled:
    order_id: str


ParticipantEvent = (
    InventoryReserved
    | InventoryReservationFailed
    | InventoryReleased
    | PaymentCharged
    | PaymentFailed
    | PaymentRefunded
    | ShipmentCreated
    | ShipmentFailed
    | ShipmentCancelled
)


def respond(participant: Participant, trigger: str, state: ParticipantState) -> Response | None:
    """How `participant` answers an event of type `trigger`; None: not at all. A step is
    run once, undone only once done, and a cancel is always looked at (its undoing is
    decided on the saga's record of the step, which may have begun without a result)."""
    response = TRIGGERS[participant].get(trigger)
    match response:
        case None:
            return None
        case Response.ACT:
            return response if state is None else None
        case Response.UNDO:
            done = state is not None and state.standing is Standing.DONE
            return response if done else None
        case Response.CANCEL:
            return response
        case _:
            assert_never(response)


def decide(
    participant: Participant, command: ParticipantCommand, state: ParticipantState
) -> list[ParticipantEvent]:
    match command:
        case RecordDone(order_id, detail):
            return [] if state is not None else [_done(participant, order_id, detail)]
        case RecordFailed(order_id, reason):
            return [] if state is not None else [_failed(participant, order_id, reason)]
        case RecordUndone(order_id):
            # Nothing to undo after a failure (it was cleaned up) or once undone.
            if state is not None and state.standing is not Standing.DONE:
                return []
            return [_undone(participant, order_id)]
        case _:
            assert_never(command)


def evolve(state: ParticipantState, event: ParticipantEvent) -> ParticipantState:
    match event:
        case InventoryReserved(_, detail):
            return Participation(Participant.INVENTORY, Standing.DONE, detail)
        case PaymentCharged(_, detail):
            return Participation(Participant.PAYMENT, Standing.DONE, detail)
        case ShipmentCreated(_, detail):
            return Participation(Participant.SHIPPING, Standing.DONE, detail)
        case InventoryReservationFailed(_, reason):
            return Participation(Participant.INVENTORY, Standing.FAILED, reason)
        case PaymentFailed(_, reason):
            return Participation(Participant.PAYMENT, Standing.FAILED, reason)
        case ShipmentFailed(_, reason):
            return Participation(Participant.SHIPPING, Standing.FAILED, reason)
        case InventoryReleased():
            return _undone_state(state, Participant.INVENTORY)
        case PaymentRefunded():
            return _undone_state(state, Participant.PAYMENT)
        case ShipmentCancelled():
            return _undone_state(state, Participant.SHIPPING)
        case _:
            assert_never(event)


def _undone_state(state: ParticipantState, participant: Participant) -> Participation:
    return Participation(participant, Standing.UNDONE, None if state is None else state.detail)


def _done(participant: Participant, order_id: str, detail: str | None) -> ParticipantEvent:
    match participant:
        case Participant.INVENTORY:
            return InventoryReserved(order_id, detail)
        case Participant.PAYMENT:
            return PaymentCharged(order_id, detail)
        case Participant.SHIPPING:
            return ShipmentCreated(order_id, detail)
        case _:
            assert_never(participant)


def _failed(participant: Participant, order_id: str, reason: str) -> ParticipantEvent:
    match participant:
        case Participant.INVENTORY:
            return InventoryReservationFailed(order_id, reason)
        case Participant.PAYMENT:
            return PaymentFailed(order_id, reason)
        case Participant.SHIPPING:
            return ShipmentFailed(order_id, reason)
        case _:
            assert_never(participant)


def _undone(participant: Participant, order_id: str) -> ParticipantEvent:
    match participant:
        case Participant.INVENTORY:
            return InventoryReleased(order_id)
        case Participant.PAYMENT:
            return PaymentRefunded(order_id)
        case Participant.SHIPPING:
            return ShipmentCancelled(order_id)
        case _:
            assert_never(participant)
