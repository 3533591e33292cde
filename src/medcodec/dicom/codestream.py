"""What a compressed frame's own headers say about its coding, for syntaxes that may be lossy or not.

DICOM requires Lossy Image Compression (0028,2110) ``01`` on lossy images, but files made by old
or careless tools omit it; for JPEG 2000 (.91, HTJ2K .203) and JPEG-LS (.81), whose syntaxes allow
both, the codestream tells. :func:`codestream_is_lossy` reads only marker segments (no decoding):

* JPEG 2000 / HTJ2K (ISO 15444-1 A.6.1, -15): the COD segment of the main header names the
  wavelet; ``0`` = the irreversible 9-7, lossy whatever the rate. The reversible 5-3 is exact only
  when no layer was dropped, which the headers do not say: ``None`` (unknown).
* JPEG-LS (ISO 14495-1 C.2.3): the NEAR parameter of the first scan header; ``> 0`` is
  near-lossless (lossy), ``0`` exact.

Anything else (or a stream it cannot parse) is ``None``: the caller keeps to the header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydicom.encaps import generate_fragments

from ..registry import pixel_data_compressed, pixel_data_is_lossy, transfer_syntax

__all__ = ["codestream_is_lossy", "stored_pixels_lossy", "stored_lossy_step", "PIXEL_SUMMARY", "SUMMARY_BYTES"]

_J2K_SYNTAXES = frozenset(
    f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93, 201, 202, 203)
)  # fmt: skip
_JPEG_LS_SYNTAXES = frozenset(["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"])
#: How far into a fragment the main header (J2K) or first scan header (JPEG-LS) is looked for.
_SCAN_LIMIT = 1 << 16


def codestream_is_lossy(uid: str, fragment: bytes | bytearray | memoryview) -> bool | None:
    """Whether the frame ``fragment`` (the first fragment of encapsulated pixel data under
    transfer syntax ``uid``) is lossy by its own headers; ``None`` when they do not say.

    >>> near_2 = bytes.fromhex("ffd8" "fff7000b100010000101010011" "ffda0008010100020000")  # SOI SOF55 SOS
    >>> codestream_is_lossy("1.2.840.10008.1.2.4.81", near_2)
    True
    >>> codestream_is_lossy("1.2.840.10008.1.2.4.50", b"")  # not a syntax that may be either
    """
    data = bytes(fragment[:_SCAN_LIMIT])
    try:
        if uid in _J2K_SYNTAXES:
            return _j2k(data)
        if uid in _JPEG_LS_SYNTAXES:
            return _jpeg_ls(data)
    except (IndexError, ValueError):  # a truncated or odd header: not ours to judge
        return None
    return None


def _j2k(data: bytes) -> bool | None:
    start = data.find(b"\xff\x4f\xff\x51")  # SOC SIZ (a JP2 file wraps the codestream in boxes)
    if start < 0:
        return None
    pos = start + 2
    while pos + 4 <= len(data):
        marker = int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xFF90 or marker == 0xFF93:  # SOT / SOD: the main header ended without a COD
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xFF52:  # COD: Lcod Scod SGcod(4) SPcod: levels, xcb, ycb, style, transform
            transform = data[pos + 4 + 1 + 4 + 4]
            return True if transform == 0 else None
        if length < 2:
            return None
        pos += 2 + length
    return None


def _jpeg_segments(data: bytes | bytearray | memoryview, pos: int) -> Iterator[tuple[int, int]]:
    """``(offset, marker)`` of each marker segment of a JPEG / JPEG-LS codestream from ``pos`` (just
    after SOI), fill bytes skipped, until the data end or do not look like a segment."""
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        yield pos, marker
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return
        pos += 2 + length


def _jpeg_ls(data: bytes) -> bool | None:
    pos = data.find(b"\xff\xd8")
    if pos < 0:
        return None
    for at, marker in _jpeg_segments(data, pos + 2):
        if marker == 0xDA:  # SOS: Ls Ns (Ci Tmi) x Ns NEAR ILV Al/Ah
            ns = data[at + 4]
            return data[at + 5 + 2 * ns] > 0
    return None


#: The attribute a header read without its pixel data (:func:`medcodec.dicom.image.read_image`) keeps
#: of its encapsulated pixel data: (the first fragment's first :data:`SUMMARY_BYTES` bytes, the bytes
#: of all its fragments), for the two functions below.
PIXEL_SUMMARY = "_medcodec_pixel_summary"
SUMMARY_BYTES = _SCAN_LIMIT


def stored_pixels_lossy(ds: Any, ts: str) -> bool:
    """Whether the pixel data of ``ds`` (a pydicom Dataset read in its stored syntax ``ts``) are
    lossy: flagged ``01`` or in a syntax that is always lossy
    (:func:`medcodec.registry.pixel_data_is_lossy`), or, for a header that omits (0028,2110), its
    first frame's own headers (:func:`codestream_is_lossy`; from :data:`PIXEL_SUMMARY` for a header
    read without its pixel data; neither: no)."""
    flag = ds.get("LossyImageCompression")
    if pixel_data_is_lossy(ts, flag):
        return True
    if str(flag or "").strip() or not pixel_data_compressed(ts):
        return False
    first = _first_fragment(ds)
    return first is not None and codestream_is_lossy(ts, first) is True


def _first_fragment(ds: Any) -> bytes | None:
    if "PixelData" not in ds:
        summary = getattr(ds, PIXEL_SUMMARY, None)
        return summary[0] if summary is not None else None
    try:
        fragments = generate_fragments(ds.PixelData)
        next(fragments)  # the Basic Offset Table
        return bytes(next(fragments))  # a frame's headers are in its first fragment: nothing joined
    except Exception:  # damaged encapsulation: the pixel path reports it
        return None


def stored_lossy_step(ds: Any, ts: str) -> tuple[str | None, float | None]:
    """Method and ratio of the compression step ``ds``'s pixel data are stored in (read in its
    stored syntax ``ts``): the syntax's Lossy Image Compression Method (``None`` for a syntax that
    is lossless or unknown here) and the decoded size of its frames over their coded size
    (``None`` when they are not encapsulated or cannot be measured; from :data:`PIXEL_SUMMARY`
    for a header read without its pixel data)."""
    if not pixel_data_compressed(ts):
        return None, None
    try:
        method = transfer_syntax(ts).method
    except Exception:  # a syntax medcodec does not know (MPEG...): no method to name
        method = None
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
        raw = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1) * frames
        raw = raw * int(ds.BitsAllocated) // 8
        if "PixelData" not in ds:
            coded = int(getattr(ds, PIXEL_SUMMARY)[1])
        else:
            fragments = generate_fragments(ds.PixelData)
            next(fragments)  # the Basic Offset Table
            coded = sum(len(f) for f in fragments)
    except Exception:  # (no ratio then: the method alone may still pair)
        return method, None
    return method, (raw / coded if coded and raw else None)


def mark_extended(data: bytearray | memoryview) -> bool:
    """Make the JPEG codestream ``data`` (changed in place) say extended sequential: its SOF0 marker
    SOF1 (ISO 10918-1: a baseline frame is an extended one with 8-bit samples; the segment is the
    same bytes, so no length or offset moves). What JPEG Extended ``.51`` carries for 8-bit samples,
    as DCMTK's ``dcmcjpeg +ee`` writes it. False when ``data`` is not a baseline or extended
    sequential codestream (nothing changed)."""
    sof = jpeg_frame_marker_offset(data)
    if sof is None or data[sof + 1] not in (0xC0, 0xC1):
        return False
    data[sof + 1] = 0xC1
    return True


def jpeg_frame_marker_offset(data: bytes | bytearray | memoryview) -> int | None:
    """Offset of the start-of-frame marker (``FF C0``-``FF CF`` except DHT ``C4``, JPG ``C8``,
    DAC ``CC``) of the JPEG codestream ``data``, walking its marker segments from SOI; None when
    ``data`` is not such a codestream or ends before one."""
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    for at, marker in _jpeg_segments(data, 2):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return at
        if marker in (0xDA, 0xD9):  # a scan or the end before any frame header
            return None
    return None
