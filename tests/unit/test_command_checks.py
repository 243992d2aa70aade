"""Commands check their strings when they are built, whoever builds them (the saga here)."""

from __future__ import annotations

import pytest

from write_model import commands
from write_model.domain.errors import ValidationFailed


def test_a_saga_command_with_a_control_character_is_refused_when_built() -> None:
    with pytest.raises(ValidationFailed) as refused:
        commands.RejectOrder(order_id="o-1", reason="payment\x00declined")
    assert refused.value.field == "reason"
    assert "U+0000" in refused.value.message


def test_bidi_controls_are_refused_in_ids_and_names_but_not_in_free_text() -> None:
    with pytest.raises(ValidationFailed) as refused:
        commands.RenameProduct(product_id="p-1", name="\u2066Pen\u2069")
    assert refused.value.field == "name"
    with pytest.raises(ValidationFailed):
        commands.ReserveStock(product_id="p-1", order_id="o\u202e1", quantity=1)
    isolated_hebrew = "\u2067\u05de\u05d7\u05d9\u05e8\u2069"
    assert commands.CancelOrder(order_id="o-1", reason=isolated_hebrew).reason == isolated_hebrew
