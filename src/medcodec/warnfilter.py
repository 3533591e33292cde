"""Warning filters for a block of code that stay right when blocks run in several threads.

Before Python 3.14 the warning filters are one list for the whole process. ``warnings.catch_warnings``
saves that list on entry and puts the saved list back on exit: two blocks interleaving in threads
put back each other's lists, and an ``ignore`` filter can stay in place for good, every warning
of the process silenced from then on. An outside audit (2026-12-05) saw four threads reading DICOM
leave ``('ignore', Warning)`` and ``('ignore', UserWarning, 'pydicom\\.')`` behind; the host lost
every ``RateTargetWarning`` after that.

:func:`filtered` instead inserts one filter and removes one equal filter, each under one lock:
whatever the interleaving, the list comes back as it was. While a block runs its filter still
holds for every thread (the language's limit before 3.14), so blocks stay short and narrow.
:func:`recorded` (``catch_warnings(record=True)``) holds the same lock for its whole block: for
rare paths only (it also records other threads' warnings while it runs).
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Iterator

__all__ = ["filtered", "recorded"]

_LOCK = threading.RLock()


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
    entry = (action, None, category, re.compile(module) if module else None, 0)
    with _LOCK:
        warnings.filters.insert(0, entry)  # type: ignore[attr-defined]
        _mutated()
    try:
        yield
    finally:
        with _LOCK:
            with contextlib.suppress(ValueError):  # gone if the host reset the filters meanwhile
                warnings.filters.remove(entry)  # type: ignore[attr-defined]
            _mutated()


@contextlib.contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning issued inside the block, in a list, none shown; serialised with :func:`filtered`."""
    with _LOCK, warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        yield said
