"""The frame coder: one quantization table's forward and inverse path, shared by ``.mdc`` and JPEG.

:class:`FrameCoder` turns a 2-D frame into entropy-coded bytes with its own optimal Huffman
tables, and back, through the fused numba kernels (:mod:`._kernels`), with the stage-by-stage
NumPy path kept as the reference twin. Both drivers use it: :mod:`.mdc` (the container) and
:mod:`.jpeg` (ISO 10918-1 streams); :mod:`.pipeline` only dispatches between them.

Also here, because both drivers need them: pixel validation (:func:`validate_pixels`), the
thread map over frames (:func:`map_frames`), frame selection for decoding
(:func:`frame_selection`) and the codec's rate control (:func:`resolve_quality`): the DCT does
not depend on the quality, so a search transforms once and then only re-quantizes and counts
symbols (exact sizes from symbol counts, §K.2) and measures the error in the coefficient
domain (Parseval: the DCT is orthonormal). For many frames the search runs on up to
:data:`RATE_SAMPLE_FRAMES` evenly spaced frames. A ratio is searched by false position
(:func:`medcodec.ratecontrol.search_quality`), a PSNR by bisection
(:func:`medcodec.ratecontrol.bisect_quality`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..ratecontrol import CALIBRATION_FRAMES, RateTarget, bisect_quality, calibration_indices, search_quality
from ..spec import storage_dtype, value_range
from . import _kernels as K
from . import _rdoq, container, entropy, levelshift, quantize, transform

__all__ = [
    "RATE_SAMPLE_FRAMES",
    "EFFORTS",
    "EncodedFrame",
    "FrameCoder",
    "default_jobs",
    "map_frames",
    "validate_pixels",
    "resolve_quality",
    "frame_mse",
    "frame_selection",
]


#: Frames the codec's rate search measures (evenly spaced).
RATE_SAMPLE_FRAMES = CALIBRATION_FRAMES
#: Encoder effort levels (``encode(effort=...)``).
EFFORTS = ("fast", "best")


@functools.cache
def _cores() -> int:
    """``os.cpu_count()``, read once per process: each call reads sysfs, ~7-8 us here, which was a sixth
    of a 64x64 JPEG encode and a quarter of its decode (2026-12-04, twenty-second session; A/B in
    docs/benchmarks.md, "Small frames")."""
    return os.cpu_count() or 1


def default_jobs(jobs: int | None) -> int:
    """``jobs`` as a thread count: ``None`` is every core; a numpy integer is an int; ``True`` and
    anything below 1 are refused (until 2026-12-03 ``np.int64(2)`` was refused and ``True`` taken as 1)."""
    if jobs is None:
        return _cores()
    if isinstance(jobs, (bool, np.bool_)) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise InvalidInputError(f"jobs={jobs!r} must be a positive integer")
    return int(jobs)


def map_frames(fn: Callable[[Any], Any], items: Sequence[Any], jobs: int) -> list[Any]:
    if jobs <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        return list(pool.map(fn, items))


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
    ties_up
        Round a reconstructed sample that is exactly half-way up, as libjpeg, DCMTK and GDCM do
        (JPEG); else half to even (``.mdc``, whose streams were coded against it).
    """

    def __init__(
        self, steps: np.ndarray, bits_stored: int, signed: bool, *, rdo: str = "none", rdo_size_bits: int = 4,
        rdo_lambda: float | None = None, ties_up: bool = False,
    ):  # fmt: skip
        if rdo not in _rdoq.MODES:
            raise InvalidInputError(f"rdo={rdo!r} is unknown, expected one of {_rdoq.MODES}")
        self.rdo = rdo
        self.rdo_size_bits = rdo_size_bits
        self.rdo_lambda = rdo_lambda
        self.ties_up = bool(ties_up)
        self.steps = np.asarray(steps, dtype=np.uint16)
        self.steps_zz = quantize.steps_zigzag(self.steps)
        self.bits_stored = bits_stored
        self.signed = signed
        self.offset = levelshift.level_offset(bits_stored, signed)
        self._lo, self._hi = value_range(bits_stored, signed)
        self._dtype = storage_dtype(bits_stored, signed)
        self._exact_div, self._qmul = transform.forward_multipliers(self.steps_zz)
        self._deq, self._dc_mul = transform.inverse_multipliers(self.steps_zz, exact_dc=self.ties_up)

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _cached(steps: bytes, bits_stored: int, signed: bool, ties_up: bool) -> FrameCoder:
        return FrameCoder(np.frombuffer(steps, np.uint16), bits_stored, signed, ties_up=ties_up)

    @classmethod
    def for_table(cls, steps: np.ndarray, bits_stored: int, signed: bool, *, ties_up: bool = False) -> FrameCoder:
        """A shared rounding (``rdo="none"``) coder for these steps (memoised: decoding one
        stream after another, or the frames of a rate search, build it once)."""
        return cls._cached(np.ascontiguousarray(steps, dtype=np.uint16).tobytes(), int(bits_stored), bool(signed),
                           bool(ties_up))  # fmt: skip

    # -- forward -------------------------------------------------------------------------

    @staticmethod
    def _pixels(frame: np.ndarray) -> np.ndarray:
        """The frame as the kernels take it: C-contiguous, 8/16-bit as is, else int32
        (values are within 16 bits, checked by the callers)."""
        if frame.dtype.itemsize > 2:
            return np.ascontiguousarray(frame, dtype=np.int32)
        return np.ascontiguousarray(frame, dtype=frame.dtype.newbyteorder("="))  # big-endian: native copy

    def scaled(self, frame: np.ndarray) -> np.ndarray:
        """(rows, cols) frame -> float64 (nblocks, 64) zigzag DCT coefficients / steps."""
        by, bx = transform.blocks_shape(*frame.shape)
        out = np.empty((by * bx, 64))
        return K.fdct_scaled(
            self._pixels(frame), float(self.offset), self._exact_div, self._qmul, transform.NAT_ZZ, out
        )

    def levels(self, frame: np.ndarray, *, texture_floor: float | None = None) -> np.ndarray:
        """(rows, cols) integer frame -> int32 (nblocks, 64) zigzag levels. ``texture_floor``
        (``rdo="texture"``): blocks whose mean lies below it get no energy target
        (:func:`._rdoq.texture_floor`)."""
        if self.rdo == "none":
            by, bx = transform.blocks_shape(*frame.shape)
            out = np.empty((by * bx, 64), np.int32)
            return K.fdct_levels(
                self._pixels(frame), float(self.offset), self._exact_div, self._qmul, transform.NAT_ZZ,
                quantize.ROUNDING_ZZ, out,
            )  # fmt: skip
        if self.rdo == "texture":  # fused kernel, the levels encode_frame codes
            return _rdoq.texture_frame_levels(
                self, frame, size_bits=self.rdo_size_bits, lam=self.rdo_lambda, floor=texture_floor
            )
        return _rdoq.rdo_levels(
            self.scaled(frame), self.steps_zz, mode=self.rdo, size_bits=self.rdo_size_bits, lam=self.rdo_lambda
        )

    def levels_reference(self, frame: np.ndarray) -> np.ndarray:
        """NumPy twin of :meth:`levels` with ``rdo="none"``: blockify, one GEMM, round."""
        blocks = transform.blockify(frame.astype(np.float64) - self.offset)
        return quantize.round_levels(blocks @ transform.analysis_matrix(self.steps_zz))

    def encode_frame(
        self,
        frame: np.ndarray,
        *,
        size_bits: int,
        stuff: bool = False,
        restart_interval: int = 0,
        texture_floor: float | None = None,
    ) -> EncodedFrame:
        """Entropy-coded frame with its own optimal tables; with ``rdo="none"`` one kernel call
        from pixels to coded bytes (:func:`._kernels.encode_frame`). ``texture_floor`` as for
        :meth:`levels`."""
        if self.rdo == "texture":  # fused kernel (._rdoq.encode_frame_texture)
            coded, dc, ac = _rdoq.encode_frame_texture(
                self, frame, size_bits=size_bits, stuff=stuff, restart_interval=restart_interval, lam=self.rdo_lambda,
                floor=texture_floor,
            )  # fmt: skip
            return EncodedFrame(coded, dc, ac)
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
                               self._hi, out, np.bool_(self.ties_up))  # fmt: skip

    def reconstruct_reference(self, levels: np.ndarray, rows: int, cols: int) -> np.ndarray:
        """NumPy twin of :meth:`reconstruct`: one GEMM, unblockify, unshift."""
        blocks = levels @ transform.synthesis_matrix(self.steps_zz, exact_dc=self.ties_up)
        return levelshift.unshift(transform.unblockify(blocks, rows, cols), self.bits_stored, self.signed,
                                  half_up=self.ties_up)  # fmt: skip

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
        max_dc, max_ac = entropy.max_categories(self.bits_stored)
        return self.decode_with(
            data, dc_table.decoder(size_bits=size_bits, max_category=max_dc, ac=False),
            ac_table.decoder(size_bits=size_bits, max_category=max_ac, ac=True), rows, cols, size_bits=size_bits,
            start=start, end=end, stuffed=stuffed, restart_interval=restart_interval, segment=segment, out=out,
        )  # fmt: skip

    def decode_with(
        self,
        data: bytes | memoryview | np.ndarray,
        dc_decoder: np.ndarray,
        ac_decoder: np.ndarray,
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
        """:meth:`decode_frame` with the Huffman tables' decoder tables made already
        (:meth:`.entropy.HuffmanTable.decoder`, or :func:`._kernels.jpeg_plain_header`), for
        categories up to those of :func:`.entropy.max_categories` of this coder's ``bits_stored``."""
        buf = entropy.as_byte_array(data)
        end = len(buf) if end is None else end
        if out is None:
            out = np.empty((rows, cols), self._dtype)
        max_dc, max_ac = entropy.max_categories(self.bits_stored)
        status, pos, block = K.decode_pixels(
            buf, start, end, dc_decoder, ac_decoder, size_bits, stuffed, restart_interval, max_dc, max_ac, self._deq,
            transform.NAT_ZZ, self._dc_mul, float(self.offset), self._lo, self._hi, out, np.bool_(self.ties_up),
        )  # fmt: skip
        by, bx = transform.blocks_shape(rows, cols)
        entropy.raise_for_status(status, pos, block, by * bx, segment)
        return out


def validate_pixels(pixels: Any, bits_stored: Any, signed: bool | None) -> tuple[np.ndarray, bool, bool, int]:
    """``(frames (n, rows, cols) in native byte order, signed, was 2-D, bits_stored as an int)``, or
    :class:`~medcodec.errors.InvalidInputError` saying what is wrong with the arguments."""
    if not isinstance(pixels, np.ndarray):
        raise InvalidInputError(f"pixels must be a numpy array, got {type(pixels).__name__}")
    if pixels.dtype.kind not in "iu":
        raise InvalidInputError(f"pixels must have an integer dtype, got {pixels.dtype}")
    if pixels.ndim not in (2, 3):
        raise InvalidInputError(
            f"pixels must be 2-D (rows, cols) or 3-D (frames, rows, cols), got shape {pixels.shape}"
        )
    if pixels.size == 0:
        raise InvalidInputError(f"pixels is empty (shape {pixels.shape})")
    if not pixels.dtype.isnative:  # e.g. '>i2' from a big-endian file: same values, native order
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    if (
        isinstance(bits_stored, (bool, np.bool_))
        or not isinstance(bits_stored, (int, np.integer))
        or not 1 <= bits_stored <= 16
    ):
        raise InvalidInputError(f"bits_stored={bits_stored!r} is invalid, expected an integer 1..16")
    bits_stored = int(bits_stored)  # np.uint8(12): 1 << 12 overflowed in its own type (an audit, 2026-12-03)
    if signed is not None and not isinstance(signed, (bool, np.bool_)):  # "False" was taken as True
        raise InvalidInputError(f"signed={signed!r} must be True, False or None")
    if isinstance(pixels, np.ma.MaskedArray) and np.ma.getmask(pixels) is not np.ma.nomask and pixels.mask.any():
        raise InvalidInputError(
            "pixels is a masked array with masked values: they would be coded as data (fill them, e.g. "
            "pixels.filled(0), or pass pixels.data)"
        )
    if type(pixels) is not np.ndarray:  # a subclass (np.matrix, a MaskedArray without masked values,
        # a memmap): its data as a plain array. Until 2026-12-06 the kernels got the subclass: a raw
        # numba or TypeError, or not, depending on what the process had compiled (an outside audit)
        pixels = np.asarray(pixels).view(np.ndarray)
    is_2d = pixels.ndim == 2
    frames = pixels[None] if is_2d else pixels
    lim = container.LIMITS
    f, r, c = frames.shape
    if r > lim["max_rows"] or c > lim["max_cols"] or f > lim["max_frames"] or r * c > lim["max_frame_pixels"]:
        raise InvalidInputError(f"shape {pixels.shape} exceeds the limits {lim}")
    if signed is None:
        signed = pixels.dtype.kind == "i"
    return frames, bool(signed), is_2d, bits_stored


def resolve_quality(
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
    mse_of: Callable[[FrameCoder, np.ndarray], float] | None = None,
    sample_frames: int = RATE_SAMPLE_FRAMES,
) -> float:
    """The quality that meets the single target given (quality, ratio or psnr).

    ``frame_bytes(coder, frame)`` is the exact coded size of one frame in the output
    format (entropy-coded data plus its tables); ``fixed_bytes`` the per-stream overhead;
    ``mse_of(coder, frame)`` the frame's squared error as coded (default :func:`frame_mse`, the
    coder's own levels). Sizes are estimated on ``sample_frames`` evenly spaced frames and scaled
    to all frames; a PSNR is the sample's (:func:`.pipeline.encode` checks the whole and searches
    again on every frame when it falls short).
    """
    target_ = RateTarget(quality=quality, ratio=ratio, psnr=psnr)  # one target, each in range (np scalars too)
    if target_.kind in (None, "quality"):
        return 75.0 if quality is None else float(quality)
    n = frames.shape[0]
    sample = frames[calibration_indices(n, max(1, int(sample_frames)))]
    npix = sample[0].size
    if ratio is not None:
        target = n * npix * raw_bytes_per_pixel / ratio
        if frame_bytes is None:
            frame_bytes = lambda coder, fr: -(-entropy.scan_bits(coder.levels(fr), size_bits=size_bits) // 8)  # noqa: E731
        fb = frame_bytes

        def log_excess(q: float) -> float:  # log(size / target): <= 0 when small enough
            coder = coder_for(q)
            sizes = map_frames(lambda fr: fb(coder, fr), list(sample), jobs)
            return math.log(max(fixed_bytes + sum(sizes) * n / len(sample), 1) / target)

        # false position (4-8 encodes) rather than 14 halvings: since quality 100 became a DC step
        # of 1 (2026-12-02) a ratio that quality 100 no longer meets took 16 full encodes, ~10x the
        # time (an outside look at performance, 2026-12-03); stops within 1 % of the target size
        # (near quality 100 the integer steps make the size a staircase that 0.5 % can miss)
        return search_quality(log_excess, ok_below=True, close=0.01)

    mse_fn = frame_mse if mse_of is None else mse_of

    def good(q: float) -> bool:  # good enough?
        coder = coder_for(q)
        mse = np.mean(map_frames(lambda fr: mse_fn(coder, fr), list(sample), jobs))
        return mse == 0 or 10 * math.log10(peak**2 / mse) >= float(target_.psnr or 0)

    return bisect_quality(good, want_high=False)


def frame_mse(coder: FrameCoder, frame: np.ndarray) -> float:
    rec = coder.reconstruct(coder.levels(frame), *frame.shape)
    return float(np.mean((rec.astype(np.float64) - frame) ** 2))


def frame_selection(frames: int | Sequence[int] | None, n: int) -> tuple[list[int], bool]:
    if frames is None:
        return list(range(n)), False
    if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        sel, single = [int(frames)], True
    elif isinstance(frames, (str, bytes, bytearray)):  # "12" would read as frames 1 and 2
        raise InvalidInputError(f"frames={frames!r} must be an int or a sequence of ints")
    else:
        try:
            items = list(frames)  # type: ignore[arg-type]
        except TypeError:
            raise InvalidInputError(f"frames={frames!r} must be an int or a sequence of ints") from None
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in items):
            # [True, False] read as frames 1 and 0, 1.7 as frame 1, until 2026-12-06 (an outside audit)
            raise InvalidInputError(f"frames={frames!r} must be an int or a sequence of ints")
        sel, single = [int(i) for i in items], False
    for i in sel:
        if not -n <= i < n:
            raise InvalidInputError(f"frame {i} does not exist: the stream has {n} frames")
    return [i % n for i in sel], single
