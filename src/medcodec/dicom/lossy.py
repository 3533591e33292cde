"""Lossy DICOM writing: a series in, a series out, under a standard compressed transfer syntax.

Flow (one series, bounded memory: one image per worker, plus a few calibration frames)::

    Series ──series_stats (one streamed pass)──▶ SeriesStats (min, max, tissue range, padding count)
           ──plan_series_mapping─────────────▶ SeriesMapping (ONE per series: offset, scale, clip)
           ──rate control on calibration frames▶ one knob value for the series
           ──per image: map → encode frames → derive_encapsulated → verify (pydicom decode) → write
           ▶ [FileResult(path, ratio, psnr, max_error, max_error_hu, n_clipped), ...]

Transfer syntaxes (the registry :data:`SYNTAXES`, the one place they are described)
===================================================================================

=========  ==========================  ===================  ================  =============================
name       UID                         (0028,2114) method   encoder           encoded samples
=========  ==========================  ===================  ================  =============================
jpeg       1.2.840.10008.1.2.4.50 /51  ISO_10918_1          medcodec (ours)   8-bit (.50) or 12-bit (.51),
                                                                              unsigned: T.81 has no sign
j2k        1.2.840.10008.1.2.4.91      ISO_15444_1          OpenJPEG via      the source's own bits and
                                                            imagecodecs       sign (J2K Ssiz carries both)
htj2k      1.2.840.10008.1.2.4.203     ISO_15444_15         OpenJPH via       the source's sign; 8 or 16
                                                            imagecodecs       bits (OpenJPH codes the
                                                                              container's depth)
jpegls     1.2.840.10008.1.2.4.81      ISO_14495_1          CharLS via        unsigned (JPEG-LS has no
                                                            imagecodecs       sign), 8 or 16 bits (CharLS
                                                                              codes the container's depth)
=========  ==========================  ===================  ================  =============================

PS3.5 §8.2 requires Bits Stored, High Bit and Pixel Representation to describe the
codestream, so the written file declares the encoded depth and sign (e.g. Bits Stored 16
for HTJ2K and JPEG-LS of 12-bit CT); the values, and the HU through the rescale, are those
of the source. .203 (HTJ2K, lossy allowed) is used, not .201/.202 (lossless only).
JPEG-LS streams are written without CharLS's SPIFF header (an optional APP8 that DICOM
decoders do not need). How each library is called (arguments, raw J2K codestreams, SPIFF
stripping, container depth, availability) lives in :mod:`medcodec.external`, shared with the
evaluation peers; this module adds the DICOM side (UIDs, method terms, mapping, rate targets).

The series mapping (one per series, never per image)
====================================================

A codec that cannot hold the source samples (12-bit JPEG from signed or 13-16-bit CT;
JPEG-LS from signed data) gets them through one integer mapping computed once from the
whole series (:func:`plan_series_mapping`)::

    stored' = round((clip(stored, clip_low, clip_high) - offset) / scale)
    slope'  = slope * scale,   intercept' = intercept + offset * slope

so ``stored' * slope' + intercept' == stored * slope + intercept`` for every voxel that is
not clipped, exactly when ``scale == 1``. The rule, first that fits the target range:

1. **identity** when the series min..max already fit (12-bit unsigned CT to JPEG 12-bit);
2. **offset** when the series range fits once shifted (signed CT -1024..3071 HU: 4096 values);
3. **clip padding, then offset** (CT only, Modality CT or Rescale Type HU): voxels below
   -1024 HU (:data:`HU_FLOOR`) are not tissue (air is -1000 HU; scanners write -2048,
   -3024 or -2000 outside the reconstruction circle), so they are clipped to the lowest
   tissue value of the series, counted and reported, and the rest is shifted;
4. **scale**, the smallest integer that fits what remains (e.g. 2 for metal up to 7000 HU,
   or for 16-bit MR into 12 bits); error from the mapping is at most ``scale // 2``.

A mapping per image would give every slice its own rescale and make a series flicker in
brightness after a lossy round trip through viewers that cache one rescale: never done.
Pixel Padding Value follows the mapping, or is removed when the padding was clipped.

Rate control (``quality`` | ``ratio`` | ``psnr``, one of them)
==============================================================

Each codec has one knob: medcodec JPEG quality 1-100; OpenJPEG's fixed-quality target PSNR
(dB, peak ``2**bits - 1``); OpenJPH's irreversible quantisation step (in stored units);
JPEG-LS NEAR (the maximum absolute error).

* ``quality`` (default 75) is the JPEG quality for ``jpeg``; for the others it sets a
  quantisation step ``Δ(q) = 2**((100 - q) / 12.5) * 2**(B - 12)`` stored units (``B`` =
  source Bits Stored; halved every 12.5 points, like the JPEG tables): HTJ2K uses Δ as its
  step, JPEG-LS ``NEAR = round((Δ - 1) / 2)``, JPEG 2000 the PSNR of a uniform quantiser of
  step Δ, ``20 log10((2**B - 1) * sqrt(12) / Δ)``. Qualities are therefore not comparable
  across syntaxes: compare with ``ratio`` or ``psnr``.
* ``ratio``: one knob value for the series, found on :data:`CALIBRATION_FRAMES` evenly
  spaced frames by :func:`medcodec.evaluate.ratecontrol.find_knob_for_rate`, so that the
  series (uncompressed size / fragment bytes) reaches the target; files vary around it.
* ``psnr``: the smallest knob whose worst calibration frame reaches the target; a file that
  still falls short is searched again on its own, so every file reaches it.

One knob per series keeps the noise level even from slice to slice. Ratios are against the
uncompressed source (Bits Allocated / 8 bytes per pixel).

What is reported (:class:`FileResult`), measured by decoding the written bytes with pydicom
(pylibjpeg / Pillow plugins) and undoing the mapping: ratio, PSNR (peak ``2**B - 1`` of the
ORIGINAL Bits Stored), maximum absolute error in original stored units and in output units
(HU for CT), all over the voxels the mapping did not clip; and the clipped count.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.uid import generate_uid

from .._parallel import imap_ordered, map_ordered
from ..errors import CodecError, DicomError, InvalidInputError, UnsupportedFeatureError, UnsupportedImageError
from ..ratecontrol import CALIBRATION_FRAMES, Knob, calibration_indices, find_knob_for_quality, find_knob_for_rate
from ..ratecontrol import masked_psnr as _psnr
from ..registry import TRANSFER_SYNTAXES, Backend, TransferSyntax
from ..fileio import atomic_write, check_output_path, safe_name
from ..spec import PixelSpec, storage_dtype, value_range
from .io import DicomImage, Series
from .write import derive_encapsulated, encode_file

__all__ = [
    "HU_FLOOR",
    "CALIBRATION_FRAMES",
    "SeriesStats",
    "SeriesMapping",
    "LossySyntax",
    "SYNTAXES",
    "FileResult",
    "get_syntax",
    "series_stats",
    "plan_series_mapping",
    "encode_series_to_dicom",
]

#: Lowest HU of real tissue: below it is padding outside the scan field (air is -1000 HU).
HU_FLOOR = -1024.0


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class SeriesStats:
    """Value statistics of a whole series, gathered one frame at a time.

    Parameters
    ----------
    spec
        The series' :class:`~medcodec.spec.PixelSpec` (first image's rescale).
    n_images, n_frames, n_voxels
        What was scanned.
    min, max
        Stored value range of the series.
    is_ct
        Modality CT or Rescale Type HU: values below :data:`HU_FLOOR` may be clipped.
    tissue_min, tissue_max
        Stored range of the voxels at or above :data:`HU_FLOOR` (``None`` when not CT or none).
    n_below_floor
        Voxels below :data:`HU_FLOOR` (CT only; 0 otherwise).
    """

    spec: PixelSpec
    n_images: int
    n_frames: int
    n_voxels: int
    min: int
    max: int
    is_ct: bool
    tissue_min: int | None = None
    tissue_max: int | None = None
    n_below_floor: int = 0


class _StatsBuilder:
    def __init__(self, spec: PixelSpec):
        self.spec = spec
        self.is_ct = spec.extra.get("modality") == "CT" or spec.rescale_type.upper() == "HU"
        self.images = self.frames = self.voxels = self.below = 0
        self.lo = self.hi = None  # type: int | None
        self.tlo = self.thi = None  # type: int | None

    def add(self, frame: NDArray[np.integer], spec: PixelSpec) -> None:
        self.frames += 1
        self.voxels += frame.size
        lo, hi = int(frame.min()), int(frame.max())
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        if not self.is_ct or spec.rescale_slope <= 0:
            return
        floor = _stored_floor(spec)
        tissue = frame[frame >= floor]
        self.below += frame.size - tissue.size
        if tissue.size:
            tlo, thi = int(tissue.min()), int(tissue.max())
            self.tlo = tlo if self.tlo is None else min(self.tlo, tlo)
            self.thi = thi if self.thi is None else max(self.thi, thi)

    def build(self) -> SeriesStats:
        if self.lo is None or self.hi is None:
            raise DicomError("no frame of the series could be decoded")
        return SeriesStats(
            spec=self.spec, n_images=self.images, n_frames=self.frames, n_voxels=self.voxels, min=self.lo,
            max=self.hi, is_ct=self.is_ct, tissue_min=self.tlo, tissue_max=self.thi, n_below_floor=self.below,
        )  # fmt: skip


def _stored_floor(spec: PixelSpec) -> int:
    """Smallest stored value whose output value is >= HU_FLOOR (slope > 0)."""
    return math.ceil((HU_FLOOR - spec.rescale_intercept) / spec.rescale_slope - 1e-9)


def series_stats(series: Series) -> SeriesStats:
    """Scan a series once, one frame in memory at a time, for :func:`plan_series_mapping`.

    Raises
    ------
    DicomError
        An image cannot be decoded.
    """
    return _scan(series, calibration=0)[0]


def _scan(
    series: Series, *, calibration: int, failures: list[tuple[str, Exception]] | None = None
) -> tuple[SeriesStats, list[tuple[NDArray[np.integer], PixelSpec]], list[DicomImage]]:
    """Statistics, up to ``calibration`` evenly spaced (frame, spec) pairs, and the images that decoded."""
    builder = _StatsBuilder(series.spec)
    wanted = set(calibration_indices(series.n_frames, calibration)) if calibration else set()
    samples: list[tuple[NDArray[np.integer], PixelSpec]] = []
    good: list[DicomImage] = []
    index = 0
    for image in series.images:
        n = image.shape[0]
        try:
            kept = []
            for k, frame in enumerate(image.iter_frames()):
                builder.add(frame, image.spec)
                if index + k in wanted:
                    kept.append((np.array(frame), image.spec))
        except DicomError as exc:
            if failures is None:
                raise
            failures.append((exc.path or image.path, exc))
        else:
            builder.images += 1
            samples.extend(kept)
            good.append(image)
        index += n
    return builder.build(), samples, good


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class SeriesMapping:
    """One integer mapping of stored values for a whole series (see the module docstring).

    ``stored' = round((clip(stored, clip_low, clip_high) - offset) / scale)``; the inverse is
    ``stored' * scale + offset``.

    Parameters
    ----------
    offset, scale
        Source stored value represented by encoded 0, and source units per encoded unit (>= 1).
    bits_stored, signed
        The encoded samples (what the written file declares).
    clip_low, clip_high
        Source stored values outside this range are clipped (counted by :meth:`map`).
    source_bits_stored, source_signed
        The source samples.
    rule
        Which rule of the module docstring chose it: ``"identity"``, ``"offset"``,
        ``"clip+offset"``, ``"scale"`` or ``"clip+scale"``.
    """

    offset: int
    scale: int
    bits_stored: int
    signed: bool
    clip_low: int
    clip_high: int
    source_bits_stored: int
    source_signed: bool
    rule: str = "identity"

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise InvalidInputError(f"scale={self.scale} must be >= 1")
        lo_t, hi_t = value_range(self.bits_stored, self.signed)
        lo_s, hi_s = value_range(self.source_bits_stored, self.source_signed)
        if self.clip_low > self.clip_high:
            raise InvalidInputError(f"clip range {self.clip_low}..{self.clip_high} is empty")
        for v in (max(self.clip_low, lo_s), min(self.clip_high, hi_s)):
            if not lo_t <= self._forward(v) <= hi_t:
                raise InvalidInputError(
                    f"mapping offset={self.offset} scale={self.scale} sends {v} outside the encoded range {lo_t}..{hi_t}"
                )

    def _forward(self, v: int) -> int:
        return (v - self.offset + self.scale // 2) // self.scale

    @property
    def is_identity(self) -> bool:
        """Stored values are kept as they are (only the declared depth/sign may change)."""
        return self.offset == 0 and self.scale == 1 and self.rule == "identity"

    def map(self, frame: NDArray[np.integer]) -> tuple[NDArray[np.integer], int]:
        """Source stored values -> encoded values, and how many voxels were clipped.

        >>> m = SeriesMapping(offset=-1000, scale=1, bits_stored=12, signed=False, clip_low=-1000,
        ...                   clip_high=3095, source_bits_stored=16, source_signed=True, rule="clip+offset")
        >>> out, clipped = m.map(np.array([[-2000, -1000, 0, 3095]], dtype=np.int16))
        >>> out.tolist(), clipped
        ([[0, 0, 1000, 4095]], 1)
        """
        a = np.asarray(frame).astype(np.int32)
        clipped = int(np.count_nonzero(a < self.clip_low)) + int(np.count_nonzero(a > self.clip_high))
        np.clip(a, self.clip_low, self.clip_high, out=a)
        a -= self.offset
        if self.scale > 1:
            a += self.scale // 2
            a //= self.scale
        lo_t, hi_t = value_range(self.bits_stored, self.signed)
        np.clip(a, lo_t, hi_t, out=a)
        return a.astype(storage_dtype(self.bits_stored, self.signed)), clipped

    def unmap(self, encoded: NDArray[np.integer]) -> NDArray[np.int32]:
        """Encoded (decoded) values -> source stored units, as a viewer computes them (int32, not clipped)."""
        a = np.asarray(encoded).astype(np.int32)
        if self.scale > 1:
            a *= self.scale
        a += self.offset
        return a

    def kept(self, frame: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Mask of the voxels the mapping does not clip."""
        return (frame >= self.clip_low) & (frame <= self.clip_high)

    def map_value(self, value: int) -> int | None:
        """One source stored value mapped, or ``None`` when it would be clipped."""
        if not self.clip_low <= value <= self.clip_high:
            return None
        return self._forward(int(value))

    def rescale(self, slope: float, intercept: float) -> tuple[float, float]:
        """Rescale Slope/Intercept for the encoded values that give the source's output units."""
        return slope * self.scale, intercept + self.offset * slope

    def spec_for(self, source: PixelSpec) -> PixelSpec:
        """The spec of the encoded values: target depth and sign, rescale keeping the HU."""
        slope, intercept = self.rescale(source.rescale_slope, source.rescale_intercept)
        return source.replace(
            bits_stored=self.bits_stored, signed=self.signed, rescale_slope=slope, rescale_intercept=intercept
        )

    def describe(self) -> str:
        """One line for people: what was done to the stored values.

        >>> m = SeriesMapping(offset=-2004, scale=1, bits_stored=16, signed=False, clip_low=-2004,
        ...                   clip_high=63531, source_bits_stored=16, source_signed=True, rule="offset")
        >>> m.describe()
        "offset: stored' = stored + 2004 (stored -2004..32767 kept); encoded as 16-bit unsigned"
        """
        depth = f"{self.bits_stored}-bit {'signed' if self.signed else 'unsigned'}"
        if self.is_identity:
            return f"identity: stored values kept; encoded as {depth}"
        shift = f"stored - {self.offset}" if self.offset > 0 else f"stored + {-self.offset}" if self.offset else "stored"
        expr = f"round(({shift}) / {self.scale})" if self.scale > 1 else shift
        lo_s, hi_s = value_range(self.source_bits_stored, self.source_signed)
        kept = f"{max(self.clip_low, lo_s)}..{min(self.clip_high, hi_s)}"
        return f"{self.rule}: stored' = {expr} (stored {kept} kept); encoded as {depth}"


