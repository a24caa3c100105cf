"""Process settings the long-running commands share."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector off for a block that makes millions of objects and no cycles worth
    collecting: its repeated walks over them cost more than half a build, a tenth of a validation."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
