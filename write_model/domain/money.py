"""Money as Decimal with a currency; never float.

Amounts are kept to the cent, so only currencies with two minor digits are taken (USD,
EUR, ...; not JPY or KWD): ISO 4217 codes from pycountry, their minor digits from Babel's
CLDR data. Amounts are read in ASCII decimal notation only (`12.30`): Python's Decimal
would also read other scripts' digits, underscores and exponents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pycountry
from babel.numbers import get_currency_precision

from write_model.domain.errors import ValidationFailed

CENT = Decimal("0.01")
MINOR_DIGITS = 2
DEFAULT_CURRENCY = "USD"
"""The currency of a price given without one, and of the totals of an order with no lines."""
MAX_AMOUNT = Decimal("1000000000")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# re's \d would match any script's digits.
_DECIMAL_NOTATION = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def rate(self, rate: Decimal) -> Money:
        """The share `rate` of this amount, rounded half-up to the cent."""
        return Money((self.amount * rate).quantize(CENT, rounding=ROUND_HALF_UP), self.currency)

    @staticmethod
    def zero(currency: str) -> Money:
        return Money(Decimal("0.00"), currency)


def parse_decimal(text: str) -> Decimal | None:
    """`text` (surrounding spaces aside) in ASCII decimal notation, else None."""
    stripped = text.strip()
    if len(stripped) > 40 or not _DECIMAL_NOTATION.fullmatch(stripped):
        return None
    return Decimal(stripped)


def require_currency(currency: str, field: str = "currency") -> str:
    """An ISO 4217 code whose currency has two minor digits."""
    if not _CURRENCY.fullmatch(currency) or pycountry.currencies.get(alpha_3=currency) is None:
        raise ValidationFailed(f"currency {currency!r} is not an ISO 4217 code", field)
    if (digits := get_currency_precision(currency)) != MINOR_DIGITS:
        raise ValidationFailed(
            f"currency {currency} has {digits} minor digits; prices are kept to the cent, "
            f"so only currencies with {MINOR_DIGITS} are taken",
            field,
        )
    return currency


def parse_price(value: Decimal | str, currency: str, field: str = "price") -> Money:
    """A catalog price: positive, at most two decimal places, in a two-decimal ISO 4217
    currency."""
    amount = parse_decimal(value) if isinstance(value, str) else value
    if not isinstance(amount, Decimal):
        raise ValidationFailed(
            f"{value!r} is not a decimal number in ASCII notation, e.g. 12.30", field
        )
    if not amount.is_finite():
        raise ValidationFailed("price must be a finite number", field)
    if amount <= 0:
        raise ValidationFailed(f"price must be greater than zero, got {amount}", field)
    if amount >= MAX_AMOUNT:
        raise ValidationFailed(f"price must be less than {MAX_AMOUNT}", field)
    if amount != amount.quantize(CENT):
        raise ValidationFailed(f"price {amount} has more than two decimal places", field)
    return Money(amount.quantize(CENT), require_currency(currency))