def plan_series_mapping(source: Series | SeriesStats, /, *, bits_stored: int, signed: bool) -> SeriesMapping:
    """The one mapping of a series into ``bits_stored`` / ``signed`` samples (rule in the module docstring).

    Parameters
    ----------
    source
        A series (scanned once, see :func:`series_stats`) or its statistics.
    bits_stored, signed
        What the target codec can hold.

    Returns
    -------
    SeriesMapping

    Examples
    --------
    A signed CT with -3024 HU padding and tissue -1024..3000 HU, into 12-bit JPEG:

    >>> stats = SeriesStats(spec=PixelSpec(16, True, rescale_type="HU"), n_images=1, n_frames=1,
    ...                     n_voxels=10, min=-3024, max=3000, is_ct=True, tissue_min=-1024,
    ...                     tissue_max=3000, n_below_floor=4)
    >>> m = plan_series_mapping(stats, bits_stored=12, signed=False)
    >>> m.rule, m.offset, m.scale, m.clip_low, m.rescale(1.0, 0.0)
    ('clip+offset', -1024, 1, -1024, (1.0, -1024.0))
    """
    stats = series_stats(source) if isinstance(source, Series) else source
    if not 2 <= bits_stored <= 16:
        raise InvalidInputError(f"bits_stored={bits_stored!r} is invalid, expected 2..16")
    lo_t, hi_t = value_range(bits_stored, signed)
    width = hi_t - lo_t
    lo_s, hi_s = value_range(stats.spec.bits_stored, stats.spec.signed)
    common: dict[str, Any] = {"bits_stored": bits_stored, "signed": signed,
                              "source_bits_stored": stats.spec.bits_stored, "source_signed": stats.spec.signed}
    mn, mx = stats.min, stats.max
    if lo_t <= lo_s and hi_s <= hi_t or lo_t <= mn and mx <= hi_t:
        return SeriesMapping(offset=0, scale=1, clip_low=max(lo_s, lo_t), clip_high=min(hi_s, hi_t), rule="identity",
                             **common)  # fmt: skip
    if mx - mn <= width:
        return SeriesMapping(offset=mn - lo_t, scale=1, clip_low=mn, clip_high=mn + width, rule="offset", **common)
    low, clip = mn, ""
    if stats.is_ct and stats.tissue_min is not None and stats.tissue_min > mn:
        low, clip = stats.tissue_min, "clip+"
    if mx - low <= width:
        offset = 0 if lo_t <= low and mx <= hi_t else low - lo_t
        return SeriesMapping(offset=offset, scale=1, clip_low=low, clip_high=offset + hi_t, rule=f"{clip}offset",
                             **common)  # fmt: skip
    scale = max(1, math.ceil((mx - low) / width))
    while (mx - low + scale // 2) // scale > width:
        scale += 1
    offset = low - lo_t * scale
    top = offset + (hi_t + 1) * scale - scale // 2 - 1  # largest value that rounds to hi_t
    return SeriesMapping(offset=offset, scale=scale, clip_low=low, clip_high=min(hi_s, top),
                         rule=f"{clip}scale", **common)  # fmt: skip


# --------------------------------------------------------------------------- syntaxes


@dataclass(frozen=True)
class LossySyntax:
    """One lossy family of :data:`medcodec.registry.TRANSFER_SYNTAXES` as the series writer uses it:
    a view of the registry (UIDs, method term, backend, knob), nothing declared here.

    Parameters
    ----------
    name
        The family's short name (``"jpeg"``; the CLI says ``dicom-jpeg``).
    syntaxes
        Its lossy transfer syntaxes, smallest bit depth first (``.50`` then ``.51`` for JPEG).
    """

    name: str
    syntaxes: tuple[TransferSyntax, ...]

    @property
    def codec(self) -> Backend:
        """The encoder backend (the same for every syntax of the family)."""
        codec = self.syntaxes[-1].codec
        assert codec is not None  # every lossy syntax has one (registry)
        return codec

    @property
    def label(self) -> str:
        return self.codec.label

    @property
    def method(self) -> str:
        """Lossy Image Compression Method (0028,2114) defined term (PS3.3 C.7.6.1.1.5.1)."""
        return str(self.syntaxes[-1].method)

    def uid(self, bits: int) -> str:
        """Transfer Syntax UID for encoded samples of ``bits`` bits."""
        for ts in self.syntaxes:
            if bits <= ts.bits[1]:
                return ts.uid
        raise InvalidInputError(f"{self.name}: no transfer syntax for {bits}-bit samples")

    def target(self, bits: int, signed: bool) -> tuple[int, bool]:
        """``(bits, signed)`` of the encoded samples for a ``bits`` / ``signed`` source."""
        return self.syntaxes[-1].coded_depth(bits, signed)

    def knob(self, bits: int) -> Knob:
        """The backend's rate knob on ``bits``-bit encoded samples."""
        knob = self.codec.knob_for(bits)
        assert knob is not None  # lossy backends have one (registry)
        return knob

    def knob_for_quality(self, quality: float, source_bits: int, target_bits: int) -> float:
        """The knob value of the quality law (:mod:`medcodec.registry`)."""
        return self.codec.knob_for_quality(quality, source_bits, target_bits)

    def encode(self, frame: NDArray[np.integer], bits: int, signed: bool, knob: float) -> bytes:
        return self.codec.encode(frame, bits, signed, knob)

    def decode(self, data: bytes) -> NDArray[np.integer]:
        return self.codec.decode(data)

    def check_available(self) -> None:
        """Raise :class:`~medcodec.errors.UnsupportedFeatureError` naming what is missing."""
        why = self.codec.why_unavailable()
        if why:
            raise UnsupportedFeatureError(f"dicom-{self.name} is not available: {why}")


#: The lossy transfer-syntax families medcodec writes series in, by short name: a view of
#: :data:`medcodec.registry.TRANSFER_SYNTAXES` (entries with a ``short`` name).
SYNTAXES: dict[str, LossySyntax] = {
    short: LossySyntax(short, tuple(ts for ts in TRANSFER_SYNTAXES.values() if ts.short == short))
    for short in dict.fromkeys(ts.short for ts in TRANSFER_SYNTAXES.values() if ts.short)
}


def get_syntax(name: str | LossySyntax) -> LossySyntax:
    """A :class:`LossySyntax` by name (``"jpeg"`` or ``"dicom-jpeg"``, ``"j2k"``, ``"htj2k"``, ``"jpegls"``)."""
    if isinstance(name, LossySyntax):
        return name
    key = str(name).lower().removeprefix("dicom-")
    if key not in SYNTAXES:
        raise InvalidInputError(f"syntax={name!r} is unknown, expected one of {sorted(SYNTAXES)}")
    return SYNTAXES[key]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FileResult:
    """One written file and how faithful it is (measured by decoding the written bytes).

    Parameters
    ----------
    path, source
        The written file and the image it came from.
    sop_instance_uid
        The new SOP Instance UID.
    frames, nbytes
        Frames written and compressed bytes (fragments, padding included).
    ratio
        Uncompressed source size (Bits Allocated / 8 bytes per pixel) / ``nbytes``; the value
        appended to (0028,2112).
    psnr
        dB, peak ``2**bits_stored - 1`` of the source, over voxels not clipped (``inf`` if exact).
    max_error, max_error_hu
        Maximum absolute error over voxels not clipped, in source stored units and in output
        units (HU for CT: ``max_error * |slope|``).
    n_clipped
        Voxels the series mapping clipped (e.g. padding outside the scan field).
    knob
        The codec's knob value used (name in ``syntax.knob``).
    mapping
        The series mapping (the same object for every file of a series).
    seconds
        Time spent on this file.
    """

    path: Path
    source: str
    sop_instance_uid: str
    frames: int
    nbytes: int
    ratio: float
    psnr: float
    max_error: int
    max_error_hu: float
    n_clipped: int
    knob: float
    mapping: SeriesMapping
    seconds: float = 0.0


# --------------------------------------------------------------------------- rate control


@dataclass
class _Measured:
    nbytes: int
    psnr: float  # worst frame


class _Coder:
    """Encodes mapped frames of one series with one syntax; measures size and PSNR."""

    def __init__(self, syntax: LossySyntax, mapping: SeriesMapping, jobs: int):
        self.syntax = syntax
        self.mapping = mapping
        self.jobs = jobs
        self.knob = syntax.knob(mapping.bits_stored)
        self.peak = (1 << mapping.source_bits_stored) - 1

    def encode(self, mapped: NDArray[np.integer], knob: float) -> bytes:
        """One mapped frame at ``knob`` (clamped); library errors become :class:`~medcodec.errors.CodecError`."""
        return self.syntax.encode(mapped, self.mapping.bits_stored, self.mapping.signed, self.knob.clamp(knob))

    def measure(self, frames: Sequence[NDArray[np.integer]], mapped: Sequence[NDArray[np.integer]], knob: float,
                *, with_psnr: bool) -> _Measured:  # fmt: skip
        def one(i: int) -> tuple[int, float]:
            data = self.encode(mapped[i], knob)
            size = len(data) + len(data) % 2
            if not with_psnr:
                return size, math.inf
            restored = self.mapping.unmap(self.syntax.decode(data))
            return size, _psnr(frames[i], restored, self.mapping.kept(frames[i]), self.peak)

        out = _map_ordered(one, range(len(frames)), self.jobs)
        return _Measured(sum(s for s, _ in out), min(p for _, p in out))

    def for_ratio(self, frames: Sequence[NDArray[np.integer]], mapped: Sequence[NDArray[np.integer]], ratio: float,
                  raw_bytes_per_pixel: int) -> float:  # fmt: skip
        """The knob value whose fragments reach ``ratio`` on ``frames`` (:func:`~medcodec.ratecontrol.find_knob_for_rate`)."""
        pixels = sum(f.size for f in frames)
        target_bpp = 8.0 * raw_bytes_per_pixel / ratio
        result = find_knob_for_rate(
            lambda v: 8.0 * self.measure(frames, mapped, v, with_psnr=False).nbytes / pixels, self.knob, target_bpp,
            rel_tol=0.01, max_evals=16,
        )  # fmt: skip
        return result.value

    def for_psnr(self, frames: Sequence[NDArray[np.integer]], mapped: Sequence[NDArray[np.integer]], target: float,
                 *, start: float | None = None) -> float:  # fmt: skip
        """Smallest-size knob whose worst frame reaches ``target`` dB (:func:`~medcodec.ratecontrol.find_knob_for_quality`)."""
        return find_knob_for_quality(
            lambda v: self.measure(frames, mapped, v, with_psnr=True).psnr >= target, self.knob, start=start
        )


_map_ordered = map_ordered  # the shared thread map (medcodec/_parallel.py)
_imap_ordered = imap_ordered


# --------------------------------------------------------------------------- writing


def encode_series_to_dicom(
    series: Series,
    out_dir: str | os.PathLike[str],
    *,
    syntax: str | LossySyntax,
    quality: float | None = None,
    ratio: float | None = None,
    psnr: float | None = None,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
    progress: bool = False,
    jobs: int | None = None,
    failures: list[tuple[str, Exception]] | None = None,
) -> list[FileResult]:
    """Write one lossy-compressed DICOM file per source image of ``series`` into ``out_dir``.

    Every file gets the series' one :class:`SeriesMapping`, one new Series Instance UID
    shared by the output series, a new SOP Instance UID (dataset and file meta), the lossy
    attributes (0028,2110/2112/2114) appended, Image Type DERIVED, a Derivation Description,
    and its frames encapsulated one fragment per frame after a Basic Offset Table; every other
    attribute is kept. Each file is decoded back with pydicom before it is written, and the
    numbers in its :class:`FileResult` come from that decode.

    Parameters
    ----------
    series
        From :func:`medcodec.dicom.read_series`.
    out_dir
        Folder for the files (created); names follow the source file names (``.dcm``).
    syntax
        ``"jpeg"``, ``"j2k"``, ``"htj2k"`` or ``"jpegls"`` (``"dicom-"`` prefix accepted), or a
        :class:`LossySyntax`.
    quality, ratio, psnr
        One rate target (default ``quality=75``); see the module docstring.
    inputs
        Files never to overwrite (the series' own sources always are protected).
    overwrite
        Replace existing output files.
    progress
        tqdm progress bar on stderr.
    jobs
        Images (and calibration frames) coded in parallel threads (default: CPU count).
    failures
        When given, images that fail are appended as ``(path, error)`` and the others are
        still written; otherwise the first failure raises.

    Returns
    -------
    list[FileResult]
        In series order.

    Raises
    ------
    InvalidInputError
        Bad options, or an output that exists / is an input.
    UnsupportedFeatureError
        The syntax's library is missing.
    UnsupportedImageError
        A Modality LUT Sequence or per-frame rescale the mapping cannot carry.
    DicomError
        An image cannot be decoded, or the written file does not decode (``failures`` not given).
    """
    codec_syntax = get_syntax(syntax)
    codec_syntax.check_available()
    given = [n for n, v in (("quality", quality), ("ratio", ratio), ("psnr", psnr)) if v is not None]
    if len(given) > 1:
        raise InvalidInputError(f"give one of quality, ratio or psnr, not {given}")
    if quality is not None and not (isinstance(quality, (int, float)) and 1 <= quality <= 100):
        raise InvalidInputError(f"quality={quality!r} is out of range, expected 1..100")
    if ratio is not None and not (isinstance(ratio, (int, float)) and ratio >= 1):
        raise InvalidInputError(f"ratio={ratio!r} must be a number >= 1")
    if psnr is not None and not (isinstance(psnr, (int, float)) and 0 < psnr < 200):
        raise InvalidInputError(f"psnr={psnr!r} must be a number of dB in (0, 200)")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise InvalidInputError(f"jobs={jobs!r} must be a positive integer")
    n_jobs = jobs or os.cpu_count() or 1
    spec = series.spec
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out}: exists and is not a folder")

    stats, samples, images = _scan(series, calibration=CALIBRATION_FRAMES, failures=failures)
    bits, signed = codec_syntax.target(spec.bits_stored, spec.signed)
    mapping = plan_series_mapping(stats, bits_stored=bits, signed=signed)
    coder = _Coder(codec_syntax, mapping, n_jobs)
    cal = [f for f, _ in samples]
    cal_mapped = [mapping.map(f)[0] for f in cal]
    raw_bpp = 1 if spec.extra.get("bits_allocated", 16) <= 8 else 2
    if ratio is not None:
        knob = coder.for_ratio(cal, cal_mapped, float(ratio), raw_bpp)
    elif psnr is not None:
        knob = coder.for_psnr(cal, cal_mapped, float(psnr))
    else:
        q = 75.0 if quality is None else float(quality)
        knob = coder.knob.clamp(codec_syntax.knob_for_quality(q, spec.bits_stored, bits))
    del cal, cal_mapped, samples

    protected = [*inputs, *series.source_files]
    names = _output_names(images)
    series_uid = generate_uid()
    out.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[DicomImage, str]) -> FileResult | tuple[str, Exception]:
        image, name = item
        try:
            return _write_image(image, out / name, coder=coder, knob=knob, psnr_target=psnr, raw_bpp=raw_bpp,
                                series_uid=series_uid, inputs=protected, overwrite=overwrite)  # fmt: skip
        except (CodecError, OSError) as exc:
            if failures is None:
                raise
            return (image.path, exc)

    results: list[FileResult] = []
    items = list(zip(images, names))
    from tqdm import tqdm  # type: ignore[import-untyped]

    bar = tqdm(total=len(items), desc=f"dicom-{codec_syntax.name}", unit="file", disable=not progress, leave=False)
    try:
        for res in _imap_ordered(one, items, max(1, min(n_jobs, len(items)))):
            bar.update(1)
            if isinstance(res, FileResult):
                results.append(res)
            else:
                failures.append(res)  # type: ignore[union-attr]
    finally:
        bar.close()
    return results


