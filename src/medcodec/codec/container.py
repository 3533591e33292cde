"""The ``.mdc`` container, versions 1 and 2 (bytes <-> segments). Every byte: ``docs/format.md``.

Version 2.4 keeps the framing and lays HEAD, QTAB, FIDX (and, in :mod:`.mdc2`, FRAM) out compactly
(``MdcHeader.compact``, ``docs/format.md`` §16). Version 2 keeps this framing; its HEAD names the
coding (transform / entropy coder, ``max_error``)
and its FRAM payloads are read by :mod:`.mdc2` (:func:`frame_payload`), not :func:`parse_frame`.

Layout::

    SIGNATURE  89 4D 44 43 0D 0A 1A 0A            "\\x89MDC\\r\\n\\x1a\\n"
    segment*   LENGTH:u32  TYPE:4 ASCII  PAYLOAD:LENGTH bytes  CRC32(TYPE+PAYLOAD):u32

    HEAD  QTAB  FIDX  FRAM{frames}  [ancillary segments]  MEND

All integers are little-endian. A segment whose TYPE starts with a lower-case letter is
ancillary: a decoder that does not know it skips it (PNG's rule); an unknown upper-case
segment is an error. This module parses and builds segments only; pixels are the
pipeline's business.

Safety: every length is checked against the bytes actually present before it is used,
headers are checked against :data:`LIMITS` before anything is allocated, and a frame may
not claim more blocks than its coded bytes could possibly describe (each block costs at
least 2 bits in version 1; version 2's limits are looser, ``docs/format.md`` §2). FIDX entries
must follow each other without overlap, each at least that large (:func:`frame_min_size`), and
the decoder checks the frames it is asked for are in the stream before it allocates: a version 1
stream decodes to at most 512x its size; a version 2 one of a flat image to far more (a caller
caps it with ``decode(max_pixels=)``).
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import (
    ChecksumMismatchError,
    CorruptStreamError,
    InvalidInputError,
    TruncatedStreamError,
    UnsupportedFeatureError,
)
from .entropy import HuffmanTable, alphabet_sizes
from .transform import blocks_shape

__all__ = [
    "SIGNATURE",
    "VERSION",
    "LIMITS",
    "MdcHeader",
    "FrameRecord",
    "Segment",
    "is_mdc",
    "build_container",
    "ContainerWriter",
    "check_ancillary",
    "parse_container",
    "parse_frame",
    "check_frame_present",
    "frame_min_size",
]

SIGNATURE = b"\x89MDC\r\n\x1a\n"
VERSION = (1, 0)
#: Version of streams using the v2 coding tools (``docs/format.md`` §10): HEAD transform 1.
VERSION_2 = (2, 0)
#: Written by streams whose DCT levels use entropy coder 2 (a 2.0 reader refuses that coder).
VERSION_21 = (2, 1)
#: Written only by streams with intra-predicted DCT frames (FRAM flag 8, ``docs/format.md`` §14).
VERSION_22 = (2, 2)
#: Written by DCT streams of entropy coder 2 that declare padding values (``meta`` ``"padding"``):
#: their frames may carry a padding mask (FRAM flag 16, ``docs/format.md`` §15). Minor versions add
#: up: a 2.3 stream may also have intra frames.
VERSION_23 = (2, 3)
#: The compact layout (``docs/format.md`` §16): a short HEAD, a delta-coded QTAB, a FIDX of frame
#: ends and FRAM payloads of varints; written by DCT streams of entropy coder 2 (the default).
VERSION_24 = (2, 4)
#: Written by streams with format 2.5's intra frames (FRAM flag 128, ``docs/format.md`` §18: a
#: per-block choice of the DCT or the mode's DST-VII pair).
VERSION_25 = (2, 5)
#: Written by streams with format 2.6's intra frames (FRAM flag 256 compact / 64 long, ``docs/format.md``
#: §19: 16x16 blocks (DC, SMOOTH, paeth) in macroblocks coded in raster order, their 8x8 blocks in Z order).
VERSION_26 = (2, 6)
#: Written by predictive (lossless / near-lossless) streams whose frames use run mode (FRAM flag 1
#: of the predictive header, ``docs/format.md`` §10.4); a 2.0-2.6 frame has that byte 0.
VERSION_27 = (2, 7)
#: Written by predictive streams whose frames reduce their levels modulo the range and take their
#: run contexts from the row above too (FRAM flags 2 and 4, ``docs/format.md`` §10.2, §10.4).
VERSION_28 = (2, 8)
#: Written by predictive streams whose lossless frames may be packed: the indices of the frame's
#: distinct values coded, their table in the FRAM (flag 8, ``docs/format.md`` §10.5).
VERSION_29 = (2, 9)
#: Written by predictive streams in the compact layout (``docs/format.md`` §20: §16's HEAD and FIDX,
#: a FRAM header of varints instead of 26 bytes, no ``meta`` segment): ~105 bytes less per stream.
VERSION_210 = (2, 10)
#: Written by DCT streams whose intra frames are format 2.6's (16x16 blocks) with their residual levels
#: under within-block contexts (``docs/format.md`` §21: the same syntax, other contexts, so a 2.10
#: reader must refuse them, as it does by their minor version).
VERSION_211 = (2, 11)
#: Written by those streams when every context of their intra frames (levels and modes) starts from the
#: trained tables (``docs/format.md`` §22: the same syntax and contexts as 2.11, other starting
#: distributions, so a 2.11 reader must refuse them, as it does by their minor version).
VERSION_212 = (2, 12)
#: The newest version this reader knows: a newer minor version may code frames differently (each one
#: so far did), so it is refused rather than decoded wrongly.
LATEST_VERSION = VERSION_212

#: Hard limits checked before any allocation.
LIMITS = {
    "max_rows": 65535,
    "max_cols": 65535,
    "max_frames": 65535,
    "max_frame_pixels": 1 << 28,
    "max_total_pixels": 1 << 32,
    "max_qtables": 16,
}

PHOTOMETRIC_CODES = {"MONOCHROME2": 0, "MONOCHROME1": 1}
PHOTOMETRIC_NAMES = {v: k for k, v in PHOTOMETRIC_CODES.items()}
TRANSFORM_DCT8 = 0
TRANSFORM_PREDICTIVE = 1  # v2: spatial prediction, no transform (lossless / near-lossless)
ENTROPY_HUFFMAN = 0
ENTROPY_ARITH = 1  # v2: adaptive binary range coder
ENTROPY_MULTI = 2  # v2.1: multi-symbol adaptive range coder (DCT levels only)
#: (transform, entropy) pairs each major version allows.
CODINGS = {
    1: {(TRANSFORM_DCT8, ENTROPY_HUFFMAN)},
    2: {(TRANSFORM_PREDICTIVE, ENTROPY_ARITH), (TRANSFORM_DCT8, ENTROPY_ARITH), (TRANSFORM_DCT8, ENTROPY_MULTI)},
}
NO_MAX_ERROR = 0xFFFF  # HEAD max_error when the stream records no guarantee
SIZE_BITS = 5

_SEG_HEAD = struct.Struct("<I4s")
_HEAD = struct.Struct("<HHIIIBBBBBBBBddddH6x")  # 64 bytes; v1: the H is reserved (0)
_FIDX_ENTRY = struct.Struct("<QI")
_FRAM_HEAD = struct.Struct("<IBBH")
FLAG_RESCALE = 1
FLAG_WINDOW = 2
#: HEAD flag bits of the compact layout (format 2.4, ``docs/format.md`` §16.1).
FLAG_COMPACT = 4  # the compact layout: this HEAD, QTAB, FIDX and the FRAM payloads are §16's
FLAG_2D = 8  # the input was a 2-D image (what ``meta`` ``"ndim": 2`` says in the long form)
FLAG_PADDING = 16  # LOW, HIGH padding values follow (``meta`` ``"padding"`` in the long form)
_COMPACT_FLAGS = FLAG_RESCALE | FLAG_WINDOW | FLAG_COMPACT | FLAG_2D | FLAG_PADDING


@dataclass(frozen=True)
class Segment:
    """One segment as found in a stream: type, byte offset of its LENGTH field, payload size."""

    type: str
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + 12 + self.length


@dataclass(frozen=True)
class MdcHeader:
    """Everything ``read_header`` learns without entropy decoding."""

    rows: int
    cols: int
    frames: int
    bits_stored: int
    signed: bool
    photometric_interpretation: str = "MONOCHROME2"
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    window_center: float | None = None
    window_width: float | None = None
    quality: int | None = None
    range_bits: int = 8
    version: tuple[int, int] = VERSION
    format: str = "mdc"
    transform: int = TRANSFORM_DCT8
    entropy: int = ENTROPY_HUFFMAN
    max_error: int | None = None  # v2: guaranteed max |error| in stored units (0 = lossless)
    qtables: tuple[np.ndarray, ...] = field(default=(), compare=False, repr=False)
    segments: tuple[Segment, ...] = field(default=(), compare=False, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    ancillary: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    #: the compact layout of format 2.4 (``docs/format.md`` §16): HEAD flag bit 2
    compact: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.frames, self.rows, self.cols)


@dataclass(frozen=True)
class FrameRecord:
    """A coded frame: index, quantization table index, Huffman tables, coded bytes."""

    index: int
    qtable: int
    dc_table: HuffmanTable
    ac_table: HuffmanTable
    coded: bytes | memoryview
    #: the frame's padding voxels (:func:`encode_padding_mask` bytes), or ``None``: FRAM flag bit 0
    padding_mask: bytes | None = None


#: FRAM ``flags`` (the u16 after ``size_bits``; 0 in streams before padding masks): bit 0 = a
#: padding mask follows the coded data (``MASKLEN:u32`` + mask, docs/format.md §6).
FRAM_FLAG_PADDING_MASK = 1


def encode_padding_mask(mask: np.ndarray) -> bytes:
    """A boolean (rows, cols) mask as zlib-compressed LEB128 run lengths (row-major, alternating
    not-padding / padding, starting with not-padding; a run may be 0)."""
    flat = np.ascontiguousarray(mask, dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    out = bytearray()
    for run in runs:
        put_varint(out, run)
    return zlib.compress(bytes(out), 9)


def decode_padding_mask(blob: bytes | memoryview, rows: int, cols: int, *, offset: int = 0) -> np.ndarray:
    """Inverse of :func:`encode_padding_mask`.

    Raises
    ------
    CorruptStreamError
        The mask does not inflate, or its runs do not cover exactly rows x cols voxels.
    """
    n = rows * cols
    try:
        data = zlib.decompressobj().decompress(bytes(blob), 10 * n + 64)  # bounded: a run takes >= 1 byte
    except zlib.error as exc:
        raise CorruptStreamError(f"padding mask does not inflate: {exc}", offset=offset, segment="FRAM") from None
    mask = np.zeros(n, dtype=bool)
    pos = value = shift = 0
    state = False
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte & 0x80:
            if shift > 35:
                raise CorruptStreamError("padding mask run too long", offset=offset, segment="FRAM")
            continue
        if pos + value > n:
            raise CorruptStreamError(f"padding mask covers more than {n} voxels", offset=offset, segment="FRAM")
        if state:
            mask[pos : pos + value] = True
        pos, value, shift, state = pos + value, 0, 0, not state
    if pos != n or shift:
        raise CorruptStreamError(f"padding mask covers {pos} of {n} voxels", offset=offset, segment="FRAM")
    return mask.reshape(rows, cols)


#: Bytes of a stream that do not depend on the frames: signature, HEAD, QTAB (1 table),
#: FIDX count, MEND.
FIXED_BYTES = 8 + (12 + _HEAD.size) + (12 + 1 + 128) + (12 + 4) + 12
#: The same in the compact layout of format 2.4 (short HEAD, Rice-coded steps, FIDX without count), a
#: typical value: 83-119 bytes (mean 98) on the images of :data:`.mdc2.FRAME_SIDE_BYTES`.
COMPACT_FIXED_BYTES = 98


def frame_overhead(n_dc_symbols: int, n_ac_symbols: int) -> int:
    """Bytes a frame costs besides its coded data: FRAM framing, tables, FIDX entry."""
    return 12 + _FRAM_HEAD.size + 2 * (32 + n_dc_symbols + n_ac_symbols) + 4 + _FIDX_ENTRY.size


def is_mdc(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts with the ``.mdc`` signature."""
    return bytes(data[:8]) == SIGNATURE


