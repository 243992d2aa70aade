"""Relay-style keyset pagination: opaque cursors and bounded page sizes.

A cursor is base64url of JSON `[list, [sort values..., _id]]`: the values of the sort
fields and the id of the last row of a page. The next page is what sorts after that row
(`DocumentStore.find(after=...)`), so rows inserted meanwhile never shift a page. `list`
names the list and its order: a cursor of one list or sort order is refused by another.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from read_model.document_store.port import Document, SortKey
from schema.errors import BadRequest

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
_DATETIME_TAG = "$dt"


@dataclass(frozen=True, slots=True)
class Ordering:
    """A list and its sort order; `name` is what the cursors carry."""

    name: str
    keys: tuple[SortKey, ...]

    def row(self, document: Document) -> list[Any]:
        return [document.get(key.field) for key in self.keys] + [document["_id"]]

    def cursor(self, document: Document) -> str:
        return encode_cursor(self.name, self.row(document))

    def after(self, cursor: str | None) -> list[Any] | None:
        if cursor is None:
            return None
        return decode_cursor(cursor, self.name, len(self.keys) + 1)


def page_size(first: int | None) -> int:
    """`first` as given (null: the default), between 0 and MAX_PAGE_SIZE."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise BadRequest(f"`first` must be between 0 and {MAX_PAGE_SIZE}, got {first}")
    return first


def encode_cursor(list_name: str, values: Sequence[Any]) -> str:
    payload = orjson.dumps([list_name, [_encode(value) for value in values]])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str, list_name: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, values = orjson.loads(raw)
        decoded = [_decode(value) for value in values]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise BadRequest(
            f"{cursor!r} is not a cursor of this API: pass a `cursor` or `endCursor` value "
            "exactly as it was returned"
        ) from None
    if name != list_name or len(decoded) != arity:
        raise BadRequest(
            f"cursor {cursor!r} belongs to another list or sort order; start this one "
            "without `after`"
        )
    return decoded


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DATETIME_TAG: value.isoformat()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot put a {type(value).__name__} in a cursor")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value[_DATETIME_TAG])
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"unexpected cursor value {value!r}")
