"""The schema's value handling without I/O: scalars, cursors, idempotency fingerprints,
error mapping and masking rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError

from read_model.document_store.port import SortKey
from schema.context import decode_consistency_token
from schema.errors import (
    BadRequest,
    ConcurrencyError,
    IdempotencyKeyReusedError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
    user_error_of,
)
from schema.masking import is_unexpected
from schema.mutations import AddProductInput, CreateOrderInput, OrderItemInput, fingerprint
from schema.pagination import Ordering, decode_cursor, encode_cursor, page_size
from schema.scalars import (
    MalformedDecimal,
    parse_datetime,
    parse_decimal,
    serialize_datetime,
    serialize_decimal,
)
from write_model.domain.errors import InvalidState, NotFound, ValidationFailed
from write_model.envelope import ConsistencyToken, LogPosition
from write_model.handling import ConcurrencyConflict, IdempotencyKeyReused

# ------------------------------------------------------------------ scalars


def test_decimals_serialize_as_plain_strings() -> None:
    assert serialize_decimal(Decimal("12.30")) == "12.30"
    assert serialize_decimal(Decimal("1E+2")) == "100"
    assert serialize_decimal("4.10") == "4.10"


def test_decimal_input_parses_strings_and_numbers_exactly() -> None:
    assert parse_decimal("12.30") == Decimal("12.30")
    assert parse_decimal(12.3) == Decimal("12.3")  # not 12.2999999999999989...
    assert parse_decimal(7) == Decimal(7)


def test_a_malformed_decimal_is_kept_for_the_mutation_to_report() -> None:
    assert parse_decimal("twelve") == MalformedDecimal("twelve")
    assert parse_decimal("NaN") == MalformedDecimal("NaN")
    assert parse_decimal("Infinity") == MalformedDecimal("Infinity")


@pytest.mark.parametrize("value", [True, None, {"amount": "1"}, ["1"]])
def test_a_decimal_of_another_json_type_is_a_type_error(value: object) -> None:
    with pytest.raises(StrawberryInputCoercionError, match="Decimal must be a string"):
        parse_decimal(value)


def test_datetimes_need_an_offset() -> None:
    assert parse_datetime("2026-11-26T13:24:00Z") == datetime(2026, 11, 26, 13, 24, tzinfo=UTC)
    plus_one = parse_datetime("2026-11-26T14:24:00+01:00")
    assert plus_one == datetime(2026, 11, 26, 13, 24, tzinfo=UTC)
    with pytest.raises(StrawberryInputCoercionError, match="has no offset"):
        parse_datetime("2026-11-26T13:24:00")
    with pytest.raises(StrawberryInputCoercionError, match="ISO-8601"):
        parse_datetime("yesterday")


def test_datetimes_serialize_with_their_offset() -> None:
    assert serialize_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2026-01-02T03:04:05+00:00"
    )
    east = timezone(timedelta(hours=2))
    assert serialize_datetime(datetime(2026, 1, 2, 3, 4, tzinfo=east)).endswith("+02:00")
    assert serialize_datetime(datetime(2026, 1, 2)).endswith("+00:00")  # stores keep UTC


# ------------------------------------------------------------------ cursors


def test_cursors_round_trip_their_keyset_values() -> None:
    ordering = Ordering("orders:CREATED_AT_DESC", (SortKey("createdAt", -1),))
    created = datetime(2026, 11, 26, 13, 24, 0, 123000, tzinfo=UTC)
    cursor = ordering.cursor({"_id": "o1", "createdAt": created, "other": 1})
    assert ordering.after(cursor) == [created, "o1"]
    assert "o1" not in cursor  # opaque


def test_a_cursor_of_another_list_is_refused() -> None:
    cursor = encode_cursor("orders:TOTAL_DESC", [1250, "o1"])
    with pytest.raises(BadRequest, match="another list or sort order"):
        decode_cursor(cursor, "orders:CREATED_AT_DESC", 2)


@pytest.mark.parametrize("cursor", ["", "%%%", "bm90IGpzb24", "WzFd", "eyJhIjogMX0"])
def test_garbage_is_not_a_cursor(cursor: str) -> None:
    with pytest.raises(BadRequest, match="is not a cursor of this API"):
        decode_cursor(cursor, "orders:CREATED_AT_DESC", 2)


def test_page_sizes_are_bounded() -> None:
    assert page_size(None) == 20
    assert page_size(0) == 0
    assert page_size(100) == 100
    for wrong in (-1, 101):
        with pytest.raises(BadRequest, match="between 0 and 100"):
            page_size(wrong)


def test_consistency_tokens_decode_or_fail_clearly() -> None:
    token = ConsistencyToken.encode(LogPosition(12, 34))
    assert decode_consistency_token(token) == LogPosition(12, 34)
    with pytest.raises(BadRequest, match="is not a consistency token"):
        decode_consistency_token("ct1:???")


# ------------------------------------------------------------- fingerprints


def test_the_fingerprint_ignores_the_key_and_spelled_out_defaults() -> None:
    plain = AddProductInput(product_id="p1", name="Pen", price=Decimal("1.25"))
    explicit = AddProductInput(
        product_id="p1",
        name="Pen",
        price=Decimal("1.25"),
        currency="USD",
        initial_stock=0,
        idempotency_key="k1",
    )
    assert fingerprint("addProduct", plain) == fingerprint("addProduct", explicit)


def test_the_fingerprint_tells_inputs_and_mutations_apart() -> None:
    one = CreateOrderInput(customer_id="c1", items=[OrderItemInput(product_id="p1", quantity=1)])
    two = CreateOrderInput(customer_id="c1", items=[OrderItemInput(product_id="p1", quantity=2)])
    assert fingerprint("createOrder", one) != fingerprint("createOrder", two)
    assert fingerprint("createOrder", one) != fingerprint("otherMutation", one)


def test_inputs_left_out_are_none() -> None:
    created = CreateOrderInput(customer_id="c1")
    assert created.order_id is None and created.shipping_address is None
    assert created.items == []


# -------------------------------------------------------------- error types


def test_expected_failures_map_to_union_members() -> None:
    validation = user_error_of(ValidationFailed("bad email", "email"))
    assert validation == ValidationError(code="VALIDATION", message="bad email", field="email")
    assert user_error_of(NotFound("order o1 not found", "o1")) == NotFoundError(
        code="NOT_FOUND", message="order o1 not found", id="o1"
    )
    assert isinstance(user_error_of(InvalidState("submitted")), InvalidStateError)
    conflict = user_error_of(ConcurrencyConflict("Order-o1", 2, 3))
    assert isinstance(conflict, ConcurrencyError)
    assert (conflict.expected_version, conflict.actual_version) == (2, 3)
    assert isinstance(user_error_of(IdempotencyKeyReused("k")), IdempotencyKeyReusedError)


def test_anything_else_is_not_an_expected_failure() -> None:
    with pytest.raises(TypeError):
        user_error_of(RuntimeError("boom"))


def test_only_unexpected_resolver_exceptions_are_masked() -> None:
    resolver_bug = GraphQLError("boom", path=["order"], original_error=KeyError("x"))
    assert is_unexpected(resolver_bug)
    assert not is_unexpected(GraphQLError("Syntax Error"))  # the request's own
    coercion = GraphQLError("Variable '$n' ...", original_error=ValueError("n"))
    assert not is_unexpected(coercion)  # no path: it never ran
    on_purpose = GraphQLError("x", path=["orders"], original_error=BadRequest("first"))
    assert not is_unexpected(on_purpose)
