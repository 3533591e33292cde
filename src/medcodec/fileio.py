"""The one place medcodec writes files: atomically, and never over an input.

Everything that writes (CLI, DICOM writer, reports) goes through :func:`atomic_write`
or :func:`atomic_writer`: data goes to a temporary file in the destination folder,
is flushed and fsync'ed, then renamed over the destination, so a crash or a full disk
never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError, OutputExistsError

__all__ = [
    "atomic_write",
    "atomic_writer",
    "staged_file",
    "StagedFile",
    "staging_folder",
    "check_output_path",
    "safe_name",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permissions of written files: what open() would give (0666 minus the umask), not
#: mkstemp's private 0600, so reports and DICOM files are readable by the team.
_FILE_MODE = 0o666 & ~_umask()


def check_output_path(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Path:
    """Refuse to write over one of ``inputs`` (always) or over any existing file (unless ``overwrite``).

    Raises
    ------
    OutputExistsError
        When ``path`` is one of the inputs, or exists and ``overwrite`` is false (an
        :class:`~medcodec.errors.OutputError` and an :class:`~medcodec.errors.InvalidInputError`).
    """
    out = Path(path)
    resolved = out.resolve()
    for src in inputs:
        try:
            if Path(src).resolve() == resolved or (out.exists() and os.path.samefile(src, out)):
                raise OutputExistsError("refusing to overwrite an input file", path=out)
        except FileNotFoundError:
            continue
    if out.exists() and not overwrite:
        raise OutputExistsError("exists already (pass overwrite=True to replace it)", path=out)
    return out


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file that appears at ``path`` only on success.

    Raises
    ------
    OutputError
        The folder cannot be created or written in, or the file cannot be put in place.
    """
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    except OSError as exc:  # name the folder, not the temporary file
        raise OutputError(f"cannot write in this folder ({exc.strerror or exc})", path=out.parent) from exc
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise OutputError(f"cannot replace it ({exc.strerror or exc})", path=out) from exc
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError) and exc.errno in _OUTPUT_ERRNOS:
            raise OutputError(f"cannot write it ({exc.strerror or exc})", path=out) from exc
        raise


class StagedFile:
    """A file written beside its destination and put there only by :meth:`commit` (see :func:`staged_file`)."""

    def __init__(self, out: Path, tmp: Path, fh: BinaryIO):
        self.out, self.path, self.file = out, tmp, fh
        self.committed = False

    def commit(self) -> Path:
        """Flush, fsync and put the file at its destination (atomically, replacing what is there)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        try:
            os.replace(self.path, self.out)
        except OSError as exc:
            raise OutputError(f"cannot replace it ({exc.strerror or exc})", path=self.out) from exc
        self.committed = True
        return self.out


@contextlib.contextmanager
def staged_file(path: str | os.PathLike[str]) -> Iterator[StagedFile]:
    """Like :func:`atomic_writer`, but the file appears at ``path`` only when :meth:`StagedFile.commit`
    is called inside the block; otherwise (a better candidate was kept, an error, Ctrl-C) the
    temporary file is removed on exit. For a writer that codes two candidates and keeps one.

    Raises
    ------
    OutputError
        The folder cannot be written in, the disk is full, or the file cannot be put in place.
    """
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    except OSError as exc:
        raise OutputError(f"cannot write in this folder ({exc.strerror or exc})", path=out.parent) from exc
    staged = StagedFile(out, Path(tmp), os.fdopen(fd, "w+b"))
    try:
        os.chmod(tmp, _FILE_MODE)
        yield staged
    except OSError as exc:
        if not isinstance(exc, OutputError) and exc.errno in _OUTPUT_ERRNOS:
            raise OutputError(f"cannot write it ({exc.strerror or exc})", path=out) from exc
        raise
    finally:
        staged.file.close()
        if not staged.committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


#: errno values that are the output's fault (disk full, quota, file too large, read-only file
#: system), never an input's: they become :class:`~medcodec.errors.OutputError`.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


#: Name prefix of the folders a set of files is written into before it is renamed into place.
STAGING_PREFIX = ".medcodec-staging-"
#: Seconds after which a staging folder that names no process (made before 2026-12-05) is left over.
STAGING_ORPHAN_AGE = 86_400


@contextlib.contextmanager
def staging_folder(out: str | os.PathLike[str]) -> Iterator[Path]:
    """A folder inside ``out`` that a set of files (a series) is written into before each is renamed
    into ``out`` (renames in one file system: all there, or none); removed on the way out, whatever
    happens. Named after this process and host (``.medcodec-staging-<pid>@<host>-...``): one that a
    killed run left (``kill -9``, a power cut) is removed by the next run writing into ``out``, once
    its process is gone; it stayed inside the finished series until 2026-12-05 (an outside audit).

    Raises
    ------
    OutputError
        ``out`` cannot be written in.
    """
    folder = Path(out)
    remove_left_staging(folder)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}@{_host()}-", dir=folder))
    except OSError as exc:
        raise OutputError(f"cannot write in this folder ({exc.strerror or exc})", path=folder) from exc
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


def remove_left_staging(folder: Path) -> list[Path]:
    """Remove the staging folders in ``folder`` whose run is over: made on this host by a process
    that no longer exists, or naming no process and untouched for :data:`STAGING_ORPHAN_AGE`. Another
    host's are left alone (a shared folder: its process cannot be seen from here). Returns them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in folder.glob(STAGING_PREFIX + "*"):
            owner = entry.name[len(STAGING_PREFIX) :]
            pid, at, rest = owner.partition("@")
            if at:
                if not pid.isdigit() or rest.rpartition("-")[0] != _host() or _alive(int(pid)):
                    continue
            elif time.time() - entry.stat().st_mtime < STAGING_ORPHAN_AGE:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True


def atomic_write(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_writer(path) as fh:
        fh.write(data)
    return Path(path)


def safe_name(text: str, fallback: str, *, max_length: int = 80) -> str:
    """A file-name-safe version of ``text`` (a series description, UID, source file stem).

    Runs of anything but ``A-Z a-z 0-9 . _ -`` become ``_``, leading and trailing dots and
    underscores go, the result is cut to ``max_length``; ``fallback`` when nothing is left.

    >>> safe_name("CT/Chest 1.0 mm", "series"), safe_name("..", "series")
    ('CT_Chest_1.0_mm', 'series')
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return name[:max_length] or fallback
