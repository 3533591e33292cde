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

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CorruptStreamError, InvalidInputError, TruncatedStreamError
from ..metrics import psnr as _metrics_psnr
from ..ratecontrol import RateTarget, check_psnr_reached, check_ratio_reached, search_quality
from ..spec import storage_dtype
from . import _rdoq, container, entropy, levelshift, quantize, tables_trained
from . import markers as M
from .framecoder import FrameCoder, frame_selection
from .stream import JpegFrame, build_jpeg, jpeg_head_arrays, parse_jpeg, parse_plain, precision_for
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


# --------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------


class _JpegEncoder:
    """Encodes one frame at any quality; remembers what it coded for the rate search."""

    def __init__(
        self,
        frame: np.ndarray,
        *,
        bits_stored: int,
        range_bits: int,
        table: Any,
        rdo: str,
        restart_interval: int,
        texture_floor: float | None = None,
    ):
        self.frame = frame
        self.texture_floor = texture_floor
        self.P = precision_for(bits_stored)
        self.bits_stored = bits_stored
        self.range_bits = range_bits
        self.table = table
        self.rdo = rdo
        self.restart_interval = restart_interval
        self._cache: dict[float, bytes] = {}
        if not (isinstance(table, str) and table in quantize.TABLES):  # the named tables are valid
            quantize.quant_table(75, range_bits, table=table)  # validates ``table`` early
        self.weights = quantize.TABLES[table] if isinstance(table, str) else np.asarray(table, np.float64).ravel()

    def coder(self, q: float) -> Any:
        """FrameCoder at quality ``q``: integer steps, and (trellis, texture) a lambda from the unrounded
        steps, so the rate keeps moving with ``q`` where the rounded steps do not. Memoised for
        the named tables (a series codes every frame at one quality)."""
        if isinstance(self.table, str):
            return _named_coder(float(q), self.P, self.range_bits, self.table, self.rdo)
        return _make_coder(float(q), self.P, self.range_bits, self.table, self.weights, self.rdo)

    def encode(self, q: float) -> bytes:
        """The complete stream at quality ``q`` (memoised for the rate search)."""
        hit = self._cache.get(q)
        if hit is not None:
            return hit
        coder = self.coder(q)
        ri, floor = self.restart_interval, self.texture_floor
        if self.rdo == "texture":  # pixels to the stream's bytes in one kernel call
            rows, cols = self.frame.shape
            head, tail = jpeg_head_arrays(_steps_bytes(coder), self.P, rows, cols, ri)
            out = _rdoq.encode_jpeg_texture(coder, self.frame, restart_interval=ri, floor=floor, head=head, tail=tail)
            self._cache[q] = out
            return out
        enc = coder.encode_frame(self.frame, size_bits=4, stuff=True, restart_interval=ri, texture_floor=floor)
        stream = build_jpeg(
            enc.coded, P=self.P, Y=self.frame.shape[0], X=self.frame.shape[1], steps=coder.steps,
            dc_table=enc.dc_table, ac_table=enc.ac_table, restart_interval=self.restart_interval,
        )  # fmt: skip
        self._cache[q] = stream
        return stream


def _steps_bytes(coder: FrameCoder) -> bytes:
    """The coder's natural-order steps as uint16 bytes (the key of the memoised headers), memoised on it."""
    hit = coder.__dict__.get("_steps_bytes")
    if hit is None:
        hit = coder.__dict__["_steps_bytes"] = np.ascontiguousarray(coder.steps, dtype=np.uint16).tobytes()
    return hit


def _make_coder(q: float, P: int, range_bits: int, table: Any, weights: np.ndarray, rdo: str) -> FrameCoder:
    max_step = 255 if P == 8 else 65535
    steps = quantize.quant_table(q, range_bits, table=table, max_step=max_step)
    exact = np.clip(weights * quantize.step_scale(q, range_bits), 1, max_step)
    lam = _rdoq.default_lambda(quantize.steps_zigzag(exact)) if rdo in ("trellis", "texture") else None
    return FrameCoder(steps, P, False, rdo=rdo, rdo_size_bits=4, rdo_lambda=lam, ties_up=True)


