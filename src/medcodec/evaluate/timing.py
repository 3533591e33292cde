"""All speed measurement in one place: per-frame encode/decode timing and parallel runs.

Times come from :func:`time.perf_counter`. A codec's speed is the raw (uncompressed) size of the
frames it processed divided by the time, in MB/s with 1 MB = 10**6 bytes
(:func:`medcodec.evaluate.metrics.mb_per_s`). ``repeat`` > 1 keeps the fastest of the runs, which
removes most scheduling noise on small inputs.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["timed", "TimedRun", "time_each", "time_parallel", "cpu_model"]

T = TypeVar("T")
R = TypeVar("R")


def timed(fn: Callable[..., R], /, *args: Any, repeat: int = 1, **kwargs: Any) -> tuple[R, float]:
    """Call ``fn(*args, **kwargs)`` ``repeat`` times; return the last result and the fastest time (s)."""
    best = float("inf")
    result: Any = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return result, best


@dataclass(frozen=True)
class TimedRun:
    """Results of running one function over many items, and the time it took."""

    results: list[Any]
    seconds: float  #: sum of per-item times (serial) or wall time (parallel)
    threads: int


def time_each(fn: Callable[[T], R], items: Sequence[T], *, repeat: int = 1) -> TimedRun:
    """Run ``fn`` on each item in this thread, timing each call; ``seconds`` is the sum of the
    per-item times of the fastest of ``repeat`` passes (measured like :func:`time_parallel`)."""
    best = float("inf")
    results: list[Any] = []
    for _ in range(max(1, repeat)):
        results, total = [], 0.0
        for item in items:
            r, s = timed(fn, item)
            results.append(r)
            total += s
        best = min(best, total)
    return TimedRun(results, best, 1)


def time_parallel(fn: Callable[[T], R], items: Sequence[T], *, threads: int, repeat: int = 1) -> TimedRun:
    """Run ``fn`` over the items on ``threads`` threads; ``seconds`` is the fastest wall time.

    Measures what a caller gets by coding frames concurrently: it scales only where the codec
    releases the GIL (imagecodecs and numba's ``nogil`` kernels do).
    """
    if threads <= 1:
        return time_each(fn, items, repeat=repeat)
    best = float("inf")
    results: list[Any] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            results = list(pool.map(fn, items))
            best = min(best, time.perf_counter() - t0)
    return TimedRun(results, best, threads)


def cpu_model() -> str:
    """The processor's name for benchmark and report records (``/proc/cpuinfo``, else ``platform``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
