"""Leader lock port."""

from __future__ import annotations

import contextlib
from typing import Protocol


class LeaderLock(Protocol):
    def hold(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait until this process leads `name`; leadership lasts until the block exits."""
        ...

    def lost(self, name: str) -> bool:
        """True once leadership of `name` can no longer be trusted (connection gone)."""
        ...
