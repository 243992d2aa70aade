"""The process's heap at start, kept out of garbage collection.

A full collection walks every tracked object, and most of them are what importing
strawberry, pydantic, pymongo and the project made: classes, functions, modules, never
garbage. Frozen once everything is imported (`gc.freeze`), they are left out of every later
collection, so the occasional full one pauses a busy process for a fraction of the time
(the saga's submit -> confirmed p99 is one such pause at 50 submits/s). Every `orders`
process does this before it starts serving; the benchmarks do it too, as the servers do.

The youngest generation is collected every YOUNG_COLLECTION_THRESHOLD allocations instead
of Python's 700: one `order(id)` request allocates several hundred objects, nearly all freed
by reference counting, so at 700 a collection (and every tenth, a walk of the older
generation too) ran about once per request, about 7% of its CPU in the profile of
`orders dev`. Cyclic garbage waits longer; it is still collected.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 20_000


def freeze_startup_heap() -> None:
    gc.collect()  # what start-up left as garbage is freed, not kept forever
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
