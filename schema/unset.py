"""Optional arguments and input fields without a default in the schema.

The contract declares optional arguments without defaults (`after: String`, not
`after: String = null`); strawberry prints that for a Python default of UNSET. These
helpers turn UNSET (not given) into None, which the code below the schema works with.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from strawberry.types.unset import UNSET, UnsetType

__all__ = ["UNSET", "Input", "given"]

T = TypeVar("T")


def given(value: T | UnsetType | None) -> T | None:
    """The argument's value, None when it was left out (or null)."""
    return None if isinstance(value, UnsetType) else value


class Input:
    """Base of input types: fields left out become None once the input is built."""

    def __post_init__(self) -> None:
        assert dataclasses.is_dataclass(self), "an input type is a dataclass (strawberry.input)"
        for field in dataclasses.fields(self):
            if getattr(self, field.name) is UNSET:
                setattr(self, field.name, None)
