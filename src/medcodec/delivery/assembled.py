"""The ``original`` preset's ZIP assembled from the stored files: no copy, yet served like a
pre-computed archive (``Content-Length``, a strong ``ETag``, ``Range``, conditional requests, CDN
caching) and resumable by ``medcodec fetch``.

Every original is in the store byte for byte (content-addressed), and the catalog has each one's
size, sha256 and CRC-32 (:data:`.catalog.object_crcs`). A ZIP whose entries are *stored* (method
0) is then a function of the catalog alone: its local headers, ``manifest.json`` and central
directory are made from the rows, its files' bytes are the objects' bytes. So the archive's length
and every byte range of it are known before a file is read, and a range read opens only the files
it covers. Until 2026-12-03 the ``original`` archive was streamed live (chunked, no length, no
ETag: a 1 GB download cut at 900 MB started again from zero) unless ``--presets original`` had
written a second copy of every file.

Layout: as :class:`.zipstream.ZipStream` writes it (it makes every header here, ZIP64 included),
entries in archive order (:meth:`.Store.instances`: series, then position), named as in every
archive of the study (:func:`.precompute.archive_entry_name`), ``manifest.json`` last (deflated;
its bytes come from the catalog, so every request makes the same ones). Every entry carries the
pre-computed archives' fixed time stamp, so the bytes change only with the content.

ETag: ``a-`` and the sha256 of the archive's description: every byte made here and, in order,
the sha256 of each file. The files are content-addressed, so one ETag means one sequence of
bytes, and another file, name, order or manifest changes it. It is not the sha256 of the ZIP (a
pre-computed archive's ETag is, 64 hex digits alone): that would need every file read at every
request. The prefix says so (``X-Medcodec-Archive: assembled`` too), and ``medcodec fetch``
checks such an archive by its length and every entry's CRC-32 (computed from the files at ingest).

Against the live archive of the same preset (``live=1``, each DICOM header deflated): the headers
are stored, ~0.3-3 % more bytes on CT and MR slices (docs/delivery.md), no CPU.
"""

from __future__ import annotations

import bisect
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import DeliveryError
from .catalog import ArchiveRecord, InstanceRecord
from .manifest import MANIFEST_NAME, ManifestEntry, build_manifest
from .precompute import ARCHIVE_TIME, archive_entry_name
from .zipstream import STORED, ZIP64_LIMIT, Packed, ZipStream, pack

__all__ = ["AssembledArchive", "assemble", "DESCRIPTION_VERSION", "ETAG_PREFIX"]

#: Hashed first into every ETag: raised when the layout changes, so no ETag can name two byte sequences.
DESCRIPTION_VERSION = b"medcodec assembled original archive 1\x00"

#: Starts every assembled archive's ETag (then 64 hex digits), so that no client takes it for the
#: sha256 of the ZIP, as a pre-computed archive's bare 64 hex digits are.
ETAG_PREFIX = "a-"


@dataclass(frozen=True, slots=True)
class _Part:
    """A run of the archive's bytes: made here (``data``) or a stored file's (``path``)."""

    offset: int
    length: int
    data: bytes | None
    path: str = ""


@dataclass(frozen=True)
class AssembledArchive(ArchiveRecord):
    """An ``original`` archive assembled from stored files: an :class:`.catalog.ArchiveRecord`
    (``etag``: see the module docstring; ``path``: what it is, for messages) with its parts."""

    parts: tuple[_Part, ...] = ()

    def open(self, objects: Any) -> BinaryIO:
        """The archive as a read-only, seekable binary file; ``objects``: the store's
        :class:`.objects.Objects`, which opens the files. Unbuffered: a read of ``n`` bytes reads
        ``n`` bytes of the files it covers (a 1 MiB buffer read 1 MiB of originals for a one-byte
        range: an outside audit, 2026-12-03)."""
        return _Reader(self, objects)  # type: ignore[return-value]

    def check_files(self, objects: Any, ranges: Sequence[tuple[int, int]]) -> None:
        """Raise :class:`~medcodec.errors.DeliveryError` when a file the byte ``ranges`` cover is
        missing or not of its catalog size, before any byte is answered (a cut stream after a 200
        read as a network failure to clients, which then resumed in vain: the same audit). The
        size only: a file damaged in place is caught by the client's CRC-32 check."""
        for part in self.parts:
            if part.data is not None or not any(s < part.offset + part.length and e >= part.offset for s, e in ranges):
                continue
            try:
                size = objects.size(part.path)
            except (OSError, DeliveryError):
                size = -1
            if size != part.length:
                found = "missing" if size < 0 else f"{size} bytes"
                raise DeliveryError(
                    f"{self.path}: the stored file {part.path} is {found}, its catalog says {part.length} bytes: "
                    "the store is damaged (`medcodec store check` names what; restore it from a backup)"
                )


