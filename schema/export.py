"""The schema the server serves, as SDL: `orders schema export` writes it to
schema/schema.graphql (committed, and tested equal to the code), and `schema` here is the
target of `strawberry export-schema schema.export:schema`."""

from __future__ import annotations

from schema.schema import build_schema

schema = build_schema()

HEADER = """\
# The schema the server serves, exported from the code: a superset of the public contract
# in schema/contract.graphql. Do not edit: regenerate with
#     orders schema export --output schema/schema.graphql
# (a test fails when this file and the code differ).
"""


def schema_sdl() -> str:
    """The exported schema with its header, as committed in schema/schema.graphql."""
    return f"{HEADER}\n{schema.as_str()}\n"
