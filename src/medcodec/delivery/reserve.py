"""Room kept for the operator: a local store's ``catalog.reserve``, given up on a full disk.

A store that fills its filesystem cannot be cleaned by its own tools: SQLite must write the
rows ``medcodec store delete`` removes to its write-ahead log before any object goes, and must
size the ``-shm`` file to open the catalog at all (an outside audit, 2026-12-05: on a full disk
every ``store`` command, even ``list``, failed with "no space left for the catalog", and the
only way out was deleting files by hand or growing the filesystem). So a local store keeps a
file of :func:`reserve_size` bytes beside its catalog, allocated for real (``posix_fallocate``),
while there is room for it (:data:`KEEP_FACTOR` times its size free); the maintenance commands
(``medcodec store ...``: :func:`~medcodec.delivery.store.open_store` with ``use_reserve``) give it
up when the catalog cannot be opened or written for want of space, do their work in that room,
and the file comes back once space is free again. The server, ingest and pre-computation never
give it up: what they write is what filled the disk.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["RESERVE_NAME", "KEEP_FACTOR", "reserve_size", "keep_reserve", "release_reserve"]

#: The reserve's file name, in the store's folder beside ``catalog.sqlite``.
RESERVE_NAME = "catalog.reserve"
#: The reserve is made (again) only while this many times its size is free.
KEEP_FACTOR = 4
_MAX = 8 << 20  # 8 MiB: a delete of thousands of instances writes a few MB of log
_MIN = 256 << 10


def reserve_size(root: Path) -> int:
    """Bytes the reserve of the store at ``root`` holds: 2 % of its filesystem, 256 KiB to 8 MiB."""
    return _size(os.statvfs(root))


def _size(st: os.statvfs_result) -> int:
    return max(_MIN, min(_MAX, st.f_blocks * st.f_frsize // 50))


def keep_reserve(root: Path) -> bool:
    """Make the reserve of the local store at ``root`` when it is missing and there is room
    (:data:`KEEP_FACTOR` times its size free); True when it is there afterwards. Never raises:
    a store without its reserve works as before."""
    path = root / RESERVE_NAME
    try:
        if path.exists():
            return True
        st = os.statvfs(root)
        size = _size(st)
        if st.f_bavail * st.f_frsize < KEEP_FACTOR * size:
            return False
        part = root / f".{RESERVE_NAME}.{os.getpid()}"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)  # blocks taken now, not a sparse promise
        finally:
            os.close(fd)
        os.replace(part, path)
        return True
    except (OSError, AttributeError):  # no room after all, no fallocate here, a read-only folder
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(part)
        return False


def release_reserve(root: Path) -> bool:
    """Give up the reserve of the store at ``root`` (its space is free at once); True when there
    was one."""
    try:
        os.unlink(root / RESERVE_NAME)
    except OSError:
        return False
    return True
