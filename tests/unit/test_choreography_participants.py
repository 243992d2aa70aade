"""The choreography participants' decider: given a participant's own events, when a trigger
arrives, then how it responds; when it records what it did, then its events (each recorded
once, so a trigger handled again after a crash adds nothing)."""

from __future__ import annotations

from functools import partial

import pytest

from tests.unit.given_when_then import given, when
from write_model.domain import choreography as chor
from write_model.domain.choreography import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    Participant,
    ParticipantEvent,
    Participation,
    PaymentCharged,
    PaymentFailed,
    PaymentRefunded,
    RecordDone,
    RecordFailed,
    RecordUndone,
    Response,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
    Standing,
)
from write_model.domain.fulfillment import STEPS

INVENTORY, PAYMENT, SHIPPING = Participant.INVENTORY, Participant.PAYMENT, Participant.SHIPPING


def state_of(events: list[ParticipantEvent]) -> chor.ParticipantState:
    return given(chor.evolve, chor.initial_state, events)


def record(
    participant: Participant, events: list[ParticipantEvent], command: chor.ParticipantCommand
) -> tuple[list[ParticipantEvent], chor.ParticipantState]:
    return when(partial(chor.decide, participant), chor.evolve, state_of(events), command)


def test_each_participant_owns_one_step_in_the_sagas_order() -> None:
    assert [chor.STEP_OF[p] for p in Participant] == list(STEPS)


@pytest.mark.parametrize(
    ("participant", "trigger"),
    [
        (INVENTORY, "OrderSubmitted"),
        (PAYMENT, "InventoryReserved"),
        (SHIPPING, "PaymentCharged"),
    ],
)
def test_each_participant_runs_its_step_on_the_previous_ones_success(
    participant: Participant, trigger: str
) -> None:
    assert chor.respond(participant, trigger, None) is Response.ACT


def test_a_step_is_run_once_whatever_came_of_it() -> None:
    for events in ([InventoryReserved("o1", "3 units reserved")], [InventoryReleased("o1")]):
        assert chor.respond(INVENTORY, "OrderSubmitted", state_of(events)) is None
    failed = state_of([PaymentFailed("o1", "declined")])
    assert chor.respond(PAYMENT, "InventoryReserved", failed) is None


@pytest.mark.parametrize(
    ("participant", "trigger", "done"),
    [
        (INVENTORY, "PaymentFailed", InventoryReserved("o1", "2 units reserved")),
        (INVENTORY, "PaymentRefunded", InventoryReserved("o1", "2 units reserved")),
        (PAYMENT, "ShipmentFailed", PaymentCharged("o1", "charge-1")),
    ],
)
def test_a_failure_later_on_makes_an_earlier_participant_undo_what_it_did(
    participant: Participant, trigger: str, done: ParticipantEvent
) -> None:
    assert chor.respond(participant, trigger, state_of([done])) is Response.UNDO


def test_nothing_done_or_already_undone_is_not_undone_again() -> None:
    assert chor.respond(INVENTORY, "PaymentFailed", None) is None
    undone = state_of([PaymentCharged("o1", "charge-1"), PaymentRefunded("o1")])
    assert chor.respond(PAYMENT, "ShipmentFailed", undone) is None


@pytest.mark.parametrize("participant", list(Participant))
def test_every_participant_looks_at_a_cancel_whatever_its_state(
    participant: Participant,
) -> None:
    # Its step may have begun without a result of its own yet: the saga's record decides.
    for events in ([], [InventoryReserved("o1", None)], [InventoryReleased("o1")]):
        assert chor.respond(participant, "OrderCancelled", state_of(events)) is Response.CANCEL


def test_a_participant_ignores_what_it_does_not_follow() -> None:
    assert chor.respond(SHIPPING, "OrderSubmitted", None) is None
    assert chor.respond(SHIPPING, "ShipmentFailed", None) is None  # its own event
    assert chor.respond(PAYMENT, "PaymentFailed", None) is None
    assert chor.respond(INVENTORY, "ShipmentFailed", None) is None  # payment's to answer


@pytest.mark.parametrize(
    ("participant", "done", "failed", "undone"),
    [
        (
            INVENTORY,
            InventoryReserved("o1", "d"),
            InventoryReservationFailed("o1", "why"),
            InventoryReleased("o1"),
        ),
        (PAYMENT, PaymentCharged("o1", "d"), PaymentFailed("o1", "why"), PaymentRefunded("o1")),
        (
            SHIPPING,
            ShipmentCreated("o1", "d"),
            ShipmentFailed("o1", "why"),
            ShipmentCancelled("o1"),
        ),
    ],
)
def test_each_participant_records_its_own_events(
    participant: Participant,
    done: ParticipantEvent,
    failed: ParticipantEvent,
    undone: ParticipantEvent,
) -> None:
    events, state = record(participant, [], RecordDone("o1", "d"))
    assert events == [done]
    assert state == Participation(participant, Standing.DONE, "d")

    events, state = record(participant, [done], RecordUndone("o1"))
    assert events == [undone]
    assert state == Participation(participant, Standing.UNDONE, "d")

    events, state = record(participant, [], RecordFailed("o1", "why"))
    assert events == [failed]
    assert state == Participation(participant, Standing.FAILED, "why")


def test_recording_again_after_a_crash_appends_nothing() -> None:
    reserved: list[ParticipantEvent] = [InventoryReserved("o1", "2 units reserved")]
    assert record(INVENTORY, reserved, RecordDone("o1", "2 units reserved"))[0] == []
    assert record(INVENTORY, reserved, RecordFailed("o1", "why"))[0] == []
    released = [*reserved, InventoryReleased("o1")]
    assert record(INVENTORY, released, RecordUndone("o1"))[0] == []


def test_a_failed_step_was_cleaned_up_so_there_is_nothing_to_undo() -> None:
    failed: list[ParticipantEvent] = [PaymentFailed("o1", "declined")]
    assert record(PAYMENT, failed, RecordUndone("o1"))[0] == []


def test_a_step_begun_without_a_result_is_undone_on_a_cancel() -> None:
    # Payment was cancelled while its charge was under way: the refund is recorded.
    events, state = record(PAYMENT, [], RecordUndone("o1"))
    assert events == [PaymentRefunded("o1")]
    assert state == Participation(PAYMENT, Standing.UNDONE, None)
