"""Fulfillment saga decider and `next_action`: given the saga's events, when an outcome is
recorded, then its events and the action the orchestrator runs next."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.given_when_then import given, raises, when
from write_model.domain import fulfillment as saga
from write_model.domain.errors import InvalidState
from write_model.domain.fulfillment import (
    CancelFulfillment,
    CancelShipment,
    ChargePayment,
    Compensate,
    ConfirmTheOrder,
    CreateShipment,
    FailedStepCleanedUp,
    FulfillmentCancelled,
    FulfillmentCompleted,
    FulfillmentEvent,
    FulfillmentFailed,
    FulfillmentStarted,
    FulfillmentState,
    Line,
    RecordOrderConfirmed,
    RecordOrderRejected,
    RecordStepCompensated,
    RecordStepFailed,
    RecordStepSucceeded,
    RefundPayment,
    RejectTheOrder,
    ReleaseLines,
    ReserveLines,
    RunStep,
    StartFulfillment,
    Step,
    StepCompensated,
    StepFailed,
    StepStarted,
    StepStatus,
    StepSucceeded,
    StockLine,
)
from write_model.domain.money import Money
from write_model.domain.order import Address

TOTAL = Money(Decimal("22.00"), "USD")
ADDRESS = Address("1 Main St", "Springfield", "12345", "US")
LINES = (Line("sku-a", 2), Line("sku-b", 1))
START = StartFulfillment("o1", "c1", LINES, TOTAL, ADDRESS)
STARTED: list[FulfillmentEvent] = [
    FulfillmentStarted("o1", "c1", LINES, TOTAL, ADDRESS),
    StepStarted(Step.RESERVE_INVENTORY),
]
RESERVED = [
    *STARTED,
    StepSucceeded(Step.RESERVE_INVENTORY, None),
    StepStarted(Step.PROCESS_PAYMENT),
]
PAID = [*RESERVED, StepSucceeded(Step.PROCESS_PAYMENT, "pay-1"), StepStarted(Step.CREATE_SHIPMENT)]
SHIPPED = [*PAID, StepSucceeded(Step.CREATE_SHIPMENT, "ship-1")]
COMPLETED = [*SHIPPED, FulfillmentCompleted()]
RELEASE_ALL = Compensate(
    Step.RESERVE_INVENTORY,
    ReleaseLines(
        "o1",
        (
            StockLine("sku-a", 2, "Fulfillment-o1:ReserveInventory:release:sku-a"),
            StockLine("sku-b", 1, "Fulfillment-o1:ReserveInventory:release:sku-b"),
        ),
    ),
)


def state_of(events: list[FulfillmentEvent]) -> saga.FulfillmentSagaState:
    return given(saga.evolve, saga.initial_state, events)


def statuses(state: saga.FulfillmentSagaState) -> list[StepStatus]:
    assert state is not None
    return [record.status for record in state.steps]


def decide(
    events: list[FulfillmentEvent], command: saga.FulfillmentCommand
) -> tuple[list[FulfillmentEvent], saga.FulfillmentSagaState]:
    return when(saga.decide, saga.evolve, state_of(events), command)


def test_starting_lists_all_three_steps_and_runs_the_first() -> None:
    events, state = when(saga.decide, saga.evolve, saga.initial_state, START)

    assert events == STARTED
    assert statuses(state) == [StepStatus.STARTED, StepStatus.PENDING, StepStatus.PENDING]
    assert saga.next_action(state) == RunStep(
        Step.RESERVE_INVENTORY,
        ReserveLines(
            "o1",
            (
                StockLine("sku-a", 2, "Fulfillment-o1:ReserveInventory:reserve:sku-a"),
                StockLine("sku-b", 1, "Fulfillment-o1:ReserveInventory:reserve:sku-b"),
            ),
        ),
    )


def test_starting_twice_appends_nothing() -> None:
    assert saga.decide(START, state_of(STARTED)) == []


def test_the_happy_path_runs_each_step_then_confirms() -> None:
    events, state = decide(STARTED, RecordStepSucceeded(Step.RESERVE_INVENTORY))
    assert events == [
        StepSucceeded(Step.RESERVE_INVENTORY, None),
        StepStarted(Step.PROCESS_PAYMENT),
    ]
    assert saga.next_action(state) == RunStep(
        Step.PROCESS_PAYMENT, ChargePayment("Fulfillment-o1:ProcessPayment:charge", "c1", TOTAL)
    )

    events, state = decide(RESERVED, RecordStepSucceeded(Step.PROCESS_PAYMENT, "pay-1"))
    assert events == [
        StepSucceeded(Step.PROCESS_PAYMENT, "pay-1"),
        StepStarted(Step.CREATE_SHIPMENT),
    ]
    action = saga.next_action(state)
    assert isinstance(action, RunStep) and isinstance(action.run, CreateShipment)
    assert action.run.idempotency_key == "Fulfillment-o1:CreateShipment:create"
    assert [line.idempotency_key for line in action.run.ship_lines] == [
        "Fulfillment-o1:CreateShipment:ship:sku-a",
        "Fulfillment-o1:CreateShipment:ship:sku-b",
    ]

    events, state = decide(PAID, RecordStepSucceeded(Step.CREATE_SHIPMENT, "ship-1"))
    assert events == [StepSucceeded(Step.CREATE_SHIPMENT, "ship-1")]
    assert saga.next_action(state) == ConfirmTheOrder("o1", "Fulfillment-o1:Order:confirm")

    events, state = decide(SHIPPED, RecordOrderConfirmed())
    assert events == [FulfillmentCompleted()]
    assert state is not None and state.state is FulfillmentState.COMPLETED
    assert statuses(state) == [StepStatus.DONE] * 3
    assert saga.next_action(state) is None


def test_recording_an_outcome_twice_appends_nothing() -> None:
    assert saga.decide(RecordStepSucceeded(Step.RESERVE_INVENTORY), state_of(RESERVED)) == []
    assert saga.decide(RecordOrderConfirmed(), state_of(COMPLETED)) == []


def test_confirming_before_every_step_is_done_is_refused() -> None:
    with raises(InvalidState, match="steps left to run"):
        saga.decide(RecordOrderConfirmed(), state_of(PAID))


def test_a_step_cannot_succeed_before_it_started() -> None:
    with raises(InvalidState, match="has not started"):
        saga.decide(RecordStepSucceeded(Step.CREATE_SHIPMENT), state_of(STARTED))


def test_out_of_stock_cleans_up_the_reservation_and_rejects_without_payment() -> None:
    events, state = decide(STARTED, RecordStepFailed(Step.RESERVE_INVENTORY, "no stock"))

    assert events == [StepFailed(Step.RESERVE_INVENTORY, "no stock")]
    assert state is not None and state.state is FulfillmentState.COMPENSATING
    assert statuses(state) == [StepStatus.FAILED, StepStatus.PENDING, StepStatus.PENDING]
    action = saga.next_action(state)
    assert isinstance(action, Compensate) and isinstance(action.undo, ReleaseLines)

    events, state = when(
        saga.decide, saga.evolve, state, RecordStepCompensated(Step.RESERVE_INVENTORY)
    )
    assert events == [FailedStepCleanedUp(Step.RESERVE_INVENTORY)]
    assert statuses(state)[0] is StepStatus.FAILED  # still shown failed, not compensated
    assert saga.next_action(state) == RejectTheOrder(
        "o1", "no stock", "Fulfillment-o1:Order:reject"
    )

    events, state = when(saga.decide, saga.evolve, state, RecordOrderRejected())
    assert events == [FulfillmentFailed("no stock")]
    assert saga.next_action(state) is None


def test_a_failed_shipment_cleans_up_then_refunds_then_releases_in_that_order() -> None:
    state = state_of([*PAID, StepFailed(Step.CREATE_SHIPMENT, "no route to XX")])
    undone = []
    while isinstance(action := saga.next_action(state), Compensate):
        undone.append((action.step, type(action.undo)))
        state = given(saga.evolve, state, saga.decide(RecordStepCompensated(action.step), state))

    assert undone == [
        (Step.CREATE_SHIPMENT, CancelShipment),
        (Step.PROCESS_PAYMENT, RefundPayment),
        (Step.RESERVE_INVENTORY, ReleaseLines),
    ]
    assert statuses(state) == [StepStatus.COMPENSATED, StepStatus.COMPENSATED, StepStatus.FAILED]
    assert saga.next_action(state) == RejectTheOrder(
        "o1", "no route to XX", "Fulfillment-o1:Order:reject"
    )


def test_the_refund_names_the_charge_it_undoes() -> None:
    state = state_of([*RESERVED, StepFailed(Step.PROCESS_PAYMENT, "declined")])
    state = given(
        saga.evolve, state, saga.decide(RecordStepCompensated(Step.PROCESS_PAYMENT), state)
    )

    assert saga.next_action(state) == RELEASE_ALL
    assert saga.next_action(state_of([*RESERVED, StepFailed(Step.PROCESS_PAYMENT, "x")])) == (
        Compensate(
            Step.PROCESS_PAYMENT,
            RefundPayment(
                "Fulfillment-o1:ProcessPayment:charge", "Fulfillment-o1:ProcessPayment:refund"
            ),
        )
    )


def test_cancel_after_confirm_compensates_every_step_and_fails_with_order_cancelled() -> None:
    events, state = decide(COMPLETED, CancelFulfillment())
    assert events == [FulfillmentCancelled("order cancelled")]

    undone = []
    while isinstance(action := saga.next_action(state), Compensate):
        undone.append(action.step)
        state = given(saga.evolve, state, saga.decide(RecordStepCompensated(action.step), state))

    assert undone == [Step.CREATE_SHIPMENT, Step.PROCESS_PAYMENT, Step.RESERVE_INVENTORY]
    assert statuses(state) == [StepStatus.COMPENSATED] * 3
    # The order is cancelled already: nothing is rejected, the fulfillment just fails.
    assert saga.next_action(state) == RejectTheOrder(
        "o1", "order cancelled", "Fulfillment-o1:Order:reject", reject=False
    )
    assert saga.decide(RecordOrderRejected(), state) == [FulfillmentFailed("order cancelled")]


def test_cancel_while_payment_runs_undoes_the_payment_that_may_have_happened() -> None:
    events, state = decide(RESERVED, CancelFulfillment())

    assert events == [FulfillmentCancelled("order cancelled")]
    assert saga.next_action(state) == Compensate(
        Step.PROCESS_PAYMENT,
        RefundPayment(
            "Fulfillment-o1:ProcessPayment:charge", "Fulfillment-o1:ProcessPayment:refund"
        ),
    )
    # The payment's late outcome is not recorded: the saga has moved on.
    assert saga.decide(RecordStepSucceeded(Step.PROCESS_PAYMENT, "pay-1"), state) == []
    state = given(saga.evolve, state, [StepCompensated(Step.PROCESS_PAYMENT)])
    assert saga.next_action(state) == RELEASE_ALL
    assert statuses(state) == [StepStatus.DONE, StepStatus.COMPENSATED, StepStatus.PENDING]


def test_cancelling_twice_or_after_a_rejection_appends_nothing() -> None:
    cancelled = [*COMPLETED, FulfillmentCancelled("order cancelled")]
    rejected = [*STARTED, StepFailed(Step.RESERVE_INVENTORY, "x"), FulfillmentFailed("x")]

    assert saga.decide(CancelFulfillment(), state_of(cancelled)) == []
    assert saga.decide(CancelFulfillment(), state_of(rejected)) == []


def test_rejecting_with_compensation_left_is_refused() -> None:
    with raises(InvalidState, match="steps left to undo"):
        saga.decide(
            RecordOrderRejected(), state_of([*RESERVED, StepFailed(Step.PROCESS_PAYMENT, "x")])
        )


@pytest.mark.parametrize(
    "command",
    [RecordStepSucceeded(Step.RESERVE_INVENTORY), CancelFulfillment(), RecordOrderConfirmed()],
)
def test_recording_on_a_saga_that_never_started_is_refused(
    command: saga.FulfillmentCommand,
) -> None:
    with raises(InvalidState, match="has not started"):
        saga.decide(command, saga.initial_state)


def test_nothing_to_do_before_the_start() -> None:
    assert saga.next_action(None) is None
