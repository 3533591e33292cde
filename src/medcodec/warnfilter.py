"""Warning filters for a block of code that stay right when blocks run in several threads.

Before Python 3.14 the warning filters are one list for the whole process. ``warnings.catch_warnings``
saves that list on entry and puts the saved list back on exit: two blocks interleaving in threads
put back each other's lists, and an ``ignore`` filter can stay in place for good, every warning
of the process silenced from then on. An outside audit (2026-12-05) saw four threads reading DICOM
leave ``('ignore', Warning)`` and ``('ignore', UserWarning, 'pydicom\\.')`` behind; the host lost
every ``RateTargetWarning`` after that.

:func:`filtered` instead inserts one filter of its own and removes that one, under one lock:
whatever the interleaving, the list comes back as it was. Its filter matches messages through an
object compared by identity, so it is never taken for an equal-looking filter of the host's
(the re-check of 2026-12-06 saw a block remove the host's own ``simplefilter("ignore")`` set
while it ran). It is removed from the list it went into and from the list
in force when the block ends: a host's ``catch_warnings`` entered meanwhile copies the list,
then puts the original back, which would otherwise bring the filter back for good (same
re-check). While a block runs its filter still holds for every thread (the language's limit
before 3.14), so blocks stay short and narrow.

:func:`recorded` records only the warnings of its own thread (another thread's are shown as they
would have been: the re-check saw one upload's reason name another client's value), holding the
same lock for its whole block; it saves and restores the list as ``catch_warnings`` does, so a
filter another thread's host code adds while it runs is lost: for rare paths only (a file whose
data set cannot be read).
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Iterator
from typing import Any, cast

__all__ = ["filtered", "recorded"]

_LOCK = threading.RLock()


class _AnyMessage:
    """A filter's message pattern that matches every message and equals only itself."""

    __slots__ = ()

    def match(self, _text: str) -> bool:
        return True


def _mutated() -> None:
    """Tell the C warnings module the list changed (its "already warned" registries are keyed by it)."""
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()


@contextlib.contextmanager
def filtered(action: str = "ignore", category: type[Warning] = Warning, module: str = "") -> Iterator[None]:
    """``action`` (``"ignore"``, ``"error"``...) for warnings of ``category`` issued from modules
    matching the regular expression ``module`` (any, when empty) inside the block; the process's
    filter list exactly as it was afterwards, whatever other threads did meanwhile."""
    entry = (action, _AnyMessage(), category, re.compile(module) if module else None, 0)
    with _LOCK:
        into = cast(list[Any], warnings.filters)
        into.insert(0, entry)
        _mutated()
    try:
        yield
    finally:
        with _LOCK:
            now = cast(list[Any], warnings.filters)
            for filters in (into, now) if now is not into else (into,):
                with contextlib.suppress(ValueError):  # gone if the host reset the filters meanwhile
                    filters.remove(entry)
            _mutated()


@contextlib.contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning this thread issues inside the block, in a list, none of them shown; other
    threads' warnings are shown as usual. Serialised with :func:`filtered`."""
    me = threading.get_ident()
    said: list[warnings.WarningMessage] = []
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("always")
        shown = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            if threading.get_ident() == me:
                said.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield said