def assemble(
    records: Sequence[InstanceRecord],
    crcs: dict[str, int],
    lossy: set[str],
    *,
    study_uid: str,
    series_uid: str | None,
    changed_at: float,
    zip64_limit: int = ZIP64_LIMIT,
) -> AssembledArchive:
    """The layout of the ``original`` archive of ``records`` (archive order), no file read.

    Parameters
    ----------
    records
        The study's or series' instances, in archive order.
    crcs
        CRC-32 of every record's object, by sha256.
    lossy
        SOP Instance UIDs whose stored pixel data are lossy (the manifest says so).
    study_uid, series_uid
        What the archive holds (``series_uid`` ``None``: the whole study).
    changed_at
        When the study last changed: the archive's ``Last-Modified``.
    zip64_limit
        For tests: lower the ZIP64 threshold.
    """
    from .presets import PRESETS

    preset = PRESETS["original"]
    z = ZipStream(mtime=ARCHIVE_TIME, zip64_limit=zip64_limit)
    digest = hashlib.sha256(DESCRIPTION_VERSION)
    parts: list[_Part] = []
    rows: list[ManifestEntry] = []

    def made(data: bytes) -> None:
        parts.append(_Part(z.offset - len(data), len(data), data))
        digest.update(data)

    for record in records:
        name = archive_entry_name(record)
        packed = Packed((), STORED, int(record.size), int(record.size), crcs[record.sha256])
        head = b"".join(z.add(name, packed))  # the local header only: the chunks are empty
        parts.append(_Part(z.offset - int(record.size) - len(head), len(head), head))
        digest.update(head)
        parts.append(_Part(z.offset - int(record.size), int(record.size), None, record.path))
        digest.update(record.sha256.encode("ascii"))
        rows.append(ManifestEntry.original(record, "original", lossy=record.sop_uid in lossy).named(name))
    manifest = build_manifest(
        rows,
        preset="original",
        study_uid=study_uid,
        series_uid=series_uid,
        diagnostic=preset.diagnostic,
        label=preset.label,
    )
    made(b"".join(z.add(MANIFEST_NAME, pack(manifest, deflate=len(manifest)))))
    made(b"".join(z.finish()))
    what = f"the original archive of {'series ' + series_uid if series_uid else 'study ' + study_uid}"
    return AssembledArchive(
        study_uid=study_uid,
        series_uid=series_uid or "",
        preset="original",
        path=what,
        size=z.offset,
        etag=ETAG_PREFIX + digest.hexdigest(),
        files=len(records),
        created_at=changed_at,
        parts=tuple(parts),
    )


class _Reader(io.RawIOBase):
    """Reads an :class:`AssembledArchive`'s bytes at any offset: made parts from memory, files
    from the store (one open at a time, kept while reads go on in it)."""

    def __init__(self, archive: AssembledArchive, objects: Any):
        super().__init__()
        self._archive = archive
        self._objects = objects
        self._starts = [p.offset for p in archive.parts]
        self._pos = 0
        self._open: tuple[str, BinaryIO] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._archive.size}[whence]
        if base + offset < 0:
            raise DeliveryError(f"seek to {base + offset} in {self._archive.path}: before its start")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._archive.size:
            part = self._archive.parts[self._part_at(self._pos)]
            inside = self._pos - part.offset
            n = min(len(view) - done, part.length - inside)
            if part.data is not None:
                view[done : done + n] = part.data[inside : inside + n]
            else:
                got = self._file_bytes(part, inside, view[done : done + n])
                if got < n:
                    raise DeliveryError(
                        f"{part.path} is shorter than its catalog size {part.length} ({self._archive.path}): "
                        "`medcodec store check` names the damaged objects"
                    )
            done += n
            self._pos += n
        return done

    def _part_at(self, pos: int) -> int:
        return bisect.bisect_right(self._starts, pos) - 1

    def _file_bytes(self, part: _Part, inside: int, out: memoryview) -> int:
        got = 0
        try:
            if self._open is None or self._open[0] != part.path:
                self._close_file()
                self._open = (part.path, self._objects.open(part.path))
            fh = self._open[1]
            if fh.tell() != inside:
                fh.seek(inside)
            while got < len(out):
                chunk = fh.read(len(out) - got)
                if not chunk:
                    break
                out[got : got + len(chunk)] = chunk
                got += len(chunk)
        except OSError as exc:  # deleted (or unreadable) after the answer was checked: it is cut, named
            raise DeliveryError(
                f"{part.path} cannot be read ({exc.strerror or exc}; {self._archive.path}): "
                "`medcodec store check` names the damaged objects"
            ) from exc
        return got

    def _close_file(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def close(self) -> None:
        self._close_file()
        super().close()
