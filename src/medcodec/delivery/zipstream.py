"""Streaming ZIP writer: stored or header-deflated entries, ZIP64 when needed, bounded memory.

A bytes→bytes stage: :class:`ZipStream` turns ``(name, data)`` entries into the chunks of a ZIP
file (APPNOTE 6.3.10) without ever holding more than one entry, so a study of any size can be
sent while it is being produced.

Compression. DICOM pixel data that is already compressed gains nothing from deflate, and
deflating whole files is what made the raw ZIP of seed 000 CPU-bound (~14 MB/s). But a DICOM
file's *header* is text and tags that deflate 2-3x, and on a 12:1 coded CT slice it is ~14 % of
the file (8 of 62 kB). :func:`pack` therefore writes one DEFLATE stream (RFC 1951, method 8)
whose first part is the header compressed (zlib, then a sync flush, which ends byte-aligned)
and whose rest is the pixel data in *stored* blocks (``BTYPE=00``: a 5-byte block header per
64 kB, the bytes copied as they are). Any inflater reads it; the CPU cost is that of deflating
the header (~0.1 ms per file), and the pixel bytes are never run through zlib.

Layout written, per entry, then once at the end::

    [local file header][name][zip64 extra?][data]    ... one per entry, sizes and CRC known up front
    [central directory header][name][zip64 extra?]   ... one per entry
    [zip64 end of central directory + locator]?      ... when an offset, size or count overflows
    [end of central directory]

Every entry's data is in memory when it is added (one DICOM instance), so its sizes and CRC-32
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
from typing import Any

from ..errors import InvalidInputError

__all__ = [
    "Packed",
    "ZipStream",
    "ZIP64_LIMIT",
    "FAST_DEFLATE",
    "STORED",
    "DEFLATED",
    "crc32",
    "dos_datetime",
    "dicom_header_length",
    "pack",
]

FAST_DEFLATE: Any  # ISA-L's zlib-compatible deflate (python-isal), for pack(fast=True); None: zlib then
try:
    from isal import isal_zlib as FAST_DEFLATE
except ImportError:  # pragma: no cover - a dependency
    FAST_DEFLATE = None

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
    csize: int
    method: int
    offset: int


STORED, DEFLATED = 0, 8  # APPNOTE §4.4.5 compression methods
_STORED_BLOCK = 0xFFFF  # RFC 1951 §3.2.4: a stored block holds at most 65,535 bytes
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


@dataclass(frozen=True)
class Packed:
    """One entry's bytes as they go into the archive (made by :func:`pack`).

    Attributes
    ----------
    chunks
        The compressed data, in order (memoryviews of the original where stored).
    method
        :data:`STORED` (0) or :data:`DEFLATED` (8).
    size, csize
        Uncompressed and compressed sizes.
    crc
        CRC-32 of the uncompressed data.
    """

    chunks: tuple[bytes | memoryview, ...]
    method: int
    size: int
    csize: int
    crc: int


def crc32(data: bytes | bytearray | memoryview) -> int:
    """CRC-32 of ``data`` as ZIP records it (ISA-L's when installed: the same value, ~5x faster).

    >>> crc32(b"DICM") == zlib.crc32(b"DICM")
    True
    """
    return int((FAST_DEFLATE or zlib).crc32(data))


def dicom_header_length(data: bytes | bytearray | memoryview) -> int:
    """Bytes before a DICOM file's top-level Pixel Data element: the part worth deflating.

    The last ``(7FE0,0010)`` tag in the file (little endian); 0 when there is none. A stray
    match inside pixel data only moves the split later: the archive is correct for any split,
    it is only smaller when the split is at the header's end.

    >>> dicom_header_length(b"DICM" + b"\\xe0\\x7f\\x10\\x00OB" + bytes(10))
    4
    """
    found = bytes(data).rfind(_PIXEL_DATA_TAG) if not isinstance(data, bytes) else data.rfind(_PIXEL_DATA_TAG)
    return max(found, 0)


def pack(
    data: bytes | bytearray | memoryview,
    *,
    deflate: int = 0,
    level: int = 6,
    crc: int | None = None,
    fast: bool = False,
) -> Packed:
    """``data`` ready for :meth:`ZipStream.add`: its first ``deflate`` bytes deflated, the rest stored.

    Parameters
    ----------
    data
        The entry's bytes.
    deflate
        How many leading bytes to compress (``len(data)`` for all: JSON, text); 0 stores the
        entry as it is (method 0). When deflating does not make the entry smaller it is stored.
    level
        zlib level for the deflated part.
    crc
        CRC-32 of ``data`` when already known.
    fast
        Deflate and CRC with ISA-L (:data:`FAST_DEFLATE`, ``python-isal``) when it is installed,
        zlib otherwise; its levels are 0-3 (``level`` is clamped). A live stream's choice: ISA-L's
        level 1 deflates a DICOM header ~3x faster than zlib's level 1, to the same size
        (``docs/delivery.md``). The bytes of the deflated part differ from zlib's; both are
        DEFLATE (RFC 1951) that any inflater reads, and the entry's content is the same.

    Examples
    --------
    >>> import zlib
    >>> p = pack(b"header " * 100 + bytes(range(256)), deflate=700)
    >>> p.method, p.size, p.csize < p.size
    (8, 956, True)
    >>> zlib.decompress(b"".join(p.chunks), -15) == b"header " * 100 + bytes(range(256))
    True
    """
    z: Any = FAST_DEFLATE if fast and FAST_DEFLATE is not None else zlib
    if z is not zlib:
        level = min(max(level, 0), 3)
    view = memoryview(data).cast("B")
    size = view.nbytes
    crc = z.crc32(view) if crc is None else crc
    deflate = min(max(deflate, 0), size)
    if deflate == 0:
        return Packed((view,) if size else (), STORED, size, size, crc)
    compressor = z.compressobj(level, z.DEFLATED, -15)
    if deflate == size:
        head = compressor.compress(view) + compressor.flush(z.Z_FINISH)
        if len(head) >= size:
            return Packed((view,), STORED, size, size, crc)
        return Packed((head,), DEFLATED, size, len(head), crc)
    head = compressor.compress(view[:deflate]) + compressor.flush(z.Z_SYNC_FLUSH)  # ends byte-aligned
    rest = size - deflate
    blocks = -(-rest // _STORED_BLOCK)
    csize = len(head) + rest + 5 * blocks
    if csize >= size:
        return Packed((view,), STORED, size, size, crc)
    chunks: list[bytes | memoryview] = [head]
    for k in range(blocks):
        start = deflate + k * _STORED_BLOCK
        n = min(_STORED_BLOCK, size - start)
        final = k == blocks - 1
        chunks.append(struct.pack("<BHH", 1 if final else 0, n, n ^ 0xFFFF))  # BFINAL, BTYPE=00, LEN, NLEN
        chunks.append(view[start : start + n])
    return Packed(tuple(chunks), DEFLATED, size, csize, crc)


class ZipStream:
    """Write a ZIP file as a sequence of chunks, one entry at a time (stored, or packed by :func:`pack`).

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

    def add(
        self, name: str, data: bytes | bytearray | memoryview | Packed, *, crc: int | None = None
    ) -> Iterator[bytes | memoryview]:
        """Chunks of one entry: its local header, then its data (not copied).

        Parameters
        ----------
        name
            Path inside the archive, ``/``-separated, relative, no ``..`` (a ZIP-slip guard).
        data
            The entry's bytes, stored as they are; or a :class:`Packed` entry (:func:`pack`,
            e.g. made in a worker thread), written with its method.
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
        packed = data if isinstance(data, Packed) else pack(data, crc=crc)
        size, csize = packed.size, packed.csize
        big = size >= self._limit or csize >= self._limit or self.offset >= self._limit
        extra = struct.pack("<HHQQ", 0x0001, 16, size, csize) if big else b""
        header = _LFH.pack(
            0x04034B50,
            45 if big else 20,
            _UTF8,
            packed.method,
            self._time,
            self._date,
            packed.crc,
            ZIP64_LIMIT if big else csize,
            ZIP64_LIMIT if big else size,
            len(raw),
            len(extra),
        )
        self._entries.append(_Entry(raw, packed.crc, size, csize, packed.method, self.offset))
        self._names.add(raw)
        head = header + raw + extra
        self.offset += len(head) + csize
        yield head
        yield from packed.chunks

    def finish(self) -> Iterator[bytes]:
        """Chunks of the central directory and end records; the stream is complete after them."""
        if self._finished:
            raise InvalidInputError("the ZIP stream is already finished")
        self._finished = True
        start = self.offset
        directory = bytearray()
        for e in self._entries:
            fields: list[int] = []
            wide = e.size >= self._limit or e.csize >= self._limit
            if wide:
                fields += [e.size, e.csize]
            if e.offset >= self._limit:
                fields.append(e.offset)
            extra = struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields) if fields else b""
            big = bool(fields)
            directory += _CDH.pack(
                0x02014B50,
                _UNIX | 45,
                45 if big else 20,
                _UTF8,
                e.method,
                self._time,
                self._date,
                e.crc,
                ZIP64_LIMIT if wide else e.csize,
                ZIP64_LIMIT if wide else e.size,
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
