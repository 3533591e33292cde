"""The one thread map medcodec uses over frames (codec, DICOM writer, evaluation).

Frames are independent and the numba kernels release the GIL, so plain threads scale.
Results come back in order, and at most ``2 * jobs`` items are taken from the input and
not yet yielded, so a stream of frames is processed in bounded memory.
"""

from __future__ import annotations

import collections
import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["imap_ordered", "map_ordered"]

_T = TypeVar("_T")


def imap_ordered(fn: Callable[[Any], _T], items: Iterable[Any], jobs: int) -> Iterator[_T]:
    """``map(fn, items)`` over ``jobs`` threads, in order, bounded look-ahead.

    One pool for the whole run and no barrier between groups: a worker starts the next
    item as soon as it is free. Pending work is cancelled if the consumer stops early or
    ``fn`` raises. Each item runs in a copy of the caller's context variables, so what a caller
    sets in one (:func:`~medcodec.codec.intra.written_mode_model`, ``without_big_blocks``) holds
    for whatever its workers decide too (the encoders decide the mode model before they fan out
    today; an outside audit, 2026-12-05, asked that it not depend on that).
    """
    if jobs <= 1:
        yield from map(fn, items)
        return
    pending: collections.deque[Future[_T]] = collections.deque()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            for item in items:
                pending.append(pool.submit(contextvars.copy_context().run, fn, item))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def map_ordered(fn: Callable[[Any], _T], items: Iterable[Any], jobs: int) -> list[_T]:
    """:func:`imap_ordered` collected into a list."""
    return list(imap_ordered(fn, items, jobs))
