"""Named failpoints for crash tests: ORDERS_RELAY_FAILPOINT=<name>[:<n>][:freeze] acts the n-th
time (default the first) the relay reaches <name>: `after-send` (records sent, transaction
not committed), `after-commit` (committed, nothing after it done). It SIGKILLs the relay, or
with `:freeze` SIGSTOPs it, frozen there as in a long pause (a stalled VM, a swapped-out
process) until the test sends SIGCONT. Unset (always, outside tests): nothing happens."""

from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

_counts: dict[str, int] = {}


def reach(name: str) -> None:
    setting = os.environ.get("ORDERS_RELAY_FAILPOINT")
    if not setting:
        return
    wanted, _, rest = setting.partition(":")
    if wanted != name:
        return
    nth, _, action = rest.partition(":")
    if action not in ("", "freeze"):
        raise ValueError(f"ORDERS_RELAY_FAILPOINT={setting!r}: the action is kill (none) or freeze")
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] != int(nth or 1):
        return
    if action == "freeze":
        # Said first, so a test knows the relay is frozen here and not anywhere else.
        log.warning("failpoint %s reached: freezing (SIGSTOP) until SIGCONT", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSTOP)
        return
    os.kill(os.getpid(), signal.SIGKILL)
