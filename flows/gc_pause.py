"""The garbage collector held back while a stream syncs.

A sync allocates millions of short-lived objects (cells, dicts, records) that die by
reference counting, yet every 700 allocations CPython's cyclic collector walked the young
objects, and every few hundred thousand the whole heap (Prefect, SQLAlchemy and pydantic
are hundreds of thousands of long-lived objects): 18–20 % of a sync's CPU. While a stream
runs, what exists before it is frozen (never scanned again) and the young generation is
collected every 50,000 allocations instead; both are undone when the last concurrent
stream of the process finishes. Cycles are still collected, only less often.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def paused() -> Iterator[None]:
    """Freeze the heap and raise the young threshold for the duration (reentrant, threads)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(YOUNG_THRESHOLD, _saved[0]), *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()


__all__ = ["YOUNG_THRESHOLD", "paused"]
