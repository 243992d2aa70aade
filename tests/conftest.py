"""Shared fixtures. Storage tests need the services that tests/services/with-services starts
(`make test` runs the suite under it); outside it they fail and say so."""

from __future__ import annotations

import os
import uuid

import pytest


def service_url(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        pytest.fail(
            f"{name} is not set: run the suite with `make test` "
            "(tests/services/with-services starts PostgreSQL and the Mongo-wire server)"
        )
    return url


@pytest.fixture
def unique() -> str:
    """A fresh id fragment, so tests never share streams or documents."""
    return uuid.uuid4().hex[:12]
