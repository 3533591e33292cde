"""The ``.mdc`` driver: frames through the :class:`~.framecoder.FrameCoder` into the container, and back.

:func:`encode_to` streams frames into a seekable file with bounded memory (about ``2 * jobs``
frames held at once), :func:`decode_mdc` decodes the frames asked for through the frame index
(random access). The byte layout is :mod:`.container`'s (``docs/format.md``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO

import numpy as np

from .._parallel import imap_ordered
from ..errors import CorruptStreamError, InvalidInputError, UnsupportedFeatureError
from ..metrics import compression_ratio
from ..ratecontrol import check_ratio_reached
from ..spec import PixelSpec, storage_dtype
from . import container, entropy, levelshift, mdc2, quantize
from .framecoder import (
    EFFORTS,
    RATE_SAMPLE_FRAMES,
    EncodedFrame,
    FrameCoder,
    default_jobs,
    frame_selection,
    map_frames,
    resolve_quality,
    validate_pixels,
)
from .padfill import fill_padding

__all__ = ["MDC_SIZE_BITS", "DEFAULT_ENTROPY", "StreamSummary", "encode_to", "encode_mdc_to", "decode_mdc"]


MDC_SIZE_BITS = container.SIZE_BITS
#: Entropy coder of ``.mdc`` DCT streams when none is asked for: the multi-symbol range coder,
#: with intra frames (mode model 2) unless ``intra=False``, in the compact layout unless ``compact=False``:
#: format 2.6 where the intra RD levels are on (every effort by default: 2.4 plus a per-block choice
#: of the DCT or a DST-VII pair for the intra residuals, docs/format.md §18, plus 16x16 blocks
#: (DC, SMOOTH or paeth) per macroblock, §19), written as 2.11 (their levels under within-block contexts,
#: §21, :data:`.intra.WITHIN_EFFORTS`), else 2.4 (the long layout: 2.4-2.11 with intra frames, 2.1
#: without, 2.3 with padding masks and no intra).
#: Issue 12 measures ``.mdc`` by ``encode(..., quality=q)``: the Huffman format 1.0
#: (``entropy="huffman"``) is 3-10x faster but +21 to +90 % BD-rate against OpenJPEG where the
#: default is -7.9 to -11.1 % (docs/design-notes.md, "The .mdc default is format 2.2", "Compact 2.4 stream",
#: "Mode model 2", "RD-optimised levels for intra residuals", "The intra mode decision sees the RD levels",
#: "The per-block transform choice, format 2.5").
DEFAULT_ENTROPY = "arith"


def _mdc_frame_bytes(coder: FrameCoder, frame: np.ndarray) -> int:
    dc, ac, extra = entropy.symbol_counts(coder.levels(frame), size_bits=MDC_SIZE_BITS)
    dct, act = entropy.HuffmanTable.from_frequencies(dc), entropy.HuffmanTable.from_frequencies(ac)
    coded = -(-(dct.cost(dc) + act.cost(ac) + extra) // 8)
    return coded + container.frame_overhead(len(dct.huffval), len(act.huffval))


@dataclass(frozen=True)
class StreamSummary:
    """What :func:`encode_to` wrote."""

    nbytes: int
    quality: float
    frames: int
    #: coded pixel bytes (``nbytes`` minus the ``meta`` and ancillary segments): what the ratio counts
    pixel_bytes: int = 0

    @property
    def overhead_bytes(self) -> int:
        """Container bytes that are not pixel data (embedded DICOM headers, meta)."""
        return self.nbytes - self.pixel_bytes


def encode_to(
    fh: BinaryIO,
    frames: Iterable[np.ndarray],
    *,
    n_frames: int,
    bits_stored: int,
    signed: bool,
    sample: Sequence[np.ndarray] | np.ndarray | None = None,
    value_range: tuple[int, int] | None = None,
    quality: float | None = None,
    ratio: float | None = None,
    psnr: float | None = None,
    spec: PixelSpec | None = None,
    table: str | np.ndarray = quantize.MDC_DEFAULT_TABLE,
    jobs: int | None = None,
    ancillary: dict[str, bytes] | None = None,
    ndim: int = 3,
    effort: str | None = None,
    max_error: int | None = None,
    entropy: str | None = None,
    padding: tuple[int, int] | None = None,
    intra: bool | None = None,
    compact: bool | None = None,
    judge_ratio: bool = True,
) -> StreamSummary:
    """Encode frames one chunk at a time into a seekable file: a ``.mdc`` with bounded memory.

    Only about ``2 * jobs`` frames are held at once, whatever ``n_frames`` is: this is how
    a 300-slice series is compressed in the memory of a few slices.

    Parameters
    ----------
    fh
        Seekable binary file (the frame index is filled in at the end).
    frames
        Iterable of (rows, cols) integer frames, ``n_frames`` of them, all the same shape.
    sample
        A few representative frames (e.g. evenly spaced): the rate search for ``ratio`` /
        ``psnr`` and, without ``value_range``, the quantizer's range run on them.
        Default: the first frame. The frames are taken for a whole series: the steps follow the
        span of their content (at least ``bits_stored - 4`` bits, :data:`SERIES_RANGE_FLOOR`), as
        the series writers have always coded, not the declared depth an image coded on its own
        by :func:`encode` gets (:func:`.levelshift.default_range_bits`).
    value_range
        (min, max) of the whole series if known; otherwise taken from ``sample``.
    max_error
        Guaranteed max |error| in stored units (0: lossless): the v2 predictive mode
        (:mod:`.mdc2`); excludes ``quality`` / ``ratio`` / ``psnr``.
    padding
        ``(low, high)`` stored values that are padding (DICOM Pixel Padding Value, and Range
        Limit if any): each frame's padding voxels are signalled (FRAM padding mask) and the
        decoder restores them exactly (values inside the range are clamped into it, a single
        value exactly), and moves a non-padding voxel that decodes into the range out of it.
        DCT streams of format 1.0 and of the multi-symbol coder (2.3) only: predictive frames
        (``max_error``) carry no padding mask, so there padding is coded like any voxel (exact
        for ``max_error=0``, within the bound otherwise); ``entropy="arith-binary"`` refuses it.
    intra
        8x8 intra prediction (format 2.2, :mod:`.intra`) as in :func:`encode`: ``None`` (default)
        uses it with the multi-symbol coder (the default coder), ``False`` never; not with ``max_error``.
    judge_ratio
        Warn here when ``ratio`` is not reached (``False``: the caller judges, e.g. after trying
        the lossless stream).
    Other parameters are those of :func:`encode`.

    Raises
    ------
    InvalidInputError
        Bad frames, options, or a frame count different from ``n_frames``.
    """
    if intra is not None and intra is not True and intra is not False:
        raise InvalidInputError(f"intra={intra!r} must be True, False or None")
    if max_error is not None:
        if (quality, ratio, psnr) != (None, None, None) or intra:
            raise InvalidInputError("max_error excludes quality, ratio, psnr and intra")
        compact_ = mdc2.predictive_compact(compact)
        nbytes = mdc2.encode_predictive_to(
            fh, frames, n_frames=n_frames, bits_stored=bits_stored, signed=signed, max_error=max_error, spec=spec,
            jobs=jobs, ancillary=ancillary, ndim=ndim, compact=compact_,
        )  # fmt: skip
        meta = {"ndim": 2} if ndim == 2 else {}
        overhead = container.written_overhead_bytes(container.compact_meta(meta) if compact_ else meta,
                                                    dict(ancillary or {}))  # fmt: skip
        return StreamSummary(nbytes, math.nan, n_frames, nbytes - overhead)
    return encode_mdc_to(
        fh, frames, n_frames=n_frames, bits_stored=bits_stored, signed=signed, sample=sample, value_range=value_range,
        quality=quality, ratio=ratio, psnr=psnr, spec=spec, table=table, jobs=jobs, ancillary=ancillary, ndim=ndim,
        effort=effort, entropy=entropy, padding=padding, intra=intra, compact=compact, judge_ratio=judge_ratio,
        series=True,
    )  # fmt: skip


#: Efforts whose 2.1 (multi-symbol) DCT levels come from the RD search priced with that coder's own
#: model (:func:`.mdc2.rdoq_levels`) instead of rounding (``"fast"``) or the Huffman trellis: measured
#: in docs/design-notes.md ("RD-optimised quantization priced with the 2.1 coder").
RDOQ_EFFORTS: tuple[str, ...] = ("best",)
#: Efforts whose intra residual levels (mode model 2) come from the RD search in the intra loop
#: (:func:`.intra.encode_intra_frame` ``rd=True``; no format change): measured in docs/design-notes.md
#: ("RD-optimised levels for intra residuals"). On for the default ``"fast"`` too since 2026-11-30
#: (priced by the frame's plain DCT levels, ``intra.RD_PRICE``): -6.4 % mean BD-rate against
#: OpenJPEG instead of -4.6 % for ~1.3-1.5x the encode time, decode unchanged (-7.1 % since the mode
#: decision sees the RD levels, ``intra.RD_MODE_EFFORTS``; -9.2 % with format 2.5's transform choice,
#: ``intra.TX_EFFORTS``; -10.4 % with the joint mode / transform decision, ``intra.TX_JOINT``).
INTRA_RDOQ_EFFORTS: tuple[str, ...] = ("fast", "best")


#: Format 2.0 DCT streams measure the content's span between these quantiles of the samples
#: (every :data:`ROBUST_STRIDE`-th one): a few bright pixels (0.1 %) do not double the steps of
#: a slice. On the brain MR the slice whose maximum is 5888 spans 0..3983 this way, as its
#: neighbours do (0..2592-2870), so the six slices get one step size.
ROBUST_QUANTILES = (0.001, 0.999)
ROBUST_STRIDE = 7


#: A series coded in one call (:func:`encode_to`, the series writers' streaming encoder) keeps steps
#: for its content's span, never finer than ``bits_stored - SERIES_RANGE_FLOOR`` bits (format 2.x;
#: 16-bit MR: 12), as before 2026-12-03: one call gives every frame the same steps anyway, so the
#: quality follows the data's range (README, "Choosing a quality"); an image coded on its own
#: gets :func:`.levelshift.stable_range_floor` instead.
SERIES_RANGE_FLOOR = 4


def arith_range_bits(
    content_bits: int, bits_stored: int, sample: np.ndarray | None = None, *, series: bool = False
) -> int:
    """The range bits of a format 2.0 DCT stream coded without a series' ``range_bits``: the
    content's (of its 0.1-99.9 % quantiles when ``sample`` is given, never more than
    ``content_bits``), at least :func:`.levelshift.stable_range_floor` (``bits_stored`` up to 12
    bits: an end slice of an MR series, values 0..253 of a series spanning 0..5888, would
    otherwise get steps 32x finer than its neighbours at the same quality and eat the bits of the
    series; docs/design-notes.md, "Where the MR gap came from" and "One quality, one step on
    every slice"); ``series``: a whole series' sample, at least ``bits_stored -``
    :data:`SERIES_RANGE_FLOOR` (and 8)."""
    bits = int(content_bits)
    if sample is not None and sample.size:
        flat = np.ascontiguousarray(sample).reshape(-1)[::ROBUST_STRIDE]
        lo, hi = mdc2.int_quantiles(flat, ROBUST_QUANTILES, "nearest")
        bits = min(bits, levelshift.range_bits(int(lo), int(hi), bits_stored))
    if series:
        return max(bits, min(int(bits_stored), max(8, int(bits_stored) - SERIES_RANGE_FLOOR)))
    return max(bits, levelshift.stable_range_floor(bits_stored))


def _sample_range_bits(sample: np.ndarray, value_range: tuple[int, int], bits_stored: int, *, arith: bool,
                       series: bool) -> int:  # fmt: skip
    """The range bits of a stream coded without ``range_bits``, from its (checked, native) sample:
    the content's span; with a range coder :func:`arith_range_bits` (format 1.0 keeps the
    content's own span, pinned by its golden files)."""
    rbits = levelshift.content_range_bits(sample, value_range[0], value_range[1], bits_stored)
    return arith_range_bits(rbits, bits_stored, sample, series=series) if arith else rbits


def series_range_bits(frames: np.ndarray, bits_stored: int, signed: bool, *, entropy: str | None = None) -> int:
    """The range bits :func:`encode_to` (``medcodec encode`` to ``.mdc``) gives a series whose frames
    (or a sample of them) these are, with ``entropy``'s coder (``None``: the default): what a tool
    coding the frames one by one through ``encode`` passes as ``range_bits`` to code them alike."""
    entropy = entropy or DEFAULT_ENTROPY
    if entropy not in mdc2.ENTROPY_CODERS:
        raise InvalidInputError(f"entropy={entropy!r} is unknown, expected one of {mdc2.ENTROPY_CODERS}")
    arr, signed_, _, bits = validate_pixels(np.asarray(frames), bits_stored, signed)
    value_range = levelshift.check_range(arr, bits, signed_)
    return _sample_range_bits(arr, value_range, bits, arith=mdc2.arith_coder_id(entropy) is not None, series=True)


def encode_mdc_to(
    fh: BinaryIO,
    frames: Iterable[np.ndarray],
    *,
    n_frames: int,
    bits_stored: int,
    signed: bool,
    sample: Sequence[np.ndarray] | np.ndarray | None = None,
    value_range: tuple[int, int] | None = None,
    quality: float | None = None,
    ratio: float | None = None,
    psnr: float | None = None,
    spec: PixelSpec | None = None,
    table: str | np.ndarray = quantize.MDC_DEFAULT_TABLE,
    jobs: int | None = None,
    ancillary: dict[str, bytes] | None = None,
    ndim: int = 3,
    effort: str | None = None,
    frames_checked: bool = False,
    entropy: str | None = None,
    padding: tuple[int, int] | None = None,
    range_bits: int | None = None,
    intra: bool | None = None,
    compact: bool | None = None,
    rate_sample_frames: int = RATE_SAMPLE_FRAMES,
    judge_ratio: bool = True,
    series: bool = False,
) -> StreamSummary:
    """:func:`encode_to`; ``frames_checked``: :func:`encode` already range-checked every frame.

    ``rate_sample_frames``: frames of ``sample`` the ``ratio`` / ``psnr`` search measures (evenly
    spaced; :func:`.framecoder.resolve_quality`). ``judge_ratio=False``: no
    :class:`~medcodec.errors.RateTargetWarning` for a ratio missed (the caller measures the
    returned summary and searches again on every frame: :func:`.pipeline.encode`).

    ``compact``: the compact layout of format 2.4 (docs/format.md §16; ~200 bytes less per stream);
    ``None`` (default): on for the multi-symbol range coder, the only one it is defined for.

    ``intra``: code every frame with 8x8 intra prediction (:mod:`.intra`; formats 2.2-2.4); only
    with the multi-symbol range coder.

    ``range_bits``: bits the content spans (the steps scale with it); ``None``: from the sample,
    and for ``entropy="arith"`` at least ``min(bits_stored, 12)``, or with ``series`` (the frames
    are a whole series, :func:`encode_to`) at least ``bits_stored - 4`` (:func:`arith_range_bits`).
    Series writers pass one value per series, so the steps do not vary slice to slice."""
    effort = effort or "fast"  # None: the .mdc default
    entropy = entropy or DEFAULT_ENTROPY
    if entropy not in mdc2.ENTROPY_CODERS:
        raise InvalidInputError(f"entropy={entropy!r} is unknown, expected one of {mdc2.ENTROPY_CODERS}")
    arith_id = mdc2.arith_coder_id(entropy)
    arith = arith_id is not None
    coder_id = container.ENTROPY_HUFFMAN if arith_id is None else arith_id  # the HEAD entropy coder
    if effort not in EFFORTS:
        raise InvalidInputError(f"effort={effort!r} is unknown, expected one of {EFFORTS}")
    if intra is None:  # the default: intra frames wherever the coder has them (docs/design-notes.md)
        intra = arith_id == container.ENTROPY_MULTI
    if intra and arith_id != container.ENTROPY_MULTI:
        raise InvalidInputError("intra=True takes entropy='arith' (the multi-symbol coder)")
    if compact is None:  # the default: the compact layout wherever it is defined (format 2.4)
        compact = arith_id == container.ENTROPY_MULTI
    if compact and arith_id != container.ENTROPY_MULTI:
        raise InvalidInputError("compact=True takes entropy='arith' (the multi-symbol coder, format 2.4)")

    mode_model = _mode_model_for(effort) if intra else 0  # 2: 2.4's mode model 2 (FRAM flag 32), 3: 2.5, 4: 2.6
    jobs_ = default_jobs(jobs)
    container.check_ancillary(ancillary)
    it = iter(frames)
    first: np.ndarray | None = None
    if sample is None:
        first = next(it, None)
        if first is None:
            raise InvalidInputError("no frames to encode")
        sample = [first]
    stacked = sample if isinstance(sample, np.ndarray) and sample.ndim == 3 else np.stack(list(sample))
    sample_arr, signed_, _, bits_stored = validate_pixels(stacked, bits_stored, signed)
    if not isinstance(n_frames, int) or n_frames < 1:
        raise InvalidInputError(f"n_frames={n_frames!r} must be a positive integer")
    jobs_ = min(jobs_, n_frames)  # one frame: no thread pool to start and hand over to
    _, rows, cols = sample_arr.shape
    if value_range is None:
        value_range = levelshift.check_range(sample_arr, bits_stored, signed_)
    if range_bits is not None:
        rbits = levelshift.checked_range_bits(range_bits, bits_stored)
    else:
        rbits = _sample_range_bits(sample_arr, value_range, bits_stored, arith=arith, series=series)

    use_rdoq = arith_id == container.ENTROPY_MULTI and effort in RDOQ_EFFORTS and not intra

    def coder_for(q: float) -> FrameCoder:
        steps = quantize.quant_table(q, rbits, table=table)
        if effort == "best" and not use_rdoq:
            return FrameCoder(steps, bits_stored, signed_, rdo="trellis", rdo_size_bits=MDC_SIZE_BITS)
        return FrameCoder.for_table(steps, bits_stored, signed_)

    frame_bytes: Callable[[FrameCoder, np.ndarray], int] = (
        (lambda c, f: mdc2.dct_frame_bytes(c, f, coder_id)) if arith else _mdc_frame_bytes
    )
    mse_of: Callable[[FrameCoder, np.ndarray], float] | None = None
    if intra:  # the rate search measures the intra coder itself (its bytes, its reconstruction)
        frame_bytes = partial(_intra_frame_bytes, effort=effort, mode_model=mode_model)
        mse_of = partial(_intra_frame_mse, effort=effort, mode_model=mode_model)
    elif use_rdoq:  # the RD levels' bytes and error (before the filters, which only lower it)
        frame_bytes, mse_of = mdc2.rdoq_frame_bytes, mdc2.rdoq_frame_mse
    fixed_bytes = container.FIXED_BYTES
    if arith_id == container.ENTROPY_MULTI:  # count the offsets and filters, in the layout written
        fixed_bytes = container.COMPACT_FIXED_BYTES if compact else container.FIXED_BYTES
        counted = mdc2.DCT_FRAME_OVERHEAD + (63 if use_rdoq and not intra else 0)  # what frame_bytes adds
        frame_bytes = partial(_with_side_bytes, frame_bytes, mdc2.FRAME_SIDE_BYTES[bool(compact)] - counted)
    trial: _Trial | None = None  # the sample frame as the trial coded it, reused when it is coded alike
    if padding is None and intra and AUTO_PADDING and FILL_PADDING:  # judged at the quality asked (or 75)
        trial = _auto_padding(coder_for(75.0 if quality is None else quality), sample_arr, effort, mode_model)
        padding = None if trial is None else trial.padding
    pad = _padding_range(padding, bits_stored, signed_)
    if pad is not None and FILL_PADDING:  # the rate search measures the frames as they are coded
        frame_bytes, mse_of = _padded_rate(pad, frame_bytes, mse_of, intra, effort, mode_model)
    q = resolve_quality(
        coder_for, sample_arr, quality=quality, ratio=ratio, psnr=psnr, size_bits=MDC_SIZE_BITS,
        peak=(1 << bits_stored) - 1, raw_bytes_per_pixel=1 if bits_stored <= 8 else 2, jobs=jobs_,
        frame_bytes=frame_bytes, fixed_bytes=fixed_bytes, mse_of=mse_of, sample_frames=rate_sample_frames,
    )  # fmt: skip
    coder = coder_for(q)
    spec = spec or PixelSpec(bits_stored=bits_stored, signed=signed_)
    meta: dict[str, object] = {"ndim": 2} if ndim == 2 else {}
    if padding is not None:
        checked = _padding_range(padding, bits_stored, signed_)
        if arith_id == container.ENTROPY_ARITH:
            raise UnsupportedFeatureError("padding with entropy='arith-binary': format 2.0 frames carry no padding "
                                          "mask (the default, 'arith', does: format 2.3)")  # fmt: skip
        meta["padding"] = list(checked or ())
    header = container.MdcHeader(
        rows=rows, cols=cols, frames=n_frames, bits_stored=bits_stored,
        signed=signed_, photometric_interpretation=spec.photometric_interpretation,
        rescale_slope=float(spec.rescale_slope), rescale_intercept=float(spec.rescale_intercept),
        window_center=spec.window_center, window_width=spec.window_width,
        quality=max(1, min(100, round(q))), range_bits=rbits, qtables=(coder.steps,),
        meta=meta, ancillary=dict(ancillary or {}),
        compact=compact,
        version=container.VERSION_212 if intra and _trained_starts(effort, mode_model)
        else container.VERSION_211 if intra and _within_levels(effort, mode_model)
        else container.VERSION_26 if intra and mode_model == 4
        else container.VERSION_25 if intra and mode_model == 3
        else container.VERSION_24 if compact or (intra and mode_model == 2)
        else container.VERSION_23 if arith and padding is not None
        else container.VERSION_22 if intra
        else (container.VERSION_21 if arith_id == container.ENTROPY_MULTI else container.VERSION_2) if arith
        else container.VERSION,
        entropy=coder_id,
    )  # fmt: skip
    writer = container.ContainerWriter(fh, header)

    def padded(frame: np.ndarray, fill: bool = True) -> tuple[np.ndarray, bytes | None]:
        """The frame as coded (padding filled unless ``fill`` is False) and its padding mask; under a
        padding the coder declared itself, a frame whose padding is no such region gets none."""
        if pad is None:
            return frame, None
        where: np.ndarray | None = (frame >= pad[0]) & (frame <= pad[1])
        if trial is not None and where is not None and where.any():
            where = _padding_region(frame, pad[0])
        if where is None or not where.any():
            return frame, None
        coded = fill_padding(frame, where) if FILL_PADDING and fill else frame
        return coded, container.encode_padding_mask(where)

    blocks_per_row = -(-cols // 8)

    def one(
        frame: np.ndarray,
    ) -> tuple[EncodedFrame | tuple[bytes, np.ndarray | None, tuple[int, int, int] | None,
                                    mdc2.RestorationFilter | None, int, bytes | None], bytes | None]:  # fmt: skip
        if not isinstance(frame, np.ndarray) or frame.shape != (rows, cols) or frame.dtype.kind not in "iu":
            raise InvalidInputError(
                f"every frame must be an integer array of shape {(rows, cols)}, got "
                f"{getattr(frame, 'shape', type(frame).__name__)}"
            )
        if not frames_checked:
            levelshift.check_range(frame, bits_stored, signed_)
        if not frame.dtype.isnative:  # the v2 kernels take native integers (a big-endian DICOM frame)
            frame = frame.astype(frame.dtype.newbyteorder("="))
        reuse = trial is not None and trial.same(frame, coder)  # (intra only) coded by the trial already
        frame, mask = padded(frame, fill=not reuse)  # the mask from the frame as given, its padding filled
        if intra:  # 2.2: offsets from the plain rounded levels, then the intra loop and 2.1's filters
            if reuse:
                assert trial is not None
                ifr, ioffsets, ideblock, irestoration = trial.coded
            else:
                ifr, ioffsets = _intra_frame(coder, frame, effort, mode_model)
                ideblock, _, irestoration = _intra_filters(coder, frame, ifr.recon, ioffsets, effort)
            return (ifr.payload, ioffsets, ideblock, irestoration, mode_model, mask), None
        if arith:  # v2: range-coded levels; rounded levels get centroid reconstruction offsets
            if use_rdoq:  # RD levels priced with the 2.1 coder's model, the rounded levels' offsets
                levels, offsets, recon = mdc2.rdoq_levels(coder, frame)
                deblock, decoded = mdc2.deblocked_frame(coder, levels, offsets, frame, base=recon)
            elif effort == "fast":  # one DCT: the rounded levels are exactly coder.levels(frame)'s
                scaled = coder.scaled(frame)
                levels = mdc2.round_scaled(scaled)
                offsets = mdc2.reconstruction_offsets(levels, scaled)
            else:
                levels, offsets = coder.levels(frame), None
            if not use_rdoq:
                deblock, decoded = mdc2.deblocked_frame(coder, levels, offsets, frame)
            classes = mdc2.FAST_FILTER_CLASSES if effort == "fast" else mdc2.FILTER_CLASS_CANDIDATES
            restoration = mdc2.choose_restoration(coder, decoded, frame, classes)
            levels_bytes = mdc2.encode_levels(levels, blocks_per_row, coder_id)
            return (levels_bytes, offsets, deblock, restoration, 0, mask), None
        return coder.encode_frame(frame, size_bits=MDC_SIZE_BITS), mask

    written = 0
    source = itertools.chain([first], it) if first is not None else it
    for enc, mask in imap_ordered(one, source, jobs_):
        if written >= n_frames:
            raise InvalidInputError(f"more than n_frames={n_frames} frames given")
        if isinstance(enc, tuple):
            segment = mdc2.compact_frame_segment if compact else mdc2.dct_frame_segment
            writer.add_payload(written, segment(written, 0, *enc))
        else:
            writer.add(container.FrameRecord(written, 0, enc.dc_table, enc.ac_table, enc.coded, mask))
        written += 1
    if written != n_frames:
        raise InvalidInputError(f"{written} frames given, n_frames={n_frames}")
    nbytes = writer.close()
    pixel_bytes = container.pixel_data_bytes(header, nbytes)
    if judge_ratio:
        check_ratio_reached(ratio, compression_ratio(pixel_bytes, rows * cols * written, bits_stored))
    return StreamSummary(nbytes, q, written, pixel_bytes)


def _mode_model_for(effort: str) -> int:
    """The intra mode model an encoder of ``effort`` writes (:func:`.intra.model_for`); format 2.5's
    transform choice (3) and format 2.6's 16x16 blocks (4) only where the intra RD levels are on
    (:data:`INTRA_RDOQ_EFFORTS`), else 2."""
    from . import intra as intra_mod

    model = intra_mod.model_for(effort)
    return 2 if model >= 3 and effort not in INTRA_RDOQ_EFFORTS else model


def _within_levels(effort: str, mode_model: int) -> bool:
    """Whether the intra frames of this encoder code their levels under format 2.11's within-block
    contexts (:func:`.intra.within_levels`): the stream is then written as 2.11."""
    from . import intra as intra_mod

    return intra_mod.within_levels(effort, mode_model)


def _trained_starts(effort: str, mode_model: int) -> bool:
    """Whether those frames start their contexts from format 2.12's trained tables
    (:func:`.intra.trained_starts`): the stream is then written as 2.12."""
    from . import intra as intra_mod

    return intra_mod.trained_starts(effort, mode_model)


#: Padding voxels (a declared ``padding``) are coded as a smooth fill of their surroundings, not as
#: they are (:mod:`.padfill`; the decoder restores them from the mask). False: as before 2026-12-03.
FILL_PADDING = True
#: The default coder (intra frames) declares padding by itself when the frame's lowest value fills a
#: region with a large step at its border (a CT's outside-the-field-of-view value) and the trial
#: on a sample frame shows the mask and fill cost fewer bytes for less error (:func:`_auto_padding`).
AUTO_PADDING = True
#: The gate before that trial: the lowest value on at least this share of a frame ...
AUTO_PADDING_SHARE = 0.02
#: ... and the median step from it to its non-padding 4-neighbours at least this share of the
#: frame's range (a CT's -2000 outside the field of view beside air at -1000: a fifth of a 14-bit
#: CT's range; the chest CT's 0 outside its field of view beside air at ~24 of 3289 is not).
#: Every frame of the sample that holds the value must pass it (an outside audit, 2026-12-03: a
#: stack whose middle frame alone had a zero background paid a mask on every frame, +18 % at
#: ``psnr=60``); a frame of the stream that does not pass it gets no mask (coded as it is).
AUTO_PADDING_RANGE_SHARE = 1 / 16
#: What declaring padding adds beyond the frame's mask: the ``meta`` entry and the mask's length
#: and flag (the trial counts them, so "no more bytes" holds for the stream; the same audit).
AUTO_PADDING_DECLARATION_BYTES = 40


@dataclass(frozen=True)
class _Trial:
    """What :func:`_auto_padding` decided, and the sample frame as it coded it with the padding."""

    padding: tuple[int, int]
    frame: np.ndarray
    steps: np.ndarray
    coded: tuple[Any, np.ndarray, tuple[int, int, int] | None, mdc2.RestorationFilter | None]

    def same(self, frame: np.ndarray, coder: FrameCoder) -> bool:
        """``frame`` is the trial's frame and ``coder`` codes it with the trial's steps."""
        return np.array_equal(coder.steps, self.steps) and np.array_equal(frame, self.frame)


def _padding_region(frame: np.ndarray, v: int) -> np.ndarray | None:
    """The voxels at ``v`` when they pass :data:`AUTO_PADDING_SHARE` and
    :data:`AUTO_PADDING_RANGE_SHARE` (a region with a large step at its edge), else ``None``."""
    where = frame == v
    if where.mean() < AUTO_PADDING_SHARE or where.all():
        return None
    border = np.zeros_like(where)  # non-padding voxels with a padding 4-neighbour
    border[1:] |= where[:-1]
    border[:-1] |= where[1:]
    border[:, 1:] |= where[:, :-1]
    border[:, :-1] |= where[:, 1:]
    border &= ~where
    step = float(np.median(frame[border].astype(np.float64) - v)) if border.any() else 0.0
    return where if step >= AUTO_PADDING_RANGE_SHARE * (int(frame.max()) - v) else None


def _auto_padding(coder: FrameCoder, sample: np.ndarray, effort: str, mode_model: int) -> _Trial | None:
    """A :class:`_Trial` declaring ``(v, v)`` when the default coder should make the sample's lowest
    value ``v`` padding (see :data:`AUTO_PADDING`), else ``None``. The voxels at ``v`` are then
    restored exactly and every other voxel kept above ``v`` by the decoder (docs/format.md §15), so
    it changes nothing but the bytes and the error, which a trial on the middle frame compares:
    declared only when it gives no more bytes (the declaration's included) AND no more squared error
    than coding the frame as it is, and only when every frame of ``sample`` (frames, rows, columns)
    that holds ``v`` holds it as such a region."""
    v = int(sample.min())
    regions = {i: _padding_region(f, v) for i, f in enumerate(sample) if (f == v).any()}
    where = regions.get(len(sample) // 2)
    if where is None or any(r is None for r in regions.values()):
        return None
    frame = sample[len(sample) // 2]
    plain = _intra_trial(coder, frame, effort, mode_model, None)
    filled = _intra_trial(coder, frame, effort, mode_model, where)
    if filled[0] + AUTO_PADDING_DECLARATION_BYTES > plain[0] or filled[1] > plain[1]:
        return None
    return _Trial((v, v), frame, coder.steps.copy(), filled[2])


def _padded_rate(
    pad: tuple[int, int],
    frame_bytes: Callable[[FrameCoder, np.ndarray], int],
    mse_of: Callable[[FrameCoder, np.ndarray], float] | None,
    intra: bool,
    effort: str,
    mode_model: int,
) -> tuple[Callable[[FrameCoder, np.ndarray], int], Callable[[FrameCoder, np.ndarray], float] | None]:
    """The rate search's measures for frames whose padding is filled before coding: their bytes
    with the mask's, and (intra) their error with the padding exact, as the decoder gives it."""

    def where(frame: np.ndarray) -> np.ndarray:
        return (frame >= pad[0]) & (frame <= pad[1])

    def nbytes(coder: FrameCoder, frame: np.ndarray) -> int:
        w = where(frame)
        if not w.any():
            return frame_bytes(coder, frame)
        return frame_bytes(coder, fill_padding(frame, w)) + len(container.encode_padding_mask(w))

    if intra:
        return nbytes, lambda coder, frame: _intra_trial(coder, frame, effort, mode_model, where(frame))[1] / frame.size
    if mse_of is None:
        return nbytes, None
    base = mse_of
    return nbytes, lambda coder, frame: base(coder, fill_padding(frame, where(frame)))


def _intra_trial(
    coder: FrameCoder, frame: np.ndarray, effort: str, mode_model: int, where: np.ndarray | None
) -> tuple[int, float, tuple[Any, np.ndarray, tuple[int, int, int] | None, mdc2.RestorationFilter | None]]:
    """Bytes (payload and, with ``where``, its padding mask) and squared error after the filters of
    one intra frame, and what it coded (intra frame, offsets, deblocking, restoration filter); with
    ``where`` the padding filled before coding and exact after decoding."""
    coded = frame if where is None else fill_padding(frame, where)
    ifr, offsets = _intra_frame(coder, coded, effort, mode_model)
    deblock, decoded, restoration = _intra_filters(coder, coded, ifr.recon, offsets, effort)
    products = (ifr, offsets, deblock, restoration)
    if restoration is not None:
        decoded = restoration.apply(decoded, coder._lo, coder._hi)
    err = decoded.astype(np.float64) - frame
    nbytes = len(ifr.payload)
    if where is not None:
        err[where] = 0.0
        nbytes += len(container.encode_padding_mask(where))
    return nbytes, float(np.sum(err * err)), products


def _intra_frame(coder: FrameCoder, frame: np.ndarray, effort: str = "fast",
                 mode_model: int | None = None) -> tuple[Any, np.ndarray]:  # fmt: skip
    """A 2.2 intra frame (:mod:`.intra`; ``mode_model`` 2: 2.4's, 3: 2.5's) and its centroid offsets (from
    the plain rounded levels)."""
    from . import intra as intra_mod

    scaled = coder.scaled(frame)
    rounded = mdc2.round_scaled(scaled)
    offsets = mdc2.reconstruction_offsets(rounded, scaled)
    mode_model = _mode_model_for(effort) if mode_model is None else mode_model
    rd_bound = (mdc2.error_bound_with_offsets(coder.steps, offsets, tx=mode_model >= 3, big=mode_model == 4)  # printed
                if effort in INTRA_RDOQ_EFFORTS and mode_model >= 2 else None)  # fmt: skip
    return intra_mod.encode_intra_frame(frame, coder, offsets, effort, mode_model, rd_bound, rounded=rounded), offsets


def _with_side_bytes(frame_bytes: Callable[[FrameCoder, np.ndarray], int], extra: int, coder: FrameCoder,
                     frame: np.ndarray) -> int:  # fmt: skip
    """Rate control: ``frame_bytes`` plus what the frame spends beyond what it counts."""
    return frame_bytes(coder, frame) + extra


def _intra_frame_bytes(coder: FrameCoder, frame: np.ndarray, effort: str = "fast",
                       mode_model: int | None = None) -> int:  # fmt: skip
    """Rate control of intra streams: the bytes of the frame's intra FRAM payload (filters excluded,
    as :func:`.mdc2.dct_frame_bytes`)."""
    return len(_intra_frame(coder, frame, effort, mode_model)[0].payload) + mdc2.DCT_FRAME_OVERHEAD


def _intra_frame_mse(coder: FrameCoder, frame: np.ndarray, effort: str = "fast",
                     mode_model: int | None = None) -> float:  # fmt: skip
    """Rate control of intra streams: the MSE of what the decoder gives, after the deblocking and
    restoration filters the encoder chooses for this frame (as :func:`encode_mdc_to` writes it).

    Until 2026-12-03 the search counted the reconstruction before the filters, which only lower the
    error: ``psnr=`` then landed up to 0.9 dB above its target, in streams up to ~10 % larger than
    needed (an outside audit). The filters' search costs ~5 % of an intra encode."""
    model = _mode_model_for(effort) if mode_model is None else mode_model
    return _intra_trial(coder, frame, effort, model, None)[1] / frame.size


def _intra_filters(
    coder: FrameCoder, frame: np.ndarray, recon: np.ndarray, offsets: np.ndarray, effort: str
) -> tuple[tuple[int, int, int] | None, np.ndarray, mdc2.RestorationFilter | None]:
    """The filters an intra frame gets (the one place the encoder and its rate search decide them):
    deblocking parameters, the frame after deblocking, the restoration filter."""
    deblock, decoded = mdc2.deblocked_frame(coder, None, offsets, frame, base=recon)
    classes = mdc2.FAST_FILTER_CLASSES if effort == "fast" else mdc2.FILTER_CLASS_CANDIDATES
    return deblock, decoded, mdc2.choose_restoration(coder, decoded, frame, classes)


def _padding_range(padding: Any, bits_stored: int, signed: bool) -> tuple[int, int] | None:
    """``(low, high)`` of the padding values, checked against the sample range."""
    if padding is None:
        return None
    return levelshift.checked_pair(padding, "padding", bits_stored, signed, ordered=False)


def decode_mdc(buf: bytes, frames: int | Sequence[int] | None, jobs: int) -> np.ndarray:
    header, index = container.parse_container(buf)
    if header.transform == container.TRANSFORM_PREDICTIVE:
        return mdc2.decode_predictive(buf, header, index, frames, jobs)
    if header.entropy in (container.ENTROPY_ARITH, container.ENTROPY_MULTI):
        return mdc2.decode_dct(buf, header, index, frames, jobs)
    sel, single = frame_selection(frames, header.frames)
    for k in sel:  # a truncated stream still gives the frames before the cut; check before allocating
        container.check_frame_present(index, k, len(buf))
    coders = [FrameCoder.for_table(q, header.bits_stored, header.signed) for q in header.qtables]
    pad = mdc2.meta_padding(header)
    arr = entropy.as_byte_array(buf)
    out = np.empty((len(sel), header.rows, header.cols), dtype=storage_dtype(header.bits_stored, header.signed))

    def one(j: int) -> None:
        rec, coded_offset = container.parse_frame(buf, header, index[sel[j]])
        if rec.index != sel[j]:
            raise CorruptStreamError(
                f"FIDX entry {sel[j]} points at frame {rec.index}", offset=index[sel[j]][0], segment="FRAM"
            )
        coders[rec.qtable].decode_frame(
            arr, rec.dc_table, rec.ac_table, header.rows, header.cols, size_bits=MDC_SIZE_BITS, start=coded_offset,
            end=coded_offset + len(rec.coded), segment=f"FRAM {rec.index}", out=out[j],
        )  # fmt: skip
        if pad is not None:  # streams without padding masks (older ones) decode as before
            mask = (
                container.decode_padding_mask(rec.padding_mask, header.rows, header.cols, offset=index[sel[j]][0])
                if rec.padding_mask is not None
                else np.zeros((header.rows, header.cols), bool)
            )
            mdc2.restore_padding(out[j], mask, pad, header.bits_stored, header.signed)

    map_frames(one, list(range(len(sel))), jobs)
    if single or (frames is None and header.meta.get("ndim") == 2):
        return out[0]
    return out
