"""Named failpoints for crash tests: ORDERS_RELAY_FAILPOINT=<name>[:<n>] makes the relay
SIGKILL itself the n-th time (default the first) it reaches <name>: `after-send` (records
sent, transaction not committed), `after-commit` (committed, nothing after it done).
Unset (always, outside tests): nothing happens."""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def reach(name: str) -> None:
    setting = os.environ.get("ORDERS_RELAY_FAILPOINT")
    if not setting:
        return
    wanted, _, nth = setting.partition(":")
    if wanted != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
