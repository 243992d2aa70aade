"""Input checks shared by the deciders. Each raises ValidationFailed naming the field."""

from __future__ import annotations

import re

import pycountry
from email_validator import EmailNotValidError, validate_email

from write_model.domain.errors import ValidationFailed

MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254  # RFC 5321's longest forward path, less its angle brackets
MAX_TEXT_LENGTH = 1000  # free text: a cancel or reject reason
MAX_ID_LENGTH = 100
MAX_QUANTITY = 10_000
MAX_STOCK = 1_000_000_000
# C0 and C1 controls and DEL: PostgreSQL cannot store NUL, and none of them prints.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Free text keeps line breaks and tabs.
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidi embeddings, overrides and isolates: they make a name display other than it reads.
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# No "." or "$": ids become field names in read documents (e.g. productNames.<id>).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,99}$")
MAX_IDEMPOTENCY_KEY_LENGTH = 128
# A UUID, a ULID, base64 or a client's own scheme; never empty, never free text.
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:/+=~-]{1,128}$")


def require_line(value: str, field: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """One line of printable text (a name, an email, a code): no control characters and no
    bidi controls, at most `max_length` characters."""
    _require_length(value, field, max_length)
    _refuse(_CONTROLS, value, field, "a control character")
    _refuse(_BIDI_CONTROLS, value, field, "a bidi control character")
    return value


def require_text(value: str, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Free text (a reason, an address line): line breaks and tabs allowed, other control
    characters not, at most `max_length` characters."""
    _require_length(value, field, max_length)
    _refuse(_CONTROLS_BUT_LINES, value, field, "a control character")
    return value


def _require_length(value: str, field: str, max_length: int) -> None:
    if len(value) > max_length:
        raise ValidationFailed(f"{field} is longer than {max_length} characters", field)


def _refuse(characters: re.Pattern[str], value: str, field: str, what: str) -> None:
    # The character is named by its code point, never echoed: it may not print.
    if found := characters.search(value):
        raise ValidationFailed(
            f"{field} contains {what} (U+{ord(found.group()):04X}) at position {found.start()}",
            field,
        )


def require_name(value: str, field: str = "name") -> str:
    name = value.strip()
    if not name:
        raise ValidationFailed(f"{field} must not be empty", field)
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(f"{field} is longer than {MAX_NAME_LENGTH} characters", field)
    return name


def require_id(value: str, field: str) -> str:
    if not _ID.fullmatch(value):
        # A long or unprintable value is not echoed back.
        shown = f" {value!r}" if value.isprintable() and len(value) <= MAX_ID_LENGTH else ""
        raise ValidationFailed(
            f"{field}{shown} must be 1-{MAX_ID_LENGTH} letters, digits, '_', ':' or '-'"
            " (starting with a letter or digit)",
            field,
        )
    return value


def require_idempotency_key(value: str, field: str = "idempotencyKey") -> str:
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise ValidationFailed(
            f"{field} must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters of A-Z, a-z, 0-9"
            " and . _ : / + = ~ - (a UUID, for example)",
            field,
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
    """An assigned ISO 3166-1 alpha-2 code (pycountry's list): not ZZ or XX, which the
    standard leaves to private use."""
    if not _COUNTRY.fullmatch(value) or pycountry.countries.get(alpha_2=value) is None:
        raise ValidationFailed(f"{value!r} is not an ISO 3166-1 alpha-2 country code", field)
    return value