def _output_names(images: Sequence[DicomImage]) -> list[str]:
    used: set[str] = set()
    names = []
    for image in images:
        base = Path(image.path.split("::")[-1]).name
        stem = base[: -len(Path(base).suffix)] if Path(base).suffix.lower() in (".dcm", ".dicom", ".ima") else base
        stem = safe_name(stem, "image", max_length=100)
        name, k = f"{stem}.dcm", 1
        while name.lower() in used:
            k += 1
            name = f"{stem}_{k}.dcm"
        used.add(name.lower())
        names.append(name)
    return names


def _write_image(
    image: DicomImage,
    path: Path,
    *,
    coder: _Coder,
    knob: float,
    psnr_target: float | None,
    raw_bpp: int,
    series_uid: str,
    inputs: Sequence[str | os.PathLike[str]],
    overwrite: bool,
) -> FileResult:
    t0 = time.perf_counter()
    check_output_path(path, inputs=inputs, overwrite=overwrite)
    mapping, syntax = coder.mapping, coder.syntax
    source_ds = image.dataset
    if "ModalityLUTSequence" in source_ds and not mapping.is_identity:
        raise UnsupportedImageError(
            "(0028,3000) Modality LUT Sequence is indexed by stored values, which the series mapping changes",
            path=image.path,
        )
    if image.spec.extra.get("rescale_varies_per_frame"):
        raise UnsupportedImageError("per-frame Rescale Slope/Intercept differ: not supported for lossy DICOM",
                                    path=image.path)  # fmt: skip
    frames = image.decode()
    mapped, clipped = [], 0
    for frame in frames:
        m, c = mapping.map(frame)
        mapped.append(m)
        clipped += c
    mask = mapping.kept(frames)
    streams = [coder.encode(m, knob) for m in mapped]
    if psnr_target is not None:
        worst = min(
            _psnr(f, mapping.unmap(syntax.decode(s)), mapping.kept(f), coder.peak) for f, s in zip(frames, streams)
        )
        if worst < psnr_target:  # this image is harder than the calibration frames: search it alone
            knob = coder.for_psnr(list(frames), mapped, psnr_target, start=knob)
            streams = [coder.encode(m, knob) for m in mapped]
    goal = psnr_target
    for _attempt in range(3):
        data, ds, nbytes, ratio = _build(image, path, streams, coder=coder, knob=knob, clipped=clipped, raw_bpp=raw_bpp,
                                         series_uid=series_uid)  # fmt: skip
        unmapped = mapping.unmap(_verify(data, frames.shape, path))
        psnr = _psnr(frames, unmapped, mask, coder.peak)
        if psnr_target is None or goal is None or psnr >= psnr_target:
            break
        # pydicom's decoder (another IDCT) fell a hair short of what the search measured: ask for the gap more
        goal += psnr_target - psnr + 0.01
        knob = coder.for_psnr(list(frames), mapped, goal, start=knob)
        streams = [coder.encode(m, knob) for m in mapped]
    err = np.abs(unmapped[mask].astype(np.int64) - frames[mask]) if mask.any() else np.zeros(1, np.int64)
    max_error = int(err.max()) if err.size else 0
    result = FileResult(
        path=path, source=image.path, sop_instance_uid=str(ds.SOPInstanceUID), frames=frames.shape[0],
        nbytes=nbytes, ratio=ratio, psnr=psnr, max_error=max_error,
        max_error_hu=max_error * abs(image.spec.rescale_slope), n_clipped=clipped, knob=float(knob),
        mapping=mapping, seconds=time.perf_counter() - t0,
    )  # fmt: skip
    atomic_write(path, data)
    return result


