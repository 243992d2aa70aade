"""Money in read documents: {"amount": "12.30", "currency": "USD"}.

The amount is a decimal string with exactly two places, the exact text the API serves, so
a document reads the same from MongoDB and from the in-memory store of `orders dev`; where a
query sorts by an amount, the document also carries it in integer minor units.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from write_model.domain.money import CENT, DEFAULT_CURRENCY, Money

MoneyDoc = dict[str, str]


def money_doc(money: Money) -> MoneyDoc:
    amount = money.amount.quantize(CENT, rounding=ROUND_HALF_UP)
    return {"amount": f"{amount:f}", "currency": money.currency}


def zero_money_doc(currency: str = DEFAULT_CURRENCY) -> MoneyDoc:
    return money_doc(Money.zero(currency))


def money_of(doc: Mapping[str, Any]) -> Money:
    return Money(Decimal(doc["amount"]), doc["currency"])


def minor_units(money: Money) -> int:
    """The amount in cents (for sorting), rounded half-up like every amount here."""
    return int((money.amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())
