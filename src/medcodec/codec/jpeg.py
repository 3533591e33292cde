"""Standard JPEG (ISO/IEC 10918-1 = ITU-T T.81) for one grayscale image: writer and reader.

What is written (T.81 Annex B, sequential DCT-based, Huffman, one component)::

    SOI
    DQT   one table, Tq=0; Pq=0 (8-bit Qk) or, at P=12 when a step exceeds 255, Pq=1  §B.2.4.1
    SOFn  SOF0 (baseline, P=8) or SOF1 (extended sequential, P=12); Nf=1, H=V=1     §B.2.2
    DHT   DC table Tc=0 Th=0 and AC table Tc=1 Th=0, optimised for this image    §B.2.4.2, §K.2
    [DRI  Ri blocks per restart interval]                                          §B.2.4.4
    SOS   Ns=1, Td=Ta=0, Ss=0, Se=63, Ah=Al=0                                       §B.2.3
    entropy-coded data, 0xFF stuffed with 0x00, [RSTm every Ri blocks]      §F.1.2.3, §B.2.1
    EOI

What is read: the same processes written by any encoder (libjpeg-turbo, GDCM, DCMTK):
SOF0 and SOF1 with a single component whatever its sampling factors, P=8 or 12, any
number of DQT (Pq 0/1) and DHT segments anywhere before the scan, DRI, APPn and COM
(skipped), fill bytes before markers, restart markers. Everything else a stream may use
is refused with :class:`~medcodec.errors.UnsupportedFeatureError` naming it: progressive,
lossless, hierarchical and arithmetic-coded processes (SOF2/3/5-7/9-15, DAC, DHP, EXP),
JPEG-LS (SOF55), DNL, more than one component (colour). Damage raises
:class:`~medcodec.errors.CorruptStreamError` / :class:`~medcodec.errors.TruncatedStreamError`
with the byte offset and the T.81 section.

A single-component scan is non-interleaved: its blocks are ordered row by row over
ceil(X/8) x ceil(Y/8) blocks (T.81 §A.2.2), exactly :func:`~.transform.blockify`, so
the writer and the reader share :class:`~.pipeline.FrameCoder` with the ``.mdc`` path.

Samples: JPEG samples are unsigned P-bit integers with P = 8 or 12 (T.81 §A.1, §B.2.2).
Data of up to 8 bits is coded with P=8, of 9 to 12 bits with P=12, and the level shift
is 2**(P-1) whatever ``bits_stored`` is (T.81 §A.3.1). Signed data and data of 13-16 bits
have no DCT-based JPEG form: the caller maps them into unsigned 12 bits first (the DICOM
writer does, with one mapping per series and the rescale intercept updated).

Encoder tools (all within plain T.81, so any decoder reads the result):

* quantization tables trained per modality (:mod:`.tables_trained`, chosen by ``modality``)
  scaled from the quality and the bits the data actually spans, not libjpeg's photographic table;
* texture-aware rate-distortion optimised quantization (``rdo="texture"``, the default,
  :mod:`._rdoq`): drops coefficients that cost more bits than the error they remove, but
  not the noise texture of soft tissue (no flat 8x8 patches); ``rdo="trellis"`` is the
  PSNR-only trellis;
* Huffman tables optimised for each image (T.81 §K.2);
* rate control: ``quality``, ``ratio`` (stream within 3 % of the target, checked on the
  real stream size) and ``psnr`` (the smallest stream found whose decoded pixels reach it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CorruptStreamError, InvalidInputError, TruncatedStreamError, UnsupportedFeatureError
from ..spec import storage_dtype
from . import _rdoq, container, entropy, levelshift, quantize, tables_trained
from . import markers as M
from .transform import blocks_shape

__all__ = [
    "JpegFrame",
    "precision_for",
    "encode_jpeg",
    "decode_jpeg",
    "read_jpeg_header",
    "parse_jpeg",
    "build_jpeg",
    "RDO_MODES",
    "EFFORT_RDO",
    "RATIO_TOLERANCE",
    "PSNR_CLOSE_DB",
    "search_quality",
]

#: Ratio targets are met within this relative tolerance (the stream is never larger).
RATIO_TOLERANCE = 0.03
#: A PSNR target is considered hit when the stream is at most this far above it (dB).
PSNR_CLOSE_DB = 0.02
RDO_MODES = ("none", "threshold", "trellis", "texture")
#: Level selection of each ``effort`` (:func:`encode_jpeg`).
EFFORT_RDO = {"fast": "threshold", "best": "texture"}  # best: texture-aware RDO (issue 11)
DC_ALPHABET, AC_ALPHABET = entropy.alphabet_sizes(4)


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


# --------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------


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
    qt = M.QuantizationTable.from_steps(np.asarray(steps), Tq=0)
    if P == 8 and qt.Pq:
        raise ValueError("8-bit sample precision requires Pq=0: quantization steps must be <= 255 (T.81 §B.2.4.1)")
    parts = [
        M.SOI.to_bytes(2, "big"),
        M.Dqt((qt,)).to_bytes(),
        M.Sof(M.SOF0 if P == 8 else M.SOF1, P, Y, X, (M.FrameComponent(1, 1, 1, 0),)).to_bytes(),
        M.Dht((M.HuffmanSpec.from_table(dc_table, Tc=0), M.HuffmanSpec.from_table(ac_table, Tc=1))).to_bytes(),
    ]
    if restart_interval:
        parts.append(M.Dri(restart_interval).to_bytes())
    parts.append(M.Sos((M.ScanComponent(1, 0, 0),)).to_bytes())
    parts.append(coded)
    parts.append(M.EOI.to_bytes(2, "big"))
    return b"".join(parts)


class _JpegEncoder:
    """Encodes one frame at any quality; remembers what it coded for the rate search."""

    def __init__(self, frame: np.ndarray, *, bits_stored: int, range_bits: int, table: Any, rdo: str, restart_interval: int):
        from .pipeline import FrameCoder  # pipeline imports this module lazily

        self.frame = frame
        self.P = precision_for(bits_stored)
        self.bits_stored = bits_stored
        self.range_bits = range_bits
        self.table = table
        self.rdo = rdo
        self.restart_interval = restart_interval
        self._FrameCoder = FrameCoder
        self._cache: dict[float, bytes] = {}
        quantize.quant_table(75, range_bits, table=table)  # validates ``table`` early
        self.weights = quantize.TABLES[table] if isinstance(table, str) else np.asarray(table, np.float64).ravel()

    def coder(self, q: float) -> Any:
        """FrameCoder at quality ``q``: integer steps, and (trellis, texture) a lambda from the unrounded
        steps, so the rate keeps moving with ``q`` where the rounded steps do not."""
        max_step = 255 if self.P == 8 else 65535
        steps = quantize.quant_table(q, self.range_bits, table=self.table, max_step=max_step)
        exact = np.clip(self.weights * quantize.quality_scale(q) * 2.0 ** (self.range_bits - 8), 1, max_step)
        lam = _rdoq.default_lambda(quantize.steps_zigzag(exact)) if self.rdo in ("trellis", "texture") else None
        return self._FrameCoder(steps, self.P, False, rdo=self.rdo, rdo_size_bits=4, rdo_lambda=lam)

    def encode(self, q: float) -> bytes:
        """The complete stream at quality ``q`` (memoised for the rate search)."""
        hit = self._cache.get(q)
        if hit is not None:
            return hit
        coder = self.coder(q)
        enc = coder.encode_frame(self.frame, size_bits=4, stuff=True, restart_interval=self.restart_interval)
        stream = build_jpeg(
            enc.coded, P=self.P, Y=self.frame.shape[0], X=self.frame.shape[1], steps=coder.steps,
            dc_table=enc.dc_table, ac_table=enc.ac_table, restart_interval=self.restart_interval,
        )  # fmt: skip
        self._cache[q] = stream
        return stream


def _psnr(ref: np.ndarray, test: np.ndarray, bits_stored: int) -> float:
    mse = float(np.mean((test.astype(np.float64) - ref.astype(np.float64)) ** 2))
    peak = (1 << bits_stored) - 1
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def encode_jpeg(
    frames: np.ndarray,
    *,
    bits_stored: int,
    signed: bool = False,
    quality: float | None = None,
    ratio: float | None = None,
    psnr: float | None = None,
    table: str | np.ndarray | None = None,
    restart_interval: int = 0,
    jobs: int = 1,
    resolve_quality: Callable[..., float] | None = None,
    effort: str = "best",
    rdo: str | None = None,
    modality: str | None = None,
) -> bytes:
    """Encode one grayscale image as a standard JPEG stream (SOF0 8-bit / SOF1 12-bit).

    Parameters
    ----------
    frames
        Integer array (1, rows, cols) or (rows, cols), already checked to lie within
        ``bits_stored`` unsigned (``medcodec.encode`` does that).
    bits_stored
        1..12; P = 8 up to 8 bits, else 12.
    signed
        Must be False: JPEG samples are unsigned (T.81 §A.1).
    quality, ratio, psnr
        At most one of ``ratio`` (raw size / stream size, raw = 1 byte per pixel up to
        8 bits, else 2; met within :data:`RATIO_TOLERANCE`, never exceeded) and ``psnr``
        (dB, peak 2**bits_stored - 1; the smallest stream found that reaches it); else
        ``quality`` 1..100 (default 75). Targets are checked on the real stream: its
        length, and the pixels decoded from it. A target outside what qualities 1..100
        give yields the nearest end: the quality-100 stream for a ratio below (or a PSNR
        above) its own, the quality-1 stream for a ratio it cannot reach.
    table
        Quantization table shape (:func:`.quantize.quant_table`); ``None`` (default): the shape
        trained for ``modality`` (:func:`.tables_trained.table_for`).
    restart_interval
        Blocks per restart interval, 0..65535 (0: no DRI, no RSTm).
    jobs
        Unused (one image per stream); accepted for the pipeline's uniform call.
    resolve_quality
        ``pipeline._resolve_quality``; used to validate a plain ``quality``.
    effort
        ``"best"`` (default): the texture-aware rate-distortion quantizer (:mod:`._rdoq`,
        ``rdo="texture"``) fused with the DCT: small streams that keep the noise texture of
        soft tissue (figures in ``docs/design-notes.md``); ``"fast"``: dead zone +
        isolated-coefficient thresholding, faster, but it flattens noisy blocks.
    rdo
        Overrides ``effort`` with a level-selection mode: ``"texture"`` (= best),
        ``"threshold"`` (= fast), ``"trellis"`` (PSNR-only trellis, flattens texture) or
        ``"none"`` (plain rounding).
    modality
        DICOM Modality (``"CT"``, ``"MR"``, ``"CR"``...) choosing the trained table when
        ``table`` is None; unknown or None: the CT table.

    Returns
    -------
    bytes
        A complete JPEG stream from SOI to EOI.

    Raises
    ------
    InvalidInputError
        Several frames, signed samples, 13-16 bits, bad options.

    Examples
    --------
    >>> import numpy as np
    >>> img = (np.arange(40 * 24) % 4096).astype(np.uint16).reshape(40, 24)
    >>> data = encode_jpeg(img, bits_stored=12, quality=90)
    >>> data[:2], data[-2:], decode_jpeg(data).shape
    (b'\\xff\\xd8', b'\\xff\\xd9', (40, 24))
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[0] != 1:
        raise InvalidInputError(
            f"format='jpeg' holds one image per stream (T.81 sequential, one frame), got {frames.shape[0]} frames "
            "of shape " + str(frames.shape[1:]) + ": encode them one at a time (DICOM stores one JPEG stream per "
            "frame) or use format='mdc'"
        )
    if signed:
        raise InvalidInputError(
            "format='jpeg' needs unsigned samples (T.81 §A.1: samples are unsigned P-bit integers): "
            "map signed data into unsigned 12 bits first, with the rescale intercept adjusted "
            "(medcodec.dicom's series mapping does this), or use format='mdc'"
        )
    precision_for(bits_stored)  # 13-16 bits: refused with the reason
    if isinstance(restart_interval, bool) or not isinstance(restart_interval, (int, np.integer)) or not 0 <= restart_interval <= 0xFFFF:
        raise InvalidInputError(f"restart_interval={restart_interval!r} must be an integer 0..65535 (Ri, T.81 §B.2.4.4)")
    if effort not in EFFORT_RDO:
        raise InvalidInputError(f"effort={effort!r} is unknown, expected one of {tuple(EFFORT_RDO)}")
    if rdo is None:
        rdo = EFFORT_RDO[effort]
    if rdo not in RDO_MODES:
        raise InvalidInputError(f"rdo={rdo!r} is unknown, expected one of {RDO_MODES}")
    frame = frames[0]
    if frame.shape[0] > 0xFFFF or frame.shape[1] > 0xFFFF:
        raise InvalidInputError(f"image of {frame.shape[0]} x {frame.shape[1]} exceeds JPEG's 65535 x 65535 (T.81 §B.2.2)")
    vmin, vmax = levelshift.check_range(frame, bits_stored, False)
    rbits = levelshift.content_range_bits(frame, vmin, vmax, bits_stored)
    if table is None:
        table = tables_trained.table_for(modality)
    enc = _JpegEncoder(frame, bits_stored=bits_stored, range_bits=rbits, table=table, rdo=rdo, restart_interval=int(restart_interval))
    given = [name for name, v in (("ratio", ratio), ("psnr", psnr)) if v is not None]
    if len(given) > 1:
        raise InvalidInputError(f"give one rate target, not {given}")
    if not given:
        if resolve_quality is not None:
            q = resolve_quality(
                enc.coder, frames, quality=quality, ratio=None, psnr=None, size_bits=4,
                peak=(1 << bits_stored) - 1, raw_bytes_per_pixel=1 if bits_stored <= 8 else 2, jobs=1,
            )  # fmt: skip
        else:
            q = 75.0 if quality is None else quality
            if isinstance(q, bool) or not isinstance(q, (int, float)) or not 1 <= q <= 100:
                raise InvalidInputError(f"quality={quality!r} is out of range, expected 1..100")
        return enc.encode(float(q))
    if ratio is not None:
        return _encode_for_ratio(enc, ratio, raw_bytes=frame.size * (1 if bits_stored <= 8 else 2))
    return _encode_for_psnr(enc, psnr)


