"""The ``.mdc`` v2 driver: the predictive mode (guaranteed max error) and range-coded DCT frames.

``encode(..., max_error=k)`` comes here (through :func:`.mdc.encode_to`): every frame is coded
by :mod:`.lossless` so that no decoded sample differs from its original by more than ``k``
stored units (``k = 0``: bit-exact), and each frame is decoded again inside the encoder to
check that before it is written. The stream is a version 2.0 container (HEAD transform 1,
entropy coder 1, ``max_error`` in HEAD), with one FRAM segment per frame holding the frame's
model parameters and its range-coded bytes (``docs/format.md`` §10). Frames are independent,
coded in parallel threads and decoded with random access through FIDX, as in v1.

``encode(..., entropy="arith")`` also comes here (through :func:`.mdc.encode_mdc_to`): the v1 DCT
and quantization, but the levels range-coded with contexts instead of Huffman-coded: 8-18% smaller
at equal quality on CT and MR. Two coders of the levels exist: the adaptive binary range coder of
format 2.0 (entropy coder 1, :func:`._kernels_v2.encode_coefficients`, ``docs/format.md`` §12;
``entropy="arith-binary"``) and the multi-symbol one of format 2.1 (entropy coder 2,
:mod:`._kernels_ms`, §13; ``entropy="arith-multi"``), the same size within ~1% and 2-2.5x
faster to encode, ~1.5x to decode. ``"arith"`` means :data:`DEFAULT_ARITH`.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence
from typing import BinaryIO, Literal, NamedTuple

import numpy as np

from .._parallel import imap_ordered
from ..errors import CorruptStreamError, InvalidInputError, TruncatedStreamError
from ..spec import PixelSpec, storage_dtype, value_range
from . import _kernels_ms as KM
from . import _kernels_v2 as K
from . import container, levelshift, quantize
from .framecoder import FrameCoder, default_jobs, frame_selection, map_frames, validate_pixels
from .lossless import MAX_ERROR_LIMIT, PREDICTORS, FrameParams, decode_frame, encode_frame, encode_frame_smallest
from .transform import blocks_shape

__all__ = ["encode_predictive_to", "predictive_compact", "decode_predictive", "parse_predictive_frame", "FRAM2_HEAD",
           "MIN_PIXELS_PER_BYTE", "compact_predictive_head", "PRED_COMPACT_BLEND", "PREDICTIVE_COMPACT",
           "encode_levels", "decode_levels", "dct_frame_segment", "dct_frame_bytes", "decode_dct", "FRAM2_DCT_HEAD",
           "MAX_BLOCKS_PER_BYTE", "ENTROPY_CODERS", "DEFAULT_ARITH", "arith_coder_id", "round_scaled",
           "reconstruction_offsets", "reconstruct_with_offsets", "rdoq_levels", "rdoq_frame_bytes", "rdoq_frame_mse",
           "error_bound_with_offsets", "read_dct_frame", "stream_error_bound", "deblocked_frame",
           "choose_restoration", "decoded_before_restoration", "FAST_FILTER_CLASSES", "int_quantiles",
           "RestorationFilter", "DctFrame", "FLAG_FILTER", "FLAG_INTRA", "FLAG_PADDING", "FLAG_MODES2", "FLAG_TX",
           "restore_padding", "meta_padding", "compact_frame_segment", "FLAG_QTABLE"]  # fmt: skip

#: ``entropy=`` choices of :func:`medcodec.encode` for DCT streams: ``"huffman"`` writes format
#: 1.0 (T.81-style Huffman); the others context-adaptive range coding of the levels:
#: ``"arith-binary"`` format 2.0 (entropy coder 1), ``"arith-multi"`` format 2.1 (entropy coder 2),
#: ``"arith"`` the default of the two (:data:`DEFAULT_ARITH`).
ENTROPY_CODERS = ("huffman", "arith", "arith-binary", "arith-multi")
#: What ``entropy="arith"`` writes: the multi-symbol coder (docs/design-notes.md, "A multi-symbol
#: range coder": the same size within ~1 %, encoding 2-2.5x and decoding ~1.5x faster).
DEFAULT_ARITH = "arith-multi"
#: HEAD entropy coder of each range-coded ``entropy=`` choice of a DCT stream.
ARITH_CODER_IDS = {"arith-binary": container.ENTROPY_ARITH, "arith-multi": container.ENTROPY_MULTI}


def arith_coder_id(entropy: str | None) -> int | None:
    """HEAD entropy coder of ``entropy`` for DCT streams (``None``: not range-coded, format 1.0)."""
    if entropy == "arith":
        entropy = DEFAULT_ARITH
    return ARITH_CODER_IDS.get(entropy or "")


#: FRAM payload of a predictive frame, before the coded bytes: index u32, predictor u8, flags u8
#: (bit 0: run mode, format 2.7; bits 1, 2: modular levels, run contexts from above, format 2.8;
#: bit 3: packed, format 2.9, its value table next), 2 bytes reserved (0), vmin i32, vmax i32,
#: T1 T2 T3 u16, ncoded u32 (``docs/format.md`` §10.1).
FRAM2_HEAD = struct.Struct("<IBB2xiiHHHI")
#: Predictive FRAM flag: run mode (§10.4), format 2.7 on.
PRED_FLAG_RUNS = 1
#: Predictive FRAM flag: levels modulo the quantized range (§10.2 step 5), format 2.8 on.
PRED_FLAG_MODULAR = 2
#: Predictive FRAM flag: run bits' contexts from the row above (§10.4), format 2.8 on, with flag 1 only.
PRED_FLAG_RUN_ABOVE = 4
#: Predictive FRAM flag: a packed frame (§10.5: the table of its distinct values follows the header,
#: the coder codes indices into it, losslessly whatever HEAD's max_error), format 2.9 on.
PRED_FLAG_PACKED = 8
#: The predictive tools the encoder writes, by the format version that brought them: 2.9 (the
#: default: run mode tried per frame, :func:`.lossless.encode_frame_smallest`, with modular levels
#: and run contexts from above, lossless frames packed where that pays), 2.8 (not packed), 2.7 (run
#: mode alone) or 2.0 (none). Golden files made before a version are re-encoded with the one of
#: their day.
PREDICTIVE_VERSION = container.VERSION_29
#: Predictive streams are written in the compact layout of format 2.10 (``docs/format.md`` §20) by
#: default when they use the newest tools (:data:`PREDICTIVE_VERSION` 2.9); ``compact=False`` (and
#: any older tool version, as golden files re-encode) writes the long layout of §10.1.
PREDICTIVE_COMPACT = True
#: Compact predictive FRAM flag (§20): the predictor is the blend (else MED); bits 0-3 are §10.1's flags.
PRED_COMPACT_BLEND = 16
#: A frame may not claim more than this many samples per coded byte (decompression-bomb limit).
#: The coder spends at least 0.0056 bits per sample (1 byte per ~1400 samples, §11), so valid
#: streams are always far inside it. FIDX entries are checked against it too (:func:`.container.frame_min_size`).
MIN_PIXELS_PER_BYTE = container.MIN_PIXELS_PER_BYTE


def _check_max_error(max_error: object) -> int:
    if isinstance(max_error, bool) or not isinstance(max_error, (int, np.integer)):
        raise InvalidInputError(f"max_error={max_error!r} must be an integer >= 0")
    if not 0 <= int(max_error) <= MAX_ERROR_LIMIT:
        raise InvalidInputError(f"max_error={max_error} outside 0..{MAX_ERROR_LIMIT} (stored units)")
    return int(max_error)


def predictive_compact(compact: bool | None) -> bool:
    """Whether a predictive stream is written in the compact layout (2.10): ``compact``, or by default
    :data:`PREDICTIVE_COMPACT` with the tools of 2.9 or later (an older :data:`PREDICTIVE_VERSION`, as
    golden files re-encode, writes its own long layout).

    Raises
    ------
    InvalidInputError
        Not a bool or ``None``, or ``True`` with tools older than 2.9.
    """
    newest = PREDICTIVE_VERSION >= container.VERSION_29
    if compact is None:
        return PREDICTIVE_COMPACT and newest
    if compact is not True and compact is not False:
        raise InvalidInputError(f"compact={compact!r} must be True, False or None")
    if compact and not newest:
        raise InvalidInputError("the compact predictive layout (2.10) comes with the tools of 2.9 or later only")
    return compact


def encode_predictive_to(
    fh: BinaryIO,
    frames: Iterable[np.ndarray],
    *,
    n_frames: int,
    bits_stored: int,
    signed: bool | None,
    max_error: int,
    spec: PixelSpec | None = None,
    jobs: int | None = None,
    ancillary: dict[str, bytes] | None = None,
    ndim: int = 3,
    predictor: str = "blend",
    frames_checked: bool = False,
    compact: bool | None = None,
) -> int:
    """Encode frames into a v2 ``.mdc`` whose every sample is within ``max_error`` of the input.

    Memory stays at about ``2 * jobs`` frames, as in :func:`.mdc.encode_to`. ``compact``: the
    compact layout of format 2.10 (``None``: :data:`PREDICTIVE_COMPACT`, with the newest tools
    only), else the long one of the tools' version (2.9).

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    InvalidInputError
        Bad frames or options.
    """
    k = _check_max_error(max_error)
    compact = predictive_compact(compact)
    if predictor not in PREDICTORS:
        raise InvalidInputError(f"predictor={predictor!r} is unknown, expected one of {tuple(PREDICTORS)}")
    if not isinstance(n_frames, int) or n_frames < 1:
        raise InvalidInputError(f"n_frames={n_frames!r} must be a positive integer")
    container.check_ancillary(ancillary)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise InvalidInputError("no frames to encode")
    first_arr, signed_, _, bits_stored = validate_pixels(first, bits_stored, signed)
    if first_arr.shape[0] != 1:
        raise InvalidInputError(f"every frame must be 2-D, got shape {first_arr.shape}")
    first = first_arr[0]
    _, rows, cols = first_arr.shape
    jobs_ = min(default_jobs(jobs), n_frames)
    spec = spec or PixelSpec(bits_stored=bits_stored, signed=signed_)
    version = max(container.VERSION_210, PREDICTIVE_VERSION) if compact else PREDICTIVE_VERSION
    header = container.MdcHeader(
        rows=rows, cols=cols, frames=n_frames, bits_stored=bits_stored, signed=signed_,
        photometric_interpretation=spec.photometric_interpretation,
        rescale_slope=float(spec.rescale_slope), rescale_intercept=float(spec.rescale_intercept),
        window_center=spec.window_center, window_width=spec.window_width, quality=None,
        range_bits=bits_stored, version=version,
        transform=container.TRANSFORM_PREDICTIVE,
        entropy=container.ENTROPY_ARITH, max_error=k, qtables=(),
        meta={"ndim": 2} if ndim == 2 else {}, ancillary=dict(ancillary or {}), compact=compact,
    )  # fmt: skip
    code = PREDICTORS[predictor]

    def one(item: tuple[int, np.ndarray]) -> bytes:
        index, frame = item
        if not isinstance(frame, np.ndarray) or frame.shape != (rows, cols) or frame.dtype.kind not in "iu":
            raise InvalidInputError(
                f"every frame must be an integer array of shape {(rows, cols)}, got "
                f"{getattr(frame, 'shape', type(frame).__name__)}"
            )
        if not frames_checked:
            levelshift.check_range(frame, bits_stored, signed_)
        if PREDICTIVE_VERSION >= container.VERSION_27:  # with or without run mode, the smaller; checked by decoding
            params, coded = encode_frame_smallest(
                frame, k, code, modular=PREDICTIVE_VERSION >= container.VERSION_28,
                packing=PREDICTIVE_VERSION >= container.VERSION_29,
            )  # fmt: skip
        else:
            params = FrameParams.for_frame(frame, k, code, runs=False)
            coded = encode_frame(frame, params, verify=True)
        flags = (
            (PRED_FLAG_RUNS * params.runs)
            | (PRED_FLAG_MODULAR * params.modular)
            | (PRED_FLAG_RUN_ABOVE * params.run_above)
            | (PRED_FLAG_PACKED * (params.values is not None))
        )
        table = value_table_bytes(params.values) if params.values is not None else b""
        if compact:
            return container._segment(b"FRAM", compact_predictive_head(index, flags, params) + table + coded)
        head = FRAM2_HEAD.pack(
            index, params.predictor, flags, params.vmin, params.vmax, params.t1, params.t2, params.t3, len(coded)
        )
        return container._segment(b"FRAM", head + table + coded)

    writer = container.ContainerWriter(fh, header)
    written = 0
    source = enumerate(itertools.chain([first], it))
    for seg in imap_ordered(one, source, jobs_):
        if written >= n_frames:
            raise InvalidInputError(f"more than n_frames={n_frames} frames given")
        writer.add_payload(written, seg)
        written += 1
    if written != n_frames:
        raise InvalidInputError(f"{written} frames given, n_frames={n_frames}")
    return writer.close()


def compact_predictive_head(index: int, flags: int, params: FrameParams) -> bytes:
    """The fields of a compact predictive FRAM before its value table and coded bytes (§20):
    index, flags (§10.1's, plus :data:`PRED_COMPACT_BLEND`), VMIN, VMAX - VMIN, T1, T2 - T1, T3 - T2."""
    out = bytearray()
    container.put_varint(out, index)
    container.put_varint(out, flags | (PRED_COMPACT_BLEND if params.predictor == PREDICTORS["blend"] else 0))
    container.put_svarint(out, params.vmin)
    for value in (params.vmax - params.vmin, params.t1, params.t2 - params.t1, params.t3 - params.t2):
        container.put_varint(out, value)
    return bytes(out)


def _read_compact_predictive_head(
    payload: bytes | memoryview, off: int
) -> tuple[tuple[int, int, int, int, int, int, int, int], int]:
    """:func:`compact_predictive_head` read back: ((index, predictor, flags, vmin, vmax, t1, t2, t3),
    bytes read). Fields cut off or beyond their range are :class:`CorruptStreamError`."""
    r = container.Reader(memoryview(payload), off, "FRAM")
    index = r.varint("frame index", container.LIMITS["max_frames"])
    flags = r.varint("flags", 2 * PRED_COMPACT_BLEND - 1)
    predictor = PREDICTORS["blend"] if flags & PRED_COMPACT_BLEND else PREDICTORS["med"]
    vmin = r.svarint("VMIN", 1 << 16)
    vmax = vmin + r.varint("VMAX - VMIN", 1 << 16)
    t1 = r.varint("T1", 0xFFFF)
    t2 = t1 + r.varint("T2 - T1", 0xFFFF)
    t3 = t2 + r.varint("T3 - T2", 0xFFFF)
    if t3 > 0xFFFF:
        raise r.fail(f"thresholds {t1}, {t2}, {t3} beyond 65535")
    return (index, predictor, flags & ~PRED_COMPACT_BLEND, vmin, vmax, t1, t2, t3), r.pos


def parse_predictive_frame(
    data: bytes | memoryview, header: container.MdcHeader, entry: tuple[int, int]
) -> tuple[int, FrameParams, int, int]:
    """Read a predictive FRAM segment: (index, parameters, start, end of the coded bytes in ``data``).

    Raises
    ------
    CorruptStreamError, TruncatedStreamError, ChecksumMismatchError
        Damaged segment, parameters outside the header's sample range, or a frame claiming
        more than :data:`MIN_PIXELS_PER_BYTE` samples per coded byte.
    """
    payload = container.frame_payload(data, entry)
    off = entry[0]
    if header.compact:  # §20: varints, the coded bytes end the payload
        (index, predictor, flags, vmin, vmax, t1, t2, t3), head_size = _read_compact_predictive_head(payload, off)
    else:
        if len(payload) < FRAM2_HEAD.size:
            raise TruncatedStreamError(
                "FRAM header cut off", offset=off, segment="FRAM", expected=FRAM2_HEAD.size, available=len(payload)
            )
        index, predictor, flags, vmin, vmax, t1, t2, t3, ncoded = FRAM2_HEAD.unpack_from(payload)
        head_size = FRAM2_HEAD.size
    allowed = PRED_FLAG_RUNS if header.version >= container.VERSION_27 else 0
    if header.version >= container.VERSION_28:
        allowed |= PRED_FLAG_MODULAR | PRED_FLAG_RUN_ABOVE
    if header.version >= container.VERSION_29:
        allowed |= PRED_FLAG_PACKED
    if flags & ~allowed or (flags & PRED_FLAG_RUN_ABOVE and not flags & PRED_FLAG_RUNS):
        raise CorruptStreamError(
            f"FRAM flags {flags:#x} not defined for a predictive frame of format "
            f"{header.version[0]}.{header.version[1]}",
            offset=off, segment="FRAM",
        )  # fmt: skip
    values, table_len = None, 0
    if flags & PRED_FLAG_PACKED:
        values, table_len = read_value_table(payload, head_size, header, off)
    if header.compact:
        ncoded = len(payload) - head_size - table_len
    if head_size + table_len + ncoded != len(payload):
        raise CorruptStreamError(
            f"FRAM coded length {ncoded} disagrees with segment length", offset=off, segment="FRAM"
        )
    if index >= header.frames:
        raise CorruptStreamError(
            f"FRAM frame {index} beyond the {header.frames} frames of HEAD", offset=off, segment="FRAM"
        )
    lo, hi = value_range(header.bits_stored, header.signed)
    if values is not None:  # a packed frame codes indices 0..n-1 (the table was checked against lo..hi)
        lo, hi = 0, len(values) - 1
    if not lo <= vmin <= vmax <= hi:
        raise CorruptStreamError(
            f"FRAM value range {vmin}..{vmax} outside the {header.bits_stored}-bit range {lo}..{hi}",
            offset=off, segment="FRAM",
        )  # fmt: skip
    pixels = header.rows * header.cols
    if pixels > MIN_PIXELS_PER_BYTE * ncoded:
        raise CorruptStreamError(
            f"{pixels} samples cannot be coded in {ncoded} bytes (limit {MIN_PIXELS_PER_BYTE} samples per byte)",
            offset=off, segment="FRAM",
        )  # fmt: skip
    params = FrameParams(  # a packed frame is lossless whatever HEAD's bound (§10.5)
        0 if values is not None else int(header.max_error or 0), vmin, vmax, t1, t2, t3, predictor,
        runs=bool(flags & PRED_FLAG_RUNS),
        modular=bool(flags & PRED_FLAG_MODULAR), run_above=bool(flags & PRED_FLAG_RUN_ABOVE), values=values,
    )  # fmt: skip
    params.validate(offset=off, segment="FRAM")
    start = off + 8 + head_size + table_len
    return index, params, start, start + ncoded


#: Most values a packed frame's table may hold (every value of 16-bit data).
MAX_TABLE_VALUES = 1 << 16


def value_table_bytes(values: tuple[int, ...]) -> bytes:
    """A packed frame's table (§10.5): the count as a varint, the smallest value as an svarint,
    then the count - 1 gaps between neighbours, less one, as a Rice block."""
    out = bytearray()
    container.put_varint(out, len(values))
    container.put_svarint(out, values[0])
    container.put_rice(out, [b - a - 1 for a, b in itertools.pairwise(values)])
    return bytes(out)


def read_value_table(
    payload: bytes | memoryview, pos: int, header: container.MdcHeader, off: int
) -> tuple[tuple[int, ...], int]:
    """The table of a packed frame at ``payload[pos:]``: (values, its length in bytes).

    Raises
    ------
    CorruptStreamError
        A field cut off, a count of 0 or above :data:`MAX_TABLE_VALUES`, a value outside the
        header's sample range.
    """
    reader = container.Reader(memoryview(payload)[pos:], off, "FRAM")
    n = reader.varint("packed table count", MAX_TABLE_VALUES)
    lo, hi = value_range(header.bits_stored, header.signed)
    first = reader.svarint("packed table first value", 1 << 16)
    if n < 1 or not lo <= first <= hi or n - 1 > hi - first:
        raise reader.fail(f"packed table of {n} values from {first} does not fit {lo}..{hi}")
    gaps = np.asarray(reader.rice(n - 1, "packed table gaps", MAX_TABLE_VALUES - 1), dtype=np.int64)
    if gaps.size and int(gaps.min()) < 0:
        raise reader.fail("packed table values not increasing")
    values = first + np.concatenate(([0], np.cumsum(gaps + 1)))
    if int(values[-1]) > hi:
        raise reader.fail(f"packed table values beyond {hi}")
    return tuple(int(v) for v in values), reader.pos


def decode_predictive(buf: bytes, header: container.MdcHeader, index: list[tuple[int, int]],
                      frames: int | Sequence[int] | None, jobs: int) -> np.ndarray:  # fmt: skip
    """Decode the frames asked for of a predictive v2 stream (random access through FIDX)."""
    if header.max_error is None:
        raise CorruptStreamError("predictive stream without max_error in HEAD", offset=8, segment="HEAD")
    sel, single = frame_selection(frames, header.frames)
    for k in sel:  # a truncated stream still gives the frames before the cut; check before allocating
        container.check_frame_present(index, k, len(buf))
    arr = np.frombuffer(buf, dtype=np.uint8)
    out = np.empty((len(sel), header.rows, header.cols), dtype=storage_dtype(header.bits_stored, header.signed))

    def one(j: int) -> None:
        entry = index[sel[j]]
        fidx, params, start, end = parse_predictive_frame(buf, header, entry)
        if fidx != sel[j]:
            raise CorruptStreamError(f"FIDX entry {sel[j]} points at frame {fidx}", offset=entry[0], segment="FRAM")
        decode_frame(arr, params, (header.rows, header.cols), start=start, end=end, out=out[j],
                     offset=entry[0], segment=f"FRAM {fidx}")  # fmt: skip

    map_frames(one, list(range(len(sel))), jobs)
    if single or (frames is None and header.meta.get("ndim") == 2):
        return out[0]
    return out


# ------------------------------------------------------------------ DCT frames, arithmetic coded

#: FRAM payload of a DCT frame coded by the range coder (HEAD transform 0, entropy coder 1):
#: index u32, qtable u8, flags u8 (bit 0: reconstruction offsets follow), 2 bytes reserved (0),
#: [63 x u8 offsets], ncoded u32, then the coded levels (``docs/format.md`` §12).
FRAM2_DCT_HEAD = struct.Struct("<IBBxx")
FLAG_OFFSETS = 1
FLAG_DEBLOCK = 2  # deblocking parameters follow (alpha, beta, tc: 3 x u16)
FLAG_FILTER = 4  # restoration filter parameters follow (RestorationFilter)
FLAG_INTRA = 8  # format 2.2: the coded bytes are an intra frame (:mod:`.intra`: modes, then residual levels)
FLAG_PADDING = 16  # format 2.3: a padding mask follows the coded bytes (docs/format.md §15)
FLAG_MODES2 = 32  # format 2.4, with FLAG_INTRA: the intra frame's modes use mode model 2 (docs/format.md §17)
#: Format 2.5, with FLAG_INTRA and FLAG_MODES2: each coded intra block chooses the DCT or its mode's
#: DST-VII pair (docs/format.md §18; bit 7: bit 6 is the compact form's FLAG_QTABLE).
FLAG_TX = 128
#: Format 2.6, with FLAG_TX: 16x16 blocks (docs/format.md §19). Bit 8 of the compact form's flags
#: varint; the long form's u8 holds it as bit 6 (:data:`LONG_FLAG_BIG`, free there: the long form's
#: QTAB index is a fixed field), so a 2.5 reader of either form refuses it.
FLAG_BIG = 256
LONG_FLAG_BIG = 64
_DEBLOCK = struct.Struct("<HHH")
_FILTER_HEAD = struct.Struct("<BH")  # classes, clip
#: At most this many activity classes of the restoration filter.
MAX_FILTER_CLASSES = 8
#: Restoration filter classes the encoder tries (more than one only on frames of >= 128 x 128 samples)
#: at ``effort="best"``.
FILTER_CLASS_CANDIDATES = (1, 4, 8)
#: ... and at ``effort="fast"``: one class. BD-rate against OpenJPEG (bench_mdc2's series, one run)
#: +0.20 / +12.32 / +0.85 % (chest CT, head CT, MR) against +0.52 / +12.16 / +1.00 % with (1, 4, 8),
#: and the decoder's filter pass 4.5x faster (0.90 -> 0.20 ms a 512x512 frame), the encoder's search
#: without the activity, its quantiles and bins (docs/design-notes.md, "Speed of the default effort").
FAST_FILTER_CLASSES = (1,)


class RestorationFilter(NamedTuple):
    """Parameters of the decoder's restoration filter (§12.3 step 4): ``thresholds`` (classes - 1,
    non-decreasing activities), ``weights`` (classes x 6, in 1/256), ``clip`` (stored units)."""

    thresholds: np.ndarray
    weights: np.ndarray
    clip: int

    def to_bytes(self) -> bytes:
        return (_FILTER_HEAD.pack(len(self.weights), self.clip) + np.asarray(self.thresholds, "<u4").tobytes()
                + np.asarray(self.weights, "<i2").tobytes())  # fmt: skip

    def apply(self, img: np.ndarray, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
        return K.restore(img, np.asarray(self.thresholds, np.int64), np.asarray(self.weights, np.int64),
                         int(self.clip), lo, hi, np.empty_like(img) if out is None else out)  # fmt: skip


#: Deblocking candidates the encoder tries per frame, as (alpha, tc) in DC steps; beta = alpha/2 + 1.
DEBLOCK_CANDIDATES = (
    (4.0, 0.25),
    (8.0, 0.25),
    (4.0, 0.125),
    (8.0, 0.125),
    (8.0, 0.0625),
)  #: Reconstruction offsets are in 1/256 of a step, at most half a step.
OFFSET_UNIT = 256
MAX_OFFSET = 128
#: A DCT frame may not claim more than this many 8x8 blocks per coded byte (bomb limit): the
#: coder spends at least 7 decisions of >= 0.0056 bit on a block (1 byte per ~200 blocks).
MAX_BLOCKS_PER_BYTE = container.MAX_BLOCKS_PER_BYTE


def encode_levels(levels: np.ndarray, blocks_per_row: int, coder: int = container.ENTROPY_ARITH) -> bytes:
    """Range-code (nblocks, 64) zigzag levels with HEAD entropy coder ``coder``: 1 the binary
    coder (:func:`._kernels_v2.encode_coefficients`), 2 the multi-symbol one (:mod:`._kernels_ms`)."""
    lv = np.ascontiguousarray(levels, dtype=np.int32)
    kernel = KM.encode_coefficients_ms if coder == container.ENTROPY_MULTI else K.encode_coefficients
    cap = lv.size * 4 + 1024
    while True:
        out = np.empty(cap, dtype=np.uint8)
        status, n = kernel(lv, blocks_per_row, out)
        if status == K.OK:
            return out[:n].tobytes()
        if status != K.E_OVERFLOW:
            raise InvalidInputError("a DCT level beyond what the range coder can hold (|level| >= 2**22 + 15)")
        cap *= 2


def decode_levels(data: np.ndarray, start: int, end: int, nblocks: int, blocks_per_row: int, *,
                  offset: int | None = None, segment: str | None = None,
                  coder: int = container.ENTROPY_ARITH) -> np.ndarray:  # fmt: skip
    """Inverse of :func:`encode_levels` on ``data[start:end]``."""
    levels = np.zeros((nblocks, 64), dtype=np.int32)
    kernel = KM.decode_coefficients_ms if coder == container.ENTROPY_MULTI else K.decode_coefficients
    status = kernel(data, start, end, blocks_per_row, levels)
    if status == K.E_TRUNCATED:
        raise TruncatedStreamError("coded DCT levels end before the frame does", offset=offset, segment=segment)
    if status != K.OK:
        raise CorruptStreamError("coded DCT levels out of range (run past coefficient 63 or a huge DC)",
                                 offset=offset, segment=segment)  # fmt: skip
    return levels


def dct_frame_segment(index: int, qtable: int, coded: bytes, offsets: np.ndarray | None = None,
                      deblock: tuple[int, int, int] | None = None,
                      restoration: RestorationFilter | None = None, intra: int = 0,
                      padding_mask: bytes | None = None) -> bytes:  # fmt: skip
    """The FRAM segment of one range-coded DCT frame (``offsets``: 63 AC reconstruction offsets;
    ``deblock``: (alpha, beta, tc) of the decoder's edge filter; ``restoration``: the filter after it;
    ``intra``: ``coded`` is an intra frame's payload (1 or True: format 2.2, 2: with mode model 2,
    format 2.4, 3: with format 2.5's transform choice, 4: with format 2.6's 16x16 blocks);
    ``padding_mask``: the frame's padding voxels, :func:`.container.encode_padding_mask`, format 2.3)."""
    if intra not in (0, 1, 2, 3, 4):
        raise InvalidInputError(f"intra={intra!r}: 0, 1, 2, 3 or 4")
    flags = (FLAG_OFFSETS if offsets is not None else 0) | (FLAG_DEBLOCK if deblock is not None else 0)
    flags |= (FLAG_FILTER if restoration is not None else 0) | (FLAG_INTRA if intra else 0)
    flags |= FLAG_PADDING if padding_mask is not None else 0
    flags |= (FLAG_MODES2 if intra >= 2 else 0) | (FLAG_TX if intra >= 3 else 0) | (LONG_FLAG_BIG if intra == 4 else 0)
    extra = np.asarray(offsets, dtype=np.uint8).tobytes() if offsets is not None else b""
    extra += _DEBLOCK.pack(*deblock) if deblock is not None else b""
    extra += restoration.to_bytes() if restoration is not None else b""
    mask = b"" if padding_mask is None else struct.pack("<I", len(padding_mask)) + padding_mask
    return container._segment(
        b"FRAM", FRAM2_DCT_HEAD.pack(index, qtable, flags) + extra + struct.pack("<I", len(coded)) + coded + mask
    )


#: Compact FRAM flags (format 2.4, docs/format.md §16.4): bits 0-5 as in the long form (bit 5, mode
#: model 2, only with bit 3); bit 6: a QTAB index follows (else table 0).
FLAG_QTABLE = 64
_COMPACT_KNOWN = FLAG_OFFSETS | FLAG_DEBLOCK | FLAG_FILTER | FLAG_INTRA | FLAG_PADDING | FLAG_QTABLE


def _pack_offsets(out: bytearray, offsets: np.ndarray) -> None:
    """63 reconstruction offsets as ``N`` (positions 1..N coded, the rest 0) and, if N > 0, the
    differences of ``OFFSET[1..N]`` (to 0 for the first) as a Rice block (§16.4)."""
    off = np.asarray(offsets, dtype=np.int64)
    nz = np.flatnonzero(off)
    n = int(nz[-1]) + 1 if nz.size else 0
    out.append(n)
    if n:
        container.put_rice(out, np.diff(off[:n], prepend=0).tolist())


def _unpack_offsets(r: container.Reader) -> np.ndarray:
    n = r.u8("offset count")
    offsets = np.zeros(63, dtype=np.uint8)
    if n > 63:
        raise r.fail(f"{n} reconstruction offsets, at most 63")
    if not n:
        return offsets
    values = np.cumsum(r.rice(n, "offset differences", MAX_OFFSET))
    if int(values.min()) < 0 or int(values.max()) > MAX_OFFSET:
        raise r.fail(f"a reconstruction offset outside 0..{MAX_OFFSET}")
    offsets[:n] = values
    return offsets


def compact_frame_segment(index: int, qtable: int, coded: bytes, offsets: np.ndarray | None = None,
                          deblock: tuple[int, int, int] | None = None,
                          restoration: RestorationFilter | None = None, intra: int = 0,
                          padding_mask: bytes | None = None) -> bytes:  # fmt: skip
    """:func:`dct_frame_segment` in the compact layout of format 2.4 (docs/format.md §16.4): varints
    instead of fixed fields, packed offsets, no coded length (the coded bytes end the payload; a
    padding mask comes before them) and, for an intra frame, the mode segment's length as a varint."""
    flags = (FLAG_OFFSETS if offsets is not None else 0) | (FLAG_DEBLOCK if deblock is not None else 0)
    flags |= (FLAG_FILTER if restoration is not None else 0) | (FLAG_INTRA if intra else 0)
    flags |= (FLAG_PADDING if padding_mask is not None else 0) | (FLAG_QTABLE if qtable else 0)
    if intra not in (0, 1, 2, 3, 4):
        raise InvalidInputError(f"intra={intra!r}: 0, 1, 2, 3 or 4")
    flags |= (FLAG_MODES2 if intra >= 2 else 0) | (FLAG_TX if intra >= 3 else 0) | (FLAG_BIG if intra == 4 else 0)
    out = bytearray()
    container.put_varint(out, index)
    container.put_varint(out, flags)
    if qtable:
        container.put_varint(out, qtable)
    if offsets is not None:
        _pack_offsets(out, offsets)
    if deblock is not None:
        for v in deblock:
            container.put_varint(out, int(v))
    if restoration is not None:
        weights = np.asarray(restoration.weights, np.int64)
        out.append(len(weights))
        container.put_varint(out, int(restoration.clip))
        prev = 0
        for t in np.asarray(restoration.thresholds, np.int64).tolist():
            container.put_varint(out, t - prev)
            prev = t
        for w in weights.ravel().tolist():
            container.put_svarint(out, w)
    if padding_mask is not None:
        container.put_varint(out, len(padding_mask))
        out += padding_mask
    if intra:  # u32 nmodes of the intra payload (§14.1) as a varint
        (nmodes,) = struct.unpack_from("<I", coded)
        container.put_varint(out, nmodes)
        coded = coded[4:]
    return container._segment(b"FRAM", bytes(out) + bytes(coded))


def _read_compact_dct_frame(buf: bytes, header: container.MdcHeader, entry: tuple[int, int]) -> DctFrame:
    """:func:`read_dct_frame` of a compact FRAM (format 2.4, docs/format.md §16.4)."""
    off = entry[0]
    payload = container.frame_payload(buf, entry)
    r = container.Reader(payload, off, "FRAM")
    fidx = r.varint("frame index", 0xFFFF)
    flags = r.varint("flags", 0x1FF)
    known = _COMPACT_KNOWN if "padding" in header.meta else _COMPACT_KNOWN & ~FLAG_PADDING
    known |= FLAG_MODES2 if flags & FLAG_INTRA else 0  # mode model 2 (docs/format.md §17)
    if header.version >= container.VERSION_25 and flags & FLAG_INTRA and flags & FLAG_MODES2:
        known |= FLAG_TX  # format 2.5 (docs/format.md §18)
        if header.version >= container.VERSION_26 and flags & FLAG_TX:
            known |= FLAG_BIG  # format 2.6 (docs/format.md §19)
    if flags & ~known:
        raise CorruptStreamError(f"FRAM flags {flags:#x} has unknown bits", offset=off, segment="FRAM")
    qtable = r.varint("table", 255) if flags & FLAG_QTABLE else 0
    offsets = _unpack_offsets(r) if flags & FLAG_OFFSETS else None
    deblock: tuple[int, int, int] | None = None
    if flags & FLAG_DEBLOCK:
        deblock = (r.varint("deblocking", 0xFFFF), r.varint("deblocking", 0xFFFF), r.varint("deblocking", 0xFFFF))
    restoration = None
    if flags & FLAG_FILTER:
        ncls = r.u8("filter classes")
        if not 1 <= ncls <= MAX_FILTER_CLASSES:
            raise r.fail(f"restoration filter with {ncls} classes (1..{MAX_FILTER_CLASSES})")
        clip = r.varint("filter clip", 0xFFFF)
        thr = np.cumsum([r.varint("filter threshold", 0xFFFFFFFF) for _ in range(ncls - 1)], dtype=np.int64)
        if thr.size and int(thr[-1]) > 0xFFFFFFFF:
            raise r.fail("restoration filter threshold beyond 2**32 - 1")
        w = [r.svarint("filter weight", 32767) for _ in range(K.N_FILTER_TAPS * ncls)]
        restoration = RestorationFilter(thr, np.asarray(w, np.int64).reshape(ncls, K.N_FILTER_TAPS), clip)
    mask = None
    if flags & FLAG_PADDING:
        nmask = r.varint("padding mask length", 1 << 32)
        mask = bytes(r.take(nmask, "padding mask"))
    intra_payload = None
    if flags & FLAG_INTRA:
        nmodes = r.varint("mode segment length", 1 << 32)
        if nmodes > len(payload) - r.pos:
            raise TruncatedStreamError("FRAM intra mode segment cut off", offset=off, segment="FRAM")
    head = r.pos
    ncoded = len(payload) - head
    if flags & FLAG_INTRA:
        intra_payload = struct.pack("<I", nmodes) + bytes(payload[head:])
    start = off + 8 + head
    _check_frame_fields(header, fidx, qtable, ncoded, off)
    return DctFrame(fidx, qtable, offsets, deblock, start, start + ncoded, restoration, bool(flags & FLAG_INTRA),
                    mask, intra_payload, _mode_model(flags))  # fmt: skip


def _check_frame_fields(header: container.MdcHeader, fidx: int, qtable: int, ncoded: int, off: int) -> None:
    """What both FRAM layouts check: the frame and table exist, and the blocks fit the coded bytes."""
    if fidx >= header.frames:
        raise CorruptStreamError(f"FRAM frame {fidx} beyond the {header.frames} frames of HEAD", offset=off,
                                 segment="FRAM")  # fmt: skip
    if qtable >= len(header.qtables):
        raise CorruptStreamError(f"FRAM table {qtable} but QTAB has {len(header.qtables)}", offset=off, segment="FRAM")
    by, bx = blocks_shape(header.rows, header.cols)
    if by * bx > MAX_BLOCKS_PER_BYTE * ncoded:
        raise CorruptStreamError(
            f"{by * bx} blocks cannot be coded in {ncoded} bytes (limit {MAX_BLOCKS_PER_BYTE} blocks per byte)",
            offset=off, segment="FRAM",
        )  # fmt: skip


def deblocked_frame(
    coder: FrameCoder, levels: np.ndarray | None, offsets: np.ndarray | None, frame: np.ndarray,
    base: np.ndarray | None = None,
) -> tuple[tuple[int, int, int] | None, np.ndarray]:  # fmt: skip
    """The deblocking parameters (of :data:`DEBLOCK_CANDIDATES`) that most reduce this frame's
    squared error, or None when none does (the filter never costs PSNR), and the frame the decoder
    holds after it (what :func:`decoded_before_restoration` gives for that choice, not computed again).

    On frames of at least :data:`SEARCH_MIN_ROWS` rows the candidates are compared on bands of
    rows (:func:`_deblock_bands`: a quarter of the frame, exactly the samples the whole-frame
    filter gives there); the chosen one is then applied to the whole frame and kept only if it
    lowers the whole frame's squared error."""
    rows, cols = frame.shape
    if base is None:  # else: the decoder's frame before deblocking is given (intra frames)
        assert levels is not None
        base = (reconstruct_with_offsets(coder, levels, offsets, rows, cols) if offsets is not None
                else coder.reconstruct(levels, rows, cols))  # fmt: skip
    s0 = float(coder.steps[0])
    if s0 <= 0:
        return None, base
    cands = []
    for ma, mt in DEBLOCK_CANDIDATES:
        alpha = int(min(65535, round(ma * s0)))
        cands.append((alpha, alpha // 2 + 1, int(min(65535, max(1, round(mt * s0))))))
    base_err = K.squared_error(base, frame)
    bands = _deblock_bands(rows)
    if bands is not None:  # compare on bands, then apply the best to the whole frame
        work = np.empty((DEBLOCK_BAND, cols), base.dtype)
        starts = np.asarray(bands, np.int64)
        best_gain, pick = 0, None
        for params in cands:
            gain = K.deblock_band_gain(base, frame, starts, DEBLOCK_BAND, params[0], params[1], params[2],
                                       coder._lo, coder._hi, work)  # fmt: skip
            if gain > best_gain:
                best_gain, pick = gain, params
        if pick is None:
            return None, base
        img = base.copy()
        K.deblock(img, pick[0], pick[1], pick[2], coder._lo, coder._hi)
        return (pick, img) if K.squared_error(img, frame) < base_err else (None, base)
    best, best_err, best_img = None, base_err, base
    trial = np.empty_like(base)
    for params in cands:
        np.copyto(trial, base)
        K.deblock(trial, params[0], params[1], params[2], coder._lo, coder._hi)
        err = K.squared_error(trial, frame)
        if err < best_err:
            best, best_err = params, err
            best_img, trial = trial, (np.empty_like(base) if best_img is base else best_img)
    return best, best_img


#: The deblocking search's bands (frames of >= SEARCH_MIN_ROWS rows): DEBLOCK_BAND rows starting
#: on a block row, every SEARCH_PERIOD rows.
DEBLOCK_BAND = 16


def _deblock_bands(rows: int) -> list[int] | None:
    """First rows of the bands the deblocking search compares its candidates on, or None for the
    whole frame. A band starts on a multiple of 8, so the filter run on the band alone gives its
    rows 1 .. DEBLOCK_BAND - 2 exactly as the filter on the whole frame (the edges at the band's
    first and last row also move the rows outside it, which the comparison leaves out)."""
    if not SEARCH_BAND or rows < SEARCH_MIN_ROWS:
        return None
    return list(range(SEARCH_PERIOD // 2 - DEBLOCK_BAND // 2, rows - DEBLOCK_BAND + 1, SEARCH_PERIOD))


def decoded_before_restoration(coder: FrameCoder, levels: np.ndarray, offsets: np.ndarray | None,
                               deblock: tuple[int, int, int] | None, rows: int, cols: int) -> np.ndarray:  # fmt: skip
    """What the decoder holds before the restoration filter (§12.3 steps 1-3)."""
    img = (reconstruct_with_offsets(coder, levels, offsets, rows, cols) if offsets is not None
           else coder.reconstruct(levels, rows, cols))  # fmt: skip
    if deblock is not None:
        K.deblock(img, deblock[0], deblock[1], deblock[2], coder._lo, coder._hi)
    return img


#: The restoration filter must leave at least this share of a class's high-frequency energy.
TEXTURE_KEEP = 0.98
#: Activity bins the encoder gathers statistics in (quantiles); every candidate's classes merge them.
_FILTER_BINS = 8


def _class_of_bin(t8: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Class of each of the ``len(t8) + 1`` activity bins when ``thresholds`` (a subset of ``t8``) split them."""
    reps = np.concatenate([[-1], t8])  # a bin k >= 1 holds activities in [t8[k-1], t8[k])
    return np.searchsorted(thresholds, reps, side="right")


#: :func:`int_quantiles` counts values when their span is at most this many times their number
#: (or 65 536): time and memory stay linear in the input (else it sorts, as NumPy).
_COUNT_SPAN_PER_VALUE = 4


def int_quantiles(x: np.ndarray, q: np.ndarray | Sequence[float], method: Literal["lower", "nearest"]) -> np.ndarray:
    """``np.quantile(x, q, method=method)`` of an integer array for ``method`` ``"lower"`` or
    ``"nearest"``, the same values (int64), by counting: the sorted position NumPy takes
    (``floor`` or ``around`` of ``(n - 1) q``) is found in the cumulative histogram instead of by a
    partial sort (4-7x faster on the encoder's 65 536 activities; a sort when the values span more
    than :data:`_COUNT_SPAN_PER_VALUE` times their number)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    qs = np.asarray(q, dtype=np.float64)
    if flat.dtype.kind not in "iu" or method not in ("lower", "nearest") or flat.size == 0:
        raise InvalidInputError(f"int_quantiles of {flat.dtype} values, method {method!r}")
    n = flat.size
    pos = (np.floor((n - 1) * qs) if method == "lower" else np.around((n - 1) * qs)).astype(np.intp)
    lo, hi = int(flat.min()), int(flat.max())
    if hi - lo > max(_COUNT_SPAN_PER_VALUE * n, 1 << 16):
        return np.quantile(flat, qs, method=method).astype(np.int64)
    counts = np.bincount(flat.astype(np.int64) - lo if lo else flat)
    return lo + np.searchsorted(np.cumsum(counts), pos, side="right").astype(np.int64)


def choose_restoration(coder: FrameCoder, decoded: np.ndarray, frame: np.ndarray,
                       classes: Sequence[int] = FILTER_CLASS_CANDIDATES) -> RestorationFilter | None:  # fmt: skip
    """A Wiener restoration filter for this frame: per activity class (quantiles of the decoded
    frame's activity), the least-squares weights of the six symmetric tap pairs toward the
    original, rounded to 1/256; of the class counts ``classes`` the one with the smallest
    squared error plus its bytes at this rate's slope, or None when none pays for its bytes.
    Each sample moves by at most the DC step.

    Texture guard: a class's weights are halved (once, then dropped) while the
    filter leaves less high-frequency energy (squared 4-neighbour Laplacian) in it than
    :data:`TEXTURE_KEEP` x the smaller of the decoded and the original frame's: the filter may
    take out what coding added (ringing, block edges), not the texture coding kept (CT noise:
    unguarded, the chest CT's soft-tissue retention fell from 0.98 to 0.95)."""
    rows, cols = frame.shape
    if rows < 3 or cols < 3:
        return None
    clip = int(min(65535, max(1, int(coder.steps[0]))))
    lo, hi = coder._lo, coder._hi
    step = K.FILTER_SAMPLE
    sampled_shape = (-(-rows // step), -(-cols // step))
    candidates = [c for c in classes if c <= _FILTER_BINS and (c == 1 or rows * cols >= 128 * 128)]
    if max(candidates, default=1) > 1:  # activity bins at quantiles of the sampled activity
        nbins = _FILTER_BINS
        sampled = K.filter_activity_sampled(decoded, step, np.empty(sampled_shape, np.int64))
        t8 = np.clip(int_quantiles(sampled, np.arange(1, nbins) / nbins, "lower"), 0, 0xFFFFFFFF)
        bins = np.searchsorted(t8, sampled, side="right").astype(np.int64)
    else:  # one class: no activity needed
        nbins, t8, bins = 1, np.zeros(0, np.int64), np.zeros(sampled_shape, np.int64)
    ata = np.zeros((nbins, K.N_FILTER_TAPS, K.N_FILTER_TAPS))
    atb = np.zeros((nbins, K.N_FILTER_TAPS))
    counts = np.zeros(nbins, np.int64)
    e_dec, e_orig = np.zeros(nbins), np.zeros(nbins)
    if nbins == 1:
        K.filter_stats_one(decoded, frame, ata, atb, counts, e_dec, e_orig)
    else:
        K.filter_stats(decoded, frame, bins, nbins, ata, atb, counts, e_dec, e_orig)
    base_err = K.squared_error(decoded, frame)
    # squared error one coded bit is worth near this rate: D(R) ~ 2**(-2R/N) gives 2 ln 2 x MSE
    lam = 2 * np.log(2) * base_err / (rows * cols)
    # pick the class count by the least-squares gain predicted from the statistics (w . A^T b
    # per class, scaled up from the sampled rows and columns), then check only that candidate
    scale = rows * cols / max(int(counts.sum()), 1)
    plan = None
    for ncls in candidates:
        pick = [round(i * nbins / ncls) - 1 for i in range(1, ncls)]
        thr = np.unique(t8[pick]) if ncls > 1 else np.zeros(0, np.int64)
        cob = _class_of_bin(t8, thr)
        n = len(thr) + 1
        weights = np.zeros((n, K.N_FILTER_TAPS), dtype=np.int64)
        gain = 0.0
        for c in range(n):
            m = cob == c
            if counts[m].sum() < 4 * K.N_FILTER_TAPS:
                continue
            a = ata[m].sum(0)
            a = np.triu(a) + np.triu(a, 1).T
            rhs = atb[m].sum(0)
            try:
                w = np.linalg.solve(a + np.eye(K.N_FILTER_TAPS) * (1e-9 * np.trace(a) + 1e-12), rhs)
            except np.linalg.LinAlgError:
                continue
            weights[c] = np.clip(np.rint(w * K.FILTER_UNIT), -32768, 32767)
            gain += float(w @ rhs) * scale
        nbytes = _FILTER_HEAD.size + 4 * (n - 1) + 2 * K.N_FILTER_TAPS * n
        if weights.any() and (plan is None or gain - lam * 8 * nbytes > plan[0]):
            plan = (gain - lam * 8 * nbytes, thr, cob, weights)
    if plan is None or plan[0] <= 0:
        return None
    _, thr, cob, weights = plan
    n = len(weights)
    bands = _search_bands(rows)
    if bands is None:  # the whole frame
        e_dec_r, e_orig_r, base_r, frac = e_dec, e_orig, base_err, 1.0
    else:  # the texture check and the final test on bands of rows: their energies and error
        e_dec_r, e_orig_r = np.zeros(nbins), np.zeros(nbins)
        for y0, y1 in bands:
            K.band_laplacian_energy(decoded, bins, e_dec_r, y0, y1)
            K.band_laplacian_energy(frame, bins, e_orig_r, y0, y1)
        base_r = sum(K.squared_error(decoded[y0:y1], frame[y0:y1]) for y0, y1 in bands)
        frac = sum(y1 - y0 for y0, y1 in bands) / rows
    floor = TEXTURE_KEEP * np.minimum(np.bincount(cob, weights=e_dec_r, minlength=n)[:n],
                                      np.bincount(cob, weights=e_orig_r, minlength=n)[:n])  # fmt: skip
    out = np.empty_like(decoded)

    def filtered(flt: RestorationFilter) -> np.ndarray:
        """``flt`` on the frame (or its bands) into ``out``: the kept Laplacian energy per bin."""
        if bands is None:
            flt.apply(decoded, lo, hi, out=out)
            return K.laplacian_energy(out, bins, np.zeros(nbins))
        kept = np.zeros(nbins)
        w = np.asarray(flt.weights, np.int64)
        for y0, y1 in bands:
            K.restore_rows(decoded, np.asarray(flt.thresholds, np.int64), w, int(flt.clip), lo, hi, out, y0, y1)
            K.band_laplacian_energy(out, bins, kept, y0, y1)
        return kept

    for halvings in range(3):
        flt = RestorationFilter(thr, weights.copy(), clip)
        kept = filtered(flt)
        low = np.bincount(cob, weights=kept, minlength=n)[:n] < floor
        if not low.any():
            break
        weights[low] = weights[low] // 2 if halvings < 1 else 0
        if not weights.any():
            return None
    else:
        flt = RestorationFilter(thr, weights.copy(), clip)
        filtered(flt)
    if bands is None:
        err = K.squared_error(out, frame)
    else:
        err = sum(K.squared_error(out[y0:y1], frame[y0:y1]) for y0, y1 in bands)
    return flt if err + lam * 8 * len(flt.to_bytes()) * frac < base_r else None


#: The encoder's restoration filter search applies its candidates to bands of SEARCH_BAND rows
#: every SEARCH_PERIOD rows (a quarter of the frame) on frames of at least SEARCH_MIN_ROWS rows,
#: instead of the whole frame: ~2x less search time at the same choices within the sampling noise
#: (docs/design-notes.md, "The restoration filter's search on bands").
SEARCH_BAND = 16
SEARCH_PERIOD = 64
SEARCH_MIN_ROWS = 256


def _search_bands(rows: int) -> list[tuple[int, int]] | None:
    """Row bands the filter search measures on, or None for the whole frame."""
    if not SEARCH_BAND or rows < SEARCH_MIN_ROWS:
        return None
    return [(y0, min(y0 + SEARCH_BAND, rows)) for y0 in range((SEARCH_PERIOD - SEARCH_BAND) // 2, rows, SEARCH_PERIOD)]


def _laplacian_energy(img: np.ndarray, cls: np.ndarray, ncls: int) -> np.ndarray:
    """Per class (``cls``: a class per sample), the squared 4-neighbour Laplacian summed over the
    samples the encoder's texture check looks at (every FILTER_SAMPLE-th row and column)."""
    per_sample = np.ascontiguousarray(cls, np.int64).reshape(img.shape)[:: K.FILTER_SAMPLE, :: K.FILTER_SAMPLE]
    return K.laplacian_energy(img, np.ascontiguousarray(per_sample), np.zeros(ncls))


#: Bytes a DCT frame costs besides its coded levels: FRAM framing and header, FIDX entry.
DCT_FRAME_OVERHEAD = 12 + FRAM2_DCT_HEAD.size + 4 + 12
#: Rate control: what a default-coded 2.x DCT frame spends besides its coded payload (levels, or an
#: intra frame's modes and levels) in the long and the compact layout (``False`` / ``True``):
#: framing, FIDX entry, reconstruction offsets, deblocking, a one-class restoration filter.
#: Measured on a middle slice of the three shared series and pydicom-data's CT_small, MR_small and
#: 693_UNCR at qualities 20 / 60 / 90: 99-120 (mean 108) and 31-72 (mean 54) bytes.
FRAME_SIDE_BYTES = {False: 108, True: 54}


def round_scaled(scaled: np.ndarray) -> np.ndarray:
    """int32 levels of scaled coefficients, rounded exactly as ``quantize.round_levels`` (kernel)."""
    return K.round_scaled(scaled, quantize.ROUNDING_ZZ, np.empty(scaled.shape, np.int32))


def reconstruction_offsets(levels: np.ndarray, scaled: np.ndarray, min_count: int = 8) -> np.ndarray:
    """Per AC position, half the shift toward zero that would minimise the error of the non-zero levels.

    For each zigzag position k >= 1 with at least ``min_count`` non-zero levels: half the mean
    of ``|level| - |coefficient / step|`` over them (a Laplacian's centroid lies inside the
    rounding interval, toward zero), in 1/256 step, clamped to 0..128. Returns 63 x uint8.
    Half, not all of it: on the chest CT at 1 bpp the full shift gave 0.07 dB more PSNR but
    kept only 0.945 of the soft-tissue texture (median block std ratio), half keeps 0.990
    (``benchmarks/bench_texture.py``).
    """
    sums, counts = np.zeros(64), np.zeros(64, dtype=np.int64)
    K.offset_sums(
        np.ascontiguousarray(levels, dtype=np.int32), np.ascontiguousarray(scaled, dtype=np.float64), sums, counts
    )
    delta = np.where(counts >= min_count, sums / np.maximum(counts, 1), 0.0)[1:]
    return np.clip(np.rint(0.5 * delta * OFFSET_UNIT), 0, MAX_OFFSET).astype(np.uint8)


#: RD-optimised levels for the 2.1 coder (:func:`rdoq_levels`): lambda = RDOQ_LAMBDA_SCALE x mean
#: squared AC step (bits priced by :mod:`._rdoq_ms`), the texture penalty of :mod:`._rdoq` scaled by
#: RDOQ_TEXTURE_MU (0: none), RDOQ_PASSES searches (each pass prices the symbols of the levels
#: before it), and how the printed error bound is kept (RDOQ_BOUND, see :func:`rdoq_levels`).
RDOQ_LAMBDA_SCALE = 0.08
#: 4, not the first 0.25: measured with issue 11's texture metric (``metrics.texture_retention``;
#: 7 chest slices at 1 bpp, median retention 0.932 / 0.947 / 0.958 for 0.25 / 1 / 4, target 0.95)
#: the first choice, made on a looser block selection, flattened the grain (docs/design-notes.md).
RDOQ_TEXTURE_MU = 4.0
RDOQ_PASSES = 1
#: The rate counts a move's effect on the right and lower neighbours' base symbols.
RDOQ_LOOKAHEAD = True
RDOQ_BOUND = "verify"
RDOQ_BOUNDS = ("verify", "coefficient")
#: Centroid offsets of RD levels: measured again on the final levels (True) or kept from the
#: rounded levels (False: 0.06-0.13 % smaller BD-rates on the three series, docs/design-notes.md).
RDOQ_RECOMPUTE_OFFSETS = False


def rdoq_levels(coder: FrameCoder, frame: np.ndarray, *, lam_scale: float | None = None,
                texture_mu: float | None = None, bound: str | None = None, passes: int | None = None,
                recompute_offsets: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """RD-optimised levels of ``frame`` for the multi-symbol coder, their reconstruction offsets
    and the decoder's frame before its filters.

    The rounded levels price the symbols (:func:`._rdoq_ms.symbol_counts`) and give the centroid
    offsets the search's distortion uses; then the greedy search (:func:`._rdoq_ms.rdoq_levels`);
    the offsets are kept or measured again on the final levels (``recompute_offsets``). The error bound
    :func:`error_bound_with_offsets` prints for the returned offsets holds either way:

    * ``bound="verify"``: the search is free; the encoder reconstructs the frame as the decoder
      will and every 8x8 block with a sample off by more than the bound (before the filters,
      whose own terms the bound adds) goes back to its rounded levels, which always satisfy it.
    * ``bound="coefficient"``: only moves that keep each coefficient within ``(1/2 + offset)``
      steps, the per-coefficient assumption of the bound (:func:`._rdoq_ms.enforce_bound`).

    Defaults: the ``RDOQ_*`` constants. Returns (int32 (nblocks, 64) zigzag levels, 63 x uint8
    offsets, the reconstruction).
    """
    from . import _rdoq, _rdoq_ms

    lam_scale = RDOQ_LAMBDA_SCALE if lam_scale is None else lam_scale
    texture_mu = RDOQ_TEXTURE_MU if texture_mu is None else texture_mu
    bound = RDOQ_BOUND if bound is None else bound
    if bound not in RDOQ_BOUNDS:
        raise InvalidInputError(f"bound={bound!r} is unknown, expected one of {RDOQ_BOUNDS}")
    passes = RDOQ_PASSES if passes is None else passes
    recompute_offsets = RDOQ_RECOMPUTE_OFFSETS if recompute_offsets is None else recompute_offsets
    rows, cols = frame.shape
    _, bx = blocks_shape(rows, cols)
    scaled = coder.scaled(frame)
    rounded = round_scaled(scaled)
    offsets = reconstruction_offsets(rounded, scaled)
    steps = coder.steps_zz.astype(np.float64)
    weights = steps * steps
    offs = np.zeros(64)
    offs[1:] = offsets.astype(np.float64) / OFFSET_UNIT
    mu, dc_floor = 0.0, -np.inf
    if texture_mu > 0:
        mu, floor = _rdoq.texture_weight(coder, frame, weights, texture_mu)
        dc_floor = _rdoq.texture_dc_floor(coder, floor)
    lam = lam_scale * float(np.mean(weights[1:]))
    levels, priced = np.empty_like(rounded), rounded
    for _ in range(max(1, passes)):
        cost = _rdoq_ms.symbol_costs(_rdoq_ms.symbol_counts(priced, bx, np.zeros(int(KM.OFFSET[-1]))))
        _rdoq_ms.rdoq_levels(scaled, rounded, bx, cost, weights, offs, lam, mu, _rdoq.TEXTURE_RHO, dc_floor,
                             bound == "coefficient", RDOQ_LOOKAHEAD, levels)  # fmt: skip
        priced = levels.copy() if passes > 1 else levels
    if recompute_offsets:
        offsets = reconstruction_offsets(levels, scaled)
        offs[1:] = offsets.astype(np.float64) / OFFSET_UNIT
    if bound == "coefficient":
        _rdoq_ms.enforce_bound(levels, rounded, scaled, offs)
    recon = reconstruct_with_offsets(coder, levels, offsets, rows, cols)
    if bound == "verify":
        bad = np.zeros(len(levels), dtype=np.bool_)
        if _rdoq_ms.blocks_over(recon, frame, error_bound_with_offsets(coder.steps, offsets), bx, bad):
            levels[bad] = rounded[bad]
            recon = reconstruct_with_offsets(coder, levels, offsets, rows, cols)
    return levels, offsets, recon


def rdoq_frame_bytes(coder: FrameCoder, frame: np.ndarray) -> int:
    """Exact bytes of ``frame``'s RD levels (:func:`rdoq_levels`) coded by the multi-symbol coder,
    with the FRAM overhead and its offsets (rate control of ``effort="best"``)."""
    levels, _, _ = rdoq_levels(coder, frame)
    _, bx = blocks_shape(*frame.shape)
    return len(encode_levels(levels, bx, container.ENTROPY_MULTI)) + DCT_FRAME_OVERHEAD + 63


def rdoq_frame_mse(coder: FrameCoder, frame: np.ndarray) -> float:
    """Mean squared error of ``frame``'s RD levels as the decoder reconstructs them before its
    filters (which the encoder keeps only where they lower it): rate control's PSNR."""
    _, _, recon = rdoq_levels(coder, frame)
    return float(np.mean((recon.astype(np.float64) - frame) ** 2))


def reconstruct_with_offsets(coder: FrameCoder, levels: np.ndarray, offsets: np.ndarray, rows: int, cols: int,
                             out: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Pixels from levels dequantized at ``(|level| - offset) * step``: the v1 inverse path on
    levels scaled by 256 with multipliers scaled by 1/256 (exact in binary floating point, so
    zero offsets give the v1 pixels bit for bit)."""
    from . import transform

    off = np.zeros(64, dtype=np.int64)
    off[1:] = offsets
    lv = np.ascontiguousarray(levels, dtype=np.int32)
    deq, dc_mul = transform.inverse_multipliers(coder.steps_zz)
    target = np.empty((rows, cols), coder._dtype) if out is None else out
    # K.offset_levels fused into the inverse DCT (levels clipped to +-2**22: valid ones are far inside)
    return K.levels_pixels_offsets(lv, off, OFFSET_UNIT, deq / OFFSET_UNIT, transform.NAT_ZZ,
                                   dc_mul / OFFSET_UNIT, float(coder.offset), coder._lo, coder._hi, target)  # fmt: skip


def error_bound_with_offsets(
    steps: np.ndarray, offsets: np.ndarray | None, deblock: tuple[int, int, int] | None = None,
    restoration: RestorationFilter | None = None, tx: bool = False, big: bool = False,
) -> float:  # fmt: skip
    """:func:`.quantize.error_bound` (``steps`` in natural order, as in QTAB) when AC levels are
    dequantized ``offset`` steps toward zero (``offsets`` by zigzag position 1..63): each
    coefficient's error is at most (1/2 + offset) step for ``effort="fast"`` streams; 2.1
    ``effort="best"`` streams (RD levels) are checked against it by the encoder (:func:`rdoq_levels`).
    ``tx``: a format 2.5 intra frame (FLAG_TX), whose blocks may use the DST-VII pairs: the largest
    of the sums over the pairs (DCT both ways, DST-VII vertically, horizontally, both), each
    coefficient weighted by the largest magnitude of its 2-D basis function. ``big`` (with ``tx``): a
    format 2.6 intra frame (FLAG_BIG), whose 16x16 blocks' coefficient (u, v) has the step and offset
    of position (u // 2, v // 2) and its basis function's largest magnitude (the 16-point DCT's): the
    larger of that sum and the 8x8 ones (docs/format.md §19)."""
    from . import _kernels_intra as KI
    from .zigzag import ZIGZAG

    a = np.full(8, 0.5)
    a[0] = np.sqrt(1 / 8)
    half = np.full(64, 0.5)
    if offsets is not None:
        half[ZIGZAG[1:]] += np.asarray(offsets, dtype=np.float64) / OFFSET_UNIT
    weighted = np.asarray(steps, dtype=np.float64).ravel() * half
    bases = [a]
    if tx:
        bases.append(np.abs(KI.DST7).max(axis=1))  # per DST-VII basis function, its largest magnitude
    worst = max(float(np.sum(weighted * np.outer(v, h).ravel())) for v in bases for h in bases)
    if big:  # per 8x8 position, the two 16-point basis functions that share its step, summed
        a16 = np.abs(KI.DCT16).max(axis=1).reshape(8, 2).sum(axis=1)
        worst = max(worst, float(np.sum(weighted * np.outer(a16, a16).ravel())))
    return float(
        worst + 0.5 + (2 * deblock[2] if deblock else 0) + (restoration.clip if restoration is not None else 0)
    )


class DctFrame(NamedTuple):
    """What :func:`read_dct_frame` returns."""

    frame_index: int
    qtable: int
    offsets: np.ndarray | None
    deblock: tuple[int, int, int] | None
    start: int  # of the coded levels in the stream
    end: int
    restoration: RestorationFilter | None = None
    intra: bool = False  # the coded bytes are an intra frame (format 2.2)
    padding_mask: bytes | None = None  # the frame's padding mask (format 2.3), still compressed
    #: a compact intra frame's payload in §14.1's form (u32 nmodes ...), for :func:`.intra.decode_intra_frame`
    intra_payload: bytes | None = None
    mode_model: int = 1  # of an intra frame: 2 with FRAM flag 32 (format 2.4, docs/format.md §17)


def read_dct_frame(buf: bytes, header: container.MdcHeader, entry: tuple[int, int]) -> DctFrame:
    """The header fields of a range-coded DCT FRAM and where its coded levels lie."""
    if header.compact:
        return _read_compact_dct_frame(buf, header, entry)
    off = entry[0]
    payload = container.frame_payload(buf, entry)
    head = FRAM2_DCT_HEAD.size
    if len(payload) < head + 4:
        raise TruncatedStreamError("FRAM header cut off", offset=off, segment="FRAM", expected=head + 4,
                                   available=len(payload))  # fmt: skip
    fidx, qtable, flags = FRAM2_DCT_HEAD.unpack_from(payload)
    known = FLAG_OFFSETS | FLAG_DEBLOCK | FLAG_FILTER | (FLAG_INTRA if header.version >= container.VERSION_22 else 0)
    padded = header.version >= container.VERSION_23 and header.entropy == container.ENTROPY_MULTI
    if padded and "padding" in header.meta:  # format 2.3 (docs/format.md §15)
        known |= FLAG_PADDING
    if header.version >= container.VERSION_24 and flags & FLAG_INTRA:  # format 2.4 (docs/format.md §17)
        known |= FLAG_MODES2
        if header.version >= container.VERSION_25 and flags & FLAG_MODES2:  # format 2.5 (docs/format.md §18)
            known |= FLAG_TX
            if header.version >= container.VERSION_26 and flags & FLAG_TX:  # format 2.6 (docs/format.md §19)
                known |= LONG_FLAG_BIG
    if flags & ~known:
        raise CorruptStreamError(f"FRAM flags {flags:#x} has unknown bits", offset=off, segment="FRAM")
    if flags & LONG_FLAG_BIG:  # the long form's bit 6 is format 2.6's FLAG_BIG
        flags = (flags & ~LONG_FLAG_BIG) | FLAG_BIG
    if flags & FLAG_INTRA and header.entropy != container.ENTROPY_MULTI:
        raise CorruptStreamError("FRAM intra frame in a stream whose HEAD entropy coder is not 2", offset=off,
                                 segment="FRAM")  # fmt: skip
    offsets = None
    if flags & FLAG_OFFSETS:
        if len(payload) < head + 63 + 4:
            raise TruncatedStreamError("FRAM offsets cut off", offset=off, segment="FRAM", expected=head + 67,
                                       available=len(payload))  # fmt: skip
        offsets = np.frombuffer(payload, dtype=np.uint8, count=63, offset=head).copy()
        if int(offsets.max()) > MAX_OFFSET:
            raise CorruptStreamError(f"FRAM reconstruction offset {int(offsets.max())} > {MAX_OFFSET}", offset=off,
                                     segment="FRAM")  # fmt: skip
        head += 63
    deblock: tuple[int, int, int] | None = None
    if flags & FLAG_DEBLOCK:
        if len(payload) < head + _DEBLOCK.size + 4:
            raise TruncatedStreamError("FRAM deblocking parameters cut off", offset=off, segment="FRAM")
        alpha, beta, tc = _DEBLOCK.unpack_from(payload, head)
        deblock = (alpha, beta, tc)
        head += _DEBLOCK.size
    restoration = None
    if flags & FLAG_FILTER:
        restoration, head = _read_restoration(payload, head, off)
    (ncoded,) = struct.unpack_from("<I", payload, head)
    head += 4
    mask = None
    if flags & FLAG_PADDING:  # u32 nmask and the mask end the payload (docs/format.md §15)
        if head + ncoded + 4 > len(payload):
            raise TruncatedStreamError("FRAM padding mask cut off", offset=off, segment="FRAM")
        (nmask,) = struct.unpack_from("<I", payload, head + ncoded)
        if head + ncoded + 4 + nmask != len(payload):
            raise CorruptStreamError(f"FRAM padding mask length {nmask} disagrees with segment length",
                                     offset=off, segment="FRAM")  # fmt: skip
        mask = bytes(payload[head + ncoded + 4 :])
    elif head + ncoded != len(payload):
        raise CorruptStreamError(
            f"FRAM coded length {ncoded} disagrees with segment length", offset=off, segment="FRAM"
        )
    start = off + 8 + head
    _check_frame_fields(header, fidx, qtable, ncoded, off)
    return DctFrame(fidx, qtable, offsets, deblock, start, start + ncoded, restoration, bool(flags & FLAG_INTRA), mask,
                    None, _mode_model(flags))  # fmt: skip


def _mode_model(flags: int) -> int:
    """An intra frame's mode model from its FRAM flags: 4 (format 2.6) with FLAG_BIG, 3 (format 2.5) with
    FLAG_TX, 2 with FLAG_MODES2, else 1."""
    return 4 if flags & FLAG_BIG else 3 if flags & FLAG_TX else 2 if flags & FLAG_MODES2 else 1


def _read_restoration(payload: bytes | memoryview, head: int, off: int) -> tuple[RestorationFilter, int]:
    if len(payload) < head + _FILTER_HEAD.size + 4:
        raise TruncatedStreamError("FRAM restoration filter cut off", offset=off, segment="FRAM")
    ncls, clip = _FILTER_HEAD.unpack_from(payload, head)
    if not 1 <= ncls <= MAX_FILTER_CLASSES:
        raise CorruptStreamError(f"FRAM restoration filter with {ncls} classes (1..{MAX_FILTER_CLASSES})",
                                 offset=off, segment="FRAM")  # fmt: skip
    head += _FILTER_HEAD.size
    size = 4 * (ncls - 1) + 2 * K.N_FILTER_TAPS * ncls
    if len(payload) < head + size + 4:
        raise TruncatedStreamError("FRAM restoration filter cut off", offset=off, segment="FRAM")
    thr = np.frombuffer(payload, dtype="<u4", count=ncls - 1, offset=head).astype(np.int64)
    if np.any(np.diff(thr) < 0):
        raise CorruptStreamError("FRAM restoration filter thresholds decrease", offset=off, segment="FRAM")
    head += 4 * (ncls - 1)
    weights = np.frombuffer(payload, dtype="<i2", count=K.N_FILTER_TAPS * ncls, offset=head).astype(np.int64)
    head += 2 * K.N_FILTER_TAPS * ncls
    return RestorationFilter(thr, weights.reshape(ncls, K.N_FILTER_TAPS), int(clip)), head


def stream_error_bound(buf: bytes) -> list[float]:
    """Worst-case |error| per intact frame of a range-coded DCT stream (offsets read from each
    FRAM; frames a truncated stream has lost are left out)."""
    header, index = container.parse_container(buf)
    index = [(off, size) for off, size in index if off + size <= len(buf)]
    return [
        error_bound_with_offsets(
            header.qtables[f.qtable], f.offsets, f.deblock, f.restoration, f.mode_model >= 3, f.mode_model == 4
        )
        for f in (read_dct_frame(buf, header, e) for e in index)
    ]


def dct_frame_bytes(coder: FrameCoder, frame: np.ndarray, entropy: int = container.ENTROPY_ARITH) -> int:
    """Exact bytes of ``frame`` coded with ``coder``'s levels and range coder ``entropy`` (rate control)."""
    _, bx = blocks_shape(*frame.shape)
    return len(encode_levels(coder.levels(frame), bx, entropy)) + DCT_FRAME_OVERHEAD


def decode_dct(buf: bytes, header: container.MdcHeader, index: list[tuple[int, int]],
               frames: int | Sequence[int] | None, jobs: int) -> np.ndarray:  # fmt: skip
    """Decode the frames asked for of a v2 DCT stream whose levels are range-coded."""
    sel, single = frame_selection(frames, header.frames)
    for k in sel:  # a truncated stream still gives the frames before the cut; check before allocating
        container.check_frame_present(index, k, len(buf))
    coders = [FrameCoder.for_table(q, header.bits_stored, header.signed) for q in header.qtables]
    arr = np.frombuffer(buf, dtype=np.uint8)
    by, bx = blocks_shape(header.rows, header.cols)
    out = np.empty((len(sel), header.rows, header.cols), dtype=storage_dtype(header.bits_stored, header.signed))
    pad = meta_padding(header)

    def one(j: int) -> None:
        entry = index[sel[j]]
        fr = read_dct_frame(buf, header, entry)
        fidx, qtable, offsets, deblock, start, end, restoration, is_intra, mask = fr[:9]
        if fidx != sel[j]:
            raise CorruptStreamError(f"FIDX entry {sel[j]} points at frame {fidx}", offset=entry[0], segment="FRAM")
        if is_intra:  # format 2.2 (docs/format.md §14)
            from . import intra

            payload = fr.intra_payload if fr.intra_payload is not None else buf[start:end]
            # a fresh array of the output's dtype: filtered where it is, then into out[j] once
            frame = intra.decode_intra_frame(payload, header.rows, header.cols, coders[qtable], offsets,
                                             offset=entry[0], segment=f"FRAM {fidx}", mode_model=fr.mode_model,
                                             within=header.version >= container.VERSION_211,
                                             trained=header.version >= container.VERSION_212)  # fmt: skip
        else:
            frame = out[j]
            levels = decode_levels(arr, start, end, by * bx, bx, offset=entry[0], segment=f"FRAM {fidx}",
                                   coder=header.entropy)  # fmt: skip
            if offsets is None:
                frame[...] = coders[qtable].reconstruct(levels, header.rows, header.cols)
            else:
                reconstruct_with_offsets(coders[qtable], levels, offsets, header.rows, header.cols, out=frame)
        if deblock is not None:
            alpha, beta, tc = deblock
            K.deblock(frame, alpha, beta, tc, coders[qtable]._lo, coders[qtable]._hi)
        if restoration is not None:  # the filter reads one array and writes another
            restoration.apply(frame if is_intra else frame.copy(), coders[qtable]._lo, coders[qtable]._hi, out=out[j])
        elif is_intra:
            out[j] = frame
        if pad is not None:  # format 2.3: after the filters, as in 1.0 after the inverse DCT
            where = (
                container.decode_padding_mask(mask, header.rows, header.cols, offset=entry[0])
                if mask is not None
                else np.zeros((header.rows, header.cols), bool)
            )
            restore_padding(out[j], where, pad, header.bits_stored, header.signed)

    map_frames(one, list(range(len(sel))), jobs)
    if single or (frames is None and header.meta.get("ndim") == 2):
        return out[0]
    return out


# ------------------------------------------------------------------ padding (formats 1.0 and 2.3)


def restore_padding(frame: np.ndarray, mask: np.ndarray, pad: tuple[int, int], bits_stored: int, signed: bool) -> None:
    """In place: padding voxels (``mask``) back into the padding range (exactly, for one value);
    any other voxel that decoded into the range moved just outside it (the nearer side that exists)."""
    lo, hi = pad
    frame[mask] = np.clip(frame[mask], lo, hi)
    stray = ~mask & (frame >= lo) & (frame <= hi)
    if stray.any():
        vmin, vmax = value_range(bits_stored, signed)
        below, above = lo - 1, hi + 1
        values = frame[stray].astype(np.int64)
        to_above = (values - lo >= hi - values) if below >= vmin else np.ones(values.shape, bool)
        if above > vmax:
            to_above[:] = False
        frame[stray] = np.where(to_above, above, below)


def meta_padding(header: container.MdcHeader) -> tuple[int, int] | None:
    """The padding range a stream's ``meta`` declares (``None``: none), checked."""
    raw = header.meta.get("padding")
    if raw is None:
        return None
    ok = isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
    lo, hi = value_range(header.bits_stored, header.signed)
    if not ok or not lo <= raw[0] <= raw[1] <= hi:
        raise CorruptStreamError(f"meta padding {raw!r} is not a range of stored values", segment="meta")
    return int(raw[0]), int(raw[1])
