"""Writing one benchmark's section of a shared Markdown page (``docs/benchmarks.md``).

Several benchmarks keep their latest results in the same page, each between its own pair of
markers; a run replaces its own section and nothing else, so the notes written by hand around the
sections (readings, corrections, older runs) survive every rerun. The scripts run as scripts, so
this folder is on ``sys.path``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def put_section(path: Path, begin: str, end: str, section: str, *, title: str = "# Benchmarks") -> None:
    """Put ``section`` (its text without the markers) between ``begin`` and ``end`` in ``path``:
    replacing what the markers held, else appended at the end (the file made with ``title`` if it
    does not exist). Written atomically: a run stopped half-way leaves the page as it was."""
    text = path.read_text() if path.exists() else title + "\n"
    block = f"{begin}\n{section.strip(chr(10))}\n{end}"
    if begin in text and end in text and text.index(begin) < text.index(end):
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
