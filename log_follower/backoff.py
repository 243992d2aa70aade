"""The one backoff of the follower layer: how long to wait after the `failures`-th failure
in a row (of a batch, of taking the lead), exponential and capped, with jitter so that the
followers of many processes do not retry in step."""

from __future__ import annotations

import random

FIRST_SECONDS = 0.1
MAX_SECONDS = 5.0


def delay_after(failures: int, *, first: float = FIRST_SECONDS, cap: float = MAX_SECONDS) -> float:
    delay: float = min(first * 2.0**failures, cap)
    return delay * random.uniform(0.75, 1.25)