def search_quality(value: Callable[[float], float], *, ok_below: bool, close: float, max_evals: int = 24) -> float:
    """Quality on the boundary of a target, by bracketed false position (Illinois variant).

    ``value(q)`` grows with the quality (log size over target size, or PSNR minus the
    target). With ``ok_below`` the target is met where ``value <= 0`` and the highest such
    quality is wanted (rate targets); otherwise it is met where ``value >= 0`` and the
    lowest is wanted (quality targets). The search stops when the met end of the bracket
    is within ``close`` of 0 or the bracket is narrower than 0.001; the quality returned
    always meets the target unless no quality in 1..100 does (then the nearest end).
    Typically 4-8 evaluations instead of a bisection's 16.
    """

    def ok(v: float) -> bool:
        return v <= 0 if ok_below else v >= 0

    lo, hi = 1.0, 100.0
    vlo, vhi = value(lo), value(hi)
    if ok(vhi) if ok_below else not ok(vhi):
        return hi
    if not ok(vlo) if ok_below else ok(vlo):
        return lo
    flo, fhi = vlo, vhi  # Illinois-weighted copies for the interpolation
    side = 0
    for _ in range(max_evals):
        met = vlo if ok_below else vhi
        if abs(met) <= close or hi - lo < 1e-3:
            break
        q = lo + (hi - lo) * (-flo) / (fhi - flo) if fhi != flo else (lo + hi) / 2
        margin = 0.02 * (hi - lo)
        q = min(max(q, lo + margin), hi - margin)
        vq = value(q)
        if (ok_below and ok(vq)) or (not ok_below and not ok(vq)):
            lo, vlo, flo = q, vq, vq
            if side == -1:
                fhi /= 2
            side = -1
        else:
            hi, vhi, fhi = q, vq, vq
            if side == 1:
                flo /= 2
            side = 1
    return lo if ok_below else hi


