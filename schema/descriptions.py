"""Descriptions shared by many elements of the schema (what GraphiQL's docs explorer shows),
and the arguments that carry them. The limits they quote are the validators' own constants
(tests/unit/test_schema_descriptions.py compares them), so the docs cannot drift from what
is enforced."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types.enum import has_enum_definition

from schema.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from write_model.domain.money import DEFAULT_CURRENCY, MAX_AMOUNT
from write_model.domain.order import MAX_LINES
from write_model.domain.validation import (
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_QUANTITY,
    MAX_STOCK,
    MAX_TEXT_LENGTH,
)

ID_RULE = f"1-{MAX_ID_LENGTH} letters, digits, '_', ':' or '-', starting with a letter or digit"


def existing_id(what: str) -> str:
    return f"Id of the {what} ({ID_RULE}); an unknown one is answered with a NotFoundError."


def new_id(what: str) -> str:
    return (
        f"Id for the new {what} ({ID_RULE}); left out, the server picks a random one. A taken "
        "id is refused."
    )


PRODUCT_SKU = f"The new product's id, its SKU ({ID_RULE}); a taken one is refused."
NEW_CUSTOMER_ID = (
    new_id("customer") + " Where authentication is on, a customer registers itself: the id "
    "is its token's subject."
)


NAME = (
    f"Display name: one line of at most {MAX_NAME_LENGTH} characters, no control or bidi "
    "characters, not blank (surrounding spaces are trimmed)."
)
EMAIL = (
    f"Email address, at most {MAX_EMAIL_LENGTH} characters; stored normalized (domain in "
    "lower case) and unique: one registered to another customer is refused."
)
QUANTITY = f"How many units: a whole number from 1 to {MAX_QUANTITY}."
INITIAL_STOCK = f"Units in stock at the start, 0 to {MAX_STOCK} (default 0)."
PRICE = (
    'Unit price as an ASCII decimal with at most two decimal places ("24.90"), greater than '
    f"zero and less than {MAX_AMOUNT}, in the product's currency."
)
RESTOCK_QUANTITY = f"Units received: a whole number from 1 to {MAX_STOCK}."
CURRENCY = f"ISO 4217 code of a currency with two minor digits (default {DEFAULT_CURRENCY})."
COUNTRY = "ISO 3166-1 alpha-2 country code, upper case (GB, US, DE...)."
REASON = f"Why, in free text of at most {MAX_TEXT_LENGTH} characters (line breaks allowed)."
ITEMS = (
    f"The order's first lines, at most {MAX_LINES} (the same product twice adds up its "
    "quantities); may be empty and filled later with addOrderItem."
)
EXPECTED_VERSION = (
    "Optimistic concurrency: the version of the stream you last read. When it has moved "
    "on, nothing is written and a ConcurrencyError gives both versions. Left out, the "
    "write is retried on a conflicting concurrent write."
)
IDEMPOTENCY_KEY = (
    f"Makes a retry safe: 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters of A-Z a-z 0-9 . _ : / "
    "+ = ~ - (a UUID, for example). The same key again returns the first result and writes "
    "nothing; with other input it is an IdempotencyKeyReusedError. Scoped by mutation."
)
VERSION = "Version of the entity's event stream: the number of events in it (from 1)."
CONSISTENCY_TOKEN = (
    "A write's consistencyToken: the read waits (CONSISTENCY_WAIT_SECONDS at most, then a "
    "CONSISTENCY_TIMEOUT error) until the read model includes that write."
)
CONSISTENCY_TOKEN_RETURNED = (
    "Pass it to a query's consistencyToken argument to read your own write: the log "
    "position of the events this write appended."
)
FIRST = (
    f"Page size, 0 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); another value is a "
    "BAD_USER_INPUT error."
)
AFTER = "The endCursor (or an edge's cursor) of the previous page; left out: the first page."
INPUT = "The command's fields; a bad one is answered with a ValidationError naming it."
CREATED_AT = "When the first event of the entity was recorded (UTC)."
UPDATED_AT = "When the latest event that changed this document was recorded (UTC)."

First = Annotated[int | None, strawberry.argument(description=FIRST)]
After = Annotated[str | None, strawberry.argument(description=AFTER)]
ConsistencyToken = Annotated[str | None, strawberry.argument(description=CONSISTENCY_TOKEN)]


def describe_values(enum: type, description: str, values: dict[str, str]) -> None:
    """Describe a strawberry enum and each of its values (the domain's OrderStatus is
    wrapped, not written here, so its values cannot carry `strawberry.enum_value`). Every
    value must be described: a new one without a description fails at import."""
    assert has_enum_definition(enum), f"{enum.__name__} is not a strawberry enum"
    definition = enum.__strawberry_definition__
    names = {value.name for value in definition.values}
    assert names == set(values), f"{definition.name}: describe exactly {sorted(names)}"
    definition.description = description
    for value in definition.values:
        value.description = values[value.name]


# A mutation's `input` argument: `input: Annotated[SomeInput, COMMAND_INPUT]`.
COMMAND_INPUT = strawberry.argument(description=INPUT)
