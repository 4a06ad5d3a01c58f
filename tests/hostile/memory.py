"""Memory and descriptor measurements: of a server process (/proc), or inside the test (tracemalloc)."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class Traced:
    """Peak and current traced memory of a ``traced()`` block, in bytes."""

    peak = 0
    current = 0


@contextmanager
def traced() -> Iterator[Traced]:
    """tracemalloc around a block: Python allocations made inside it (current and peak)."""
    result = Traced()
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        yield result
    finally:
        current, peak = tracemalloc.get_traced_memory()
        result.current = current - base
        result.peak = peak - base
        if not was:
            tracemalloc.stop()
