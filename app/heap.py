"""The process's heap at start, kept out of garbage collection.

A full collection walks every tracked object, and most of them are what importing
strawberry, pydantic, pymongo and the project made: classes, functions, modules, never
garbage. Frozen once everything is imported (`gc.freeze`), they are left out of every later
collection, so the occasional full one pauses a busy process for a fraction of the time
(the saga's submit -> confirmed p99 is one such pause at 50 submits/s). Every `orders`
process does this before it starts serving; the benchmarks do it too, as the servers do.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    gc.collect()  # what start-up left as garbage is freed, not kept forever
    gc.freeze()
