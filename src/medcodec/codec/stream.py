"""ISO/IEC 10918-1 (T.81) stream syntax for one grayscale image: build and parse, no pixels.

What :func:`build_jpeg` writes (T.81 Annex B, sequential DCT-based, Huffman, one component)::

    SOI
    DQT   one table, Tq=0; Pq=0 (8-bit Qk) or, at P=12 when a step exceeds 255, Pq=1  §B.2.4.1
    SOFn  SOF0 (baseline, P=8) or SOF1 (extended sequential, P=12); Nf=1, H=V=1     §B.2.2
    DHT   DC table Tc=0 Th=0 and AC table Tc=1 Th=0                               §B.2.4.2
    [DRI  Ri blocks per restart interval]                                          §B.2.4.4
    SOS   Ns=1, Td=Ta=0, Ss=0, Se=63, Ah=Al=0                                       §B.2.3
    entropy-coded data, 0xFF stuffed with 0x00, [RSTm every Ri blocks]      §F.1.2.3, §B.2.1
    EOI

What :func:`parse_jpeg` reads: SOF0 and SOF1 with a single component whatever its sampling
factors, P=8 or 12, any number of DQT (Pq 0/1) and DHT segments anywhere before the scan,
DRI, APPn and COM (skipped), fill bytes before markers, restart markers. Everything else is
refused with :class:`~medcodec.errors.UnsupportedFeatureError` naming it (progressive,
lossless, hierarchical and arithmetic-coded processes, JPEG-LS, DNL, colour); damage raises
:class:`~medcodec.errors.CorruptStreamError` / :class:`~medcodec.errors.TruncatedStreamError`
with the byte offset and the T.81 section. The marker segments are :mod:`.markers`'.
The encoder and decoder of the pixels are :mod:`.jpeg`'s.
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import (
    CorruptStreamError,
    InvalidInputError,
    NonConformantStreamWarning,
    TruncatedStreamError,
    UnsupportedFeatureError,
)
from . import _kernels as K
from . import container, entropy
from . import markers as M
from .transform import NAT_ZZ, blocks_shape

#: Huffman alphabet sizes of T.81's 4-bit size field (DC categories 0-11, AC run/size bytes).
DC_ALPHABET, AC_ALPHABET = entropy.alphabet_sizes(4)

__all__ = ["precision_for", "build_jpeg", "JpegFrame", "parse_jpeg"]


def precision_for(bits_stored: int) -> int:
    """Sample precision P of the JPEG stream for ``bits_stored``: 8 up to 8 bits, 12 up to 12.

    Raises
    ------
    InvalidInputError
        For 13-16 bits, which DCT-based JPEG cannot hold (T.81 §B.2.2: P is 8 or 12).
    """
    if bits_stored <= 8:
        return 8
    if bits_stored <= 12:
        return 12
    raise InvalidInputError(
        f"bits_stored={bits_stored}: DCT-based JPEG holds 8- or 12-bit samples only (T.81 §B.2.2, Table B.2); "
        "use format='mdc', or map the series into 12 bits first (medcodec.dicom does that with a rescale)"
    )


def build_jpeg(
    coded: bytes,
    *,
    P: int,
    Y: int,
    X: int,
    steps: np.ndarray,
    dc_table: entropy.HuffmanTable,
    ac_table: entropy.HuffmanTable,
    restart_interval: int = 0,
) -> bytes:
    """Wrap entropy-coded data into a complete single-component JPEG stream (syntax above).

    SOF0 is used for P=8 (baseline: 8-bit samples, 8-bit Qk, two tables of each kind at
    most), SOF1 for P=12.
    """
    head = _jpeg_head(np.ascontiguousarray(steps, dtype=np.uint16).tobytes(), P, Y, X, restart_interval)
    return b"".join((head[0], _dht_bytes(dc_table, ac_table), head[1], coded, _EOI))


_EOI = M.EOI.to_bytes(2, "big")


@functools.lru_cache(maxsize=256)
def _jpeg_head(steps: bytes, P: int, Y: int, X: int, restart_interval: int) -> tuple[bytes, bytes]:
    """The segments of :func:`build_jpeg` that do not depend on the image's Huffman tables: SOI, DQT,
    SOF (before the DHT) and [DRI,] SOS (after it); memoised (one quality and size per series)."""
    qt = M.QuantizationTable.from_steps(np.frombuffer(steps, np.uint16), Tq=0)
    if P == 8 and qt.Pq:
        raise InvalidInputError(
            "8-bit sample precision requires Pq=0: quantization steps must be <= 255 (T.81 §B.2.4.1)"
        )
    before = (
        M.SOI.to_bytes(2, "big")
        + M.Dqt((qt,)).to_bytes()
        + M.Sof(M.SOF0 if P == 8 else M.SOF1, P, Y, X, (M.FrameComponent(1, 1, 1, 0),)).to_bytes()
    )
    after = M.Dri(restart_interval).to_bytes() if restart_interval else b""
    return before, after + M.Sos((M.ScanComponent(1, 0, 0),)).to_bytes()


@functools.lru_cache(maxsize=256)
def jpeg_head_arrays(steps: bytes, P: int, Y: int, X: int, restart_interval: int) -> tuple[np.ndarray, np.ndarray]:
    """The segments before the DHT (SOI, DQT, SOF) and after it ([DRI,] SOS) of :func:`build_jpeg`, as
    uint8 arrays for the kernel that writes the whole stream (``_kernels.encode_jpeg_texture``);
    ``steps``: the uint16 natural-order steps' bytes. Memoised (one quality and size per series)."""
    before, after = _jpeg_head(steps, P, Y, X, restart_interval)
    return np.frombuffer(before, np.uint8).copy(), np.frombuffer(after, np.uint8).copy()


