"""Customer decider and the email reservation decider that keeps emails unique."""

from __future__ import annotations

import pytest

from tests.unit.given_when_then import given, raises, when
from write_model.domain import customer
from write_model.domain.customer import (
    Customer,
    CustomerEmailReserved,
    CustomerRegistered,
    CustomerRenamed,
    RegisterCustomer,
    RenameCustomer,
    ReserveCustomerEmail,
)
from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.validation import MAX_NAME_LENGTH

REGISTERED = CustomerRegistered("c1", "Alice Smith", "alice@example.com")


def state_of(*events: customer.CustomerEvent) -> customer.CustomerState:
    return given(customer.evolve, customer.initial_state, events)


MALFORMED_EMAILS = [
    "",
    "   ",
    "alice",
    "alice.example.com",
    "alice@",
    "@example.com",
    "alice@@example.com",
    "alice@example",
    "alice@localhost",
    "al ice@example.com",
    "alice@exa mple.com",
    "alice@example..com",
    ".alice@example.com",
    "alice.@example.com",
    "alice@-example.com",
    "alice@example.test",  # special-use domain
    "alice@example.com, bob@example.com",
]


# ------------------------------------------------------------- RegisterCustomer


def test_register_a_new_customer() -> None:
    command = RegisterCustomer("c1", "Alice Smith", "alice@example.com")

    events, state = when(customer.decide, customer.evolve, customer.initial_state, command)

    assert events == [CustomerRegistered("c1", "Alice Smith", "alice@example.com")]
    assert state == Customer("c1", "Alice Smith", "alice@example.com")


def test_register_trims_the_name() -> None:
    events = customer.decide(RegisterCustomer("c1", "  Alice Smith \n", "alice@example.com"), None)

    assert events == [CustomerRegistered("c1", "Alice Smith", "alice@example.com")]


@pytest.mark.parametrize(
    ("given_email", "normalized"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  alice@example.com  ", "alice@example.com"),
        ("alice@EXAMPLE.COM", "alice@example.com"),
        ("Alice.Smith@Example.Com", "Alice.Smith@example.com"),  # the local part keeps its case
        ("alice+orders@sub.example.org", "alice+orders@sub.example.org"),
    ],
)
def test_register_normalizes_the_email(given_email: str, normalized: str) -> None:
    [registered] = customer.decide(RegisterCustomer("c1", "Alice", given_email), None)

    assert registered.email == normalized


@pytest.mark.parametrize("email", MALFORMED_EMAILS)
def test_register_with_a_malformed_email_fails(email: str) -> None:
    with raises(ValidationFailed, match="not a valid email address", field="email"):
        customer.decide(RegisterCustomer("c1", "Alice", email), customer.initial_state)


@pytest.mark.parametrize("name", ["", " ", "\t\n"])
def test_register_with_an_empty_name_fails(name: str) -> None:
    with raises(ValidationFailed, match="must not be empty", field="name"):
        customer.decide(RegisterCustomer("c1", name, "alice@example.com"), None)


def test_register_with_a_too_long_name_fails() -> None:
    name = "x" * (MAX_NAME_LENGTH + 1)

    with raises(ValidationFailed, match="longer than", field="name"):
        customer.decide(RegisterCustomer("c1", name, "alice@example.com"), None)


def test_register_accepts_the_longest_name() -> None:
    name = "x" * MAX_NAME_LENGTH

    [registered] = customer.decide(RegisterCustomer("c1", name, "alice@example.com"), None)

    assert registered.name == name


def test_name_length_is_counted_after_trimming() -> None:
    name = "  " + "x" * MAX_NAME_LENGTH + "  "

    [registered] = customer.decide(RegisterCustomer("c1", name, "alice@example.com"), None)

    assert registered.name == "x" * MAX_NAME_LENGTH


@pytest.mark.parametrize("customer_id", ["", "_c1", "c 1", "c/1", "c" * 101, "c1\n", "é1"])
def test_register_with_a_malformed_customer_id_fails(customer_id: str) -> None:
    with raises(ValidationFailed, field="customerId"):
        customer.decide(RegisterCustomer(customer_id, "Alice", "alice@example.com"), None)


