"""Objects on an fsspec filesystem: atomic, content-addressable writes (the storage half of the store).

A write goes to ``tmp/`` under the root, is flushed and fsync'ed, then renamed to its final
name and the folder fsync'ed, so a final name always holds a complete object. On a local
store the writer holds an exclusive ``flock`` on its ``tmp/*.part`` while it writes, so a
``.part`` whose lock can be taken was left by a process that died (:meth:`Objects.abandoned`). On filesystems
without rename (object stores) the temporary object is moved, and a PUT is atomic there.
``ENOSPC``/``EDQUOT`` become :class:`~medcodec.errors.StoreFullError`, the temporary removed.
On a remote filesystem (``s3://``), what the storage backend raises (endpoint unreachable, no
credentials, no such bucket, access denied: botocore's errors, or the ``OSError`` s3fs makes of
them) becomes a :class:`~medcodec.errors.DeliveryError` naming the store, the bucket and the endpoint.
Workers of the pre-computation open only this (by URL), never the catalog.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import (
    CodecError,
    DeliveryError,
    InvalidInputError,
    NotFoundError,
    OutOfResourcesError,
    OutputError,
    StoreFullError,
)

__all__ = ["Objects", "is_full", "out_of_resources", "cannot_open_files", "RESOURCE_ERRNOS"]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


#: What a process runs out of that the request did not cause: open files (its own, the system's), memory.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})
#: Mode of a local store's folder when medcodec creates it: its owner's alone. The files in it
#: follow the umask (0644 under the usual 022) and were readable by every user of the machine
#: through a 0755 folder; the folder closes them (PostgreSQL's data folder is 0700 likewise).
#: A folder that exists already keeps its mode: sharing a store is a decision its owner makes.
STORE_MODE = 0o700


def cannot_open_files() -> bool:
    """Whether this process can open no file now (its descriptors, or the system's, all taken): what
    tells a library's bare "unable to open" (SQLite's) from a missing or unreadable file."""
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        return True
    return False


def out_of_resources(exc: BaseException, doing: str) -> OutOfResourcesError | None:
    """:class:`OutOfResourcesError` for an ``OSError`` that says this process ran out of open files or
    memory (an outside audit, 2026-12-05: with its descriptors gone the server answered "cannot be
    read: `medcodec store check` names the damaged objects" of a sound store), else None."""
    if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
        return OutOfResourcesError(exc.errno, f"{doing}: {exc.strerror or exc}: the server is out of resources; retry")
    return None


def is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    text = str(exc).lower()
    return "database or disk is full" in text or "no space left" in text


def _from_botocore(exc: BaseException) -> bool:
    return any(c.__module__.startswith(("botocore.", "aiobotocore.")) for c in type(exc).__mro__)


def _unreachable(exc: BaseException) -> bool:
    """An endpoint that cannot be reached (botocore's ``EndpointConnectionError``, a timeout...)."""
    return _from_botocore(exc) and any(
        c.__name__ in ("ConnectionError", "ConnectTimeoutError") for c in type(exc).__mro__
    )


def _no_bucket(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    text = f"{exc} {type(cause).__name__ if cause is not None else ''}"
    return "NoSuchBucket" in text or "specified bucket does not exist" in text


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
                    # patient images: a new store is its owner's alone (0700, as PostgreSQL's data
                    # folder), whatever the umask; an existing one keeps the modes it was given
                    root_path.mkdir(mode=STORE_MODE, parents=True, exist_ok=True)
                except FileExistsError:  # a file, not a folder, appeared there
                    pass
                except OSError as exc:  # was the raw OSError of mkdir (no such parent, read-only, /proc)
                    why = exc.strerror or exc
                    raise OutputError(f"cannot create the store folder ({why})", path=root_path) from exc
            if not root_path.is_dir():
                raise InvalidInputError(f"store {url!r} exists and is not a folder")
            try:
                (root_path / "tmp").mkdir(exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot write in the store folder ({exc.strerror or exc})", path=root_path) from exc

    def _where(self) -> str:
        """The bucket and endpoint of a remote store, for messages: ``s3://bucket (endpoint http://...)``."""
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, tuple | list) else self.fs.protocol
        bucket = self.root.strip("/").split("/")[0]
        kwargs: Any = getattr(self.fs, "client_kwargs", None) or {}
        endpoint = getattr(self.fs, "endpoint_url", None) or kwargs.get("endpoint_url")
        return f"{protocol}://{bucket} (endpoint {endpoint or 'the default one'})"

    def backend_error(self, exc: BaseException, doing: str) -> DeliveryError | None:
        """What a remote storage backend raised, as a :class:`DeliveryError` naming the store, its bucket
        and endpoint; ``None`` when ``exc`` is not such a failure (a local store's ``OSError`` keeps its
        file name; a missing object, a full store and our own errors are said elsewhere)."""
        if self.local or isinstance(exc, CodecError) or not isinstance(exc, Exception) or is_full(exc):
            return None
        where = self._where()
        if isinstance(exc, FileNotFoundError):
            if not _no_bucket(exc):
                return None
            return DeliveryError(f"{self.url}: the bucket {where} does not exist ({doing})")
        if _unreachable(exc):
            return DeliveryError(f"{self.url}: cannot reach the storage endpoint of {where} ({doing}): {exc}")
        if type(exc).__name__ == "NoCredentialsError":
            return DeliveryError(
                f"{self.url}: no credentials for {where} ({doing}): set FSSPEC_S3_KEY and FSSPEC_S3_SECRET "
                "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) in every process that opens the store"
            )
        if isinstance(exc, PermissionError):
            return DeliveryError(f"{self.url}: access denied by {where} ({doing}): {exc}")
        if _from_botocore(exc) or isinstance(exc, OSError):
            return DeliveryError(f"{self.url}: storage error from {where} ({doing}): {type(exc).__name__}: {exc}")
        return None

    @contextlib.contextmanager
    def _backend(self, doing: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            mapped = self.backend_error(exc, doing)
            if mapped is None:
                raise
            raise mapped from exc

    def full(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def local_path(self, rel: str) -> Path:
        return Path(self.root, rel)

    def exists(self, rel: str) -> bool:
        with self._backend(f"looking for {rel}"):
            return bool(self.fs.exists(self.full(rel)))

    def size(self, rel: str) -> int:
        with self._backend(f"reading the size of {rel}"):
            return int(self.fs.size(self.full(rel)))

    def open(self, rel: str, size: int | None = None) -> BinaryIO:
        """``rel`` open for reading. With ``size`` (the catalog's), a file of another length is a
        :class:`DeliveryError` before any byte is read (a local file by one ``fstat``): a truncated
        original went out as a complete answer, its manifest naming the catalog's size (an outside
        audit, 2026-12-03).

        Raises
        ------
        NotFoundError
            No such object.
        DeliveryError
            It cannot be read (a local ``OSError`` other than a missing file: permissions, a
            folder in its place, an I/O error), or its length is not ``size``.
        """
        try:
            if self.local:
                fh: BinaryIO = open(self.local_path(rel), "rb")
                found = os.fstat(fh.fileno()).st_size if size else None
            else:
                with self._backend(f"opening {rel}"):
                    fh = self.fs.open(self.full(rel), "rb")
                found = getattr(fh, "size", None) if size else None
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {rel} is missing from the store") from exc
        except OSError as exc:
            busy = out_of_resources(exc, f"opening object {rel}")
            if busy is not None:
                raise busy from None
            raise DeliveryError(
                f"object {rel} cannot be read ({exc.strerror or exc}): `medcodec store check` names the damaged objects"
            ) from exc
        if found is not None and int(found) != size:
            fh.close()
            raise DeliveryError(
                f"object {rel} is {found} bytes where the catalog says {size}: damaged; "
                "`medcodec store check` names the damaged objects"
            )
        return fh

    def read(self, rel: str) -> bytes:
        with self.open(rel) as fh, self._backend(f"reading {rel}"):
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
                    with contextlib.suppress(OSError):  # a filesystem without locks: gc goes by age alone
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when fh closes or we die
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
            if not _unreachable(exc):  # (an unreachable endpoint: nothing was written, and retrying takes long)
                with contextlib.suppress(Exception):
                    self.remove(tmp_rel)
            what = rel if isinstance(rel, str) else "an object"
            if is_full(exc):
                raise StoreFullError(errno.ENOSPC, f"no space left in the store {self.url!r} writing {what}") from exc
            busy = out_of_resources(exc, f"writing {what}")
            if busy is not None:
                raise busy from None
            mapped = self.backend_error(exc, f"writing {what}")
            if mapped is not None:
                raise mapped from exc
            if self.local and isinstance(exc, OSError) and not isinstance(exc, CodecError):
                # a read-only or otherwise unwritable store: said without the server's own paths, in the
                # project's errors (an outside audit: a raw PermissionError named tmp/....part to clients)
                raise DeliveryError(
                    f"cannot write to the store ({exc.strerror or type(exc).__name__}) writing {what}"
                ) from None
            raise
        return final_rel, size, digest.hexdigest()

    def abandoned(self, rel: str) -> bool:
        """Whether ``rel``, a local ``tmp/*.part``, is no longer being written: its writer's ``flock``
        (:meth:`put_stream`) is gone, so the process that wrote it died (killed, power lost). ``False``
        when that cannot be told: another filesystem, another kind of file, no locks, no such file."""
        if not (self.local and rel.startswith("tmp/") and rel.endswith(".part")):
            return False
        try:
            with open(self.local_path(rel), "rb") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken: nobody holds it
        except OSError:  # held (BlockingIOError), gone, or no locks on this filesystem
            return False
        return True

    def age(self, rel: str) -> float:
        """Seconds since ``rel`` was last written, or ``-inf`` when the filesystem does not say."""
        try:
            if self.local:
                return time.time() - os.stat(self.local_path(rel)).st_mtime
            info = self.fs.info(self.full(rel))
        except (OSError, ValueError):
            return float("-inf")
        for key in ("mtime", "LastModified", "last_modified", "created"):  # local, s3fs, gcsfs, others
            value = info.get(key)
            if hasattr(value, "timestamp"):
                return time.time() - float(value.timestamp())
            if isinstance(value, (int, float)):
                return time.time() - float(value)
        return float("-inf")

    def move_aside(self, rel: str) -> str | None:
        """Rename ``rel`` to a ``tmp/`` name of its own (what a removal does first, so that a writer
        that catalogues the object meanwhile can still be answered: :meth:`restore`); ``None``
        when there is nothing at ``rel``."""
        aside = f"tmp/{uuid.uuid4().hex}.removing"
        try:
            if self.local:
                target = self.local_path(aside)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.local_path(rel), target)
            else:
                with self._backend(f"removing {rel}"):
                    if not self.fs.exists(self.full(rel)):
                        return None
                    self.fs.mv(self.full(rel), self.full(aside))
        except FileNotFoundError:
            return None
        return aside

    def restore(self, aside: str, rel: str) -> None:
        """Undo :meth:`move_aside`: back at ``rel``, unless something was written there meanwhile
        (the same content: objects are content-addressed), then the aside copy goes."""
        if self.exists(rel):
            self.remove(aside)
        elif self.local:
            os.replace(self.local_path(aside), self.local_path(rel))
        else:
            with self._backend(f"restoring {rel}"):
                self.fs.mv(self.full(aside), self.full(rel))

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                os.unlink(self.local_path(rel))
            else:
                with self._backend(f"removing {rel}"):
                    self.fs.rm(self.full(rel))

    def walk(self, prefix: str) -> Iterator[str]:
        base = self.full(prefix)
        with self._backend(f"listing {prefix}"):
            if not self.fs.exists(base):
                return
            found = self.fs.find(base)
        for path in found:
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