def _dht_bytes(dc_table: entropy.HuffmanTable, ac_table: entropy.HuffmanTable) -> bytes:
    """The DHT segment of the two tables (T.81 §B.2.4.2), the bytes ``M.Dht(...).to_bytes()``
    writes (checked by tests/codec/test_jpeg.py), without building the segment objects."""
    parts = []
    for tc, t in ((0, dc_table), (1, ac_table)):
        bits = np.asarray(t.bits)
        val = np.asarray(t.huffval)
        b8 = bits.astype(np.uint8)
        v8 = val.astype(np.uint8)
        # valid: 16 counts of the values given, every value a byte (the uint8 copies are exact)
        if (
            bits.shape != (16,)
            or int(b8.sum(dtype=np.int64)) != val.size
            or not (np.array_equal(b8, bits) and np.array_equal(v8, val))
        ):
            specs = (M.HuffmanSpec.from_table(dc_table, Tc=0), M.HuffmanSpec.from_table(ac_table, Tc=1))
            return M.Dht(specs).to_bytes()  # raises the segment's own error
        parts.append(bytes((tc << 4,)) + b8.tobytes() + v8.tobytes())
    body = b"".join(parts)
    return M.DHT.to_bytes(2, "big") + (len(body) + 2).to_bytes(2, "big") + body


@dataclass(frozen=True)
class JpegFrame:
    """What :func:`parse_jpeg` learns from the marker segments of a stream (no entropy decoding).

    Attributes
    ----------
    sof
        The frame header.
    sos
        The scan header.
    qtable
        The quantization table of the component (as defined when the scan starts).
    dc_table, ac_table
        The Huffman tables the scan selects (Td, Ta).
    Ri
        Restart interval in effect for the scan (0: none).
    scan_start, scan_end
        Byte range of the entropy-coded data (restart markers included).
    segments
        Every marker segment with its byte offset: ``Segment(type, offset, length)`` where
        ``length`` is the segment's length field (``ECS`` entries: the data's byte count).
    """

    sof: M.Sof
    sos: M.Sos
    qtable: M.QuantizationTable
    dc_table: entropy.HuffmanTable
    ac_table: entropy.HuffmanTable
    Ri: int
    scan_start: int
    scan_end: int
    segments: tuple[container.Segment, ...] = field(default=(), repr=False)

    @property
    def P(self) -> int:
        return self.sof.P

    @property
    def nblocks(self) -> int:
        by, bx = blocks_shape(self.sof.Y, self.sof.X)
        return by * bx


