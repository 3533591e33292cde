"""The examples in the docstrings of ``src/medcodec`` hold (the suite did not run them: one had
gone stale, and a new one was wrong until an outside audit ran it, 2026-12-03)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import medcodec


def test_docstring_examples_hold() -> None:
    tried = 0
    failed: list[str] = []
    for info in pkgutil.walk_packages(medcodec.__path__, "medcodec."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False)
        tried += result.attempted
        if result.failed:
            failed.append(f"{info.name}: {result.failed} of {result.attempted}")
    assert tried > 100, tried  # the examples were found
    assert not failed, failed
