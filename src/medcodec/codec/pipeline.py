"""encode() / decode(): the stages chained, options validated, rate control.

Encoding one frame (the stages, as the NumPy reference path spells them)::

    pixels ──levelshift.shift──▶ float, centred ──transform.blockify──▶ (N, 64)
       ──@ analysis_matrix(steps)──▶ DCT / steps, zigzag order ──quantize.round_levels──▶ int32 levels
       ──entropy.encode_scan──▶ bytes (+ optimal Huffman tables)

and decoding is the exact inverse, ending in a clip to the declared range. The codec runs
them fused, one numba kernel call per frame each way (:class:`FrameCoder`,
:mod:`._kernels`); the stage-by-stage path stays as the reference twin of the tests.
Frames are independent (own tables, DC prediction restarting at 0), so they are coded in
parallel threads (``jobs``, default all cores): the kernels release the GIL, and a series
streams through a bounded window of frames (:func:`encode_to`).

Rate control: the DCT does not depend on the quality, so a search transforms once and
then only re-quantizes and counts symbols (exact sizes from symbol counts, §K.2) and
measures the error in the coefficient domain (Parseval: the DCT is orthonormal). For
many frames the search runs on up to :data:`RATE_SAMPLE_FRAMES` evenly spaced frames,
then the chosen quality codes all frames.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .._parallel import imap_ordered
from ..errors import CorruptStreamError, InvalidInputError
from ..spec import PixelSpec, storage_dtype, value_range
from . import _kernels as K
from . import _rdoq, container, entropy, levelshift, quantize, transform

__all__ = ["encode", "encode_to", "decode", "read_header", "is_codestream", "FORMATS", "EFFORTS", "EncodedFrame", "FrameCoder", "StreamSummary"]

FORMATS = ("mdc", "jpeg")
#: Encoder effort levels (``encode(effort=...)``).
EFFORTS = ("fast", "best")
RATE_SAMPLE_FRAMES = 8
MDC_SIZE_BITS = container.SIZE_BITS


def _default_jobs(jobs: int | None) -> int:
    if jobs is None:
        return os.cpu_count() or 1
    if not isinstance(jobs, int) or jobs < 1:
        raise InvalidInputError(f"jobs={jobs!r} must be a positive integer")
    return jobs


def _map(fn: Callable[[Any], Any], items: Sequence[Any], jobs: int) -> list[Any]:
    if jobs <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        return list(pool.map(fn, items))


_imap = imap_ordered  # the shared thread map (medcodec/_parallel.py)


@dataclass(frozen=True)
class EncodedFrame:
    """A frame entropy-coded with its own optimal tables."""

    coded: bytes
    dc_table: entropy.HuffmanTable
    ac_table: entropy.HuffmanTable


class FrameCoder:
    """Forward and inverse path for one quantization table, shared by every output format.

    The work is done by fused numba kernels (:mod:`._kernels`): one pass from pixels to
    Huffman symbols (:meth:`encode_frame`) and one from coded bytes to pixels
    (:meth:`decode_frame`). :meth:`levels_reference` and :meth:`reconstruct_reference`
    are the NumPy twins (blockify, one (N, 64) x (64, 64) product, rounding / unshift),
    which the tests compare with the kernels.

    Parameters
    ----------
    steps
        Quantization steps, natural order (uint16, 64).
    bits_stored, signed
        Declared sample range (level shift, clipping, category limits).
    rdo, rdo_size_bits, rdo_lambda
        How levels are chosen (:mod:`._rdoq`): ``"none"`` rounds, ``"threshold"`` drops
        isolated small coefficients, ``"trellis"`` minimises error + lambda x bits with
        the symbols of an entropy coder whose AC size field is ``rdo_size_bits`` wide
        (4: JPEG, 5: ``.mdc``); ``rdo_lambda=None`` derives lambda from the steps.
    """

    def __init__(
        self, steps: np.ndarray, bits_stored: int, signed: bool, *, rdo: str = "none", rdo_size_bits: int = 4,
        rdo_lambda: float | None = None,
    ):  # fmt: skip
        if rdo not in _rdoq.MODES:
            raise InvalidInputError(f"rdo={rdo!r} is unknown, expected one of {_rdoq.MODES}")
        self.rdo = rdo
        self.rdo_size_bits = rdo_size_bits
        self.rdo_lambda = rdo_lambda
        self.steps = np.asarray(steps, dtype=np.uint16)
        self.steps_zz = quantize.steps_zigzag(self.steps)
        self.bits_stored = bits_stored
        self.signed = signed
        self.offset = levelshift.level_offset(bits_stored, signed)
        self._lo, self._hi = value_range(bits_stored, signed)
        self._dtype = storage_dtype(bits_stored, signed)
        self._exact_div, self._qmul = transform.forward_multipliers(self.steps_zz)
        self._deq, self._dc_mul = transform.inverse_multipliers(self.steps_zz)

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _cached(steps: bytes, bits_stored: int, signed: bool) -> FrameCoder:
        return FrameCoder(np.frombuffer(steps, np.uint16), bits_stored, signed)

    @classmethod
    def for_table(cls, steps: np.ndarray, bits_stored: int, signed: bool) -> FrameCoder:
        """A shared rounding (``rdo="none"``) coder for these steps (memoised: decoding one
        stream after another, or the frames of a rate search, build it once)."""
        return cls._cached(np.ascontiguousarray(steps, dtype=np.uint16).tobytes(), int(bits_stored), bool(signed))

    # -- forward -------------------------------------------------------------------------

    @staticmethod
    def _pixels(frame: np.ndarray) -> np.ndarray:
        """The frame as the kernels take it: C-contiguous, 8/16-bit as is, else int32
        (values are within 16 bits, checked by the callers)."""
        if frame.dtype.itemsize > 2:
            return np.ascontiguousarray(frame, dtype=np.int32)
        return np.ascontiguousarray(frame)

    def scaled(self, frame: np.ndarray) -> np.ndarray:
        """(rows, cols) frame -> float64 (nblocks, 64) zigzag DCT coefficients / steps."""
        by, bx = transform.blocks_shape(*frame.shape)
        out = np.empty((by * bx, 64))
        return K.fdct_scaled(self._pixels(frame), float(self.offset), self._exact_div, self._qmul, transform.NAT_ZZ, out)

    def levels(self, frame: np.ndarray) -> np.ndarray:
        """(rows, cols) integer frame -> int32 (nblocks, 64) zigzag levels."""
        if self.rdo == "none":
            by, bx = transform.blocks_shape(*frame.shape)
            out = np.empty((by * bx, 64), np.int32)
            return K.fdct_levels(
                self._pixels(frame), float(self.offset), self._exact_div, self._qmul, transform.NAT_ZZ,
                quantize.ROUNDING_ZZ, out,
            )  # fmt: skip
        if self.rdo == "texture":  # fused kernel, the levels encode_frame codes
            return _rdoq.texture_frame_levels(self, frame, size_bits=self.rdo_size_bits, lam=self.rdo_lambda)
        return _rdoq.rdo_levels(
            self.scaled(frame), self.steps_zz, mode=self.rdo, size_bits=self.rdo_size_bits, lam=self.rdo_lambda
        )

    def levels_reference(self, frame: np.ndarray) -> np.ndarray:
        """NumPy twin of :meth:`levels` with ``rdo="none"``: blockify, one GEMM, round."""
        blocks = transform.blockify(frame.astype(np.float64) - self.offset)
        return quantize.round_levels(blocks @ transform.analysis_matrix(self.steps_zz))

    def encode_frame(self, frame: np.ndarray, *, size_bits: int, stuff: bool = False, restart_interval: int = 0) -> EncodedFrame:
        """Entropy-coded frame with its own optimal tables; with ``rdo="none"`` one kernel call
        from pixels to coded bytes (:func:`._kernels.encode_frame`)."""
        if self.rdo == "texture":  # fused kernel (._rdoq.encode_frame_texture)
            return EncodedFrame(*_rdoq.encode_frame_texture(
                self, frame, size_bits=size_bits, stuff=stuff, restart_interval=restart_interval, lam=self.rdo_lambda))
        if self.rdo != "none":
            coded, dc, ac = entropy.encode_scan(
                self.levels(frame), size_bits=size_bits, stuff=stuff, restart_interval=restart_interval
            )
            return EncodedFrame(coded, dc, ac)
        arrays = entropy.new_table_arrays(size_bits)
        coded, n_dc, n_ac, dc_size, ac_size = K.encode_frame(
            self._pixels(frame), float(self.offset), self._exact_div, self._qmul, transform.NAT_ZZ,
            quantize.ROUNDING_ZZ, size_bits, stuff, restart_interval, *arrays,
        )  # fmt: skip
        dc, ac = entropy.tables_from_kernel(size_bits, arrays[0], arrays[1], n_dc, arrays[2], arrays[3], n_ac,
                                            dc_size, ac_size)  # fmt: skip
        coded = coded.tobytes()
        return EncodedFrame(coded, dc, ac)

    # -- inverse -------------------------------------------------------------------------

    def reconstruct(self, levels: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """Levels -> clipped storage-dtype frame (:func:`._kernels.levels_pixels`)."""
        out = np.empty((rows, cols), self._dtype)
        zz = np.ascontiguousarray(levels, dtype=np.int32)
        return K.levels_pixels(zz, self._deq, transform.NAT_ZZ, self._dc_mul, float(self.offset), self._lo,
                               self._hi, out)  # fmt: skip

    def reconstruct_reference(self, levels: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """NumPy twin of :meth:`reconstruct`: one GEMM, unblockify, unshift."""
        blocks = levels @ transform.synthesis_matrix(self.steps_zz)
        return levelshift.unshift(transform.unblockify(blocks, rows, cols), self.bits_stored, self.signed)

    def decode_frame(
        self,
        data: bytes | memoryview | np.ndarray,
        dc_table: entropy.HuffmanTable,
        ac_table: entropy.HuffmanTable,
        rows: int,
        cols: int,
        *,
        size_bits: int,
        start: int = 0,
        end: int | None = None,
        stuffed: bool = False,
        restart_interval: int = 0,
        segment: str = "scan",
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Coded bytes ``data[start:end]`` -> clipped storage-dtype frame, in one kernel
        (:func:`._kernels.decode_pixels`). Twin: :func:`.entropy.decode_scan` + :meth:`reconstruct_reference`.

        Raises
        ------
        CorruptStreamError, TruncatedStreamError
            Like :func:`.entropy.decode_scan`.
        """
        buf = entropy.as_byte_array(data)
        end = len(buf) if end is None else end
        if out is None:
            out = np.empty((rows, cols), self._dtype)
        max_dc, max_ac = entropy.max_categories(self.bits_stored)
        status, pos, block = K.decode_pixels(
            buf, start, end, dc_table.decoder(size_bits=size_bits, max_category=max_dc, ac=False),
            ac_table.decoder(size_bits=size_bits, max_category=max_ac, ac=True), size_bits, stuffed,
            restart_interval, max_dc, max_ac, self._deq, transform.NAT_ZZ, self._dc_mul, float(self.offset),
            self._lo, self._hi, out,
        )  # fmt: skip
        by, bx = transform.blocks_shape(rows, cols)
        entropy.raise_for_status(status, pos, block, by * bx, segment)
        return out


