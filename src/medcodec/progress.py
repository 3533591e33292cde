"""Progress reporting: the library calls a callback, only the CLI draws bars.

Long operations (reading a study, writing a lossy series, an evaluation sweep, encoding a series
into ``.mdc``) take ``progress=``: ``None`` (default, silent) or a callable
``progress(done, total)`` called with 0 first and then after every item (``total`` is ``None``
when not known in advance). It is called from the thread that runs the operation; it should be
quick and must not raise (an exception stops the operation and propagates).

    >>> seen = []
    >>> list(tracked("abc", lambda done, total: seen.append((done, total)), total=3))
    ['a', 'b', 'c']
    >>> seen
    [(0, 3), (1, 3), (2, 3), (3, 3)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from .errors import InvalidInputError

__all__ = ["ProgressCallback", "tracked", "check_progress", "Counter"]

#: ``progress(done, total)``: items done so far, and the total (``None`` when unknown).
ProgressCallback = Callable[[int, "int | None"], None]

_T = TypeVar("_T")


def check_progress(progress: object) -> ProgressCallback | None:
    """``progress`` if it is ``None`` or callable, else :class:`~medcodec.errors.InvalidInputError`
    (a ``True`` from the days when the library drew its own bars is refused with the reason)."""
    if progress is None or (callable(progress) and not isinstance(progress, bool)):
        return progress
    raise InvalidInputError(
        f"progress={progress!r} must be None or a callable progress(done, total); the library draws no bars "
        "(the CLI does: medcodec ... --progress)"
    )


def tracked(items: Iterable[_T], progress: ProgressCallback | None, *, total: int | None = None) -> Iterator[_T]:
    """Yield ``items`` and report each one done to ``progress`` (nothing when ``None``)."""
    if progress is None:
        yield from items
        return
    done = 0
    progress(0, total)
    for item in items:
        yield item
        done += 1
        progress(done, total)


class Counter:
    """Items done out of ``total``, reported to ``progress`` on every :meth:`advance` (0 at start).

    >>> seen = []
    >>> c = Counter(lambda done, total: seen.append(done), total=3)
    >>> c.advance(); c.advance(2); seen
    [0, 1, 3]
    """

    def __init__(self, progress: ProgressCallback | None, *, total: int | None = None):
        self.progress = check_progress(progress)
        self.total = total
        self.done = 0
        if self.progress is not None:
            self.progress(0, total)

    def advance(self, n: int = 1) -> None:
        """``n`` more items done."""
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)
