"""Who sends a command and in answer to what: carried into every event's metadata.

The principal is the one place where the write side learns who asks, so authorization and
idempotency scoping have one place to live once they are needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never


class PrincipalKind(StrEnum):
    ANONYMOUS = "ANONYMOUS"
    CUSTOMER = "CUSTOMER"
    STAFF = "STAFF"
    SYSTEM = "SYSTEM"  # a process of our own, such as the fulfillment saga


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str | None = None  # the customer's or staff member's id, or the process's name

    def __post_init__(self) -> None:
        if (self.kind is PrincipalKind.ANONYMOUS) != (self.id is None):
            raise ValueError(f"a {self.kind} principal {'has no' if self.id else 'needs an'} id")

    @staticmethod
    def customer(customer_id: str) -> Principal:
        return Principal(PrincipalKind.CUSTOMER, customer_id)

    @staticmethod
    def staff(staff_id: str) -> Principal:
        return Principal(PrincipalKind.STAFF, staff_id)

    @staticmethod
    def system(process: str) -> Principal:
        return Principal(PrincipalKind.SYSTEM, process)

    @property
    def user_id(self) -> str | None:
        """What the events' metadata records as `userId`."""
        match self.kind:
            case PrincipalKind.ANONYMOUS:
                return None
            case PrincipalKind.CUSTOMER | PrincipalKind.STAFF:
                return self.id
            case PrincipalKind.SYSTEM:
                return f"system:{self.id}"  # never mistaken for a person's id
            case _:
                assert_never(self.kind)


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)


@dataclass(frozen=True, slots=True)
class CommandContext:
    correlation_id: str
    causation_id: str | None = None  # e.g. the event a saga step answers
    principal: Principal = ANONYMOUS