def _validate_pixels(pixels: Any, bits_stored: Any, signed: bool | None) -> tuple[np.ndarray, bool, bool]:
    if not isinstance(pixels, np.ndarray):
        raise InvalidInputError(f"pixels must be a numpy array, got {type(pixels).__name__}")
    if pixels.dtype.kind not in "iu":
        raise InvalidInputError(f"pixels must have an integer dtype, got {pixels.dtype}")
    if pixels.ndim not in (2, 3):
        raise InvalidInputError(f"pixels must be 2-D (rows, cols) or 3-D (frames, rows, cols), got shape {pixels.shape}")
    if pixels.size == 0:
        raise InvalidInputError(f"pixels is empty (shape {pixels.shape})")
    if isinstance(bits_stored, bool) or not isinstance(bits_stored, (int, np.integer)) or not 1 <= bits_stored <= 16:
        raise InvalidInputError(f"bits_stored={bits_stored!r} is invalid, expected an integer 1..16")
    is_2d = pixels.ndim == 2
    frames = pixels[None] if is_2d else pixels
    lim = container.LIMITS
    f, r, c = frames.shape
    if r > lim["max_rows"] or c > lim["max_cols"] or f > lim["max_frames"] or r * c > lim["max_frame_pixels"]:
        raise InvalidInputError(f"shape {pixels.shape} exceeds the limits {lim}")
    if signed is None:
        signed = pixels.dtype.kind == "i"
    return frames, bool(signed), is_2d