def test_register_an_existing_customer_is_invalid() -> None:
    command = RegisterCustomer("c1", "Alice Smith", "alice@example.com")

    with raises(InvalidState, match="c1 is already registered"):
        customer.decide(command, state_of(REGISTERED))


# --------------------------------------------------------------- RenameCustomer


def test_rename_a_customer() -> None:
    events, state = when(
        customer.decide,
        customer.evolve,
        state_of(REGISTERED),
        RenameCustomer("c1", " Alice Jones "),
    )

    assert events == [CustomerRenamed("Alice Jones")]
    assert state == Customer("c1", "Alice Jones", "alice@example.com")


@pytest.mark.parametrize("name", ["Alice Smith", "  Alice Smith  "])
def test_rename_to_the_same_name_changes_nothing(name: str) -> None:
    assert customer.decide(RenameCustomer("c1", name), state_of(REGISTERED)) == []


def test_rename_back_after_a_rename_is_recorded() -> None:
    state = state_of(REGISTERED, CustomerRenamed("Alice Jones"))

    assert customer.decide(RenameCustomer("c1", "Alice Smith"), state) == [
        CustomerRenamed("Alice Smith")
    ]


def test_rename_an_unknown_customer_is_not_found() -> None:
    with raises(NotFound, match="c9 not found", entity_id="c9"):
        customer.decide(RenameCustomer("c9", "Bob"), customer.initial_state)


@pytest.mark.parametrize("name", ["", "   "])
def test_rename_to_an_empty_name_fails(name: str) -> None:
    with raises(ValidationFailed, field="name"):
        customer.decide(RenameCustomer("c1", name), state_of(REGISTERED))


def test_rename_to_a_too_long_name_fails() -> None:
    with raises(ValidationFailed, field="name"):
        customer.decide(RenameCustomer("c1", "x" * (MAX_NAME_LENGTH + 1)), state_of(REGISTERED))


def test_evolve_refuses_a_rename_before_registration() -> None:
    with pytest.raises(ValueError, match="never registered"):
        customer.evolve(customer.initial_state, CustomerRenamed("Bob"))


# ------------------------------------------------------------ email reservation


def email_state_of(*events: CustomerEmailReserved) -> customer.EmailReservationState:
    return given(customer.evolve_email, customer.email_initial_state, events)


def test_reserve_a_free_email() -> None:
    events, state = when(
        customer.decide_email,
        customer.evolve_email,
        customer.email_initial_state,
        ReserveCustomerEmail("alice@example.com", "c1"),
    )

    assert events == [CustomerEmailReserved("alice@example.com", "c1")]
    assert state == "c1"


@pytest.mark.parametrize(
    "email", ["Alice@Example.COM", "  ALICE@example.com ", "alice@EXAMPLE.com"]
)
def test_reservation_key_is_the_normalized_lower_cased_email(email: str) -> None:
    events = customer.decide_email(ReserveCustomerEmail(email, "c1"), None)

    assert events == [CustomerEmailReserved("alice@example.com", "c1")]


def test_email_stream_key_ignores_case() -> None:
    assert customer.email_stream_key("Alice@Example.com") == customer.email_stream_key(
        "alice@example.COM"
    )


def test_reserve_again_for_the_same_customer_is_a_no_op() -> None:
    state = email_state_of(CustomerEmailReserved("alice@example.com", "c1"))

    assert customer.decide_email(ReserveCustomerEmail("alice@example.com", "c1"), state) == []
    assert customer.decide_email(ReserveCustomerEmail("ALICE@example.com", "c1"), state) == []


def test_reserve_an_email_held_by_another_customer_fails() -> None:
    state = email_state_of(CustomerEmailReserved("alice@example.com", "c1"))

    with raises(ValidationFailed, match="already registered", field="email"):
        customer.decide_email(ReserveCustomerEmail("Alice@Example.com", "c2"), state)


@pytest.mark.parametrize("email", MALFORMED_EMAILS)
def test_reserve_a_malformed_email_fails(email: str) -> None:
    with raises(ValidationFailed, field="email"):
        customer.decide_email(ReserveCustomerEmail(email, "c1"), customer.email_initial_state)


def test_evolve_email_records_the_holder() -> None:
    assert email_state_of() is None
    assert email_state_of(CustomerEmailReserved("alice@example.com", "c7")) == "c7"