@functools.lru_cache(maxsize=256)
def _named_coder(q: float, P: int, range_bits: int, table: str, rdo: str) -> FrameCoder:
    return _make_coder(q, P, range_bits, table, quantize.TABLES[table], rdo)


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
    effort: str = "best",
    rdo: str | None = None,
    modality: str | None = None,
    range_bits: int | None = None,
    value_range: tuple[int, int] | None = None,
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
    range_bits
        Bits the content spans, which scale the steps (``2**(range_bits - 8)``); ``None``:
        ``bits_stored`` (:func:`.levelshift.default_range_bits`), so that one quality gives one
        DQT on every image of that depth, as with libjpeg-turbo. A series writer passes the
        series' span instead (quality then follows the content, the same on every slice).
    value_range
        The image's (min, max) when the caller has checked them against ``bits_stored``
        (:func:`.pipeline.encode` does: one pass over the pixels instead of two); ``None``: checked here.

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
    if (
        isinstance(restart_interval, bool)
        or not isinstance(restart_interval, (int, np.integer))
        or not 0 <= restart_interval <= 0xFFFF
    ):
        raise InvalidInputError(
            f"restart_interval={restart_interval!r} must be an integer 0..65535 (Ri, T.81 §B.2.4.4)"
        )
    if effort not in EFFORT_RDO:
        raise InvalidInputError(f"effort={effort!r} is unknown, expected one of {tuple(EFFORT_RDO)}")
    if rdo is None:
        rdo = EFFORT_RDO[effort]
    if rdo not in RDO_MODES:
        raise InvalidInputError(f"rdo={rdo!r} is unknown, expected one of {RDO_MODES}")
    frame = frames[0]
    if frame.shape[0] > 0xFFFF or frame.shape[1] > 0xFFFF:
        raise InvalidInputError(
            f"image of {frame.shape[0]} x {frame.shape[1]} exceeds JPEG's 65535 x 65535 (T.81 §B.2.2)"
        )
    if value_range is None:
        vmin, vmax = levelshift.check_range(frame, bits_stored, False)
    else:
        vmin, vmax = levelshift.checked_pair(value_range, "value_range", bits_stored, False, ordered=True)
    if range_bits is None:
        rbits = levelshift.default_range_bits(frame, vmin, vmax, bits_stored)
    else:
        rbits = levelshift.checked_range_bits(range_bits, bits_stored)
    if table is None:
        table = tables_trained.table_for(modality)
    enc = _JpegEncoder(
        frame, bits_stored=bits_stored, range_bits=rbits, table=table, rdo=rdo, restart_interval=int(restart_interval),
        texture_floor=_rdoq.texture_floor(vmin, vmax),
    )  # fmt: skip
    if ratio is None and psnr is None:  # a quality (the common call; RateTarget's checks, without its cost)
        if quality is None:
            return enc.encode(75.0)
        if isinstance(quality, (int, float, np.integer, np.floating)) and not isinstance(quality, bool):
            if 1 <= quality <= 100:  # else (NaN too) RateTarget raises below
                return enc.encode(float(quality))
    target = RateTarget(quality=quality, ratio=ratio, psnr=psnr)  # one target, each in range
    if target.kind in (None, "quality"):
        return enc.encode(75.0 if quality is None else float(quality))
    if ratio is not None:
        return _encode_for_ratio(enc, ratio, raw_bytes=frame.size * (1 if bits_stored <= 8 else 2))
    return _encode_for_psnr(enc, psnr)


def _encode_for_ratio(enc: _JpegEncoder, ratio: Any, *, raw_bytes: int) -> bytes:
    """Highest quality whose real stream (headers, stuffing and all) is no larger than raw_bytes / ratio."""
    target = raw_bytes / float(RateTarget(ratio=ratio).ratio or 1)  # validated: a finite number >= 1
    q = search_quality(lambda q: math.log(len(enc.encode(q)) / target), ok_below=True, close=RATIO_TOLERANCE / 6)
    out = enc.encode(q)
    check_ratio_reached(ratio, raw_bytes / len(out))
    return out


def _encode_for_psnr(enc: _JpegEncoder, psnr: Any) -> bytes:
    """Lowest quality (smallest stream) whose pixels, decoded from the stream itself, reach ``psnr`` dB."""
    wanted = float(RateTarget(psnr=psnr).psnr or 0)  # validated: dB in (0, 200)

    def value(q: float) -> float:
        return _metrics_psnr(enc.frame, decode_jpeg(enc.encode(q)), bits_stored=enc.bits_stored) - wanted

    q = search_quality(value, ok_below=False, close=PSNR_CLOSE_DB)
    out = enc.encode(q)
    check_psnr_reached(wanted, _metrics_psnr(enc.frame, decode_jpeg(out), bits_stored=enc.bits_stored))
    return out


# --------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------


def decode_jpeg(
    data: bytes | bytearray | memoryview, *, frames: int | Sequence[int] | None = None, strict: bool = False
) -> np.ndarray:
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

    buf = bytes(data)
    plain = parse_plain(buf)  # the common layout in one kernel call; else the full parser
    coded: bytes | np.ndarray = buf
    if plain is not None:
        P, rows, cols, Ri, start, end = plain.P, plain.Y, plain.X, plain.Ri, plain.scan_start, plain.scan_end
        coder = FrameCoder.for_table(plain.steps, P, False, ties_up=True)
        dc_decoder, ac_decoder, coded = plain.dc_decoder, plain.ac_decoder, plain.data
    else:
        jf = parse_jpeg(buf, strict=strict)
        P, rows, cols, Ri, start, end = jf.P, jf.sof.Y, jf.sof.X, jf.Ri, jf.scan_start, jf.scan_end
        coder = FrameCoder.for_table(jf.qtable.natural(), P, False, ties_up=True)
        max_dc, max_ac = entropy.max_categories(P)
        dc_decoder = jf.dc_table.decoder(size_bits=4, max_category=max_dc, ac=False)
        ac_decoder = jf.ac_table.decoder(size_bits=4, max_category=max_ac, ac=True)
    sel, single = ([0], False) if frames is None else frame_selection(frames, 1)
    nbytes = end - start
    by, bx = blocks_shape(rows, cols)
    if by * bx > 4 * nbytes:  # every block costs at least 2 bits (DC code + EOB)
        raise TruncatedStreamError(
            f"{by * bx} blocks cannot be coded in {nbytes} bytes of entropy-coded data (at least 2 bits per block)",
            offset=start, segment="SOS",
        )  # fmt: skip
    try:
        img = coder.decode_with(
            coded, dc_decoder, ac_decoder, rows, cols, size_bits=4, start=start, end=end, stuffed=True,
            restart_interval=Ri, segment="entropy-coded data (T.81 §F.2)",
        )  # fmt: skip
    except TruncatedStreamError as e:
        if e.offset is None or e.offset + 1 >= end:
            raise
        # the bit reader stopped at a marker inside the scan, not at its end
        raise CorruptStreamError(
            f"{M.marker_name(0xFF00 | buf[e.offset + 1])} where coded data was expected ({by * bx} blocks); "
            f"the restart interval Ri={Ri} does not match the data (T.81 §B.2.4.4, §F.1.2.3)",
            offset=e.offset,
            segment="entropy-coded data (T.81 §F.2)",
        ) from None
    assert img.dtype == storage_dtype(P, False)
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