def check_ancillary(ancillary: Any) -> None:
    """Raise :class:`InvalidInputError` unless ``ancillary`` (``None`` or a mapping) names its
    segments with 4 ASCII letters starting lower-case (not ``meta``) and gives each bytes."""
    for name, blob in (ancillary or {}).items():
        if not (isinstance(name, str) and len(name) == 4 and name.isascii() and name.isalpha()
                and name[0].islower() and name != "meta"):  # fmt: skip
            raise InvalidInputError(f"ancillary segment type {name!r} must be 4 ASCII letters starting lower-case")
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise InvalidInputError(f"ancillary segment {name!r} must be bytes, not {type(blob).__name__}")


def _segment(seg_type: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(seg_type))
    return _SEG_HEAD.pack(len(payload), seg_type) + payload + struct.pack("<I", crc)


def _opt(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _table_bytes(t: HuffmanTable) -> bytes:
    bits = np.asarray(t.bits, dtype="<u2")
    return bits.tobytes() + np.asarray(t.huffval, dtype="<u2").tobytes()


def _head_payload(header: MdcHeader) -> bytes:
    flags = (FLAG_RESCALE if (header.rescale_slope, header.rescale_intercept) != (1.0, 0.0) else 0) | (
        FLAG_WINDOW if header.window_center is not None and header.window_width is not None else 0
    )
    v2 = header.version[0] >= 2
    return _HEAD.pack(
        *header.version,
        header.rows,
        header.cols,
        header.frames,
        header.bits_stored,
        int(header.signed),
        PHOTOMETRIC_CODES[header.photometric_interpretation],
        header.transform,
        header.entropy,
        header.quality or 0,
        header.range_bits,
        flags,
        header.rescale_slope,
        header.rescale_intercept,
        _opt(header.window_center),
        _opt(header.window_width),
        (NO_MAX_ERROR if header.max_error is None else header.max_error) if v2 else 0,
    )


def _fram_segment(f: FrameRecord) -> bytes:
    return _segment(
        b"FRAM",
        _FRAM_HEAD.pack(f.index, f.qtable, SIZE_BITS, 0 if f.padding_mask is None else FRAM_FLAG_PADDING_MASK)
        + _table_bytes(f.dc_table)
        + _table_bytes(f.ac_table)
        + struct.pack("<I", len(f.coded))
        + bytes(f.coded)
        + (b"" if f.padding_mask is None else struct.pack("<I", len(f.padding_mask)) + f.padding_mask),
    )


class ContainerWriter:
    """Write a ``.mdc`` to a seekable binary file one frame at a time (bounded memory).

    The FIDX segment is reserved at its final size (the frame count is in HEAD) and filled
    in by :meth:`close`, so frames never have to be held together in memory.

    >>> import io
    >>> # w = ContainerWriter(fh, header); w.add(record) ...; w.close()
    """

    def __init__(self, fh: Any, header: MdcHeader):
        self.fh = fh
        self.header = header
        self.entries: list[tuple[int, int]] = []
        meta = compact_meta(header.meta) if header.compact else header.meta
        if header.compact:
            qtab = _compact_qtab(header.qtables)
            head = _compact_head_payload(header, header.meta)
        else:
            qtab = bytes([len(header.qtables)]) + b"".join(np.asarray(q, dtype="<u2").tobytes() for q in header.qtables)
            head = _head_payload(header)
        parts = [SIGNATURE, _segment(b"HEAD", head)] + ([_segment(b"QTAB", qtab)] if header.qtables else [])
        if meta:
            parts.append(_segment(b"meta", json.dumps(meta, sort_keys=True).encode()))
        check_ancillary(header.ancillary)
        for name, blob in header.ancillary.items():
            parts.append(_segment(name.encode("ascii"), bytes(blob)))
        self.start = fh.tell()
        prefix = b"".join(parts)
        fh.write(prefix)
        self.fidx_at = self.start + len(prefix)
        fidx_size = 12 + (4 * header.frames if header.compact else 4 + _FIDX_ENTRY.size * header.frames)
        fh.write(bytes(fidx_size))  # reserved, filled by close()
        self.offset = fh.tell() - self.start

    def add(self, record: FrameRecord) -> None:
        """Append the next frame (frames must come in order 0, 1, 2...)."""
        self.add_payload(record.index, _fram_segment(record))

    def add_payload(self, index: int, seg: bytes) -> None:
        """Append frame ``index`` as a ready FRAM segment (v2 frames build their own payload)."""
        if index != len(self.entries) or index >= self.header.frames:
            raise InvalidInputError(f"frame {index} out of order: expected {len(self.entries)}")
        self.fh.write(seg)
        self.entries.append((self.offset, len(seg)))
        self.offset += len(seg)

    def close(self) -> int:
        """Write MEND and the frame index; returns the stream length."""
        if len(self.entries) != self.header.frames:
            raise InvalidInputError(f"{len(self.entries)} frames written, HEAD announces {self.header.frames}")
        self.fh.write(_segment(b"MEND", b""))
        end = self.fh.tell()
        if self.header.compact:
            after = self.fidx_at - self.start + 12 + 4 * self.header.frames
            fidx = _segment(b"FIDX", _compact_fidx(self.entries, after))
        else:
            entries = b"".join(_FIDX_ENTRY.pack(o, n) for o, n in self.entries)
            fidx = _segment(b"FIDX", struct.pack("<I", len(self.entries)) + entries)
        self.fh.seek(self.fidx_at)
        self.fh.write(fidx)
        self.fh.seek(end)
        return end - self.start


def build_container(header: MdcHeader, frames: list[FrameRecord]) -> bytes:
    """Serialise a header, its quantization tables and coded frames into ``.mdc`` bytes."""
    buf = io.BytesIO()
    writer = ContainerWriter(buf, header)
    for f in frames:
        writer.add(f)
    writer.close()
    return buf.getvalue()


def _read_segment(data: memoryview, offset: int, *, verify: bool = True) -> tuple[Segment, memoryview]:
    if offset + 8 > len(data):
        raise TruncatedStreamError(
            "segment header cut off", offset=offset, expected=8, available=max(0, len(data) - offset)
        )
    length, raw_type = _SEG_HEAD.unpack_from(data, offset)
    try:
        seg_type = raw_type.decode("ascii")
    except UnicodeDecodeError:
        seg_type = ""
    if not seg_type.isalpha():
        raise CorruptStreamError(f"segment type {raw_type!r} is not 4 ASCII letters", offset=offset)
    need = 12 + length
    if offset + need > len(data):
        raise TruncatedStreamError(
            f"{seg_type} segment cut off", offset=offset, segment=seg_type, expected=need,
            available=len(data) - offset,
        )  # fmt: skip
    payload = data[offset + 8 : offset + 8 + length]
    if verify:
        (stored,) = struct.unpack_from("<I", data, offset + 8 + length)
        actual = zlib.crc32(payload, zlib.crc32(raw_type))
        if stored != actual:
            raise ChecksumMismatchError(
                "CRC32 mismatch", offset=offset, segment=seg_type, expected=stored, actual=actual
            )
    return Segment(seg_type, offset, length), payload


def _parse_head(payload: memoryview, seg: Segment) -> dict[str, Any]:
    if len(payload) != _HEAD.size:
        raise CorruptStreamError(
            f"HEAD payload is {len(payload)} bytes, expected {_HEAD.size}", offset=seg.offset, segment="HEAD"
        )
    return _check_head(_HEAD.unpack_from(payload), seg)


def _check_head(fields: tuple[Any, ...], seg: Segment) -> dict[str, Any]:
    """HEAD fields (the long form's order) checked against :data:`LIMITS`, as ``MdcHeader`` keywords."""
    (vmaj, vmin, rows, cols, frames, bits, signed, photo, transform, entropy, quality, range_bits, flags,
     slope, intercept, wc, ww, max_error) = fields  # fmt: skip
    if vmaj not in CODINGS:
        raise UnsupportedFeatureError(
            f"HEAD: .mdc format version {vmaj}.{vmin} is not supported (this reader: 1.x, 2.x)"
        )
    if (vmaj, vmin) > LATEST_VERSION:
        raise UnsupportedFeatureError(
            f"HEAD: .mdc format version {vmaj}.{vmin} is newer than this reader's "
            f"{LATEST_VERSION[0]}.{LATEST_VERSION[1]}: upgrade medcodec to decode it"
        )
    problems = []
    if not (1 <= rows <= LIMITS["max_rows"] and 1 <= cols <= LIMITS["max_cols"]):
        problems.append(f"rows x cols = {rows} x {cols} outside 1..{LIMITS['max_rows']}")
    elif rows * cols > LIMITS["max_frame_pixels"]:
        problems.append(f"{rows} x {cols} pixels per frame exceeds the limit {LIMITS['max_frame_pixels']}")
    if not 1 <= frames <= LIMITS["max_frames"]:
        problems.append(f"frames = {frames} outside 1..{LIMITS['max_frames']}")
    elif rows * cols * frames > LIMITS["max_total_pixels"]:
        problems.append(f"{frames} frames of {rows} x {cols} exceed the limit of {LIMITS['max_total_pixels']} pixels")
    if not 1 <= bits <= 16:
        problems.append(f"bits_stored = {bits} outside 1..16")
    if signed > 1:
        problems.append(f"signed flag = {signed}, expected 0 or 1")
    if photo not in PHOTOMETRIC_NAMES:
        problems.append(f"photometric code {photo} unknown")
    if not 1 <= range_bits <= 16:
        problems.append(f"range_bits = {range_bits} outside 1..16")
    if quality > 100:
        problems.append(f"quality = {quality} outside 0..100")
    if not (math.isfinite(slope) and slope != 0 and math.isfinite(intercept)):
        problems.append(f"rescale slope/intercept {slope}/{intercept} not finite and non-zero")
    if problems:
        raise CorruptStreamError("; ".join(problems), offset=seg.offset, segment="HEAD")
    if (transform, entropy) not in CODINGS[vmaj]:
        raise UnsupportedFeatureError(
            f"HEAD: transform {transform} / entropy coder {entropy} not supported in version {vmaj}"
        )
    window = bool(flags & FLAG_WINDOW) and math.isfinite(wc) and math.isfinite(ww)
    return dict(
        rows=rows, cols=cols, frames=frames, bits_stored=bits, signed=bool(signed),
        photometric_interpretation=PHOTOMETRIC_NAMES[photo], rescale_slope=slope,
        rescale_intercept=intercept, window_center=wc if window else None,
        window_width=ww if window else None, quality=quality or None, range_bits=range_bits,
        version=(vmaj, vmin), transform=transform, entropy=entropy,
        max_error=max_error if vmaj >= 2 and max_error != NO_MAX_ERROR else None,
    )  # fmt: skip


def _parse_qtab(payload: memoryview, seg: Segment) -> tuple[np.ndarray, ...]:
    if len(payload) < 1:
        raise CorruptStreamError("QTAB is empty", offset=seg.offset, segment="QTAB")
    n = payload[0]
    if not 1 <= n <= LIMITS["max_qtables"] or len(payload) != 1 + 128 * n:
        raise CorruptStreamError(
            f"QTAB declares {n} tables in {len(payload)} bytes, "
            f"expected 1..{LIMITS['max_qtables']} tables of 128 bytes",
            offset=seg.offset, segment="QTAB",
        )  # fmt: skip
    tables = tuple(
        np.frombuffer(payload, dtype="<u2", count=64, offset=1 + 128 * i).astype(np.uint16) for i in range(n)
    )
    if any(int(t.min()) == 0 for t in tables):
        raise CorruptStreamError("a quantization step is 0", offset=seg.offset, segment="QTAB")
    return tables


def parse_container(
    data: bytes | bytearray | memoryview, *, verify: bool = True
) -> tuple[MdcHeader, list[tuple[int, int]]]:
    """Parse the signature, HEAD, QTAB, ancillary segments and FIDX.

    Returns the header and the frame index: a list of (offset, size) of each FRAM segment.
    With ``verify`` the CRC of each segment read is checked; FRAM segments are read (and
    checked) by :func:`parse_frame`, so one frame can be decoded without the others.

    A stream cut after FIDX parses: entries that reach past its end are kept, and
    :func:`check_frame_present` says, per frame, whether it can be delivered.
    """
    mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    if len(mv) < 8:
        raise TruncatedStreamError("stream shorter than the signature", offset=0, expected=8, available=len(mv))
    if bytes(mv[:8]) != SIGNATURE:
        raise CorruptStreamError(f"signature {bytes(mv[:8])!r} is not {SIGNATURE!r}", offset=0, segment="signature")
    offset = 8
    segments: list[Segment] = []
    head: dict[str, Any] | None = None
    qtables: tuple[np.ndarray, ...] = ()
    meta: dict[str, Any] = {}
    index: list[tuple[int, int]] | None = None
    ancillary: dict[str, bytes] = {}
    while index is None:
        seg, payload = _read_segment(mv, offset, verify=verify)
        segments.append(seg)
        if head is None and seg.type != "HEAD":
            raise CorruptStreamError(f"first segment is {seg.type}, expected HEAD", offset=offset, segment=seg.type)
        compact = head is not None and head.get("compact", False)
        if seg.type == "HEAD":
            if head is not None:
                raise CorruptStreamError("second HEAD segment", offset=offset, segment="HEAD")
            head = _parse_head(payload, seg) if len(payload) == _HEAD.size else _parse_compact_head(payload, seg)
            meta = dict(head.pop("_meta", {}))
        elif seg.type == "QTAB":
            qtables = _parse_compact_qtab(payload, seg) if compact else _parse_qtab(payload, seg)
        elif seg.type == "meta":
            extra = _parse_meta(payload, seg, head)
            if compact and set(extra) & {"ndim", "padding"}:
                raise CorruptStreamError("meta repeats ndim / padding, which the compact HEAD carries",
                                         offset=offset, segment="meta")  # fmt: skip
            meta = {**meta, **extra}
        elif seg.type == "FIDX":
            after = offset + 12 + seg.length
            if compact:
                assert head is not None
                index = _parse_compact_fidx(payload, seg, head, after)
            else:
                index = _parse_fidx(payload, seg, head, after)
        elif seg.type[0].isupper():
            raise CorruptStreamError(
                f"unexpected critical segment {seg.type} before FIDX", offset=offset, segment=seg.type
            )
        else:
            ancillary[seg.type] = bytes(payload)
        offset = seg.end
    assert head is not None
    if not qtables and head["transform"] == TRANSFORM_DCT8:
        raise CorruptStreamError("no QTAB segment before FIDX", offset=offset, segment="QTAB")
    header = MdcHeader(**head, qtables=qtables, segments=tuple(segments), meta=meta, ancillary=ancillary)
    return header, index


#: Deepest nesting of JSON arrays/objects a ``meta`` segment may have (medcodec writes depth 1).
META_MAX_DEPTH = 32


def _json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings, counted without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _parse_meta(payload: memoryview, seg: Segment, head: dict[str, Any] | None) -> dict[str, Any]:
    """The ``meta`` JSON object, checked against HEAD (``ndim`` 2 needs exactly one frame).

    The nesting depth is measured before ``json.loads`` sees the text: a payload of 20,000
    ``[`` would otherwise end in a ``RecursionError`` (a fuzz finding, issue 10 item 10).
    """
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptStreamError("meta is not UTF-8 text", offset=seg.offset, segment="meta") from None
    depth = _json_depth(text) if text.count("[") + text.count("{") > META_MAX_DEPTH else 0
    if depth > META_MAX_DEPTH:
        raise CorruptStreamError(
            f"meta JSON is nested {depth} levels deep, at most {META_MAX_DEPTH} allowed", offset=seg.offset,
            segment="meta",
        )  # fmt: skip
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        raise CorruptStreamError("meta is not a JSON object", offset=seg.offset, segment="meta")
    ndim = meta.get("ndim", 3)
    if isinstance(ndim, bool) or ndim not in (2, 3):
        raise CorruptStreamError(f"meta ndim = {ndim!r}, expected 2 or 3", offset=seg.offset, segment="meta")
    if ndim == 2 and head is not None and head["frames"] != 1:
        raise CorruptStreamError(
            f"meta says a 2-D image (ndim 2) but HEAD announces {head['frames']} frames", offset=seg.offset,
            segment="meta",
        )  # fmt: skip
    return meta


#: v2 predictive frames may not claim more samples per coded byte than this (decompression-bomb
#: limit; the range coder spends at least 0.0056 bit per sample, 1 byte per ~1400, ``docs/format.md`` §11).
MIN_PIXELS_PER_BYTE = 4096
#: v2 range-coded DCT frames may not claim more 8x8 blocks per coded byte than this (at least 7
#: decisions of >= 0.0056 bit per block: 1 byte per ~200 blocks).
MAX_BLOCKS_PER_BYTE = 2048
#: Fixed FRAM payload bytes before the coded bytes of a v2 frame: predictive (index, predictor,
#: value range, thresholds, coded length: ``mdc2.FRAM2_HEAD``) and range-coded DCT (index,
#: table, flags, coded length; offsets and deblocking parameters are optional).
FRAM2_PREDICTIVE_FIXED = 26
FRAM2_DCT_FIXED = 12


def frame_min_size(rows: int, cols: int, transform: int = TRANSFORM_DCT8, entropy: int = ENTROPY_HUFFMAN) -> int:
    """Fewest bytes a FRAM segment of a rows x cols frame can take.

    Version 1 (Huffman): framing, two empty Huffman tables, the coded length and 2 bits per
    8x8 block (:func:`parse_frame`). Version 2: framing, the fixed frame header and the coded
    bytes the bomb limits ask for (:data:`MIN_PIXELS_PER_BYTE`, :data:`MAX_BLOCKS_PER_BYTE`,
    checked again by :mod:`.mdc2` when the frame is read).
    """
    by, bx = blocks_shape(rows, cols)
    if entropy == ENTROPY_HUFFMAN:
        return 12 + _FRAM_HEAD.size + 2 * 32 + 4 + -(-by * bx // 4)
    if transform == TRANSFORM_PREDICTIVE:
        return 12 + FRAM2_PREDICTIVE_FIXED + -(-rows * cols // MIN_PIXELS_PER_BYTE)
    return 12 + FRAM2_DCT_FIXED + -(-by * bx // MAX_BLOCKS_PER_BYTE)


#: Segments that carry the image (with the signature): what a ``.mdc``'s ratio counts. Every
#: other segment (``meta``, ``dcmh`` with the DICOM headers, ...) is container overhead.
PIXEL_SEGMENTS = frozenset({"HEAD", "QTAB", "FIDX", "FRAM", "MEND"})


def overhead_bytes(header: MdcHeader) -> int:
    """Bytes of a ``.mdc`` that are not pixel data: its ``meta`` and ancillary segments, headers
    and CRCs included (from the parsed segments when ``header`` was read, else as written)."""
    listed = [s for s in header.segments if s.type not in PIXEL_SEGMENTS]
    if header.segments:
        return sum(12 + s.length for s in listed)
    return written_overhead_bytes(compact_meta(header.meta) if header.compact else header.meta, header.ancillary)


def written_overhead_bytes(meta: dict[str, Any], ancillary: dict[str, bytes]) -> int:
    """Bytes :class:`ContainerWriter` spends on a ``meta`` object and ancillary segments."""
    size = 12 + len(json.dumps(meta, sort_keys=True).encode()) if meta else 0
    return size + sum(12 + len(blob) for blob in ancillary.values())


def pixel_data_bytes(header: MdcHeader, total: int) -> int:
    """Coded pixel bytes of a ``total``-byte ``.mdc``: everything but :func:`overhead_bytes`
    (the counterpart of an encapsulated Pixel Data element; the ratio is raw / this)."""
    return total - overhead_bytes(header)


def check_frame_present(index: list[tuple[int, int]], k: int, total: int) -> None:
    """Raise :class:`TruncatedStreamError` naming frame ``k``'s FRAM offset when the stream
    (``total`` bytes) ends before that frame does; frames before the cut stay decodable."""
    off, size = index[k]
    if off + size > total:
        intact = next((i for i, (o, n) in enumerate(index) if o + n > total), len(index))
        raise TruncatedStreamError(
            f"frame {k} is cut off: the stream ends at byte {total}, inside or before this frame"
            f" (frames 0-{intact - 1} are intact and decode on their own)" if intact else
            f"frame {k} is cut off: the stream ends at byte {total}, before its first frame",
            offset=off, segment=f"FRAM {k}", expected=size, available=max(0, total - off),
        )  # fmt: skip


def _parse_fidx(payload: memoryview, seg: Segment, head: dict[str, Any] | None, after: int) -> list[tuple[int, int]]:
    assert head is not None
    if len(payload) < 4:
        raise CorruptStreamError("FIDX shorter than its count", offset=seg.offset, segment="FIDX")
    (n,) = struct.unpack_from("<I", payload)
    if n != head["frames"] or len(payload) != 4 + _FIDX_ENTRY.size * n:
        raise CorruptStreamError(
            f"FIDX lists {n} frames in {len(payload)} bytes; HEAD says {head['frames']} frames",
            offset=seg.offset, segment="FIDX",
        )  # fmt: skip
    entries = [_FIDX_ENTRY.unpack_from(payload, 4 + _FIDX_ENTRY.size * i) for i in range(n)]
    # Frames follow FIDX in order without overlapping, each at least as large as its blocks
    # need: so n frames cannot claim more pixels than the stream's bytes describe (a HEAD of
    # 65535 frames whose entries all point at one FRAM is refused here, before decode
    # allocates). Entries past the end are kept: a truncated stream still delivers the
    # frames before the cut (check_frame_present).
    min_size = frame_min_size(head["rows"], head["cols"], head["transform"], head["entropy"])
    previous_end = after
    for i, (off, size) in enumerate(entries):
        if off < previous_end or size < min_size:
            why = (f"shorter than the {min_size} bytes a {head['rows']} x {head['cols']} frame needs" if size < min_size
                   else f"overlaps or precedes what comes before it (ends at {previous_end})")  # fmt: skip
            raise CorruptStreamError(
                f"frame {i} entry (offset {off}, size {size}) {why}", offset=seg.offset, segment="FIDX"
            )
        previous_end = off + size
    return [(int(o), int(s)) for o, s in entries]


def _parse_table(payload: memoryview, pos: int, alphabet: int, seg: Segment, name: str) -> tuple[HuffmanTable, int]:
    if pos + 32 > len(payload):
        raise TruncatedStreamError(f"{name} Huffman BITS cut off", offset=seg.offset, segment="FRAM")
    bits = np.frombuffer(payload, dtype="<u2", count=16, offset=pos).astype(np.int32)
    n = int(bits.sum())
    pos += 32
    if n > alphabet or pos + 2 * n > len(payload):
        raise CorruptStreamError(f"{name} Huffman table claims {n} symbols", offset=seg.offset, segment="FRAM")
    huffval = np.frombuffer(payload, dtype="<u2", count=n, offset=pos).astype(np.int32)
    table = HuffmanTable(bits, huffval)
    table.validate(alphabet, offset=seg.offset, segment=f"FRAM {name} table")
    return table, pos + 2 * n


def frame_payload(data: bytes | bytearray | memoryview, entry: tuple[int, int], *, verify: bool = True) -> memoryview:
    """The payload of the FRAM segment a FIDX entry points at (CRC and type checked)."""
    mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    off, size = entry
    seg, payload = _read_segment(mv, off, verify=verify)
    if seg.type != "FRAM" or seg.length + 12 != size:
        raise CorruptStreamError(
            f"frame index points at {seg.type} of {seg.length + 12} bytes, expected FRAM of {size}",
            offset=off, segment="FIDX",
        )  # fmt: skip
    return payload


def parse_frame(
    data: bytes | bytearray | memoryview, header: MdcHeader, entry: tuple[int, int], *, verify: bool = True
) -> tuple[FrameRecord, int]:
    """Read one FRAM segment; returns the record and the offset of its coded bytes."""
    mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    off, size = entry
    seg, payload = _read_segment(mv, off, verify=verify)
    if seg.type != "FRAM" or seg.length + 12 != size:
        raise CorruptStreamError(
            f"frame index points at {seg.type} of {seg.length + 12} bytes, expected FRAM of {size}",
            offset=off,
            segment="FIDX",
        )
    if len(payload) < _FRAM_HEAD.size:
        raise CorruptStreamError("FRAM header cut off", offset=off, segment="FRAM")
    index, qtable, size_bits, flags = _FRAM_HEAD.unpack_from(payload)
    if flags & ~FRAM_FLAG_PADDING_MASK:
        raise CorruptStreamError(f"FRAM flags 0x{flags:04X}: unknown bits set", offset=off, segment="FRAM")
    if index >= header.frames or qtable >= len(header.qtables) or size_bits != SIZE_BITS:
        raise CorruptStreamError(
            f"FRAM frame {index} / table {qtable} / size_bits {size_bits} inconsistent with HEAD "
            f"({header.frames} frames, {len(header.qtables)} tables, size_bits {SIZE_BITS})",
            offset=off, segment="FRAM",
        )  # fmt: skip
    n_dc, n_ac = alphabet_sizes(SIZE_BITS)
    pos = _FRAM_HEAD.size
    dc, pos = _parse_table(payload, pos, n_dc, seg, "DC")
    ac, pos = _parse_table(payload, pos, n_ac, seg, "AC")
    if pos + 4 > len(payload):
        raise TruncatedStreamError("FRAM coded length cut off", offset=off, segment="FRAM")
    (ncoded,) = struct.unpack_from("<I", payload, pos)
    pos += 4
    end, mask = pos + ncoded, None
    if flags & FRAM_FLAG_PADDING_MASK:
        if end + 4 > len(payload):
            raise CorruptStreamError("FRAM padding mask length cut off", offset=off, segment="FRAM")
        (nmask,) = struct.unpack_from("<I", payload, end)
        if end + 4 + nmask != len(payload):
            raise CorruptStreamError(
                f"FRAM padding mask length {nmask} disagrees with segment length", offset=off, segment="FRAM"
            )
        mask = bytes(payload[end + 4 :])
    elif end != len(payload):
        raise CorruptStreamError(
            f"FRAM coded length {ncoded} disagrees with segment length", offset=off, segment="FRAM"
        )
    by, bx = blocks_shape(header.rows, header.cols)
    if by * bx > 4 * ncoded:
        raise CorruptStreamError(
            f"{by * bx} blocks cannot be coded in {ncoded} bytes (at least 2 bits per block)",
            offset=off, segment="FRAM",
        )  # fmt: skip
    return FrameRecord(index, qtable, dc, ac, payload[pos:end], mask), off + 8 + pos


# ------------------------------------------------------------------ the compact layout (format 2.4)


def put_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (>= 0) as LEB128: 7 bits a byte, low first, high bit = more follow."""
    if value < 0:
        raise InvalidInputError(f"varint of a negative value {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return


def put_svarint(out: bytearray, value: int) -> None:
    """Append a signed ``value`` as the varint of its zigzag code (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...)."""
    put_varint(out, 2 * value if value >= 0 else -2 * value - 1)


def _zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -(z >> 1) - 1


#: Largest Rice parameter of a Rice block (§16: values of up to 17 bits, zigzag of a u16 difference).
MAX_RICE_K = 16


def put_rice(out: bytearray, values: list[int]) -> None:
    """Append signed ``values`` as a Rice block (§16): u8 ``k`` (the cheapest, 0..16), then per value
    its zigzag code ``z`` as ``z >> k`` one bits, a zero bit and the low ``k`` bits of ``z``, most
    significant first, packed MSB first and padded with zero bits to a byte."""
    zs = [_zigzag(v) for v in values]
    ks = np.arange(MAX_RICE_K + 1, dtype=np.int64)  # each k's bits at once; argmin: the first least, as min()
    k = int(np.argmin((np.asarray(zs, np.int64)[None, :] >> ks[:, None]).sum(axis=1) + len(zs) * (1 + ks))) if zs else 0
    out.append(k)
    acc = nbits = 0
    for z in zs:
        q = z >> k
        for part, width in (((1 << q) - 1 << 1, q + 1), (z & ((1 << k) - 1), k)):
            acc, nbits = acc << width | part, nbits + width
            while nbits >= 8:
                nbits -= 8
                out.append(acc >> nbits & 0xFF)
            acc &= (1 << nbits) - 1
    if nbits:
        out.append(acc << (8 - nbits) & 0xFF)


class Reader:
    """Reads the fields of a compact payload; every read is bounds-checked and raises
    :class:`CorruptStreamError` (a field cut off or too large) naming the segment's offset."""

    def __init__(self, payload: bytes | memoryview, offset: int, segment: str):
        self.data = payload
        self.pos = 0
        self.offset = offset
        self.segment = segment

    def fail(self, what: str) -> CorruptStreamError:
        return CorruptStreamError(f"{self.segment}: {what}", offset=self.offset, segment=self.segment)

    def u8(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise self.fail(f"{what} cut off")
        self.pos += 1
        return int(self.data[self.pos - 1])

    def varint(self, what: str, limit: int) -> int:
        """An unsigned LEB128 value, at most ``limit`` (and at most ceil(bits / 7) bytes)."""
        value = shift = 0
        max_bytes = max(1, -(-int(limit).bit_length() // 7))
        for _ in range(max_bytes):
            byte = self.u8(what)
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if value > limit:
                    raise self.fail(f"{what} = {value} exceeds {limit}")
                return value
        raise self.fail(f"{what} longer than {max_bytes} bytes")

    def svarint(self, what: str, limit: int) -> int:
        """A zigzag varint, within -limit-1 .. limit."""
        return _unzigzag(self.varint(what, 2 * limit + 1))

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"{what} ({n} bytes) cut off")
        self.pos += n
        return memoryview(self.data)[self.pos - n : self.pos]

    def rice(self, n: int, what: str, limit: int) -> list[int]:
        """``n`` signed values of a Rice block (:func:`put_rice`), each within -limit-1 .. limit.

        The bits are read as a string of '0' / '1' (a window of the payload, widened when a value
        may need more), each unary run found by ``str.find``: the same values and the same errors
        as bit by bit (a run of more than ``zmax >> k`` ones is "beyond", a run or low bits the
        payload ends in "cut off"; ``tests/codec/test_decode_fast.py``), in fewer Python steps."""
        k = self.u8(f"{what} Rice parameter")
        if k > MAX_RICE_K:
            raise self.fail(f"{what} Rice parameter {k} > {MAX_RICE_K}")
        zmax = 2 * limit + 1
        span = (zmax >> k) + 1  # the bits a unary run may take with its zero: q << k > zmax <=> q > zmax >> k
        data, start = self.data, self.pos
        nbytes = len(data) - start
        end = 8 * nbytes  # bits from start
        bits, covered = "", 0
        bit = 0
        values: list[int] = []
        append = values.append
        for _ in range(n):
            if bit + span + k > covered and covered < end:  # widen: at least doubled, linear in all
                nb = min(nbytes, max(-(-(bit + span + k) // 8), 2 * (covered // 8) + 16))
                bits = format(int.from_bytes(data[start : start + nb], "big"), f"0{8 * nb}b")
                covered = 8 * nb
            j = bits.find("0", bit, bit + span)
            if j < 0:
                raise self.fail(f"{what} beyond {limit}" if bit + span <= end else f"{what} cut off")
            z = j - bit
            bit = j + 1 + k
            if bit > end:
                raise self.fail(f"{what} cut off")
            if k:
                z = z << k | int(bits[j + 1 : bit], 2)
                if z > zmax:
                    raise self.fail(f"{what} beyond {limit}")
            append(-(z >> 1) - 1 if z & 1 else z >> 1)
        self.pos = start + -(-bit // 8)
        return values

    def f64(self, what: str) -> float:
        return float(struct.unpack("<d", self.take(8, what))[0])

    def rest(self) -> memoryview:
        return self.take(len(self.data) - self.pos, "rest")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} bytes left over after the last field")


def _compact_head_payload(header: MdcHeader, meta: dict[str, Any]) -> bytes:
    """HEAD of the compact layout (§16.1): the fields of the long form that are present, as varints."""
    rescale = (header.rescale_slope, header.rescale_intercept) != (1.0, 0.0)
    window = header.window_center is not None and header.window_width is not None
    pad = meta.get("padding")
    flags = FLAG_COMPACT | (FLAG_RESCALE if rescale else 0) | (FLAG_WINDOW if window else 0)
    flags |= (FLAG_2D if meta.get("ndim") == 2 else 0) | (FLAG_PADDING if pad is not None else 0)
    out = bytearray(struct.pack("<HHB", *header.version, flags))
    for v in (header.rows, header.cols, header.frames):
        put_varint(out, v)
    attrs = int(header.signed) | PHOTOMETRIC_CODES[header.photometric_interpretation] << 1
    attrs |= header.transform << 2 | header.entropy << 4
    out += bytes([header.bits_stored, attrs, header.quality or 0, header.range_bits])
    put_varint(out, 0 if header.max_error is None else header.max_error + 1)
    if rescale:
        out += struct.pack("<dd", header.rescale_slope, header.rescale_intercept)
    if window:
        out += struct.pack("<dd", header.window_center, header.window_width)
    if pad is not None:
        put_svarint(out, int(pad[0]))
        put_svarint(out, int(pad[1]))
    return bytes(out)


def _parse_compact_head(payload: memoryview, seg: Segment) -> dict[str, Any]:
    """Inverse of :func:`_compact_head_payload`; the same limits as the long form (:func:`_check_head`).

    Returns the long form's fields plus ``compact`` and ``_meta`` (``ndim`` / ``padding`` the flags carry)."""
    r = Reader(payload, seg.offset, "HEAD")
    vmaj = r.u8("version") | r.u8("version") << 8
    vmin = r.u8("version") | r.u8("version") << 8
    flags = r.u8("flags")
    if vmaj != 2 or vmin < 4 or not flags & FLAG_COMPACT or flags & ~_COMPACT_FLAGS:
        if vmaj not in CODINGS:
            raise UnsupportedFeatureError(
                f"HEAD: .mdc format version {vmaj}.{vmin} is not supported (this reader: 1.x, 2.x)"
            )
        raise CorruptStreamError(
            f"HEAD payload is {len(payload)} bytes, expected 64 (or the compact form of version >= 2.4: "
            f"version {vmaj}.{vmin}, flags {flags:#x})", offset=seg.offset, segment="HEAD",
        )  # fmt: skip
    rows = r.varint("rows", 1 << 32)
    cols = r.varint("cols", 1 << 32)
    frames = r.varint("frames", 1 << 32)
    bits, attrs, quality, range_bits = (r.u8(n) for n in ("bits_stored", "attributes", "quality", "range_bits"))
    max_error = r.varint("max_error", 0xFFFF) - 1
    slope, intercept = (r.f64("rescale"), r.f64("rescale")) if flags & FLAG_RESCALE else (1.0, 0.0)
    wc, ww = (r.f64("window"), r.f64("window")) if flags & FLAG_WINDOW else (math.nan, math.nan)
    meta: dict[str, Any] = {}
    if flags & FLAG_PADDING:
        meta["padding"] = [r.svarint("padding", 1 << 16), r.svarint("padding", 1 << 16)]
    if flags & FLAG_2D:
        meta["ndim"] = 2
    r.end()
    if attrs & 0x80:
        raise CorruptStreamError(f"HEAD attributes {attrs:#x}: unknown bit 7 set", offset=seg.offset, segment="HEAD")
    fields = (
        vmaj,
        vmin,
        rows,
        cols,
        frames,
        bits,
        attrs & 1,
        attrs >> 1 & 1,
        attrs >> 2 & 3,
        attrs >> 4 & 7,
        quality,
        range_bits,
        flags,
        slope,
        intercept,
        wc,
        ww,
        NO_MAX_ERROR if max_error < 0 else max_error,
    )
    head = _check_head(fields, seg)
    coding = (head["transform"], head["entropy"])
    if coding != (TRANSFORM_DCT8, ENTROPY_MULTI) and not (
        coding == (TRANSFORM_PREDICTIVE, ENTROPY_ARITH) and (vmaj, vmin) >= VERSION_210
    ):
        raise UnsupportedFeatureError(
            "HEAD: the compact layout is defined for DCT streams of entropy coder 2 (2.4) and for predictive "
            f"streams from version 2.10, not transform {coding[0]} / entropy coder {coding[1]} in {vmaj}.{vmin}"
        )
    if flags & FLAG_2D and frames != 1:
        raise CorruptStreamError(f"HEAD says a 2-D image but announces {frames} frames", offset=seg.offset,
                                 segment="HEAD")  # fmt: skip
    return {**head, "compact": True, "_meta": meta}


def _compact_qtab(tables: tuple[np.ndarray, ...]) -> bytes:
    """QTAB of the compact layout (§16.2): per table the 64 steps in zigzag order, the first as a
    varint, the 63 differences to the step before as a Rice block (:func:`put_rice`)."""
    from .zigzag import ZIGZAG

    out = bytearray([len(tables)])
    for t in tables:
        zz = np.asarray(t, dtype=np.int64).ravel()[ZIGZAG]
        put_varint(out, int(zz[0]))
        put_rice(out, np.diff(zz).tolist())
    return bytes(out)


def _parse_compact_qtab(payload: memoryview, seg: Segment) -> tuple[np.ndarray, ...]:
    from .zigzag import ZIGZAG

    r = Reader(payload, seg.offset, "QTAB")
    n = r.u8("table count")
    if not 1 <= n <= LIMITS["max_qtables"]:
        raise r.fail(f"{n} tables, expected 1..{LIMITS['max_qtables']}")
    tables = []
    for _ in range(n):
        zz = np.empty(64, dtype=np.int64)
        zz[0] = r.varint("step", 65535)
        zz[1:] = r.rice(63, "step differences", 65535)
        zz = np.cumsum(zz)
        if int(zz.min()) < 1 or int(zz.max()) > 65535:
            raise r.fail(f"a step outside 1..65535 ({int(zz.min())}..{int(zz.max())})")
        nat = np.empty(64, dtype=np.uint16)
        nat[ZIGZAG] = zz
        tables.append(nat)
    r.end()
    return tuple(tables)


def _compact_fidx(entries: list[tuple[int, int]], after: int) -> bytes:
    """FIDX of the compact layout (§16.3): per frame the u32 end of its FRAM segment, counted from
    ``after`` (the end of the FIDX segment); frames follow each other without gaps."""
    ends: list[int] = []
    for off, size in entries:
        if off != after + (ends[-1] if ends else 0):
            raise InvalidInputError("the compact layout needs frames written back to back after FIDX")
        ends.append(off + size - after)
    return np.asarray(ends, dtype="<u4").tobytes()


def _parse_compact_fidx(payload: memoryview, seg: Segment, head: dict[str, Any], after: int) -> list[tuple[int, int]]:
    n = head["frames"]
    if len(payload) != 4 * n:
        raise CorruptStreamError(f"FIDX of {len(payload)} bytes, expected 4 x {n} frames", offset=seg.offset,
                                 segment="FIDX")  # fmt: skip
    ends = np.frombuffer(payload, dtype="<u4").astype(np.int64)
    min_size = compact_frame_min_size(head["rows"], head["cols"], head["transform"])
    sizes = np.diff(ends, prepend=0)
    bad = np.flatnonzero(sizes < min_size)
    if bad.size:
        i = int(bad[0])
        raise CorruptStreamError(
            f"frame {i} entry (end {int(ends[i])}, size {int(sizes[i])}) shorter than the {min_size} bytes a "
            f"{head['rows']} x {head['cols']} frame needs, or before the frame before it", offset=seg.offset,
            segment="FIDX",
        )  # fmt: skip
    starts = after + ends - sizes
    return [(int(o), int(s)) for o, s in zip(starts.tolist(), sizes.tolist())]


#: Fixed bytes of a compact FRAM payload: its frame index and flags (one varint byte each at least).
FRAM_COMPACT_FIXED = 2
#: The same for a compact predictive FRAM (§20): index, flags, VMIN, the span, T1 and the two
#: threshold steps (one varint byte each at least).
FRAM_COMPACT_PREDICTIVE_FIXED = 7


def compact_frame_min_size(rows: int, cols: int, transform: int = TRANSFORM_DCT8) -> int:
    """Fewest bytes a compact FRAM segment of a rows x cols frame takes (§16.4, §20): framing, the
    fixed fields, and the coded bytes the bomb limit asks for (:data:`MAX_BLOCKS_PER_BYTE` of a DCT
    frame, :data:`MIN_PIXELS_PER_BYTE` of a predictive one)."""
    if transform == TRANSFORM_PREDICTIVE:
        return 12 + FRAM_COMPACT_PREDICTIVE_FIXED + -(-rows * cols // MIN_PIXELS_PER_BYTE)
    by, bx = blocks_shape(rows, cols)
    return 12 + FRAM_COMPACT_FIXED + -(-by * bx // MAX_BLOCKS_PER_BYTE)


def compact_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """What is left of ``meta`` for a ``meta`` segment once the compact HEAD carries ``ndim`` 2 and
    ``padding`` (nothing, for every stream medcodec writes)."""
    rest = {k: v for k, v in meta.items() if k not in ("ndim", "padding")}
    if meta.get("ndim", 3) != 2 and "ndim" in meta:
        rest["ndim"] = meta["ndim"]
    return rest
