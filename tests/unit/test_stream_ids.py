"""Stream ids: `<StreamType>-<entityId>`, built and parsed in one place."""

from __future__ import annotations

import pytest

from write_model import stream_ids


@pytest.mark.parametrize(
    ("stream_type", "entity_id"),
    [
        ("Order", "7f3a"),
        ("Order", "9b1c2d3e-0000-4000-8000-000000000001"),  # a uuid holds the separator
        ("CustomerEmail", "ada-lovelace@example.com"),
        ("Product", "sku-1"),
    ],
)
def test_a_built_stream_id_parses_back_to_its_type_and_entity(
    stream_type: str, entity_id: str
) -> None:
    built = stream_ids.stream_id(stream_type, entity_id)

    assert built == f"{stream_type}-{entity_id}"
    assert stream_ids.stream_type(built) == stream_type
    assert stream_ids.entity_id(built) == entity_id
    assert stream_ids.entity_id(built, stream_type) == entity_id


def test_a_stream_of_another_type_is_refused_when_the_type_is_named() -> None:
    with pytest.raises(ValueError, match="'Product-sku-1' is not a Order stream"):
        stream_ids.entity_id("Product-sku-1", "Order")


@pytest.mark.parametrize("malformed", ["Order", "Order-", "-7f3a", ""])
def test_a_string_without_type_and_entity_is_not_a_stream_id(malformed: str) -> None:
    with pytest.raises(ValueError, match="is not a stream id"):
        stream_ids.entity_id(malformed)
    with pytest.raises(ValueError, match="is not a stream id"):
        stream_ids.stream_type(malformed)
