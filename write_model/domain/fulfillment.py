"""The fulfillment saga of one order as a decider, on the stream `Fulfillment-<orderId>`.

The saga records what it did; `next_action` says what to do next. The orchestrator
(sagas/orchestrator.py) runs that action (step commands on the bus, gateway
calls) and records its outcome with one of the commands below, until there is nothing left
to do. Every action carries deterministic idempotency keys (saga id + step + operation +
line), so running an action again after a crash has no further effect.

Steps run in `STEPS` order. A failed step is cleaned up first (whatever it may have done
half-way: reserved lines, a charge or shipment that timed out), then the steps before it are
compensated in reverse, then the order is rejected. A cancelled order (running or
confirmed) compensates every step that started, and the fulfillment ends FAILED with the
reason "order cancelled".

Longer than 400 lines on purpose: the saga's commands, events, state, `decide`, `evolve`
and `next_action` change together, as in every other decider of write_model/domain/.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypedDict, Unpack, assert_never

from write_model.domain.errors import InvalidState
from write_model.domain.money import Money
from write_model.domain.order import Address

STREAM_TYPE = "Fulfillment"
CANCELLED_REASON = "order cancelled"


class Step(StrEnum):
    RESERVE_INVENTORY = "ReserveInventory"
    PROCESS_PAYMENT = "ProcessPayment"
    CREATE_SHIPMENT = "CreateShipment"


STEPS: tuple[Step, ...] = (Step.RESERVE_INVENTORY, Step.PROCESS_PAYMENT, Step.CREATE_SHIPMENT)


class StepStatus(StrEnum):
    PENDING = "PENDING"
    STARTED = "STARTED"  # shown as PENDING: it may have had an effect not yet recorded
    DONE = "DONE"
    FAILED = "FAILED"
    COMPENSATED = "COMPENSATED"


class FulfillmentState(StrEnum):
    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Line:
    product_id: str
    quantity: int


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class StartFulfillment:
    order_id: str
    customer_id: str
    lines: tuple[Line, ...]
    total: Money
    address: Address


@dataclass(frozen=True, slots=True)
class RecordStepSucceeded:
    step: Step
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class RecordStepFailed:
    step: Step
    reason: str


@dataclass(frozen=True, slots=True)
class RecordStepCompensated:
    """A started or done step undone; for a failed step, its half-done effects cleaned up."""

    step: Step


@dataclass(frozen=True, slots=True)
class CancelFulfillment:
    reason: str = CANCELLED_REASON


@dataclass(frozen=True, slots=True)
class RecordOrderConfirmed:
    pass


@dataclass(frozen=True, slots=True)
class RecordOrderRejected:
    pass


FulfillmentCommand = (
    StartFulfillment
    | RecordStepSucceeded
    | RecordStepFailed
    | RecordStepCompensated
    | CancelFulfillment
    | RecordOrderConfirmed
    | RecordOrderRejected
)

# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class FulfillmentStarted:
    order_id: str
    customer_id: str
    lines: tuple[Line, ...]
    total: Money
    address: Address


@dataclass(frozen=True, slots=True)
class StepStarted:
    step: Step


@dataclass(frozen=True, slots=True)
class StepSucceeded:
    step: Step
    detail: str | None


@dataclass(frozen=True, slots=True)
class StepFailed:
    step: Step
    reason: str


@dataclass(frozen=True, slots=True)
class StepCompensated:
    step: Step


@dataclass(frozen=True, slots=True)
class FailedStepCleanedUp:
    step: Step


@dataclass(frozen=True, slots=True)
class FulfillmentCancelled:
    reason: str


@dataclass(frozen=True, slots=True)
class FulfillmentCompleted:
    pass


@dataclass(frozen=True, slots=True)
class FulfillmentFailed:
    reason: str


FulfillmentEvent = (
    FulfillmentStarted
    | StepStarted
    | StepSucceeded
    | StepFailed
    | StepCompensated
    | FailedStepCleanedUp
    | FulfillmentCancelled
    | FulfillmentCompleted
    | FulfillmentFailed
)

# ------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class StepRecord:
    step: Step
    status: StepStatus = StepStatus.PENDING
    detail: str | None = None  # payment id, shipment id, or why it failed
    cleaned_up: bool = False  # a failed step's half-done effects were undone


class StepChanges(TypedDict, total=False):
    """What `Fulfillment.with_step` may change of a step's record."""

    status: StepStatus
    detail: str | None
    cleaned_up: bool


@dataclass(frozen=True, slots=True)
class Fulfillment:
    order_id: str
    customer_id: str
    lines: tuple[Line, ...]
    total: Money
    address: Address
    state: FulfillmentState = FulfillmentState.RUNNING
    steps: tuple[StepRecord, ...] = tuple(StepRecord(step) for step in STEPS)
    reason: str | None = None  # why it is compensating or failed
    cancelled: bool = False
    confirmed: bool = False  # ConfirmOrder was accepted (compensation after it: a cancel)

    def record(self, step: Step) -> StepRecord:
        return self.steps[STEPS.index(step)]

    def with_step(self, step: Step, **changes: Unpack[StepChanges]) -> Fulfillment:
        index = STEPS.index(step)
        changed = replace(self.steps[index], **changes)
        return replace(self, steps=(*self.steps[:index], changed, *self.steps[index + 1 :]))

    @property
    def finished(self) -> bool:
        return self.state in (FulfillmentState.COMPLETED, FulfillmentState.FAILED)


