"""Python's cyclic garbage collector paused around a process's imports (Prefect's, Pandera's, SciPy's modules, or
Prefect's server code): its passes over what they build, nothing to free, took ~15-25% of their time."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside, then what was built frozen (later passes need not walk it again)
    and the collector back as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
