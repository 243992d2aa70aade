"""Customer as a decider, plus the email reservation that keeps emails unique.

Uniqueness spans streams, so it gets a stream of its own: `CustomerEmail-<email>` holds
one `CustomerEmailReserved`. Registration first reserves the email (no-stream append), then
appends `CustomerRegistered`. A crash between the two leaves a reservation owned by the same
customer id, which a retry of the same registration accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import assert_never

from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.domain.validation import require_email, require_id, require_name

STREAM_TYPE = "Customer"
EMAIL_STREAM_TYPE = "CustomerEmail"

# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class RegisterCustomer:
    customer_id: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class RenameCustomer:
    customer_id: str
    name: str


CustomerCommand = RegisterCustomer | RenameCustomer

# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class CustomerRegistered:
    customer_id: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class CustomerRenamed:
    name: str


CustomerEvent = CustomerRegistered | CustomerRenamed

# ------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    name: str
    email: str


CustomerState = Customer | None
initial_state: CustomerState = None


def decide(command: CustomerCommand, state: CustomerState) -> list[CustomerEvent]:
    match command:
        case RegisterCustomer(customer_id, name, email):
            if state is not None:
                raise InvalidState(f"customer {customer_id} is already registered")
            return [
                CustomerRegistered(
                    require_id(customer_id, "customerId"), require_name(name), require_email(email)
                )
            ]
        case RenameCustomer(customer_id, name):
            if state is None:
                raise NotFound(f"customer {customer_id} not found", customer_id)
            new_name = require_name(name)
            return [] if new_name == state.name else [CustomerRenamed(new_name)]
        case _:
            assert_never(command)


def evolve(state: CustomerState, event: CustomerEvent) -> CustomerState:
    match event:
        case CustomerRegistered(customer_id, name, email):
            return Customer(customer_id, name, email)
        case CustomerRenamed(name):
            if state is None:
                raise ValueError("CustomerRenamed applied to a customer never registered")
            return replace(state, name=name)
        case _:
            assert_never(event)


# ------------------------------------------------------- email reservation


@dataclass(frozen=True, slots=True)
class ReserveCustomerEmail:
    email: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class CustomerEmailReserved:
    email: str
    customer_id: str


EmailReservationState = str | None  # the customer id holding the email
email_initial_state: EmailReservationState = None


def email_stream_key(email: str) -> str:
    """Emails compare case-insensitively for uniqueness."""
    return require_email(email).lower()


def decide_email(
    command: ReserveCustomerEmail, state: EmailReservationState
) -> list[CustomerEmailReserved]:
    match command:
        case ReserveCustomerEmail(email, customer_id):
            if state is None:
                return [CustomerEmailReserved(email_stream_key(email), customer_id)]
            if state == customer_id:
                return []  # a retried registration of the same customer
            raise ValidationFailed(
                f"email {email} is already registered to another customer", "email"
            )
        case _:
            assert_never(command)


def evolve_email(
    state: EmailReservationState, event: CustomerEmailReserved
) -> EmailReservationState:
    match event:
        case CustomerEmailReserved(_, customer_id):
            return customer_id
        case _:
            assert_never(event)