def _build(image: DicomImage, path: Path, streams: list[bytes], *, coder: _Coder, knob: float, clipped: int,
           raw_bpp: int, series_uid: str) -> tuple[bytes, Dataset, int, float]:  # fmt: skip
    """The file's bytes, its dataset, the fragment bytes and the ratio."""
    from .._version import __version__

    mapping, syntax = coder.mapping, coder.syntax
    frames, rows, cols = image.shape
    nbytes = sum(len(s) + len(s) % 2 for s in streams)
    ratio = frames * rows * cols * raw_bpp / nbytes
    description = (
        f"Lossy compression by medcodec {__version__}: {syntax.label}, {coder.knob.name}={knob:g}, "
        f"ratio {ratio:.2f}:1. Series mapping: {mapping.describe()}"
        + (f"; {clipped} voxels clipped" if clipped else "")
        + "."
    )[:1024]
    ds = derive_encapsulated(
        image.dataset, streams, mapping.spec_for(image.spec), transfer_syntax_uid=syntax.uid(mapping.bits_stored),
        rows=rows, columns=cols, ratio=ratio, method=syntax.method, description=description,
        new_series_uid=series_uid,
    )  # fmt: skip
    _remap_value_attributes(ds, mapping)
    return encode_file(ds, path=path), ds, nbytes, ratio


