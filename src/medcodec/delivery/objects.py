"""Objects on an fsspec filesystem: atomic, content-addressable writes (the storage half of the store).

A write goes to ``tmp/`` under the root, is flushed and fsync'ed, then renamed to its final
name and the folder fsync'ed, so a final name always holds a complete object. On filesystems
without rename (object stores) the temporary object is moved, and a PUT is atomic there.
``ENOSPC``/``EDQUOT`` become :class:`~medcodec.errors.StoreFullError`, the temporary removed.
Workers of the pre-computation open only this (by URL), never the catalog.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import DeliveryError, InvalidInputError, NotFoundError, StoreFullError

__all__ = ["Objects", "is_full"]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    text = str(exc).lower()
    return "database or disk is full" in text or "no space left" in text


class Objects:
    """Atomic writes and reads of objects under a root, through fsspec."""

    def __init__(self, url: str, *, create: bool):
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        try:
            fs, root = fsspec.core.url_to_fs(url)
        except Exception as exc:  # unknown protocol, missing s3fs...
            raise DeliveryError(f"cannot open the store {url!r}: {type(exc).__name__}: {exc}") from exc
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(fs, LocalFileSystem)
        self.url = url
        if self.local:
            root_path = Path(self.root)
            if not root_path.exists():
                if not create:
                    raise NotFoundError(f"store {url!r} does not exist")
                try:  # another process (a server and an ingest started together) may create it meanwhile
                    root_path.mkdir(parents=True, exist_ok=True)
                except FileExistsError:  # a file, not a folder, appeared there
                    pass
            if not root_path.is_dir():
                raise InvalidInputError(f"store {url!r} exists and is not a folder")
            (root_path / "tmp").mkdir(exist_ok=True)

    def full(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def local_path(self, rel: str) -> Path:
        return Path(self.root, rel)

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.full(rel))

    def size(self, rel: str) -> int:
        return int(self.fs.size(self.full(rel)))

    def open(self, rel: str) -> BinaryIO:
        try:
            if self.local:
                return open(self.local_path(rel), "rb")
            return self.fs.open(self.full(rel), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {rel} is missing from the store") from exc

    def read(self, rel: str) -> bytes:
        with self.open(rel) as fh:
            return fh.read()

    def put(self, rel: str, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``rel`` atomically (see the module docstring)."""
        self.put_stream(rel, [data])

    def put_stream(
        self, rel: str | Callable[[str], str], chunks: Iterable[bytes | bytearray | memoryview]
    ) -> tuple[str, int, str]:
        """Write ``chunks`` atomically; ``rel`` may be a function of the sha256 hex (content addressing).

        Returns ``(rel, size, sha256 hex)``.
        """
        digest = hashlib.sha256()
        size = 0
        tmp_rel = f"tmp/{uuid.uuid4().hex}.part"
        try:
            if self.local:
                tmp = self.local_path(tmp_rel)
                tmp.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
                final_rel = rel(digest.hexdigest()) if callable(rel) else rel
                final = self.local_path(final_rel)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
                _fsync_dir(final.parent)
            else:
                with self.fs.open(self.full(tmp_rel), "wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                final_rel = rel(digest.hexdigest()) if callable(rel) else rel
                self.fs.mv(self.full(tmp_rel), self.full(final_rel))
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.remove(tmp_rel)
            if is_full(exc):
                raise StoreFullError(
                    errno.ENOSPC,
                    f"no space left in the store {self.url!r} writing {rel if isinstance(rel, str) else 'an object'}",
                ) from exc
            raise
        return final_rel, size, digest.hexdigest()

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                os.unlink(self.local_path(rel))
            else:
                self.fs.rm(self.full(rel))

    def walk(self, prefix: str) -> Iterator[str]:
        base = self.full(prefix)
        if not self.fs.exists(base):
            return
        for path in self.fs.find(base):
            path = str(path)
            root = self.root if self.local else self.fs._strip_protocol(self.root)
            yield path[len(str(root)) + 1 :] if path.startswith(str(root)) else path


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsync'ed
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
