"""Typed domain errors. Each maps to one member of the GraphQL error unions."""

from __future__ import annotations


class DomainError(Exception):
    """A command that the domain refuses. Nothing is appended when one is raised."""

    code = "DOMAIN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    """Input that can never be accepted, whatever the state (bad quantity, malformed email)."""

    code = "VALIDATION"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DomainError):
    """The command names an entity that does not exist."""

    code = "NOT_FOUND"

    def __init__(self, message: str, entity_id: str) -> None:
        super().__init__(message)
        self.entity_id = entity_id


class InvalidState(DomainError):
    """The command is well formed but not allowed in the entity's current state."""

    code = "INVALID_STATE"