_UNSUPPORTED_MARKERS = {
    M.DAC: "arithmetic coding conditioning (DAC, T.81 §B.2.4.3): arithmetic-coded JPEG",
    M.DHP: "hierarchical mode (DHP, T.81 §B.3.2)",
    M.EXP: "hierarchical mode (EXP, T.81 §B.3.3)",
    M.DNL: "a define-number-of-lines segment (DNL, T.81 §B.2.5): the image height must be in the frame header",
    0xFFF7: "JPEG-LS (SOF55, ISO/IEC 14495-1)",
}


def _check_frame_header(sof: M.Sof, offset: int) -> None:
    name = M.marker_name(sof.marker)
    if sof.marker not in (M.SOF0, M.SOF1):
        raise UnsupportedFeatureError(
            f"{name} at byte offset {offset}: {sof.process} is not supported; medcodec decodes baseline "
            "(SOF0) and extended sequential Huffman (SOF1) DCT JPEG (T.81 Table B.1)"
        )
    allowed = (8,) if sof.marker == M.SOF0 else (8, 12)
    if sof.marker == M.SOF1 and sof.P == 16:
        raise UnsupportedFeatureError(
            f"{name} at byte offset {offset}: P=16 DCT-based JPEG is not part of ISO 10918-1 (T.81 §B.2.2 allows "
            "P=8 or 12 for DCT processes); some encoders (e.g. GDCM's experimental lossy mode) write it"
        )
    if sof.P not in allowed:
        raise CorruptStreamError(
            f"P={sof.P} is invalid for {name}, expected {' or '.join(map(str, allowed))} (T.81 §B.2.2, Table B.2)",
            offset=offset, segment=name,
        )  # fmt: skip
    if sof.Nf != 1:
        raise UnsupportedFeatureError(
            f"{name} at byte offset {offset}: Nf={sof.Nf} components; medcodec decodes grayscale (Nf=1) JPEG only, "
            "not colour (T.81 §B.2.2)"
        )
    if sof.Y == 0:
        raise UnsupportedFeatureError(
            f"{name} at byte offset {offset}: Y=0, the number of lines is given by a DNL segment (T.81 §B.2.5), "
            "which medcodec does not support"
        )
    if sof.Y * sof.X > container.LIMITS["max_frame_pixels"]:
        raise CorruptStreamError(
            f"{sof.Y} x {sof.X} pixels exceed the limit of {container.LIMITS['max_frame_pixels']}",
            offset=offset, segment=name,
        )  # fmt: skip


#: Known, harmless deviations from T.81 that real encoders wrote, decoded (with a
#: :class:`~medcodec.errors.NonConformantStreamWarning`) unless ``strict``: the one place they are
#: listed. Key -> why it is harmless.
KNOWN_DEVIATIONS = {
    "sequential_se": "sequential DCT scans code all 64 coefficients whatever Se says (libjpeg ignores it; old "
    "encoders, e.g. in pydicom's JPEG-lossy.dcm, wrote Se=0)",
}


def tolerate(kind: str, message: str, *, strict: bool, offset: int, segment: str) -> None:
    """A known deviation (:data:`KNOWN_DEVIATIONS`): warn and go on, or refuse it in strict mode.

    Raises
    ------
    CorruptStreamError
        ``strict`` is true.
    """
    if strict:
        raise CorruptStreamError(f"{message} (strict mode refuses it)", offset=offset, segment=segment)
    warnings.warn(
        f"{message} at byte offset {offset} ({segment}); decoded anyway: {KNOWN_DEVIATIONS[kind]}",
        NonConformantStreamWarning,
        stacklevel=5,
    )


