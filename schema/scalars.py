"""The contract's scalars: DateTime, Decimal (as a string, e.g. "12.30") and JSON.

`Decimal` input is parsed leniently on purpose: a string or number that is not a decimal
number in ASCII notation (digits 0-9, an optional sign and point) becomes a
`MalformedDecimal`, which the mutation layer reports as a `ValidationError` naming the
field (bad input is an expected failure, not a GraphQL error). Values of other JSON
types (true, objects, lists) are type errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from write_model.domain.money import parse_decimal as parse_ascii_decimal


@dataclass(frozen=True, slots=True)
class MalformedDecimal:
    """A Decimal input that did not parse: kept so the mutation can name the field."""

    raw: str

    def __str__(self) -> str:
        return self.raw


def serialize_decimal(value: Decimal | str) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(Decimal(value))  # read documents hold amounts as decimal strings


def parse_decimal(value: Any) -> Decimal | MalformedDecimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise StrawberryInputCoercionError(
            f'Decimal must be a string such as "12.30" or a number, got {value!r}'
        )
    # Floats go through their shortest repr, so 12.3 is 12.3 and not 12.2999999...
    text = str(value).strip()
    parsed = parse_ascii_decimal(text)
    return parsed if parsed is not None else MalformedDecimal(text[:40])


def serialize_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # stores hand back UTC; never print a naive time
    return value.isoformat()


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f"DateTime must be an ISO-8601 string with an offset, got {value!r}"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise StrawberryInputCoercionError(
            f"DateTime must be an ISO-8601 string with an offset, e.g. "
            f'"2026-11-26T13:24:00+00:00"; got {value!r}'
        ) from None
    if parsed.tzinfo is None:
        raise StrawberryInputCoercionError(
            f'DateTime {value!r} has no offset; add one, e.g. "+00:00" or "Z"'
        )
    return parsed


DECIMAL: ScalarDefinition = strawberry.scalar(
    name="Decimal",
    description='Decimal number serialized as a string, e.g. "12.30"',
    serialize=serialize_decimal,
    parse_value=parse_decimal,
)

DATETIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description='ISO-8601 date and time with offset, e.g. "2026-11-26T13:24:00+00:00"',
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {Decimal: DECIMAL, datetime: DATETIME}