def _encode_for_ratio(enc: _JpegEncoder, ratio: Any, *, raw_bytes: int) -> bytes:
    """Highest quality whose real stream (headers, stuffing and all) is no larger than raw_bytes / ratio."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio >= 1 or not math.isfinite(ratio):
        raise InvalidInputError(f"ratio={ratio!r} must be a number >= 1")
    target = raw_bytes / ratio
    q = search_quality(lambda q: math.log(len(enc.encode(q)) / target), ok_below=True, close=RATIO_TOLERANCE / 6)
    return enc.encode(q)


def _encode_for_psnr(enc: _JpegEncoder, psnr: Any) -> bytes:
    """Lowest quality (smallest stream) whose pixels, decoded from the stream itself, reach ``psnr`` dB."""
    if isinstance(psnr, bool) or not isinstance(psnr, (int, float)) or not 0 < psnr < 200:
        raise InvalidInputError(f"psnr={psnr!r} must be a number of dB in (0, 200)")
    def value(q: float) -> float:
        return _psnr(enc.frame, decode_jpeg(enc.encode(q)), enc.bits_stored) - psnr

    q = search_quality(value, ok_below=False, close=PSNR_CLOSE_DB)
    return enc.encode(q)


# --------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------


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


def _check_scan_header(sos: M.Sos, sof: M.Sof, offset: int) -> None:
    if sos.Ns != 1:
        raise CorruptStreamError(f"Ns={sos.Ns}, but the frame has one component (T.81 §B.2.3)", offset=offset, segment="SOS")
    if sos.components[0].Cs != sof.components[0].Ci:
        raise CorruptStreamError(
            f"Cs={sos.components[0].Cs} names no component of the frame (Ci={sof.components[0].Ci}) (T.81 §B.2.3)",
            offset=offset, segment="SOS",
        )  # fmt: skip
    if (sos.Ss, sos.Se, sos.Ah, sos.Al) != (0, 63, 0, 0):
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


def _find_scan_end(buf: bytes, start: int) -> int:
    """Offset of the first marker after entropy-coded data that is not RSTn (T.81 §B.1.1.5, §F.1.2.3).

    Stuffed 0xFF00 and RST0..RST7 belong to the data; 0xFF fill bytes before a marker do
    not. Returns ``len(buf)`` if the data runs to the end of the buffer.
    """
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
        # 0xFF fill bytes, then a marker: the data ends at the first 0xFF of the run
        return i


def _check_huffman(spec: M.HuffmanSpec, offset: int) -> entropy.HuffmanTable:
    table = spec.to_table()
    alphabet = DC_ALPHABET if spec.Tc == 0 else AC_ALPHABET
    table.validate(alphabet, offset=offset, segment=f"DHT ({'DC' if spec.Tc == 0 else 'AC'} table {spec.Th})")
    if spec.Tc == 1:
        bad = [v for v in spec.V if v & 15 == 0 and v not in (0x00, 0xF0)]
        if bad:
            raise CorruptStreamError(
                f"AC table {spec.Th} defines symbol 0x{bad[0]:02X}: with SSSS=0 only EOB (0x00) and ZRL (0xF0) "
                "exist (T.81 §F.1.2.2.1)",
                offset=offset, segment="DHT",
            )  # fmt: skip
    return table


def parse_jpeg(data: bytes | bytearray | memoryview) -> JpegFrame:
    """Parse a JPEG stream's marker segments up to EOI without decoding the entropy-coded data.

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
    found: JpegFrame | None = None
    pos = 2
    while True:
        if pos >= n:
            what = "EOI" if found is not None else ("SOS" if sof is not None else "a frame header")
            raise TruncatedStreamError(f"stream ends before {what} (T.81 §B.2.1)", offset=pos, segment="EOI" if found else "markers")
        if buf[pos] != 0xFF:
            raise CorruptStreamError(
                f"expected a marker (0xFF), found 0x{buf[pos]:02X} (T.81 §B.1.1.2)", offset=pos, segment="markers"
            )
        while pos + 1 < n and buf[pos + 1] == 0xFF:  # fill bytes (T.81 §B.1.1.2)
            pos += 1
        if pos + 1 >= n:
            raise TruncatedStreamError("stream ends inside a marker", offset=pos, segment="markers", expected=2, available=1)
        code = 0xFF00 | buf[pos + 1]
        name = M.marker_name(code)
        if code == M.EOI:
            if found is None:
                raise CorruptStreamError("EOI before any scan (T.81 §B.2.1)", offset=pos, segment="EOI")
            segments.append(container.Segment("EOI", pos, 0))
            return dataclasses.replace(found, segments=tuple(segments))
        if code == M.SOI or M.is_rst(code) or code == 0xFF00 or code == M.TEM:
            raise CorruptStreamError(f"unexpected {name} between marker segments (T.81 §B.2.1)", offset=pos, segment=name)
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
                raise CorruptStreamError(f"second frame header (first at byte offset {sof_offset}) (T.81 §B.2.1)", offset=pos, segment=name)
            sof = M.Sof.from_bytes(seg, pos)
            sof_offset = pos
            _check_frame_header(sof, pos)
        elif code == M.DQT:
            for t in M.Dqt.from_bytes(seg, pos).tables:
                qtables[t.Tq] = t
        elif code == M.DHT:
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
            sos = M.Sos.from_bytes(seg, pos)
            _check_scan_header(sos, sof, pos)
            comp, sc = sof.components[0], sos.components[0]
            if comp.Tqi not in qtables:
                raise CorruptStreamError(f"quantization table Tq={comp.Tqi} is not defined before the scan (T.81 §B.2.4.1)", offset=pos, segment="SOS")
            if sof.P == 8 and qtables[comp.Tqi].Pq != 0:
                raise CorruptStreamError(
                    f"quantization table {comp.Tqi} has Pq=1 (16-bit Qk), but P=8 requires Pq=0 (T.81 §B.2.4.1)",
                    offset=pos, segment="DQT",
                )  # fmt: skip
            for tc, th, what in ((0, sc.Td, "DC"), (1, sc.Ta, "AC")):
                if (tc, th) not in huff:
                    raise CorruptStreamError(f"{what} Huffman table {th} is not defined before the scan (T.81 §B.2.4.2)", offset=pos, segment="SOS")
            scan_end = _find_scan_end(buf, end)
            segments.append(container.Segment("ECS", end, scan_end - end))
            found = JpegFrame(sof, sos, qtables[comp.Tqi], huff[(0, sc.Td)], huff[(1, sc.Ta)], Ri, end, scan_end)
            pos = scan_end
            continue
        # APPn, COM: skipped; JPGn / reserved codes are refused below
        elif not (M.APP0 <= code <= M.APP0 + 15 or code == M.COM):
            if 0xFFF0 <= code <= 0xFFFD:
                raise UnsupportedFeatureError(f"{name} at byte offset {pos}: reserved JPEG extension marker is not supported (T.81 Table B.1)")
            raise CorruptStreamError(f"reserved marker 0x{code:04X} (T.81 Table B.1)", offset=pos, segment=name)
        pos = end


