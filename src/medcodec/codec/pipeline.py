"""encode() / decode(): the codec's public entry points, a thin dispatcher.

Encoding one frame (the stages, as the NumPy reference path spells them)::

    pixels ──levelshift.shift──▶ float, centred ──transform.blockify──▶ (N, 64)
       ──@ analysis_matrix(steps)──▶ DCT / steps, zigzag order ──quantize.round_levels──▶ int32 levels
       ──entropy.encode_scan──▶ bytes (+ optimal Huffman tables)

and decoding is the exact inverse, ending in a clip to the declared range. The codec runs
them fused, one numba kernel call per frame each way (:class:`~.framecoder.FrameCoder`,
:mod:`._kernels`); the stage-by-stage path stays as the reference twin of the tests.
Frames are independent (own tables, DC prediction restarting at 0), so they are coded in
parallel threads (``jobs``, default all cores): the kernels release the GIL, and a series
streams through a bounded window of frames (:func:`~.mdc.encode_to`).

Who does what: this module validates and dispatches; :mod:`.framecoder` holds the frame coder
and the rate control, :mod:`.mdc` the ``.mdc`` driver, :mod:`.jpeg` the JPEG encoder/decoder
and :mod:`.stream` the T.81 syntax. Imports go one way: pipeline -> mdc, jpeg -> framecoder.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CorruptStreamError, ImageTooLargeError, InvalidInputError, UnsupportedFeatureError
from ..metrics import compression_ratio
from ..ratecontrol import (
    PSNR_MISS_DB,
    RATIO_MISS,
    RateTarget,
    calibration_indices,
    check_psnr_reached,
    check_ratio_reached,
)
from ..spec import PixelSpec
from . import container, jpeg, levelshift, mdc2
from .framecoder import EFFORTS, RATE_SAMPLE_FRAMES, EncodedFrame, FrameCoder, default_jobs, validate_pixels
from .mdc import MDC_SIZE_BITS, StreamSummary, decode_mdc, encode_mdc_to, encode_to
from .quantize import MDC_DEFAULT_TABLE, is_default_table

__all__ = ["encode", "encode_to", "decode", "read_header", "is_codestream", "FORMATS", "EFFORTS", "EncodedFrame",
           "FrameCoder", "StreamSummary", "RATE_SAMPLE_FRAMES", "MDC_SIZE_BITS", "lossless_may_fit",
           "lossless_estimator"]  # fmt: skip

FORMATS = ("mdc", "jpeg")


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
    max_error: int | None = None,
    entropy: str | None = None,
    range_bits: int | None = None,
    padding: tuple[int, int] | None = None,
    intra: bool | None = None,
    compact: bool | None = None,
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
        1..100 (default 75); every 12.5 points halve the quantization steps; from 95 to 100
        they fall faster, to a DC step of 1.
    format
        ``"mdc"`` (the container, any depth) or ``"jpeg"`` (ISO 10918-1, 8 or 12 bits).
    ratio, psnr
        Rate targets instead of ``quality``: compression ratio against the raw size
        (1 byte per pixel up to 8 bits, else 2), or PSNR in dB with peak 2**bits_stored-1, of
        the whole stack (one MSE over every frame): the search measures 8 evenly spaced frames,
        the result is decoded and measured whole, and searched again on every frame when short.
        A target the codec cannot reach is a :class:`~medcodec.errors.RateTargetWarning` naming
        what it reached: a ratio short by more than 15 % (:data:`~medcodec.ratecontrol.RATIO_MISS`;
        the searches land within 3 % where the knob's range allows, and the quality-1 end of a
        tiny or noise-like image may stop between the two unwarned), a PSNR short by more than
        0.01 dB. ``.mdc``: the PSNR is measured after the decoder's filters; the lossless stream
        (``max_error=0``) is returned when it meets a ratio, or reaches a PSNR, in no more bytes
        than the lossy result, and for a PSNR no lossy stream reaches (options that choose the
        coding, ``entropy``, ``intra``, ``table``, ``range_bits``, ``padding``, keep a DCT stream).
    spec
        Rescale, window and photometric interpretation to record in the header.
    table
        Quantization table shape: ``"near-flat"``, ``"medical"``, ``"flat"``, ``"annex-k"``, ``"ct"``,
        ``"mr"``, ``"radiograph"`` or 64 weights; None: ``"near-flat"`` for ``.mdc``
        (:data:`.quantize.MDC_DEFAULT_TABLE`; ``"medical"`` until 2026-12-04), and for JPEG the
        table trained for ``spec.extra["modality"]`` (:mod:`.tables_trained`).
    restart_interval
        JPEG only: blocks per restart interval (0 = none).
    jobs
        Threads for multi-frame input (default: all cores).
    padding
        ``.mdc`` only: ``(low, high)`` stored values that are padding (DICOM Pixel Padding Value
        and Range Limit); the decoder restores every padding voxel exactly and keeps every
        other voxel out of that range (docs/format.md, ``meta`` and FRAM padding mask), so the
        encoder codes those voxels as a smooth fill of their surroundings (``codec/padfill.py``).
        Without it, the default coder declares the image's lowest value padding by itself when
        that value fills a region with a large step at its edge (a CT's value outside the field
        of view) and a trial on a frame shows fewer bytes and less error
        (``mdc.AUTO_PADDING``; ``medcodec info`` prints the padding a stream declares).
    ancillary
        ``.mdc`` only: extra segments to carry, ``{type: payload}`` with 4-letter types
        starting lower-case (e.g. ``"dcmh"``, the DICOM headers written by
        :mod:`medcodec.dicom.embed`); decoders that do not know them skip them.
    effort
        ``"fast"`` or ``"best"`` (:data:`EFFORTS`); ``None`` takes the format's default.
        ``.mdc``: ``"fast"`` (default) rounds every coefficient, one fused pass per frame;
        ``"best"`` chooses the levels by trellis (a few % smaller, ~4x slower to encode).
        ``"jpeg"``: ``"best"`` (default) is the texture-aware quantizer, ``"fast"`` thresholding (see
        :func:`.jpeg.encode_jpeg`). Decoding speed does not depend on it.
    entropy
        ``.mdc`` DCT streams: ``"arith"`` (default; the levels range-coded with contexts, 8-18%
        smaller than Huffman on CT/MR, with reconstruction offsets, deblocking and a restoration
        filter; format 2.6: the compact layout and intra frames (mode model 2, the DCT or a DST-VII
        pair per block, 16x16 blocks; 2.1 with ``intra=False, compact=False``, 2.3 with ``padding``
        as well); per thread near 1 bpp the default encodes at ~0.04-0.06x and decodes at
        ~0.14-0.21x libjpeg-turbo's speed, 2.1 at ~0.5-0.6x / 0.26-0.36x: README, "The .mdc DCT
        coder"), ``"arith-multi"`` (the same), ``"arith-binary"`` (format 2.0, the binary coder)
        or ``"huffman"`` (format 1.0, T.81-style Huffman: much faster, 21-90 % larger at the same
        PSNR than 2.6).
    max_error
        ``.mdc`` only, instead of ``quality``/``ratio``/``psnr``: a guaranteed bound on every
        sample's absolute error, in stored units (``0``: bit-exact lossless), checked by
        decoding inside the encoder. Uses the v2 predictive mode (:mod:`.mdc2`): format 2.10 (the
        compact layout; 2.9 with ``compact=False``), ``0..255``.
    range_bits
        DCT formats: bits the content spans, which scale the steps. ``None``: ``format="jpeg"``
        uses ``bits_stored``, ``.mdc`` the content's span but at least ``min(bits_stored, 12)``
        (format 1.0: the content's span), so that one quality gives the same steps on every
        slice of a series coded one image at a time (:func:`.levelshift.default_range_bits`).
        Series writers pass one value per series (steps then do not vary slice to slice). Not with ``max_error``.
    intra
        ``.mdc`` DCT streams of the multi-symbol coder: every 8x8 block predicted from its decoded
        neighbours (16 modes, :mod:`.intra`, mode model 2), format 2.11. ``None`` (default): on with
        that coder (the default one), off otherwise; ``False``: format 2.1 (2.4 in the compact layout).
        Works with ``quality``, ``ratio`` and ``psnr`` (the search measures the intra coder) and both
        efforts (``"best"`` tries more modes per block). -6 % bytes on average against 2.1 at the same
        PSNR (-14 % on head CT), ~2.8x the encode and ~1.3-1.4x the decode time (docs/benchmarks-v2.md).
    compact
        ``.mdc`` DCT streams of the multi-symbol coder: the compact layout of format 2.4 (a short
        HEAD, delta-coded steps, varint frame fields: ~200 bytes less per stream, docs/format.md
        §16). ``None`` (default): on with that coder; ``False``: the long layout (2.1-2.4).
        ``max_error`` streams likewise (format 2.10, §20: ~105 bytes less per stream; ``False``:
        the long layout of 2.9).

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
    RateTarget(quality=quality, ratio=ratio, psnr=psnr)  # one target: a second would silently be ignored
    if padding is not None and format != "mdc":
        raise InvalidInputError("padding applies to format='mdc' only")
    frames, signed_, is_2d, bits_stored = validate_pixels(pixels, bits_stored, signed)
    if spec is not None and not isinstance(spec, PixelSpec):
        raise InvalidInputError(f"spec must be a medcodec.PixelSpec or None, not {type(spec).__name__}")
    if spec is not None and (spec.bits_stored != bits_stored or spec.signed != signed_):
        raise InvalidInputError(
            f"spec says {spec.bits_stored} bits signed={spec.signed}, arguments say {bits_stored} bits signed={signed_}"
        )
    if effort is not None and effort not in EFFORTS:
        raise InvalidInputError(f"effort={effort!r} is unknown, expected one of {EFFORTS}")
    vmin, vmax = levelshift.check_range(frames, bits_stored, signed_)
    jobs_ = default_jobs(jobs)
    if (max_error is not None or entropy is not None) and format != "mdc":
        raise InvalidInputError("max_error and entropy apply to format='mdc' only")
    if ancillary is not None and not isinstance(ancillary, dict):
        raise InvalidInputError(f"ancillary must be a dict (4-character tag: bytes), not {type(ancillary).__name__}")
    if intra is not None and intra is not True and intra is not False:
        raise InvalidInputError(f"intra={intra!r} must be True, False or None")
    if compact is not None and compact is not True and compact is not False:
        raise InvalidInputError(f"compact={compact!r} must be True, False or None")
    if format == "jpeg" and (ancillary or intra or compact):  # were dropped without a word (an audit, 2026-12-03)
        given = [name for name, v in (("ancillary", ancillary), ("intra", intra), ("compact", compact)) if v]
        raise InvalidInputError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to format='mdc' only")
    if format == "jpeg":
        return jpeg.encode_jpeg(
            frames, bits_stored=bits_stored, signed=signed_, quality=quality, ratio=ratio, psnr=psnr,
            table=table, restart_interval=restart_interval, jobs=jobs_, effort=effort or "best",
            modality=spec.extra.get("modality") if spec is not None else None, range_bits=range_bits,
            value_range=(vmin, vmax),
        )  # fmt: skip
    if restart_interval:
        raise InvalidInputError("restart_interval applies to format='jpeg' only")
    if range_bits is not None and max_error is not None:
        raise InvalidInputError("range_bits scales DCT steps: it excludes max_error")
    buf = io.BytesIO()
    if padding is not None and max_error is not None and max_error != 0:
        raise UnsupportedFeatureError(
            "padding with max_error > 0: predictive frames carry no padding mask (max_error=0 keeps padding "
            "exactly; DCT streams restore it)"
        )
    if intra and max_error is not None:
        raise InvalidInputError("intra=True applies to format='mdc' DCT streams only (not max_error)")
    if max_error is not None:
        named = (quality, ratio, psnr, entropy) != (None,) * 4 or effort is not None
        if named or not is_default_table(table):
            raise InvalidInputError("max_error excludes quality, ratio, psnr, effort, entropy and table")
        mdc2.encode_predictive_to(
            buf, frames, n_frames=frames.shape[0], bits_stored=bits_stored, signed=signed_, max_error=max_error,
            spec=spec, jobs=jobs_, ancillary=ancillary, ndim=2 if is_2d else 3, frames_checked=True, compact=compact,
        )  # fmt: skip
        return buf.getvalue()

    def dct_stream(sample_frames: int, *, judge_ratio: bool = True) -> tuple[bytes, float]:
        """The stream, and its pixel data's compression ratio."""
        buf = io.BytesIO()
        summary = encode_mdc_to(
            buf, list(frames), n_frames=frames.shape[0], bits_stored=bits_stored, signed=signed_, quality=quality,
            ratio=ratio, psnr=psnr, spec=spec, table=MDC_DEFAULT_TABLE if table is None else table, jobs=jobs_,
            ancillary=ancillary, value_range=(vmin, vmax),
            sample=frames, ndim=2 if is_2d else 3, effort=effort or "fast", frames_checked=True, entropy=entropy,
            padding=padding, range_bits=range_bits, intra=intra, compact=compact, rate_sample_frames=sample_frames,
            judge_ratio=judge_ratio,
        )  # fmt: skip
        return buf.getvalue(), compression_ratio(summary.pixel_bytes, frames.size, bits_stored)

    every_frame = frames.shape[0] > RATE_SAMPLE_FRAMES
    out, reached_ratio = dct_stream(RATE_SAMPLE_FRAMES, judge_ratio=False)  # a ratio is judged below
    if ratio is not None and every_frame and reached_ratio < float(ratio) * (1 - RATIO_MISS):
        # the search measured a sample of the frames, as for psnr below: short of the target on the
        # whole stack, searched again on every frame (until 2026-12-03 a stack whose sampled frames
        # were smoother than the rest missed 4x, and the warning blamed the codec's range; an outside audit)
        out, reached_ratio = dct_stream(frames.shape[0], judge_ratio=False)
    reached = math.inf
    if psnr is not None:  # the search measured a sample of the frames: the whole stack is decoded and
        # measured; short of the target, searched again on every frame
        reached = _psnr(frames, decode_mdc(out, None, jobs_), bits_stored)
        if reached < float(psnr) - PSNR_MISS_DB and every_frame:
            out, _ = dct_stream(frames.shape[0])
            reached = _psnr(frames, decode_mdc(out, None, jobs_), bits_stored)
    default_coding = (entropy, intra, range_bits, padding) == (None,) * 4 and is_default_table(table)
    if (ratio is not None or psnr is not None) and default_coding:
        # psnr: the smallest stream that reaches it; lossless is the only one when the lossy search fell short
        limit = len(out) if reached >= float(psnr or 0) - PSNR_MISS_DB else 1 << 62
        if ratio is not None:  # ratio: the best quality within its size; lossless is the best there is
            raw = frames.size * (1 if bits_stored <= 8 else 2)
            limit = max(limit, int(raw / float(ratio) + len(out) - raw / reached_ratio))  # + the same overhead
        exact = _lossless_within(
            frames, limit,
            lambda fr, ndim: _exact_stream(fr, bits_stored, signed_, spec, jobs_, ancillary, ndim, compact),
            2 if is_2d else 3,
        )  # fmt: skip
        if exact is not None:  # it reaches any PSNR; a ratio it may still miss when the lossy stream missed it
            if ratio is not None:
                raw = frames.size * (1 if bits_stored <= 8 else 2)
                overhead = len(out) - raw / reached_ratio  # the same container and ancillary bytes in both
                check_ratio_reached(ratio, raw / max(len(exact) - overhead, 1.0), what="the lossless stream")
            return exact
    what = f"the {frames.shape[0]}-frame stream" if every_frame else "the stream"
    check_ratio_reached(ratio, reached_ratio, what=what)
    check_psnr_reached(psnr, reached, what=what)
    return out