def _verify(data: bytes, shape: tuple[int, int, int], path: Path) -> NDArray[np.integer]:
    """Decode the file's bytes with pydicom (an independent decoder) and check the structure."""
    try:
        arr = np.asarray(pixel_array(io.BytesIO(data)))
    except Exception as exc:  # any plugin failure means the file is not usable
        raise DicomError(f"the written file does not decode with pydicom: {type(exc).__name__}: {exc}",
                         path=path) from exc  # fmt: skip
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.shape != tuple(shape):
        raise DicomError(f"the written file decodes to shape {arr.shape}, expected {shape}", path=path)
    return arr


def _remap_value_attributes(ds: Dataset, mapping: SeriesMapping) -> None:
    """Attributes holding stored values follow the mapping (PS3.3 C.7.5.1.1.2 Pixel Padding Value)."""
    vr = "SS" if mapping.signed else "US"
    padding = ds.get("PixelPaddingValue")
    if padding is None:
        return
    limit = ds.get("PixelPaddingRangeLimit")
    new = mapping.map_value(int(padding))
    new_limit = None if limit is None else mapping.map_value(int(limit))
    if new is None or (limit is not None and new_limit is None):
        for keyword in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
            if keyword in ds:
                del ds[keyword]
        return
    del ds["PixelPaddingValue"]
    ds.add_new(0x00280120, vr, new)
    if new_limit is not None:
        del ds["PixelPaddingRangeLimit"]
        ds.add_new(0x00280121, vr, new_limit)