def _check_scan_header(sos: M.Sos, sof: M.Sof, offset: int, *, strict: bool = False) -> None:
    if sos.Ns != 1:
        raise CorruptStreamError(
            f"Ns={sos.Ns}, but the frame has one component (T.81 §B.2.3)", offset=offset, segment="SOS"
        )
    if sos.components[0].Cs != sof.components[0].Ci:
        raise CorruptStreamError(
            f"Cs={sos.components[0].Cs} names no component of the frame (Ci={sof.components[0].Ci}) (T.81 §B.2.3)",
            offset=offset, segment="SOS",
        )  # fmt: skip
    if (sos.Ss, sos.Ah, sos.Al) == (0, 0, 0) and sos.Se != 63:
        tolerate(
            "sequential_se", f"SOS declares Se={sos.Se}; sequential DCT requires Se=63 (T.81 §B.2.3)",
            strict=strict, offset=offset, segment="SOS",
        )  # fmt: skip
    elif (sos.Ss, sos.Se, sos.Ah, sos.Al) != (0, 63, 0, 0):
        raise CorruptStreamError(
            f"Ss={sos.Ss} Se={sos.Se} Ah={sos.Ah} Al={sos.Al}, sequential DCT requires 0, 63, 0, 0 (T.81 §B.2.3)",
            offset=offset, segment="SOS",
        )  # fmt: skip
    if sof.marker == M.SOF0 and (sos.components[0].Td > 1 or sos.components[0].Ta > 1):
        raise CorruptStreamError(
            f"baseline scan selects Huffman table Td={sos.components[0].Td} Ta={sos.components[0].Ta}, "
            "baseline allows 0 or 1 (T.81 §B.2.3)",
            offset=offset, segment="SOS",
        )  # fmt: skip


#: 0xFF followed by anything but a stuffed zero or RST0..RST7: a marker after entropy-coded data.
_MARKER_IN_DATA = re.compile(b"\xff[^\x00\xd0-\xd7]", re.DOTALL)
#: AC symbols with SSSS = 0 other than EOB (0x00) and ZRL (0xF0): T.81 §F.1.2.2.1 defines none.
_AC_ZERO_SIZE = frozenset(v for v in range(256) if v & 15 == 0 and v not in (0x00, 0xF0))


def _find_scan_end(buf: bytes, start: int) -> int:
    """Offset of the first marker after entropy-coded data that is not RSTn (T.81 §B.1.1.5, §F.1.2.3).

    Stuffed 0xFF00 and RST0..RST7 belong to the data; 0xFF fill bytes before a marker do
    not. Returns ``len(buf)`` if the data runs to the end of the buffer.
    """
    # 0xFF fill bytes, then a marker: the data ends at the first 0xFF of the run (one C-level search;
    # twin: _find_scan_end_reference)
    m = _MARKER_IN_DATA.search(buf, start)
    return len(buf) if m is None else m.start()


