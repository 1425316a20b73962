"""The cyclic garbage collector held off over a phase that builds many short-lived containers.

Process state, not I/O: the one helper of the core that touches the interpreter. A repeat scan parses thousands of
rows and reads thousands of settled views that all die at the end of their phase. With the collector running, each
young collection over that time promotes them, and the oldest generation's collections (triggered by how much was
promoted) then traverse them and the whole process again, several times a scan. Held off, garbage that is not
cyclic is still freed as usual by reference counting; the rest waits for the next collection, bounded by one phase.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_inside = 0  # threads inside collection_paused() now
_disabled_here = False  # whether collection_paused() turned the collector off (it stays off when it was off)


@contextmanager
def collection_paused() -> Iterator[None]:
    """The collector off while the block runs. Threads may nest: the last one out turns it back on, and only
    when it was on before the first one came in. The block should drop what it built before it ends (`del`, or
    a function's return), or those objects are promoted as usual."""
    global _inside, _disabled_here
    with _lock:
        if _inside == 0:
            _disabled_here = gc.isenabled()
            if _disabled_here:
                gc.disable()
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _disabled_here:
                _disabled_here = False
                gc.enable()
