"""The bus's table and the command context: no I/O."""

from __future__ import annotations

import typing
from decimal import Decimal

import pytest

from write_model import commands
from write_model.command_context import ANONYMOUS, Principal, PrincipalKind
from write_model.handlers import command_handlers


def test_every_command_has_exactly_one_handler() -> None:
    table = command_handlers(tax_rate=Decimal("0.10"))

    assert set(table) == set(typing.get_args(commands.Command))


@pytest.mark.parametrize(
    ("principal", "user_id"),
    [
        (ANONYMOUS, None),
        (Principal.customer("c-1"), "c-1"),
        (Principal.staff("s-7"), "s-7"),
        (Principal.system("saga"), "system:saga"),
    ],
)
def test_the_metadata_user_id_says_who_asked(principal: Principal, user_id: str | None) -> None:
    assert principal.user_id == user_id


def test_an_anonymous_principal_has_no_id_and_every_other_one_has() -> None:
    with pytest.raises(ValueError, match="ANONYMOUS principal has no id"):
        Principal(PrincipalKind.ANONYMOUS, "someone")
    with pytest.raises(ValueError, match="STAFF principal needs an id"):
        Principal(PrincipalKind.STAFF)
