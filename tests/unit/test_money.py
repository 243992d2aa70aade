"""Money and catalog prices: Decimal with a currency, tax rounded half-up to the cent."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from tests.unit.given_when_then import raises
from write_model.domain.errors import ValidationFailed
from write_model.domain.money import MAX_AMOUNT, Money, parse_price


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# ------------------------------------------------------------ parse_price


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.34", "12.34"),
        (Decimal("12.34"), "12.34"),
        ("0.01", "0.01"),
        ("5", "5.00"),
        ("2.5", "2.50"),
        ("1.100", "1.10"),  # trailing zeros are not a third decimal place
        ("+3", "3.00"),
        (".5", "0.50"),
        (" 7.25 ", "7.25"),
        ("999999999.99", "999999999.99"),
    ],
)
def test_parse_price_accepts_positive_amounts_with_at_most_two_decimals(
    value: Decimal | str, expected: str
) -> None:
    price = parse_price(value, "USD")

    assert price == usd(expected)
    # quantized to the cent: the exact Decimal, not merely an equal one
    assert str(price.amount) == expected
    assert price.currency == "USD"


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "0.00",
        "-0",
        "-1.00",
        "-0.01",
        Decimal("-5"),
        "1.005",
        "0.001",
        "12.345",
        Decimal("1.999"),
        "NaN",
        "-NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "abc",
        "",
        "1,00",
        "$1.00",
        "1e9",
        "1e1",  # exponents are not decimal notation
        "\u0661\u0662\u0663",  # Arabic-Indic digits, which Decimal reads as 123
        "\uff11\uff12",  # fullwidth digits
        "1_000",  # Python's digit grouping
        ".",
        "1.2.3",
        "1000000000.00",
        "1e12",
        None,
        0.1,  # a float carries binary noise: more than two decimals
    ],
)
def test_parse_price_rejects_invalid_amounts_on_the_price_field(value: object) -> None:
    with raises(ValidationFailed, field="price"):
        parse_price(value, "USD")  # type: ignore[arg-type]


def test_parse_price_rejects_amount_at_the_maximum() -> None:
    with raises(ValidationFailed, match="less than", field="price"):
        parse_price(MAX_AMOUNT, "USD")


def test_parse_price_says_why_for_three_decimals() -> None:
    with raises(ValidationFailed, match="more than two decimal places", field="price"):
        parse_price("1.005", "USD")


def test_parse_price_says_why_for_non_finite() -> None:
    with raises(ValidationFailed, match="finite", field="price"):
        parse_price(Decimal("Infinity"), "USD")
    with raises(ValidationFailed, match="ASCII notation", field="price"):
        parse_price("Infinity", "USD")


def test_parse_price_says_why_for_zero() -> None:
    with raises(ValidationFailed, match="greater than zero", field="price"):
        parse_price("0", "USD")


def test_parse_price_reports_the_given_field_name() -> None:
    with raises(ValidationFailed, field="unitPrice"):
        parse_price("-1", "USD", field="unitPrice")


@pytest.mark.parametrize(
    "currency", ["usd", "Usd", "US", "USDX", "", "U$D", "US1", " USD", "USD ", "USD\n", "ÜSD"]
)
def test_parse_price_rejects_a_currency_that_is_not_three_capital_letters(currency: str) -> None:
    with raises(ValidationFailed, match="currency", field="currency"):
        parse_price("1.00", currency)


@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP", "CHF"])
def test_parse_price_keeps_the_currency(currency: str) -> None:
    assert parse_price("1.00", currency) == Money(Decimal("1.00"), currency)


@pytest.mark.parametrize("currency", ["ZZZ", "ABC", "QQQ"])
def test_parse_price_refuses_a_code_that_is_not_in_iso_4217(currency: str) -> None:
    with raises(ValidationFailed, match="not an ISO 4217 code", field="currency"):
        parse_price("1.00", currency)


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("KRW", 0), ("KWD", 3)])
def test_parse_price_takes_only_currencies_kept_to_the_cent(currency: str, digits: int) -> None:
    # Amounts are quantized to the cent: a yen price of 1.50 would not exist.
    with raises(ValidationFailed, match=f"has {digits} minor digits", field="currency"):
        parse_price("1", currency)


def test_parse_price_checks_the_amount_before_the_currency() -> None:
    with raises(ValidationFailed, field="price"):
        parse_price("0", "usd")


# --------------------------------------------------------------- Money.rate


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        ("0.05", "0.10", "0.01"),  # 0.005 rounds half-up
        ("0.04", "0.10", "0.00"),  # 0.004 rounds down
        ("0.25", "0.10", "0.03"),  # 0.025: half-up, not banker's rounding (0.02)
        ("0.45", "0.10", "0.05"),  # 0.045: half-up, not banker's rounding (0.04)
        ("0.15", "0.10", "0.02"),
        ("37.02", "0.10", "3.70"),  # 12.34 * 3 at 10%
        ("24.60", "0.10", "2.46"),
        ("10.00", "0.0825", "0.83"),  # 0.825
        ("19.99", "0.07", "1.40"),  # 1.3993
        ("100.00", "0", "0.00"),
        ("0.00", "0.10", "0.00"),
        ("999999999.99", "0.10", "100000000.00"),  # 99999999.999
        ("-0.05", "0.10", "-0.01"),  # half-up rounds away from zero
    ],
)
def test_rate_rounds_half_up_to_the_cent(amount: str, rate: str, expected: str) -> None:
    share = usd(amount).rate(Decimal(rate))

    assert share == usd(expected)
    assert str(share.amount) == expected
    assert share.currency == "USD"


def test_rate_keeps_the_currency() -> None:
    assert Money(Decimal("10.00"), "EUR").rate(Decimal("0.2")) == Money(Decimal("2.00"), "EUR")


# ---------------------------------------------------------- Money arithmetic


def test_add_sums_amounts_of_the_same_currency() -> None:
    total = usd("12.34") + usd("0.66")

    assert total == usd("13.00")
    assert str(total.amount) == "13.00"


def test_add_refuses_different_currencies() -> None:
    with pytest.raises(ValueError, match="EUR"):
        usd("1.00") + Money(Decimal("1.00"), "EUR")


def test_times_multiplies_exactly() -> None:
    assert usd("12.34").times(3) == usd("37.02")
    assert usd("0.10").times(3) == usd("0.30")  # no float error
    assert str(usd("0.10").times(3).amount) == "0.30"


def test_zero_has_two_decimal_places() -> None:
    zero = Money.zero("EUR")

    assert zero == Money(Decimal("0"), "EUR")
    assert str(zero.amount) == "0.00"


def test_equal_amounts_compare_equal_whatever_their_exponent() -> None:
    assert usd("24.6") == usd("24.60")
    assert usd("24.60") != Money(Decimal("24.60"), "EUR")


def test_money_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        usd("1.00").amount = Decimal("2.00")  # type: ignore[misc]
