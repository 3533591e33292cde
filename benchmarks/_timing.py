"""Helpers shared by the profile scripts (``profile_mdc2_stages.py``, ``profile_mdc_decode.py``,
``profile_mdc_encode.py``): they run as scripts, so this folder is on ``sys.path``."""

from __future__ import annotations

import time
from collections.abc import Callable


def round_robin(stages: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best thread CPU time (ms) of each stage, the stages run in turn ``repeat`` times (interleaved,
    so a burst of load elsewhere hits every stage alike)."""
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(repeat):
        for name, fn in stages.items():
            t = time.thread_time()
            fn()
            best[name] = min(best[name], time.thread_time() - t)
    return {k: v * 1e3 for k, v in best.items()}


def nearest_quality(bpp_of: Callable[[int], float], target: float, lo: int = 5, hi: int = 95) -> int:
    """The quality in lo..hi whose bpp is nearest ``target`` (bpp grows with quality)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if bpp_of(mid) < target else (lo, mid)
    return min((lo, hi), key=lambda q: abs(bpp_of(q) - target))