def _find_scan_end_reference(buf: bytes, start: int) -> int:
    """Byte-by-byte twin of :func:`_find_scan_end`."""
    n = len(buf)
    i = start
    while True:
        i = buf.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            return n
        nxt = buf[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
            i += 2
            continue
        return i


def _check_huffman(spec: M.HuffmanSpec, offset: int) -> entropy.HuffmanTable:
    alphabet = DC_ALPHABET if spec.Tc == 0 else AC_ALPHABET
    entropy.validate_lists(list(spec.L), list(spec.V), alphabet, offset=offset,
                           segment=f"DHT ({'DC' if spec.Tc == 0 else 'AC'} table {spec.Th})")  # fmt: skip
    table = spec.to_table()
    if spec.Tc == 1 and not _AC_ZERO_SIZE.isdisjoint(spec.V):
        bad = [v for v in spec.V if v in _AC_ZERO_SIZE]
        if bad:
            raise CorruptStreamError(
                f"AC table {spec.Th} defines symbol 0x{bad[0]:02X}: with SSSS=0 only EOB (0x00) and ZRL (0xF0) "
                "exist (T.81 §F.1.2.2.1)",
                offset=offset, segment="DHT",
            )  # fmt: skip
    return table


def _check_scan_tables(
    sof: M.Sof,
    sos: M.Sos,
    qtables: dict[int, M.QuantizationTable],
    huff: dict[tuple[int, int], entropy.HuffmanTable],
    pos: int,
) -> None:
    """The tables the scan refers to are defined before it, and fit the sample precision."""
    comp, sc = sof.components[0], sos.components[0]
    if comp.Tqi not in qtables:
        raise CorruptStreamError(
            f"quantization table Tq={comp.Tqi} is not defined before the scan (T.81 §B.2.4.1)",
            offset=pos,
            segment="SOS",
        )
    if sof.P == 8 and qtables[comp.Tqi].Pq != 0:
        raise CorruptStreamError(
            f"quantization table {comp.Tqi} has Pq=1 (16-bit Qk), but P=8 requires Pq=0 (T.81 §B.2.4.1)",
            offset=pos,
            segment="DQT",
        )
    for tc, th, what in ((0, sc.Td, "DC"), (1, sc.Ta, "AC")):
        if (tc, th) not in huff:
            raise CorruptStreamError(
                f"{what} Huffman table {th} is not defined before the scan (T.81 §B.2.4.2)", offset=pos, segment="SOS"
            )


#: SOF, DQT and SOS segments parsed, by their bytes (marker included): the frames of a series
#: share them (one quality, one size), so decoding a series parses each once; a few microseconds
#: each, a tenth of decoding a 256x256 frame. Only the parse is kept: the checks that depend on
#: the settings of the moment (``container.LIMITS``) or on the other segments run on every call.
#: DHT is parsed every time: optimal tables differ from image to image. Values are frozen
#: dataclasses; a failed parse is not kept; at most :data:`SEGMENT_CACHE_SIZE` segments of at most
#: :data:`SEGMENT_CACHE_MAX_BYTES` each (a DQT of four 16-bit tables is 520 bytes).
_SEGMENT_CACHE: dict[bytes, Any] = {}
SEGMENT_CACHE_SIZE = 64
SEGMENT_CACHE_MAX_BYTES = 1024


def _parsed_segment(seg: bytes, pos: int, parse: Any) -> Any:
    """``parse(seg, pos)``, or what it gave for the same bytes before."""
    hit = _SEGMENT_CACHE.get(seg)
    if hit is None:
        hit = parse(seg, pos)
        if len(seg) <= SEGMENT_CACHE_MAX_BYTES:
            if len(_SEGMENT_CACHE) >= SEGMENT_CACHE_SIZE:
                _SEGMENT_CACHE.clear()
            _SEGMENT_CACHE[seg] = hit
    return hit


#: Tables per DHT segment the one-kernel path takes (:func:`_dht_tables`); more: the Python parser.
_FAST_DHT_TABLES = 8


def _dht_tables(seg: bytes) -> list[tuple[tuple[int, int], entropy.HuffmanTable]] | None:
    """``((Tc, Th), table)`` of a DHT segment in one kernel (:func:`._kernels.dht_tables`), checked as
    :meth:`.markers.Dht.from_bytes` and :func:`_check_huffman` check them, in a fifth of their time;
    ``None`` for anything but a plainly valid segment: the Python parser then says what is wrong."""
    keys = np.empty((_FAST_DHT_TABLES, 2), np.int64)
    bits = np.empty((_FAST_DHT_TABLES, 16), np.int32)
    vals = np.empty((_FAST_DHT_TABLES, 256), np.int32)
    counts = np.empty(_FAST_DHT_TABLES, np.int64)
    n = K.dht_tables(np.frombuffer(seg, np.uint8), DC_ALPHABET, AC_ALPHABET, keys, bits, vals, counts)
    if n < 0:
        return None
    return [
        ((int(keys[t, 0]), int(keys[t, 1])), entropy.HuffmanTable(bits[t].copy(), vals[t, : counts[t]].copy()))
        for t in range(n)
    ]


class PlainFrame(NamedTuple):
    """What decoding needs of a plainly valid stream, parsed in one kernel (:func:`parse_plain`)."""

    P: int
    Y: int
    X: int
    Ri: int
    scan_start: int
    scan_end: int
    #: uint16 (64,): the scan's quantization table in natural order
    steps: np.ndarray
    #: decoder tables of the scan's DC and AC Huffman tables (:func:`._kernels.huffman_decoder`)
    dc_decoder: np.ndarray
    ac_decoder: np.ndarray
    #: the stream as uint8, for the decoding kernel
    data: np.ndarray


def parse_plain(buf: bytes) -> PlainFrame | None:
    """The common layout of a valid grayscale stream parsed in one kernel call
    (:func:`._kernels.jpeg_plain_header`), with its Huffman decoder tables; ``None`` for anything
    else (deviations, damage, unsupported processes): :func:`parse_jpeg` then decodes it or says what
    is wrong. On a 64x64 frame it takes ~4 us where :func:`parse_jpeg` and the tables took ~20,
    more than the pixels (docs/design-notes.md, "JPEG decoding: the header of a small frame")."""
    u8 = np.frombuffer(buf, np.uint8)
    status, info, steps, dc, ac = K.jpeg_plain_header(u8, container.LIMITS["max_frame_pixels"], NAT_ZZ)
    if status != 0:
        return None
    P, Y, X, Ri, start, end = info.tolist()
    return PlainFrame(P, Y, X, Ri, start, end, steps, dc, ac, u8)


def parse_jpeg(data: bytes | bytearray | memoryview, *, strict: bool = False) -> JpegFrame:
    """Parse a JPEG stream's marker segments up to EOI without decoding the entropy-coded data.

    Known harmless deviations (:data:`KNOWN_DEVIATIONS`) are decoded with a
    :class:`~medcodec.errors.NonConformantStreamWarning`; ``strict`` refuses them.

    Raises
    ------
    UnsupportedFeatureError
        A process or feature other than baseline / extended sequential Huffman grayscale.
    CorruptStreamError, TruncatedStreamError
        Invalid or missing segments, with byte offsets and T.81 sections.
    """
    buf = bytes(data)
    n = len(buf)
    if n < 2 or buf[:2] != b"\xff\xd8":
        raise CorruptStreamError("stream does not start with SOI 0xFFD8 (T.81 §B.2.1)", offset=0, segment="SOI")
    segments = [container.Segment("SOI", 0, 0)]
    qtables: dict[int, M.QuantizationTable] = {}
    huff: dict[tuple[int, int], entropy.HuffmanTable] = {}
    Ri = 0
    sof: M.Sof | None = None
    sof_offset = 0
    found: tuple[Any, ...] | None = None  # the JpegFrame's fields once the scan is found
    pos = 2
    while True:
        if pos >= n:
            what = "EOI" if found is not None else ("SOS" if sof is not None else "a frame header")
            raise TruncatedStreamError(
                f"stream ends before {what} (T.81 §B.2.1)", offset=pos, segment="EOI" if found else "markers"
            )
        if buf[pos] != 0xFF:
            raise CorruptStreamError(
                f"expected a marker (0xFF), found 0x{buf[pos]:02X} (T.81 §B.1.1.2)", offset=pos, segment="markers"
            )
        while pos + 1 < n and buf[pos + 1] == 0xFF:  # fill bytes (T.81 §B.1.1.2)
            pos += 1
        if pos + 1 >= n:
            raise TruncatedStreamError(
                "stream ends inside a marker", offset=pos, segment="markers", expected=2, available=1
            )
        code = 0xFF00 | buf[pos + 1]
        name = M.marker_name(code)
        if code == M.EOI:
            if found is None:
                raise CorruptStreamError("EOI before any scan (T.81 §B.2.1)", offset=pos, segment="EOI")
            segments.append(container.Segment("EOI", pos, 0))
            sof_, sos_, qt_, dct_, act_, ri_, start_, end_ = found
            return JpegFrame(sof_, sos_, qt_, dct_, act_, ri_, start_, end_, segments=tuple(segments))
        if code == M.SOI or M.is_rst(code) or code == 0xFF00 or code == M.TEM:
            raise CorruptStreamError(
                f"unexpected {name} between marker segments (T.81 §B.2.1)", offset=pos, segment=name
            )
        if code in _UNSUPPORTED_MARKERS:
            raise UnsupportedFeatureError(f"{name} at byte offset {pos}: {_UNSUPPORTED_MARKERS[code]} is not supported")
        if code in M.SOF_PROCESSES and code not in (M.SOF0, M.SOF1):
            raise UnsupportedFeatureError(
                f"{name} at byte offset {pos}: {M.SOF_PROCESSES[code]} is not supported; medcodec decodes baseline "
                "(SOF0) and extended sequential Huffman (SOF1) DCT JPEG (T.81 Table B.1)"
            )
        end = M.segment_bounds(buf, pos, name)
        segments.append(container.Segment(name, pos, end - pos - 2))
        seg = buf[pos:end]
        if code in (M.SOF0, M.SOF1):
            if sof is not None:
                raise CorruptStreamError(
                    f"second frame header (first at byte offset {sof_offset}) (T.81 §B.2.1)", offset=pos, segment=name
                )
            sof = _parsed_segment(seg, pos, M.Sof.from_bytes)
            sof_offset = pos
            _check_frame_header(sof, pos)
        elif code == M.DQT:
            for t in _parsed_segment(seg, pos, M.Dqt.from_bytes).tables:
                qtables[t.Tq] = t
        elif code == M.DHT:
            fast = _dht_tables(seg)
            if fast is not None:
                huff.update(fast)
            else:  # the full parser finds what is wrong (or takes more than _FAST_DHT_TABLES tables)
                for spec in M.Dht.from_bytes(seg, pos).tables:
                    huff[(spec.Tc, spec.Th)] = _check_huffman(spec, pos)
        elif code == M.DRI:
            Ri = M.Dri.from_bytes(seg, pos).Ri
        elif code == M.SOS:
            if sof is None:
                raise CorruptStreamError("SOS before a frame header (T.81 §B.2.1)", offset=pos, segment="SOS")
            if found is not None:
                raise CorruptStreamError(
                    "second scan: a sequential single-component frame has exactly one scan (T.81 §B.2.1, §B.2.3)",
                    offset=pos, segment="SOS",
                )  # fmt: skip
            sos = _parsed_segment(seg, pos, M.Sos.from_bytes)
            _check_scan_header(sos, sof, pos, strict=strict)
            _check_scan_tables(sof, sos, qtables, huff, pos)
            comp, sc = sof.components[0], sos.components[0]
            scan_end = _find_scan_end(buf, end)
            segments.append(container.Segment("ECS", end, scan_end - end))
            found = (sof, sos, qtables[comp.Tqi], huff[(0, sc.Td)], huff[(1, sc.Ta)], Ri, end, scan_end)
            pos = scan_end
            continue
        # APPn, COM: skipped; JPGn / reserved codes are refused below
        elif not (M.APP0 <= code <= M.APP0 + 15 or code == M.COM):
            if 0xFFF0 <= code <= 0xFFFD:
                raise UnsupportedFeatureError(
                    f"{name} at byte offset {pos}: reserved JPEG extension marker is not supported (T.81 Table B.1)"
                )
            raise CorruptStreamError(f"reserved marker 0x{code:04X} (T.81 Table B.1)", offset=pos, segment=name)
        pos = end
