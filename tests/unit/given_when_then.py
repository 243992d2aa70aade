"""Given / when / then for deciders.

state = given(order.evolve, order.initial_state, [OrderCreated(...), OrderItemAdded(...)])
events = order.decide(SubmitOrder("o1"), state)
assert events == [OrderSubmitted(...)]

with raises(ValidationFailed, field="quantity"):
    order.decide(AddOrderItem("o1", item(quantity=0)), state)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

S = TypeVar("S")
E = TypeVar("E")
C = TypeVar("C")


def given(evolve: Callable[[S, E], S], initial: S, events: Iterable[E]) -> S:
    """The state after folding `events` over `initial` with `evolve`."""
    return functools.reduce(evolve, events, initial)


def when(
    decide: Callable[[C, S], list[E]], evolve: Callable[[S, E], S], state: S, command: C
) -> tuple[list[E], S]:
    """Decide `command` against `state`; the new events and the state after them."""
    events = decide(command, state)
    return events, given(evolve, state, events)


@contextmanager
def raises(
    error: type[BaseException], match: str | None = None, **attributes: Any
) -> Iterator[pytest.ExceptionInfo[Any]]:
    """`pytest.raises`, also checking attributes of the error (`field`, `entity_id`, ...)."""
    with pytest.raises(error, match=match) as info:
        yield info
    for name, expected in attributes.items():
        actual = getattr(info.value, name)
        assert actual == expected, f"{error.__name__}.{name} is {actual!r}, expected {expected!r}"