def _exact_stream(frames: np.ndarray, bits_stored: int, signed: bool, spec: PixelSpec | None, jobs: int,
                  ancillary: dict[str, bytes] | None, ndim: int, compact: bool | None) -> bytes:  # fmt: skip
    """The lossless (``max_error=0``) stream of ``frames``."""
    buf = io.BytesIO()
    mdc2.encode_predictive_to(
        buf, frames, n_frames=frames.shape[0], bits_stored=bits_stored, signed=signed, max_error=0, spec=spec,
        jobs=jobs, ancillary=ancillary, ndim=ndim, frames_checked=True, compact=compact,
    )  # fmt: skip
    return buf.getvalue()


def _lossless_within(frames: np.ndarray, limit: int, exact: Any, ndim: int) -> bytes | None:
    """The lossless stream when it is no larger than ``limit`` bytes, else None: for a ``psnr``
    target the lossy stream's size (lossless then reaches it too, in fewer bytes), or no limit when
    the lossy search fell short (lossless is then the only stream that reaches it); for a ``ratio``
    target the larger of the lossy size and the target's (the best quality that meets it is no error).

    Until 2026-12-03 a rate target never looked at the codec's own lossless mode: an image with much
    air (a 16-bit CT whose values span 0..1196) given ``ratio=8`` came back lossy at 8.75:1, max error
    2, where ``max_error=0`` gives it bit-exact at 14.1:1 (an outside audit). Estimated first
    (:func:`lossless_may_fit`), before the whole lossless encode (~110 ms a 512x512 frame)."""
    n = frames.shape[0]
    sample = frames[calibration_indices(n, RATE_SAMPLE_FRAMES)] if n > RATE_SAMPLE_FRAMES else None
    if not lossless_may_fit(frames[n // 2], sample, n, limit, exact):
        return None
    stream: bytes = exact(frames, ndim)
    return stream if len(stream) <= limit else None


def lossless_may_fit(middle: np.ndarray, sample: np.ndarray | None, n_frames: int, limit: int, exact: Any) -> bool:
    """Whether the lossless stream of ``n_frames`` frames like ``middle`` may be within ``limit``
    bytes, before coding them all: first a quarter of ``middle`` (:func:`_strips`; over ``limit``
    by 25 %: no, ~25 ms for a 512x512 frame instead of ~110), then the frames of ``sample`` when
    given (a few evenly spaced frames; over by 5 %: no). ``exact(stack, ndim)`` gives the lossless
    stream of a stack. Shared by :func:`encode` and the streaming series writer
    (:func:`medcodec.dicom.encode_series_to_mdc`)."""
    strips = _strips(middle)  # a quarter of the frame, in four bands of rows
    sampled_rows = strips.shape[0] * strips.shape[1]
    if n_frames > 1 or sampled_rows < middle.shape[0]:  # (one small frame: the strips are it, coded twice)
        if len(exact(strips, 3)) * n_frames * middle.shape[0] / sampled_rows > limit * 1.25:
            return False  # far off: the common case
    if sample is not None and len(exact(sample, 3)) * n_frames / sample.shape[0] > limit * 1.05:
        return False
    return True


def lossless_estimator(bits_stored: int, signed: bool, spec: PixelSpec | None, jobs: int) -> Any:
    """``exact(stack, ndim)`` for :func:`lossless_may_fit`: the lossless stream of a stack in memory."""
    return lambda fr, ndim: _exact_stream(fr, bits_stored, signed, spec, jobs, None, ndim, None)


def _strips(frame: np.ndarray) -> np.ndarray:
    """Four evenly spaced bands of rows of ``frame``, a sixteenth of its height each, as a
    (4, h, cols) stack (the whole frame as one when it has fewer than 128 rows): a quarter of the
    frame, spread over it, for a lossless size estimate (each band codes its first row without
    the row above: the estimate errs a little high)."""
    rows = frame.shape[0]
    if rows < 128:
        return frame[None]
    h = rows // 16
    starts = [int((i + 0.5) * rows / 4 - h / 2) for i in range(4)]
    return np.stack([frame[r : r + h] for r in starts])


def _psnr(frames: np.ndarray, decoded: np.ndarray, bits_stored: int) -> float:
    """PSNR of the whole stack (one MSE over every frame), peak 2**bits_stored - 1."""
    from ..metrics import psnr

    return psnr(frames, decoded.reshape(frames.shape), bits_stored=bits_stored)


def decode(
    data: bytes | bytearray | memoryview,
    /,
    *,
    frames: int | Sequence[int] | None = None,
    jobs: int | None = None,
    strict: bool = False,
    max_pixels: int | None = None,
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
    strict
        Refuse JPEG streams with a known harmless deviation (``codec.stream.KNOWN_DEVIATIONS``,
        e.g. Se=0 in a sequential scan) instead of decoding them with a
        :class:`~medcodec.errors.NonConformantStreamWarning`.
    max_pixels
        Refuse, before anything is allocated, when the frames asked for hold more pixels than
        this (:class:`~medcodec.errors.ImageTooLargeError`): for a service decoding streams it
        did not make. A stream's size does not bound its image: an adaptive coder codes a flat
        image in almost nothing (a constant 16384 x 16384 image is a 9 KB default ``.mdc``,
        512 MB decoded), and the format's limits allow 2^32 pixels (``docs/format.md`` §2).
        ``None``: those limits only.

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
    ImageTooLargeError
        More pixels than ``max_pixels``.
    """
    buf = _as_buffer(data)
    jobs_ = default_jobs(jobs)
    if not isinstance(strict, (bool, np.bool_)):  # "no" turned strict mode on
        raise InvalidInputError(f"strict={strict!r} must be True or False")
    if max_pixels is not None:
        if frames is not None and not isinstance(frames, (int, np.integer)) and not hasattr(frames, "__len__"):
            frames = list(frames)  # a generator: counted as the decoder will take it (it was not, 2026-12-06)
        _check_max_pixels(buf, frames, max_pixels)
    if container.is_mdc(buf):
        return decode_mdc(buf, frames, jobs_)
    if buf[:2] == b"\xff\xd8":
        return jpeg.decode_jpeg(buf, frames=frames, strict=strict)
    raise CorruptStreamError("not a medcodec (.mdc) or JPEG stream: unknown signature", offset=0, segment="signature")


def _check_max_pixels(buf: bytes, frames: int | Sequence[int] | None, max_pixels: Any) -> None:
    """:func:`decode`'s ``max_pixels``, from the header alone (no entropy decoding)."""
    if isinstance(max_pixels, (bool, np.bool_)) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise InvalidInputError(f"max_pixels={max_pixels!r} must be a positive integer or None")
    header = read_header(buf)
    if frames is None:
        count = header.frames
    elif isinstance(frames, (int, np.integer)):
        count = 1
    else:  # a sequence (decode made a list of any other iterable)
        count = len(frames)
    pixels = count * header.rows * header.cols
    if pixels > max_pixels:
        raise ImageTooLargeError(
            f"{count} frame(s) of {header.rows} x {header.cols} = {pixels} pixels, more than max_pixels={max_pixels}: "
            "not decoded"
        )


def _as_buffer(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data) if not isinstance(data, bytes) else data
    raise InvalidInputError(f"data must be bytes-like, got {type(data).__name__}")


def read_header(data: bytes | bytearray | memoryview, /) -> container.MdcHeader:
    """Header of a ``.mdc`` or JPEG stream without entropy decoding (segments with offsets)."""
    buf = _as_buffer(data)
    if container.is_mdc(buf):
        return container.parse_container(buf)[0]
    if buf[:2] == b"\xff\xd8":
        return jpeg.read_jpeg_header(buf)
    raise CorruptStreamError("not a medcodec (.mdc) or JPEG stream: unknown signature", offset=0, segment="signature")


def is_codestream(data: bytes | bytearray | memoryview, /) -> bool:
    """True if ``data`` is bytes-like and starts like a stream :func:`decode` reads (``.mdc`` or JPEG
    SOI); False for anything else (a str, None, a numpy array: :func:`decode` refuses those; until
    2026-12-03 a str was a raw TypeError and a uint8 array True; an outside audit)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return False
    head = bytes(data[:8])
    return head == container.SIGNATURE or head[:2] == b"\xff\xd8"


# Names this module had before the frame coder and the .mdc driver moved out (kept for callers).
_default_jobs = default_jobs
_validate_pixels = validate_pixels
_encode_to = encode_mdc_to
_decode_mdc = decode_mdc