FulfillmentSagaState = Fulfillment | None
initial_state: FulfillmentSagaState = None


def decide(command: FulfillmentCommand, state: FulfillmentSagaState) -> list[FulfillmentEvent]:
    """Each command is idempotent: recording what is already recorded decides nothing, so
    an orchestrator repeating itself after a crash appends nothing twice."""
    match command:
        case StartFulfillment(order_id, customer_id, lines, total, address):
            if state is not None:
                return []
            return [
                FulfillmentStarted(order_id, customer_id, lines, total, address),
                StepStarted(STEPS[0]),
            ]
        case RecordStepSucceeded(step, detail):
            saga = _running_step(state, step)
            if saga is None:
                return []
            events: list[FulfillmentEvent] = [StepSucceeded(step, detail)]
            following = STEPS.index(step) + 1
            if following < len(STEPS):
                events.append(StepStarted(STEPS[following]))
            return events
        case RecordStepFailed(step, reason):
            saga = _running_step(state, step)
            return [] if saga is None else [StepFailed(step, reason)]
        case RecordStepCompensated(step):
            saga = _existing(state)
            record = saga.record(step)
            if saga.state is not FulfillmentState.COMPENSATING:
                return []
            if record.status in (StepStatus.STARTED, StepStatus.DONE):
                return [StepCompensated(step)]
            if record.status is StepStatus.FAILED and not record.cleaned_up:
                return [FailedStepCleanedUp(step)]
            return []
        case CancelFulfillment(reason):
            saga = _existing(state)
            if saga.cancelled or saga.state is FulfillmentState.FAILED:
                return []  # a rejected order has nothing left to undo
            return [FulfillmentCancelled(reason)]
        case RecordOrderConfirmed():
            saga = _existing(state)
            if saga.confirmed or saga.state is not FulfillmentState.RUNNING:
                return []
            if any(record.status is not StepStatus.DONE for record in saga.steps):
                raise InvalidState(f"fulfillment of {saga.order_id} has steps left to run")
            return [FulfillmentCompleted()]
        case RecordOrderRejected():
            saga = _existing(state)
            if saga.state is not FulfillmentState.COMPENSATING:
                return []
            if _compensation_left(saga) is not None:
                raise InvalidState(f"fulfillment of {saga.order_id} has steps left to undo")
            return [FulfillmentFailed(saga.reason or "failed")]
        case _:
            assert_never(command)


def evolve(state: FulfillmentSagaState, event: FulfillmentEvent) -> FulfillmentSagaState:
    match event:
        case FulfillmentStarted(order_id, customer_id, lines, total, address):
            return Fulfillment(order_id, customer_id, lines, total, address)
        case StepStarted(step):
            return _existing(state).with_step(step, status=StepStatus.STARTED)
        case StepSucceeded(step, detail):
            return _existing(state).with_step(step, status=StepStatus.DONE, detail=detail)
        case StepFailed(step, reason):
            saga = _existing(state).with_step(step, status=StepStatus.FAILED, detail=reason)
            return replace(saga, state=FulfillmentState.COMPENSATING, reason=reason)
        case StepCompensated(step):
            return _existing(state).with_step(step, status=StepStatus.COMPENSATED)
        case FailedStepCleanedUp(step):
            return _existing(state).with_step(step, cleaned_up=True)
        case FulfillmentCancelled(reason):
            saga = _existing(state)
            return replace(saga, state=FulfillmentState.COMPENSATING, reason=reason, cancelled=True)
        case FulfillmentCompleted():
            return replace(_existing(state), state=FulfillmentState.COMPLETED, confirmed=True)
        case FulfillmentFailed(reason):
            return replace(_existing(state), state=FulfillmentState.FAILED, reason=reason)
        case _:
            assert_never(event)


# ------------------------------------------------------------- what next


@dataclass(frozen=True, slots=True)
class StockLine:
    product_id: str
    quantity: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class ReserveLines:
    """Reserve each line; the first that cannot be reserved fails the step."""

    order_id: str
    lines: tuple[StockLine, ...]


@dataclass(frozen=True, slots=True)
class ChargePayment:
    idempotency_key: str
    customer_id: str
    amount: Money


@dataclass(frozen=True, slots=True)
class CreateShipment:
    """Create the shipment, then ship each reserved line (stock leaves the warehouse)."""

    idempotency_key: str
    order_id: str
    address: Address
    ship_lines: tuple[StockLine, ...]


@dataclass(frozen=True, slots=True)
class ReleaseLines:
    order_id: str
    lines: tuple[StockLine, ...]


@dataclass(frozen=True, slots=True)
class RefundPayment:
    charge_key: str  # the idempotency key of the charge it undoes
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class CancelShipment:
    """Cancel the shipment (by the key it was created with), then return shipped stock."""

    shipment_key: str
    idempotency_key: str
    order_id: str
    return_lines: tuple[StockLine, ...]


