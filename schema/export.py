"""The schema with default limits, for `strawberry export-schema schema.export:schema`."""

from __future__ import annotations

from schema.schema import build_schema

schema = build_schema()
