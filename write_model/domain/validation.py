"""Input checks shared by the deciders. Each raises ValidationFailed naming the field."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from write_model.domain.errors import ValidationFailed

MAX_NAME_LENGTH = 200
MAX_QUANTITY = 10_000
MAX_STOCK = 1_000_000_000
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# No "." or "$": ids become field names in read documents (e.g. productNames.<id>).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,99}$")


def require_name(value: str, field: str = "name") -> str:
    name = value.strip()
    if not name:
        raise ValidationFailed(f"{field} must not be empty", field)
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(f"{field} is longer than {MAX_NAME_LENGTH} characters", field)
    return name


def require_id(value: str, field: str) -> str:
    if not _ID.fullmatch(value):
        raise ValidationFailed(
            f"{field} {value!r} must be 1-100 letters, digits, '_', ':' or '-'", field
        )
    return value


def require_email(value: str, field: str = "email") -> str:
    """A syntactically valid address, normalized (domain lower-cased); no DNS lookup."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationFailed(f"{value!r} is not a valid email address: {error}", field) from None


def require_quantity(value: int, field: str = "quantity") -> int:
    if value <= 0:
        raise ValidationFailed(f"{field} must be a positive whole number, got {value}", field)
    if value > MAX_QUANTITY:
        raise ValidationFailed(f"{field} must be at most {MAX_QUANTITY}, got {value}", field)
    return value


def require_stock(value: int, field: str) -> int:
    if value < 0:
        raise ValidationFailed(f"{field} must not be negative, got {value}", field)
    if value > MAX_STOCK:
        raise ValidationFailed(f"{field} must be at most {MAX_STOCK}, got {value}", field)
    return value


def require_country(value: str, field: str = "country") -> str:
    if not _COUNTRY.fullmatch(value):
        raise ValidationFailed(f"{value!r} is not an ISO 3166-1 alpha-2 country code", field)
    return value
