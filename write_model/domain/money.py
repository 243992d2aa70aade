"""Money as Decimal with a currency; never float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from write_model.domain.errors import ValidationFailed

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


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


def parse_price(value: Decimal | str, currency: str, field: str = "price") -> Money:
    """A catalog price: positive, at most two decimal places, a 3-letter currency code."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationFailed(f"{value!r} is not a decimal number", field) from None
    if not amount.is_finite():
        raise ValidationFailed("price must be a finite number", field)
    if amount <= 0:
        raise ValidationFailed(f"price must be greater than zero, got {amount}", field)
    if amount >= MAX_AMOUNT:
        raise ValidationFailed(f"price must be less than {MAX_AMOUNT}", field)
    if amount != amount.quantize(CENT):
        raise ValidationFailed(f"price {amount} has more than two decimal places", field)
    if not _CURRENCY.fullmatch(currency):
        raise ValidationFailed(f"currency {currency!r} is not a 3-letter ISO 4217 code", "currency")
    return Money(amount.quantize(CENT), currency)