def decode_jpeg(data: bytes | bytearray | memoryview, *, frames: int | Sequence[int] | None = None) -> np.ndarray:
    """Decode a baseline or extended sequential (Huffman) grayscale JPEG stream.

    Parameters
    ----------
    data
        The stream, SOI to EOI (bytes after EOI, e.g. DICOM's even-length padding, are ignored).
    frames
        ``None``, ``0`` or ``-1``: the image, shape (rows, cols); ``[0]``: shape (1, rows, cols).

    Returns
    -------
    numpy.ndarray
        uint8 for P=8, uint16 (0..4095) for P=12. The inverse DCT is the float64
        orthonormal one, so integer-IDCT decoders (libjpeg) may differ by 1.

    Raises
    ------
    UnsupportedFeatureError
        Progressive, lossless, hierarchical, arithmetic, colour, DNL (see module docstring).
    CorruptStreamError, TruncatedStreamError
        Damaged stream, with the byte offset and the T.81 section.
    """
    from .pipeline import FrameCoder, _frame_selection

    buf = bytes(data)
    jf = parse_jpeg(buf)
    sel, single = _frame_selection(frames, 1)
    nbytes = jf.scan_end - jf.scan_start
    if jf.nblocks > 4 * nbytes:  # every block costs at least 2 bits (DC code + EOB)
        raise TruncatedStreamError(
            f"{jf.nblocks} blocks cannot be coded in {nbytes} bytes of entropy-coded data (at least 2 bits per block)",
            offset=jf.scan_start, segment="SOS",
        )  # fmt: skip
    try:
        img = FrameCoder.for_table(jf.qtable.natural(), jf.P, False).decode_frame(
            buf, jf.dc_table, jf.ac_table, jf.sof.Y, jf.sof.X, size_bits=4, start=jf.scan_start, end=jf.scan_end,
            stuffed=True, restart_interval=jf.Ri, segment="entropy-coded data (T.81 §F.2)",
        )  # fmt: skip
    except TruncatedStreamError as e:
        if e.offset is None or e.offset + 1 >= jf.scan_end:
            raise
        # the bit reader stopped at a marker inside the scan, not at its end
        raise CorruptStreamError(
            f"{M.marker_name(0xFF00 | buf[e.offset + 1])} where coded data was expected ({jf.nblocks} blocks); "
            f"the restart interval Ri={jf.Ri} does not match the data (T.81 §B.2.4.4, §F.1.2.3)",
            offset=e.offset, segment="entropy-coded data (T.81 §F.2)",
        ) from None
    assert img.dtype == storage_dtype(jf.P, False)
    if frames is None or single:
        return img
    return img[None].repeat(len(sel), axis=0) if len(sel) != 1 else img[None]


def read_jpeg_header(data: bytes | bytearray | memoryview) -> container.MdcHeader:
    """Header of a JPEG stream without entropy decoding: shape, P, tables, segments with offsets.

    Returns an :class:`~.container.MdcHeader` with ``format="jpeg"``, ``frames=1``,
    ``bits_stored=P``, ``signed=False``, ``quality=None``; ``meta`` holds the process
    (``"SOF1"``...), ``restart_interval`` and the component's sampling factors.
    """
    jf = parse_jpeg(data)
    comp = jf.sof.components[0]
    return container.MdcHeader(
        rows=jf.sof.Y, cols=jf.sof.X, frames=1, bits_stored=jf.P, signed=False, quality=None,
        range_bits=jf.P, format="jpeg", qtables=(jf.qtable.natural(),), segments=jf.segments,
        meta={"process": M.marker_name(jf.sof.marker), "restart_interval": jf.Ri, "sampling": (comp.Hi, comp.Vi)},
    )  # fmt: skip