def _resolve_quality(
    coder_for: Callable[[float], FrameCoder],
    frames: np.ndarray,
    *,
    quality: float | None,
    ratio: float | None,
    psnr: float | None,
    size_bits: int,
    peak: int,
    raw_bytes_per_pixel: int,
    jobs: int,
    frame_bytes: Callable[[FrameCoder, np.ndarray], int] | None = None,
    fixed_bytes: int = 0,
) -> float:
    """The quality that meets the single target given (quality, ratio or psnr).

    ``frame_bytes(coder, frame)`` is the exact coded size of one frame in the output
    format (entropy-coded data plus its tables); ``fixed_bytes`` the per-stream overhead.
    Sizes are estimated on the sample frames and scaled to all frames.
    """
    given = [name for name, v in (("ratio", ratio), ("psnr", psnr)) if v is not None]
    if len(given) > 1:
        raise InvalidInputError(f"give one rate target, not {given}")
    if not given:
        q = 75.0 if quality is None else quality
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 1 <= q <= 100:
            raise InvalidInputError(f"quality={quality!r} is out of range, expected 1..100")
        return float(q)
    n = frames.shape[0]
    sample = frames[np.unique(np.linspace(0, n - 1, min(n, RATE_SAMPLE_FRAMES)).round().astype(int))]
    npix = sample[0].size
    if ratio is not None:
        if not (isinstance(ratio, (int, float)) and ratio >= 1):
            raise InvalidInputError(f"ratio={ratio!r} must be a number >= 1")
        target = n * npix * raw_bytes_per_pixel / ratio
        if frame_bytes is None:
            frame_bytes = lambda coder, fr: -(-entropy.scan_bits(coder.levels(fr), size_bits=size_bits) // 8)  # noqa: E731
        fb = frame_bytes

        def ok(q: float) -> bool:  # small enough?
            coder = coder_for(q)
            sizes = _map(lambda fr: fb(coder, fr), list(sample), jobs)
            return fixed_bytes + sum(sizes) * n / len(sample) <= target

        return _bisect(ok, want_high=True)
    if not (isinstance(psnr, (int, float)) and 0 < psnr < 200):
        raise InvalidInputError(f"psnr={psnr!r} must be a number of dB in (0, 200)")

    def good(q: float) -> bool:  # good enough?
        coder = coder_for(q)
        mse = np.mean(_map(lambda fr: _frame_mse(coder, fr), list(sample), jobs))
        return mse == 0 or 10 * math.log10(peak**2 / mse) >= psnr

    return _bisect(good, want_high=False)


def _mdc_frame_bytes(coder: FrameCoder, frame: np.ndarray) -> int:
    dc, ac, extra = entropy.symbol_counts(coder.levels(frame), size_bits=MDC_SIZE_BITS)
    dct, act = entropy.HuffmanTable.from_frequencies(dc), entropy.HuffmanTable.from_frequencies(ac)
    coded = -(-(dct.cost(dc) + act.cost(ac) + extra) // 8)
    return coded + container.frame_overhead(len(dct.huffval), len(act.huffval))


def _frame_mse(coder: FrameCoder, frame: np.ndarray) -> float:
    rec = coder.reconstruct(coder.levels(frame), *frame.shape)
    return float(np.mean((rec.astype(np.float64) - frame) ** 2))


def _bisect(pred: Callable[[float], bool], *, want_high: bool) -> float:
    """Monotone search over quality 1..100.

    ``want_high``: pred is true for low qualities (size small enough) and we want the
    highest quality where it holds; otherwise pred is true for high qualities (PSNR high
    enough) and we want the lowest.
    """
    lo, hi = 1.0, 100.0
    if want_high:
        if pred(hi):
            return hi
        if not pred(lo):
            return lo
    else:
        if pred(lo):
            return lo
        if not pred(hi):
            return hi
    for _ in range(14):
        mid = (lo + hi) / 2
        if pred(mid) == want_high:
            lo = mid
        else:
            hi = mid
    return lo if want_high else hi


def encode(
    pixels: np.ndarray,
    /,
    *,
    bits_stored: int,
    signed: bool | None = None,
    quality: float | None = None,
    format: str = "mdc",
    ratio: float | None = None,
    psnr: float | None = None,
    spec: PixelSpec | None = None,
    table: str | np.ndarray | None = None,
    restart_interval: int = 0,
    jobs: int | None = None,
    ancillary: dict[str, bytes] | None = None,
    effort: str | None = None,
) -> bytes:
    """Compress a 2-D image or a (frames, rows, cols) stack.

    Parameters
    ----------
    pixels
        Integer array, values within the declared ``bits_stored`` / ``signed`` range.
    bits_stored
        Significant bits per sample, 1..16; never inferred from the dtype.
    signed
        Two's complement samples; ``None`` takes the dtype's signedness.
    quality
        1..100 (default 75); every 12.5 points halve the quantization steps.
    format
        ``"mdc"`` (the container, any depth) or ``"jpeg"`` (ISO 10918-1, 8 or 12 bits).
    ratio, psnr
        Rate targets instead of ``quality``: compression ratio against the raw size
        (1 byte per pixel up to 8 bits, else 2), or PSNR in dB with peak 2**bits_stored-1.
    spec
        Rescale, window and photometric interpretation to record in the header.
    table
        Quantization table shape: ``"medical"``, ``"flat"``, ``"annex-k"``, ``"ct"``, ``"mr"``,
        ``"radiograph"`` or 64 weights; None: ``"medical"`` for ``.mdc``, and for JPEG the
        table trained for ``spec.extra["modality"]`` (:mod:`.tables_trained`).
    restart_interval
        JPEG only: blocks per restart interval (0 = none).
    jobs
        Threads for multi-frame input (default: all cores).
    ancillary
        ``.mdc`` only: extra segments to carry, ``{type: payload}`` with 4-letter types
        starting lower-case (e.g. ``"dcmh"``, the DICOM headers written by
        :mod:`medcodec.dicom.embed`); decoders that do not know them skip them.
    effort
        ``"fast"`` or ``"best"`` (:data:`EFFORTS`); ``None`` takes the format's default.
        ``.mdc``: ``"fast"`` (default) rounds every coefficient, one fused pass per frame;
        ``"best"`` chooses the levels by trellis (a few % smaller, ~4x slower to encode).
        ``"jpeg"``: ``"best"`` (default) is the trellis, ``"fast"`` thresholding (see
        :func:`.jpeg.encode_jpeg`). Decoding speed does not depend on it.

    Returns
    -------
    bytes

    Raises
    ------
    InvalidInputError
        Bad array, range, option.

    Examples
    --------
    >>> import numpy as np, medcodec
    >>> img = (np.arange(64 * 64) % 4096).astype(np.uint16).reshape(64, 64)
    >>> data = medcodec.encode(img, bits_stored=12, quality=90)
    >>> medcodec.decode(data).shape
    (64, 64)
    """
    if format not in FORMATS:
        raise InvalidInputError(f"format={format!r} is unknown, expected one of {FORMATS}")
    frames, signed_, is_2d = _validate_pixels(pixels, bits_stored, signed)
    if spec is not None and (spec.bits_stored != bits_stored or spec.signed != signed_):
        raise InvalidInputError(
            f"spec says {spec.bits_stored} bits signed={spec.signed}, arguments say {bits_stored} bits signed={signed_}"
        )
    if effort is not None and effort not in EFFORTS:
        raise InvalidInputError(f"effort={effort!r} is unknown, expected one of {EFFORTS}")
    vmin, vmax = levelshift.check_range(frames, bits_stored, signed_)
    jobs_ = _default_jobs(jobs)
    if format == "jpeg":
        from . import jpeg  # standard output lives in its own module

        return jpeg.encode_jpeg(
            frames, bits_stored=bits_stored, signed=signed_, quality=quality, ratio=ratio, psnr=psnr,
            table=table, restart_interval=restart_interval, jobs=jobs_, resolve_quality=_resolve_quality,
            effort=effort or "best", modality=spec.extra.get("modality") if spec is not None else None,
        )  # fmt: skip
    if restart_interval:
        raise InvalidInputError("restart_interval applies to format='jpeg' only")
    buf = io.BytesIO()
    _encode_to(
        buf, list(frames), n_frames=frames.shape[0], bits_stored=bits_stored, signed=signed_, quality=quality,
        ratio=ratio, psnr=psnr, spec=spec, table="medical" if table is None else table, jobs=jobs_, ancillary=ancillary, value_range=(vmin, vmax),
        sample=frames, ndim=2 if is_2d else 3, effort=effort or "fast", frames_checked=True,
    )  # fmt: skip
    return buf.getvalue()


@dataclass(frozen=True)
class StreamSummary:
    """What :func:`encode_to` wrote."""

    nbytes: int
    quality: float
    frames: int


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
    table: str | np.ndarray = "medical",
    jobs: int | None = None,
    ancillary: dict[str, bytes] | None = None,
    ndim: int = 3,
    effort: str | None = None,
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
        Default: the first frame.
    value_range
        (min, max) of the whole series if known; otherwise taken from ``sample``.
    Other parameters are those of :func:`encode`.

    Raises
    ------
    InvalidInputError
        Bad frames, options, or a frame count different from ``n_frames``.
    """
    return _encode_to(
        fh, frames, n_frames=n_frames, bits_stored=bits_stored, signed=signed, sample=sample, value_range=value_range,
        quality=quality, ratio=ratio, psnr=psnr, spec=spec, table=table, jobs=jobs, ancillary=ancillary, ndim=ndim,
        effort=effort,
    )  # fmt: skip


def _encode_to(
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
    table: str | np.ndarray = "medical",
    jobs: int | None = None,
    ancillary: dict[str, bytes] | None = None,
    ndim: int = 3,
    effort: str | None = None,
    frames_checked: bool = False,
) -> StreamSummary:
    """:func:`encode_to`; ``frames_checked``: :func:`encode` already range-checked every frame."""
    effort = effort or "fast"  # None: the .mdc default
    if effort not in EFFORTS:
        raise InvalidInputError(f"effort={effort!r} is unknown, expected one of {EFFORTS}")
    jobs_ = _default_jobs(jobs)
    for name in ancillary or {}:
        if not (isinstance(name, str) and len(name) == 4 and name.isalpha() and name[0].islower() and name != "meta"):
            raise InvalidInputError(f"ancillary segment type {name!r} must be 4 ASCII letters starting lower-case")
    it = iter(frames)
    first: np.ndarray | None = None
    if sample is None:
        first = next(it, None)
        if first is None:
            raise InvalidInputError("no frames to encode")
        sample = [first]
    stacked = sample if isinstance(sample, np.ndarray) and sample.ndim == 3 else np.stack(list(sample))
    sample_arr, signed_, _ = _validate_pixels(stacked, bits_stored, signed)
    if not isinstance(n_frames, int) or n_frames < 1:
        raise InvalidInputError(f"n_frames={n_frames!r} must be a positive integer")
    jobs_ = min(jobs_, n_frames)  # one frame: no thread pool to start and hand over to
    _, rows, cols = sample_arr.shape
    if value_range is None:
        value_range = levelshift.check_range(sample_arr, bits_stored, signed_)
    rbits = levelshift.content_range_bits(sample_arr, value_range[0], value_range[1], bits_stored)

    def coder_for(q: float) -> FrameCoder:
        steps = quantize.quant_table(q, rbits, table=table)
        if effort == "best":
            return FrameCoder(steps, bits_stored, signed_, rdo="trellis", rdo_size_bits=MDC_SIZE_BITS)
        return FrameCoder.for_table(steps, bits_stored, signed_)

    q = _resolve_quality(
        coder_for, sample_arr, quality=quality, ratio=ratio, psnr=psnr, size_bits=MDC_SIZE_BITS,
        peak=(1 << bits_stored) - 1, raw_bytes_per_pixel=1 if bits_stored <= 8 else 2, jobs=jobs_,
        frame_bytes=_mdc_frame_bytes, fixed_bytes=container.FIXED_BYTES,
    )  # fmt: skip
    coder = coder_for(q)
    spec = spec or PixelSpec(bits_stored=bits_stored, signed=signed_)
    header = container.MdcHeader(
        rows=rows, cols=cols, frames=n_frames, bits_stored=bits_stored,
        signed=signed_, photometric_interpretation=spec.photometric_interpretation,
        rescale_slope=float(spec.rescale_slope), rescale_intercept=float(spec.rescale_intercept),
        window_center=spec.window_center, window_width=spec.window_width,
        quality=max(1, min(100, round(q))), range_bits=rbits, qtables=(coder.steps,),
        meta={"ndim": 2} if ndim == 2 else {}, ancillary=dict(ancillary or {}),
    )  # fmt: skip
    writer = container.ContainerWriter(fh, header)

    def one(frame: np.ndarray) -> EncodedFrame:
        if not isinstance(frame, np.ndarray) or frame.shape != (rows, cols) or frame.dtype.kind not in "iu":
            raise InvalidInputError(
                f"every frame must be an integer array of shape {(rows, cols)}, got "
                f"{getattr(frame, 'shape', type(frame).__name__)}"
            )
        if not frames_checked:
            levelshift.check_range(frame, bits_stored, signed_)
        return coder.encode_frame(frame, size_bits=MDC_SIZE_BITS)

    written = 0
    source = itertools.chain([first], it) if first is not None else it
    for enc in _imap(one, source, jobs_):
        if written >= n_frames:
            raise InvalidInputError(f"more than n_frames={n_frames} frames given")
        writer.add(container.FrameRecord(written, 0, enc.dc_table, enc.ac_table, enc.coded))
        written += 1
    if written != n_frames:
        raise InvalidInputError(f"{written} frames given, n_frames={n_frames}")
    return StreamSummary(writer.close(), q, written)


def _frame_selection(frames: int | Sequence[int] | None, n: int) -> tuple[list[int], bool]:
    if frames is None:
        return list(range(n)), False
    if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        sel, single = [int(frames)], True
    else:
        try:
            sel, single = [int(i) for i in frames], False  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise InvalidInputError(f"frames={frames!r} must be an int or a sequence of ints") from None
    for i in sel:
        if not -n <= i < n:
            raise InvalidInputError(f"frame {i} does not exist: the stream has {n} frames")
    return [i % n for i in sel], single


def decode(
    data: bytes | bytearray | memoryview,
    /,
    *,
    frames: int | Sequence[int] | None = None,
    jobs: int | None = None,
) -> np.ndarray:
    """Decompress a ``.mdc`` or JPEG stream.

    Parameters
    ----------
    data
        The stream.
    frames
        ``None`` for all frames; an int for one frame (returned 2-D); a sequence of ints.
        ``.mdc`` decodes only the frames asked for (random access through FIDX).
    jobs
        Threads for multi-frame streams (default: all cores).

    Returns
    -------
    numpy.ndarray
        uint8/int8 for <= 8 bits stored, else uint16/int16; shape (rows, cols) when a 2-D
        image was encoded or one frame asked for, else (frames, rows, cols).

    Raises
    ------
    CorruptStreamError, TruncatedStreamError, ChecksumMismatchError
        Damaged stream (with the byte offset).
    UnsupportedFeatureError
        A valid stream using a feature medcodec does not decode.
    """
    buf = _as_buffer(data)
    jobs_ = _default_jobs(jobs)
    if container.is_mdc(buf):
        return _decode_mdc(buf, frames, jobs_)
    if buf[:2] == b"\xff\xd8":
        from . import jpeg

        return jpeg.decode_jpeg(buf, frames=frames)
    raise CorruptStreamError("not a medcodec (.mdc) or JPEG stream: unknown signature", offset=0, segment="signature")


def _as_buffer(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data) if not isinstance(data, bytes) else data
    raise InvalidInputError(f"data must be bytes-like, got {type(data).__name__}")


def _decode_mdc(buf: bytes, frames: int | Sequence[int] | None, jobs: int) -> np.ndarray:
    header, index = container.parse_container(buf)
    sel, single = _frame_selection(frames, header.frames)
    coders = [FrameCoder.for_table(q, header.bits_stored, header.signed) for q in header.qtables]
    arr = entropy.as_byte_array(buf)
    out = np.empty((len(sel), header.rows, header.cols), dtype=storage_dtype(header.bits_stored, header.signed))

    def one(j: int) -> None:
        rec, coded_offset = container.parse_frame(buf, header, index[sel[j]])
        if rec.index != sel[j]:
            raise CorruptStreamError(f"FIDX entry {sel[j]} points at frame {rec.index}", offset=index[sel[j]][0], segment="FRAM")
        coders[rec.qtable].decode_frame(
            arr, rec.dc_table, rec.ac_table, header.rows, header.cols, size_bits=MDC_SIZE_BITS, start=coded_offset,
            end=coded_offset + len(rec.coded), segment=f"FRAM {rec.index}", out=out[j],
        )  # fmt: skip

    _map(one, list(range(len(sel))), jobs)
    if single or (frames is None and header.meta.get("ndim") == 2):
        return out[0]
    return out


def read_header(data: bytes | bytearray | memoryview, /) -> container.MdcHeader:
    """Header of a ``.mdc`` or JPEG stream without entropy decoding (segments with offsets)."""
    buf = _as_buffer(data)
    if container.is_mdc(buf):
        return container.parse_container(buf)[0]
    if buf[:2] == b"\xff\xd8":
        from . import jpeg

        return jpeg.read_jpeg_header(buf)
    raise CorruptStreamError("not a medcodec (.mdc) or JPEG stream: unknown signature", offset=0, segment="signature")


def is_codestream(data: bytes | bytearray | memoryview, /) -> bool:
    """True if ``data`` starts like a stream :func:`decode` reads (``.mdc`` or JPEG SOI)."""
    head = bytes(data[:8])
    return head == container.SIGNATURE or head[:2] == b"\xff\xd8"