@dataclass(frozen=True, slots=True)
class Compensate:
    step: Step
    undo: ReleaseLines | RefundPayment | CancelShipment


@dataclass(frozen=True, slots=True)
class RunStep:
    step: Step
    run: ReserveLines | ChargePayment | CreateShipment


@dataclass(frozen=True, slots=True)
class ConfirmTheOrder:
    order_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class RejectTheOrder:
    """Reject the order with `reason`; a cancelled order is not rejected (`reject` False)."""

    order_id: str
    reason: str
    idempotency_key: str
    reject: bool = True


Action = RunStep | Compensate | ConfirmTheOrder | RejectTheOrder


def saga_id(order_id: str) -> str:
    return f"{STREAM_TYPE}-{order_id}"


def key(order_id: str, step: Step | str, operation: str, line: str | None = None) -> str:
    """The deterministic idempotency key of one effect: saga id + step + operation + line."""
    parts = [saga_id(order_id), str(step), operation]
    if line is not None:
        parts.append(line)
    return ":".join(parts)


def next_action(state: FulfillmentSagaState) -> Action | None:
    """What the orchestrator does next; None when the saga waits or is over."""
    if state is None or state.state is FulfillmentState.FAILED:
        return None
    if state.state is FulfillmentState.COMPENSATING:
        step = _compensation_left(state)
        if step is not None:
            return Compensate(step, undo_of(state, step))
        return RejectTheOrder(
            state.order_id,
            state.reason or "failed",
            key(state.order_id, "Order", "reject"),
            reject=not state.cancelled,
        )
    if state.state is FulfillmentState.COMPLETED:
        return None
    started = next((r.step for r in state.steps if r.status is StepStatus.STARTED), None)
    if started is not None:
        return RunStep(started, run_of(state, started))
    if all(record.status is StepStatus.DONE for record in state.steps):
        return ConfirmTheOrder(state.order_id, key(state.order_id, "Order", "confirm"))
    return None


def run_of(saga: Fulfillment, step: Step) -> ReserveLines | ChargePayment | CreateShipment:
    """What running `step` takes, with its keys (the orchestrator's and a participant's)."""
    match step:
        case Step.RESERVE_INVENTORY:
            return ReserveLines(saga.order_id, _stock_lines(saga, step, "reserve"))
        case Step.PROCESS_PAYMENT:
            return ChargePayment(key(saga.order_id, step, "charge"), saga.customer_id, saga.total)
        case Step.CREATE_SHIPMENT:
            return CreateShipment(
                key(saga.order_id, step, "create"),
                saga.order_id,
                saga.address,
                _stock_lines(saga, step, "ship"),
            )
        case _:
            assert_never(step)


def undo_of(saga: Fulfillment, step: Step) -> ReleaseLines | RefundPayment | CancelShipment:
    """What undoing `step` (or cleaning up after it failed) takes, with its keys."""
    match step:
        case Step.RESERVE_INVENTORY:
            return ReleaseLines(saga.order_id, _stock_lines(saga, step, "release"))
        case Step.PROCESS_PAYMENT:
            return RefundPayment(
                key(saga.order_id, step, "charge"), key(saga.order_id, step, "refund")
            )
        case Step.CREATE_SHIPMENT:
            return CancelShipment(
                key(saga.order_id, step, "create"),
                key(saga.order_id, step, "cancel"),
                saga.order_id,
                _stock_lines(saga, step, "return"),
            )
        case _:
            assert_never(step)


def _stock_lines(saga: Fulfillment, step: Step, operation: str) -> tuple[StockLine, ...]:
    return tuple(
        StockLine(
            line.product_id, line.quantity, key(saga.order_id, step, operation, line.product_id)
        )
        for line in saga.lines
    )


def needs_undo(saga: Fulfillment, step: Step) -> bool:
    """The step started (it may have had an effect), or failed and is not cleaned up."""
    record = saga.record(step)
    if record.status in (StepStatus.STARTED, StepStatus.DONE):
        return True
    return record.status is StepStatus.FAILED and not record.cleaned_up


def _compensation_left(saga: Fulfillment) -> Step | None:
    """The next step to undo: a failed step's leftovers first, then the others in reverse."""
    return next((r.step for r in reversed(saga.steps) if needs_undo(saga, r.step)), None)


def _running_step(state: FulfillmentSagaState, step: Step) -> Fulfillment | None:
    """The saga when `step` is the one running; None when its outcome is already recorded
    or the saga moved on (a cancel arrived meanwhile)."""
    saga = _existing(state)
    if saga.state is not FulfillmentState.RUNNING:
        return None
    status = saga.record(step).status
    if status is StepStatus.STARTED:
        return saga
    if status is StepStatus.PENDING:
        raise InvalidState(f"step {step} of {saga.order_id} has not started")
    return None


def _existing(state: FulfillmentSagaState) -> Fulfillment:
    if state is None:
        raise InvalidState("the fulfillment has not started")
    return state
