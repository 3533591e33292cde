"""Streaming ZIP writer: stored (uncompressed) entries, ZIP64 when needed, bounded memory.

A bytes→bytes stage: :class:`ZipStream` turns ``(name, data)`` entries into the chunks of a ZIP
file (APPNOTE 6.3.10) without ever holding more than one entry, so a study of any size can be
sent while it is being produced. DICOM pixel data that is already compressed gains nothing from
deflate, and deflate is what made the raw ZIP of seed 000 CPU-bound; entries are *stored*.

Layout written, per entry, then once at the end::

    [local file header][name][zip64 extra?][data]    ... one per entry, sizes and CRC known up front
    [central directory header][name][zip64 extra?]   ... one per entry
    [zip64 end of central directory + locator]?      ... when an offset, size or count overflows
    [end of central directory]

Every entry's data is in memory when it is added (one DICOM instance), so its size and CRC-32
go in the local header and no data descriptor (APPNOTE §4.3.9) is needed: readers that stream
the file (``unzip -``, browsers) see the sizes first. ZIP64 extra fields (APPNOTE §4.5.3) are
written for an entry whose size or local-header offset is at or past 4 GiB, and the ZIP64 end
records when the central directory starts past 4 GiB or there are more than 65,534 entries.
Only the central directory (about 100 bytes per entry) is kept until :meth:`ZipStream.finish`.

>>> import io, zipfile
>>> z = ZipStream()
>>> data = b"".join([*z.add("a.dcm", b"DICM"), *z.add("manifest.json", b"{}"), *z.finish()])
>>> zipfile.ZipFile(io.BytesIO(data)).read("a.dcm")
b'DICM'
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InvalidInputError

__all__ = ["ZipStream", "ZIP64_LIMIT", "dos_datetime"]

#: Sizes and offsets at or past this need ZIP64 (APPNOTE §4.4.8: 0xFFFFFFFF means "in the extra field").
ZIP64_LIMIT = 0xFFFFFFFF
_ENTRY_LIMIT = 0xFFFF

_LFH = struct.Struct("<IHHHHHIIIHH")  # local file header (§4.3.7)
_CDH = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory file header (§4.3.12)
_EOCD = struct.Struct("<IHHHHIIH")  # end of central directory (§4.3.16)
_EOCD64 = struct.Struct("<IQHHIIQQQQ")  # zip64 end of central directory record (§4.3.14)
_LOC64 = struct.Struct("<IIQI")  # zip64 end of central directory locator (§4.3.15)

_UTF8 = 0x0800  # general purpose bit 11: names are UTF-8
_UNIX = 3 << 8  # version made by: UNIX, so external attributes carry the mode


def dos_datetime(epoch: float | None = None) -> tuple[int, int]:
    """MS-DOS ``(time, date)`` of an epoch time (local time; 1980 is the earliest representable).

    >>> dos_datetime(0)[1] >= (0 << 9) | (1 << 5) | 1
    True
    """
    t = time.localtime(time.time() if epoch is None else epoch)
    year = max(1980, t.tm_year)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


@dataclass(frozen=True)
class _Entry:
    name: bytes
    crc: int
    size: int
    offset: int


class ZipStream:
    """Write a ZIP file as a sequence of chunks, one stored entry at a time.

    Parameters
    ----------
    mtime
        Epoch time stamped on every entry (default: now).
    zip64_limit
        Sizes and offsets at or past this use ZIP64 records (default :data:`ZIP64_LIMIT`;
        tests lower it to exercise the ZIP64 path without writing 4 GiB).

    Attributes
    ----------
    offset : int
        Bytes produced so far.
    """

    def __init__(self, *, mtime: float | None = None, zip64_limit: int = ZIP64_LIMIT):
        if not 0 < zip64_limit <= ZIP64_LIMIT:
            raise InvalidInputError(f"zip64_limit={zip64_limit!r} must be in 1..{ZIP64_LIMIT}")
        self._time, self._date = dos_datetime(mtime)
        self._limit = zip64_limit
        self._entries: list[_Entry] = []
        self._names: set[bytes] = set()
        self._finished = False
        self.offset = 0

    def add(self, name: str, data: bytes | bytearray | memoryview, *, crc: int | None = None) -> Iterator[bytes]:
        """Chunks of one stored entry: its local header, then ``data`` itself (not copied).

        Parameters
        ----------
        name
            Path inside the archive, ``/``-separated, relative, no ``..`` (a ZIP-slip guard).
        data
            The entry's bytes.
        crc
            Its CRC-32 when already computed (e.g. by the worker thread that produced it).

        Raises
        ------
        InvalidInputError
            A name that is absolute, contains ``..`` or a backslash, repeats, or the stream is finished.
        """
        if self._finished:
            raise InvalidInputError("the ZIP stream is finished: no entry can be added")
        raw = _check_name(name)
        if raw in self._names:
            raise InvalidInputError(f"ZIP entry {name!r} is already in the archive")
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        crc = zlib.crc32(data) if crc is None else crc
        big = size >= self._limit or self.offset >= self._limit
        extra = struct.pack("<HHQQ", 0x0001, 16, size, size) if big else b""
        header = _LFH.pack(
            0x04034B50,
            45 if big else 20,
            _UTF8,
            0,
            self._time,
            self._date,
            crc,
            ZIP64_LIMIT if big else size,
            ZIP64_LIMIT if big else size,
            len(raw),
            len(extra),
        )
        self._entries.append(_Entry(raw, crc, size, self.offset))
        self._names.add(raw)
        head = header + raw + extra
        self.offset += len(head) + size
        yield head
        if size:
            yield bytes(data) if isinstance(data, bytearray) else data  # type: ignore[misc]

    def finish(self) -> Iterator[bytes]:
        """Chunks of the central directory and end records; the stream is complete after them."""
        if self._finished:
            raise InvalidInputError("the ZIP stream is already finished")
        self._finished = True
        start = self.offset
        directory = bytearray()
        for e in self._entries:
            fields: list[int] = []
            if e.size >= self._limit:
                fields += [e.size, e.size]
            if e.offset >= self._limit:
                fields.append(e.offset)
            extra = struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields) if fields else b""
            big = bool(fields)
            directory += _CDH.pack(
                0x02014B50,
                _UNIX | 45,
                45 if big else 20,
                _UTF8,
                0,
                self._time,
                self._date,
                e.crc,
                ZIP64_LIMIT if e.size >= self._limit else e.size,
                ZIP64_LIMIT if e.size >= self._limit else e.size,
                len(e.name),
                len(extra),
                0,
                0,
                0,
                (0o100644 << 16),
                ZIP64_LIMIT if e.offset >= self._limit else e.offset,
            )
            directory += e.name + extra
            if len(directory) >= 1 << 16:
                self.offset += len(directory)
                yield bytes(directory)
                directory.clear()
        self.offset += len(directory)
        size = self.offset - start
        n = len(self._entries)
        tail = bytearray(directory)
        if n >= _ENTRY_LIMIT or start >= self._limit or size >= self._limit:
            eocd64 = self.offset
            tail += _EOCD64.pack(0x06064B50, 44, _UNIX | 45, 45, 0, 0, n, n, size, start)
            tail += _LOC64.pack(0x07064B50, 0, eocd64, 1)
            tail += _EOCD.pack(
                0x06054B50,
                0,
                0,
                min(n, _ENTRY_LIMIT),
                min(n, _ENTRY_LIMIT),
                min(size, ZIP64_LIMIT),
                min(start, ZIP64_LIMIT),
                0,
            )
        else:
            tail += _EOCD.pack(0x06054B50, 0, 0, n, n, size, start, 0)
        self.offset += len(tail) - len(directory)
        yield bytes(tail)

    @property
    def entries(self) -> int:
        """Entries added so far."""
        return len(self._entries)


def _check_name(name: str) -> bytes:
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\x00" in name:
        raise InvalidInputError(f"ZIP entry name {name!r} is invalid: expected a relative '/'-separated path")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidInputError(f"ZIP entry name {name!r} has an empty, '.' or '..' component")
    raw = name.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise InvalidInputError(f"ZIP entry name is {len(raw)} bytes long, at most 65535 allowed")
    return raw
