"""One integer mapping of stored values per series: statistics, the plan, and the attributes that follow it.

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
   tissue value of the series, counted and reported, and the rest is shifted; declared
   padding below the tissue gets a slot of its own. On other data (**padding, then offset**),
   a declared Pixel Padding Value far outside the content (an MR's -32768, a radiograph's
   65535 border) gets the lowest or highest coded value and the content is only shifted
   (until 2026-12-02 it counted in the range and forced a scale of 9 or 17 on every voxel);
4. **scale**, the smallest integer that fits what remains (e.g. 2 for metal up to 7000 HU,
   or for 16-bit MR into 12 bits); error from the mapping is at most ``scale // 2``. A CT's
   quantization steps stay those of its 4096 HU (:data:`CT_QUALITY_SPAN`): metal does not
   coarsen the soft tissue of every slice.

A mapping per image would give every slice its own rescale and make a series flicker in
brightness after a lossy round trip through viewers that cache one rescale: never done.
Pixel Padding Value follows the mapping, or is removed when the padding was clipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from ..codec.levelshift import range_bits
from ..errors import DicomError, InvalidInputError
from ..ratecontrol import calibration_indices
from ..spec import PixelSpec, storage_dtype, value_range
from ._mapping_kernels import map_frame, padding_extent, padding_scan
from .image import DicomImage
from .series import Series

__all__ = [
    "HU_FLOOR",
    "PADDING_REMOVED",
    "padding_removed_reason",
    "SeriesStats",
    "SeriesMapping",
    "series_stats",
    "dataset_stats",
    "value_stats",
    "is_ct_spec",
    "plan_series_mapping",
    "remap_value_attributes",
    "remap_real_world_values",
]


#: Lowest HU of real tissue: below it is padding outside the scan field (air is -1000 HU).
HU_FLOOR = -1024.0

#: HU a CT series' quantization steps are made for (:meth:`SeriesMapping.content_range_bits`):
#: the 12-bit span -1024..3071 every scanner stores. CT values are absolute, so metal far above
#: it (15,000 HU in a hip prosthesis or a dental filling, extended-HU reconstructions) must not
#: coarsen the steps of every slice: when such values need a mapping ``scale`` s > 1 to fit 12
#: bits, the steps in coded units are 1/s of those of a series without them, the same in HU.
#: Until 2026-12-02 the span included the metal: a 20x20 block at 15,000 HU in 6 of 16 slices
#: coded the whole chest CT at 26:1 with 48 HU soft-tissue RMS error, where 8:1 and 15.5 HU
#: are the body point's (an outside audit).
CT_QUALITY_SPAN = 4096


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
        Stored range of the content (:func:`value_stats`): on CT the voxels at or above
        :data:`HU_FLOOR`; on other data with a declared padding the voxels that are not padding;
        ``None`` otherwise or when there is none.
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


def is_ct_spec(spec: PixelSpec) -> bool:
    """Modality CT or Rescale Type HU: values below :data:`HU_FLOOR` are not tissue."""
    return spec.extra.get("modality") == "CT" or spec.rescale_type.upper() == "HU"


def value_stats(frames: NDArray[np.integer], spec: PixelSpec, padding: tuple[int, int] | None = None, *,
                ct: bool | None = None) -> tuple[int, int, int | None, int | None, int]:  # fmt: skip
    """``(min, max, content_min, content_max, below_floor)`` of stored values (any shape): what
    :class:`SeriesStats` holds, for one image or frame. The content range is, on CT
    (:func:`is_ct_spec`, positive slope), that of the voxels at or above :data:`HU_FLOOR` (the
    count below it is ``below_floor``); on other data with a declared ``padding`` (stored
    ``(low, high)``), that of the voxels that are not padding; else ``None``. ``ct`` overrides
    :func:`is_ct_spec` (a series decides once). The one place ingest, the series scan and a
    single image's fallback mapping compute them.

    >>> value_stats(np.array([-32768, 10, 900]), PixelSpec(16, True), padding=(-32768, -32768))
    (-32768, 900, 10, 900, 0)
    """
    a = np.asarray(frames)
    lo, hi = int(a.min()), int(a.max())
    if is_ct_spec(spec) if ct is None else ct:
        if spec.rescale_slope <= 0:  # no floor in stored values
            return lo, hi, None, None, 0
        content = a[a >= _stored_floor(spec)]
        below = int(a.size - content.size)
    elif padding is None:
        return lo, hi, None, None, 0
    elif hi < padding[0] or padding[1] < lo:  # no padding voxel here
        return lo, hi, lo, hi, 0
    else:
        content = a[(a < padding[0]) | (a > padding[1])]
        below = 0
    if not content.size:
        return lo, hi, None, None, below
    return lo, hi, int(content.min()), int(content.max()), below


class _StatsBuilder:
    def __init__(self, spec: PixelSpec, padding: tuple[int, int] | None = None, *, content: bool = True):
        self.spec = spec
        self.is_ct = is_ct_spec(spec)
        self.padding = padding
        self.content = content  # False: min and max only (targets that must not clip, lossless)
        self.images = self.frames = self.voxels = self.below = 0
        self.lo = self.hi = None  # type: int | None
        self.tlo = self.thi = None  # type: int | None

    def add(self, frame: NDArray[np.integer], spec: PixelSpec) -> None:
        self.frames += 1
        self.voxels += frame.size
        if self.content:
            lo, hi, tlo, thi, below = value_stats(frame, spec, self.padding, ct=self.is_ct)
        else:
            lo, hi, tlo, thi, below = int(frame.min()), int(frame.max()), None, None, 0
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        self.below += below
        if tlo is None or thi is None:  # no content in this frame (all padding, or all below the floor)
            return
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
    builder = _StatsBuilder(series.spec, padding_range(series))
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
    content
        Source stored range of the series' content (``min``..``max``, CT from its tissue floor and
        at most :data:`CT_QUALITY_SPAN` HU), set by :func:`plan_series_mapping`; gives
        :meth:`content_range_bits`, the span the quantization steps are made for.
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
    #: source stored values that are padding (Pixel Padding Value .. Range Limit), or ``None``
    padding: tuple[int, int] | None = None
    #: encoded value padding voxels get (a slot below the tissue, ``clip+offset`` with padding), or ``None``
    padding_code: int | None = None
    content: tuple[int, int] | None = field(default=None, compare=False)

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
                    f"mapping offset={self.offset} scale={self.scale} sends {v} outside the encoded range "
                    f"{lo_t}..{hi_t}"
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
        frame = np.asarray(frame)
        lo_t, hi_t = value_range(self.bits_stored, self.signed)
        if self.padding_code is None and frame.size:
            # the common case, nothing clipped: the general path's values (below) in fewer passes over
            # the frame; with scale 1 the shift is done modulo the storage type's width, exact since
            # every result fits that type (the forward map is monotonic, so min and max decide)
            fmin, fmax = int(frame.min()), int(frame.max())
            kept = self.clip_low <= fmin and fmax <= self.clip_high
            if kept and lo_t <= self._forward(fmin) <= self._forward(fmax) <= hi_t:
                dtype = storage_dtype(self.bits_stored, self.signed)
                if self.scale == 1:
                    out = frame.astype(dtype)
                    if self.offset:
                        out -= np.array(self.offset).astype(dtype)
                    return out, 0
                wide = frame.astype(np.int32)
                wide -= self.offset - self.scale // 2
                wide //= self.scale
                return wide.astype(dtype), 0
        out = np.empty(frame.shape, storage_dtype(self.bits_stored, self.signed))
        has_pad = self.padding_code is not None and self.padding is not None
        pad_lo, pad_hi = self.padding if self.padding is not None else (0, -1)
        clipped = map_frame(np.ascontiguousarray(frame), out, self.clip_low, self.clip_high, self.offset, self.scale,
                            lo_t, hi_t, pad_lo, pad_hi, int(self.padding_code or 0), has_pad)  # fmt: skip
        return out, int(clipped)

    def padding_mask(self, frame: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Source voxels that are padding (all ``False`` without padding)."""
        if self.padding is None:
            return np.zeros(np.shape(frame), bool)
        return (frame >= self.padding[0]) & (frame <= self.padding[1])

    def unmap(self, encoded: NDArray[np.integer]) -> NDArray[np.int32]:
        """Encoded (decoded) values -> source stored units, as a viewer computes them (int32, not clipped)."""
        a = np.asarray(encoded).astype(np.int32)
        if self.scale > 1:
            a *= self.scale
        a += self.offset
        return a

    def clipped_count(self, frame: NDArray[np.integer]) -> int:
        """How many voxels :meth:`map` clips (outside ``clip_low..clip_high``; a padding voxel that has
        a code of its own is not clipped, one without is), as ``map`` counts them. Not ``~kept``:
        padding is left out of the error measurement, but it is clipped only when it has no code."""
        a = np.asarray(frame)
        out = (a < self.clip_low) | (a > self.clip_high)
        if self.padding_code is not None:
            out &= ~self.padding_mask(a)
        return int(np.count_nonzero(out))

    def kept(self, frame: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Mask of the voxels the mapping does not clip (padding voxels are not measured either)."""
        return (frame >= self.clip_low) & (frame <= self.clip_high) & ~self.padding_mask(frame)

    def content_range_bits(self) -> int | None:
        """Bits the series' content spans in encoded units (:func:`medcodec.codec.levelshift.range_bits`),
        one figure for every frame of the series; ``None`` when the mapping does not know its content.

        >>> m = SeriesMapping(offset=0, scale=1, bits_stored=12, signed=False, clip_low=0, clip_high=4095,
        ...                   source_bits_stored=12, source_signed=False, content=(100, 900))
        >>> m.content_range_bits()
        10
        """
        if self.content is None:
            return None
        lo = min(max(self.content[0], self.clip_low), self.clip_high)
        hi = min(max(self.content[1], self.clip_low), self.clip_high)
        # the source span over the scale, rounded down: a CT's 4096 HU at scale 4 is 10 bits (1023),
        # steps a quarter of 12 bits', the same in HU (mapped ends, 0..1024, would make it 11)
        return range_bits(0, (hi - lo) // self.scale, self.bits_stored)

    def map_value(self, value: int) -> int | None:
        """One source stored value mapped, or ``None`` when it would be clipped."""
        if self.padding_code is not None and self.padding is not None and self.padding[0] <= value <= self.padding[1]:
            return self.padding_code
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
        >>> m = SeriesMapping(offset=0, scale=1, bits_stored=12, signed=False, clip_low=0, clip_high=4095,
        ...                   source_bits_stored=16, source_signed=True, rule="clip+offset", padding=(-2000, -2000))
        >>> m.describe()  # doctest: +NORMALIZE_WHITESPACE
        "clip+offset: stored' = stored (stored 0..4095 kept); encoded as 12-bit unsigned; declared padding
        (stored -2000) has no value of its own, the content fills the range: set to stored 0 like the
        voxels clipped there"
        """
        depth = f"{self.bits_stored}-bit {'signed' if self.signed else 'unsigned'}"
        if self.is_identity:
            return f"identity: stored values kept; encoded as {depth}"
        shift = (
            f"stored - {self.offset}" if self.offset > 0 else f"stored + {-self.offset}" if self.offset else "stored"
        )
        expr = f"round(({shift}) / {self.scale})" if self.scale > 1 else shift
        lo_s, hi_s = value_range(self.source_bits_stored, self.source_signed)
        kept = f"{max(self.clip_low, lo_s)}..{min(self.clip_high, hi_s)}"
        out = f"{self.rule}: stored' = {expr} (stored {kept} kept); encoded as {depth}"
        to = self.padding_clipped_to()
        if to is not None and self.padding is not None:  # an outside audit, 2026-12-04 (TCIA's -2000)
            lo, hi = self.padding
            what = f"{lo}" if lo == hi else f"{lo}..{hi}"
            out += (f"; declared padding (stored {what}) has no value of its own, the content fills the "
                    f"range: set to stored {to} like the voxels clipped there")  # fmt: skip
        return out

    def padding_clipped_to(self) -> int | None:
        """The stored value a declared padding outside the kept range is clipped to when it has no code
        of its own (the content fills the coded range), else ``None``."""
        if self.padding is None or self.padding_code is not None:
            return None
        lo, hi = self.padding
        if hi < self.clip_low:
            return self.clip_low
        return self.clip_high if lo > self.clip_high else None


#: Encoded units left between CT padding's own slot and the lowest tissue value, so that lossy
#: errors do not carry tissue into the declared padding range (or padding out of it).
PADDING_GAP = 1024
#: The same gap when the content needs a scale of its own (``padding+scale``): a sixteenth of a
#: 12-bit range, so that the content keeps nearly all of it.
SCALED_PADDING_GAP = 256


def padding_range(series: Series) -> tuple[int, int] | None:
    """The series' padding as ``(low, high)`` stored values, from its first image (:func:`dataset_padding`)."""
    return dataset_padding(series.images[0].dataset, bits_stored=series.spec.bits_stored, signed=series.spec.signed)


def dataset_padding(ds: Dataset, *, bits_stored: int, signed: bool) -> tuple[int, int] | None:
    """A dataset's padding as ``(low, high)`` stored values: Pixel Padding Value (0028,0120) and, if
    present, Pixel Padding Range Limit (0028,0121) (PS3.3 C.7.5.1.1.2); ``None`` when absent or out of range."""
    value = ds.get("PixelPaddingValue")
    limit = ds.get("PixelPaddingRangeLimit")
    try:
        lo, hi = sorted((int(value), int(value if limit is None else limit)))
    except (TypeError, ValueError):
        return None
    vmin, vmax = value_range(bits_stored, signed)
    return (lo, hi) if vmin <= lo <= hi <= vmax else None


def plan_series_mapping(source: Series | SeriesStats, /, *, bits_stored: int, signed: bool,
                        padding: tuple[int, int] | None = None) -> SeriesMapping:  # fmt: skip
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
    if isinstance(source, Series):
        padding = padding if padding is not None else padding_range(source)
    stats = series_stats(source) if isinstance(source, Series) else source
    if not 2 <= bits_stored <= 16:
        raise InvalidInputError(f"bits_stored={bits_stored!r} is invalid, expected 2..16")
    lo_t, hi_t = value_range(bits_stored, signed)
    width = hi_t - lo_t
    lo_s, hi_s = value_range(stats.spec.bits_stored, stats.spec.signed)
    common: dict[str, Any] = {
        "bits_stored": bits_stored,
        "signed": signed,
        "source_bits_stored": stats.spec.bits_stored,
        "source_signed": stats.spec.signed,
        "padding": padding,
    }
    mn, mx = stats.min, stats.max
    low_content = stats.tissue_min if stats.is_ct and stats.tissue_min is not None else mn
    high_content = mx
    if stats.is_ct and stats.spec.rescale_slope > 0:  # the quantizer's span: at most CT_QUALITY_SPAN HU
        high_content = min(mx, max(mn, low_content) + math.ceil(CT_QUALITY_SPAN / stats.spec.rescale_slope) - 1)
    common["content"] = (int(max(mn, low_content)), int(high_content))
    if (lo_t <= lo_s and hi_s <= hi_t) or (lo_t <= mn and mx <= hi_t):
        return SeriesMapping(offset=0, scale=1, clip_low=max(lo_s, lo_t), clip_high=min(hi_s, hi_t), rule="identity",
                             **common)  # fmt: skip
    if mx - mn <= width:
        return SeriesMapping(offset=mn - lo_t, scale=1, clip_low=mn, clip_high=mn + width, rule="offset", **common)
    slot = _padding_slot(stats, padding, lo_t, hi_t, common)
    if slot is not None:
        return slot
    low, clip = mn, ""
    if stats.is_ct and stats.tissue_min is not None and stats.tissue_min > mn:
        low, clip = stats.tissue_min, "clip+"
    gap = min(PADDING_GAP, width - (mx - low))
    if clip and padding is not None and padding[1] < low and gap >= 16:  # padding gets a slot below the tissue
        offset = low - gap - lo_t
        return SeriesMapping(offset=offset, scale=1, clip_low=low, clip_high=offset + hi_t, rule="clip+offset",
                             padding_code=lo_t, **common)  # fmt: skip
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


def _padding_slot(stats: SeriesStats, padding: tuple[int, int] | None, lo_t: int, hi_t: int,
                  common: dict[str, Any]) -> SeriesMapping | None:  # fmt: skip
    """Rule 3 for data other than CT: a declared padding entirely below or above the content
    (an MR's -32768 outside the field of view, a radiograph's 65535 collimation border) gets the
    lowest or highest coded value with :data:`PADDING_GAP` units between it and the content, and
    the content is only shifted; content too wide for that is scaled into the rest of the range with
    :data:`SCALED_PADDING_GAP` units of gap (``padding+scale``: the content's own scale, not one
    stretched to the padding: a CR's 65535 border took the scale from 7 to 16 and its interior error
    from 78 to 247 until 2026-12-05, an outside audit), when that scale is finer than one for content
    and padding together. ``None`` when not applicable (CT, no padding or content range, padding
    within the content, or near it)."""
    if stats.is_ct or padding is None or stats.tissue_min is None or stats.tissue_max is None:
        return None
    low, high = stats.tissue_min, stats.tissue_max
    if not (padding[1] < low or high < padding[0]):
        return None
    width = hi_t - lo_t
    common = {**common, "content": (low, high)}
    below = padding[1] < low
    gap = min(PADDING_GAP, width - (high - low))
    scale = 1
    if gap < 16:  # the content needs a scale of its own
        gap = SCALED_PADDING_GAP
        scale = max(2, math.ceil((high - low) / (width - gap)))
        while (high - low + scale // 2) // scale > width - gap:
            scale += 1
        if scale >= math.ceil((max(high, padding[1]) - min(low, padding[0])) / width):
            return None  # padding near the content (an MR's 0 below its 1, 2...): one scale for both is as fine
    first = lo_t + gap if below else lo_t  # the coded value of the lowest content value
    last = hi_t if below else hi_t - gap  # the highest coded value content may take
    offset = low - first * scale
    top = offset + (last + 1) * scale - scale // 2 - 1  # largest value that rounds to ``last``
    if scale > 1:  # (the scale rule's cap; scale 1 keeps the clip range it always had)
        top = min(top, value_range(stats.spec.bits_stored, stats.spec.signed)[1])
    return SeriesMapping(offset=offset, scale=scale, clip_low=low, clip_high=top,
                         rule="padding+offset" if scale == 1 else "padding+scale",
                         padding_code=lo_t if below else hi_t, **common)  # fmt: skip


def tissue_mask(frames: NDArray[np.integer], spec: PixelSpec) -> NDArray[np.bool_]:
    """Voxels that are image content: for CT those at or above :data:`HU_FLOOR` (below it is the
    outside of the scan field, padding or not), otherwise every voxel."""
    is_ct = is_ct_spec(spec)
    if not is_ct or spec.rescale_slope <= 0:
        return np.ones(frames.shape, bool)
    return frames >= _stored_floor(spec)


def padding_touches_tissue(frames: NDArray[np.integer], pad: NDArray[np.bool_], tissue: NDArray[np.bool_],
                           mapping: SeriesMapping) -> bool:  # fmt: skip
    """Whether tissue voxels lie within one coded unit of the padding values (``frames`` in source
    stored values, ``pad`` and ``tissue`` from :meth:`SeriesMapping.padding_mask` and
    :func:`tissue_mask`): lossy coding then moves tissue onto the padding values (an MR whose
    background is both padding value 0 and noise at 1, 2, ...), so no padding range can be declared
    honestly, and the writers say so without decoding (:func:`declare_padding`).

    Only ever a reason to declare *less*: padding far from tissue (a CT's -2000 outside the scan
    field) is still declared as it decodes.
    """
    if mapping.padding is None:
        return False
    lo, hi = mapping.padding[0] - mapping.scale, mapping.padding[1] + mapping.scale
    near = (frames >= lo) & (frames <= hi)
    if not near.any():
        return False
    return bool((near & tissue & ~pad).any())


def padding_found(frames: NDArray[np.integer], spec: PixelSpec, mapping: SeriesMapping) -> tuple[bool, bool]:
    """``(any voxel is padding, the padding touches tissue)`` in one pass over ``frames`` (source
    stored values): the same answers as ``mapping.padding_mask(frames).any()`` and
    :func:`padding_touches_tissue` with ``tissue_mask(frames, spec) & ~pad`` (numba kernel
    :func:`._mapping_kernels.padding_scan`, checked against its NumPy twin)."""
    if mapping.padding is None:
        return False, False
    is_ct = is_ct_spec(spec)
    floor = _stored_floor(spec) if is_ct and spec.rescale_slope > 0 else -(1 << 62)
    lo, hi = mapping.padding
    any_pad, touching = padding_scan(
        np.ascontiguousarray(frames), lo, hi, True, lo - mapping.scale, hi + mapping.scale, floor
    )
    return bool(any_pad), bool(touching)


#: Coded units the declared padding range is widened by on each side, where no tissue voxel
#: decodes into it (:func:`declare_padding`): other decoders' rounding.
DECODER_SLACK = 4

#: What a writer says (PaddingWarning) when :func:`declare_padding` removed a declaration.
PADDING_REMOVED = (
    "padding and image values decode to overlapping values, so Pixel Padding Value was removed rather than "
    "declared wrongly (the padding is within the image's own range, or use a higher quality)"
)


def padding_removed_reason(mapping: SeriesMapping | None) -> str:
    """Why a writer removed Pixel Padding Value, for its PaddingWarning: :data:`PADDING_REMOVED`, or,
    when the declared padding had no code of its own and was clipped with the content's lowest (or
    highest) values, that (an outside re-check, 2026-12-04: a TCIA CT filling all 4096 codes was
    told to use a higher quality, which cannot help)."""
    to = None if mapping is None else mapping.padding_clipped_to()
    if to is None or mapping is None or mapping.padding is None:
        return PADDING_REMOVED
    lo, hi = mapping.padding
    return (
        f"the declared padding (stored {lo}..{hi}) has no value of its own: the content fills the coded range, "
        f"so it was set to stored {to} with the voxels clipped there and Pixel Padding Value was removed (no "
        "quality changes that)"
    )


def declare_padding(ds: Dataset, decoded: NDArray[np.integer] | None, pad: NDArray[np.bool_],
                    tissue: NDArray[np.bool_], mapping: SeriesMapping, *,
                    touching: bool = False) -> bool:  # fmt: skip
    """Declare the padding as the file decodes: Pixel Padding Value (0028,0120) and Pixel Padding
    Range Limit (0028,0121) span the values the source's padding voxels decode to, widened by
    :data:`DECODER_SLACK` for other decoders where that takes in no tissue, so every one of them
    is padding (PS3.3 C.7.5.1.1.2), checked to hold no voxel that is tissue.

    Returns True when declared. When lossy errors mixed padding and tissue values no range can be
    declared honestly: the declaration is removed and False returned. ``touching``
    (:func:`padding_touches_tissue`, the caller's answer) means that they mix by construction:
    removed without looking at ``decoded`` (which may then be ``None``: no decoding needed).
    """
    if touching:
        for tag in (0x00280120, 0x00280121):
            if tag in ds:
                del ds[tag]
        return False
    assert decoded is not None, "declare_padding needs the decoded frames unless the padding touches tissue"
    lo, hi, mixed_count = (int(v) for v in padding_extent(np.ascontiguousarray(decoded), np.ascontiguousarray(pad),
                                                          np.ascontiguousarray(tissue)))  # fmt: skip
    if lo > hi:  # no padding voxel in this image: keep the mapped declaration if no tissue decodes into it
        lo, hi = sorted((int(ds.PixelPaddingValue), int(ds.get("PixelPaddingRangeLimit", ds.PixelPaddingValue))))
        vmin, vmax = value_range(mapping.bits_stored, mapping.signed)
        if not vmin <= lo <= hi <= vmax:  # not a coded value (e.g. -2000 in unsigned 12-bit): nothing to declare
            for tag in (0x00280120, 0x00280121):
                if tag in ds:
                    del ds[tag]
            return True
        mixed_count = int(np.count_nonzero(tissue & (decoded >= lo) & (decoded <= hi)))
    mixed = bool(mixed_count)
    vr = "SS" if mapping.signed else "US"
    for tag in (0x00280120, 0x00280121):
        if tag in ds:
            del ds[tag]
    if mixed:
        return False
    # other decoders' IDCTs round 1-3 units apart from medcodec's: the range is widened by up to
    # DECODER_SLACK on each side, as far as the nearest tissue value there allows (an outside audit
    # found 1-8 padding voxels a case outside the exact range with libjpeg, DCMTK, GDCM, 2026-12-02;
    # widened on both sides or not at all, one tissue voxel within the slack left no margin at all)
    vmin, vmax = value_range(mapping.bits_stored, mapping.signed)
    wide_lo, wide_hi = max(vmin, lo - DECODER_SLACK), min(vmax, hi + DECODER_SLACK)
    near = decoded[tissue & (decoded >= wide_lo) & (decoded <= wide_hi)]  # none inside lo..hi (not mixed)
    below, above = near[near < lo], near[near > hi]
    lo = int(below.max()) + 1 if below.size else wide_lo
    hi = int(above.min()) - 1 if above.size else wide_hi
    ds.add_new(0x00280120, vr, lo)
    if hi != lo:
        ds.add_new(0x00280121, vr, hi)
    return True


def remap_value_attributes(ds: Dataset, mapping: SeriesMapping) -> None:
    """Attributes holding stored values follow the mapping: Pixel Padding Value / Range Limit
    (PS3.3 C.7.5.1.1.2) and Real World Value Mapping items (:func:`remap_real_world_values`)."""
    remap_real_world_values(ds, mapping)
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


#: (0040,9096) Real World Value Mapping Sequence and the item attributes in stored values.
_RWVM = "RealWorldValueMappingSequence"
_RWVM_FIRST, _RWVM_LAST = 0x00409216, 0x00409211


def remap_real_world_values(ds: Dataset, mapping: SeriesMapping) -> None:
    """Real World Value Mapping items (PS3.3 C.7.6.16.2.11: real-world value = stored value x
    slope + intercept, or a LUT indexed from the first value mapped) follow the mapping, at the
    top level and in the Shared / Per-frame Functional Groups: first and last values mapped into
    the coded values (VR US or SS as the coded samples), ``slope * scale`` and ``intercept +
    offset * slope`` (as :meth:`SeriesMapping.rescale`), a LUT re-sampled at the coded values.
    Left as they were until 2026-12-02: a signed T1 map's real-world values came back 1.0 s off,
    an enhanced CT's 1200 units (an outside audit). Nothing changes under an identity mapping.
    """
    if mapping.is_identity:
        return
    containers = [ds]
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        containers.extend(ds.get(keyword) or [])
    vr = "SS" if mapping.signed else "US"
    for container in containers:
        for item in container.get(_RWVM) or []:
            _remap_rwvm_item(item, mapping, vr)


def _remap_rwvm_item(item: Dataset, mapping: SeriesMapping, vr: str) -> None:
    def coded(value: int) -> int:
        return mapping._forward(min(max(value, mapping.clip_low), mapping.clip_high))

    first, last = item.get(_RWVM_FIRST), item.get(_RWVM_LAST)
    if first is None or last is None:
        return  # a float-valued range (0040,9213/9214) or a malformed item: no stored values in it
    try:
        first_value, last_value = int(first.value), int(last.value)
    except (TypeError, ValueError):  # an undecoded ambiguous US / SS value: as it was (and it stays raw)
        return
    new_first, new_last = coded(first_value), coded(last_value)
    if "RealWorldValueLUTData" in item:
        lut = np.asarray(item.RealWorldValueLUTData, dtype=np.float64).ravel()
        if lut.size == 0:
            return
        index = np.arange(new_first, new_last + 1) * mapping.scale + mapping.offset - first_value
        item.RealWorldValueLUTData = [float(v) for v in lut[np.clip(index, 0, lut.size - 1)]]
    elif "RealWorldValueSlope" in item:
        slope = float(item.RealWorldValueSlope)
        intercept = float(item.get("RealWorldValueIntercept", 0.0) or 0.0)
        item.RealWorldValueSlope, item.RealWorldValueIntercept = mapping.rescale(slope, intercept)
    for tag, value in ((_RWVM_FIRST, new_first), (_RWVM_LAST, new_last)):
        del item[tag]
        item.add_new(tag, vr, value)


def dataset_stats(frames: NDArray[np.integer], spec: PixelSpec, *, allow_clip: bool = True,
                  padding: tuple[int, int] | None = None) -> SeriesStats:  # fmt: skip
    """:class:`SeriesStats` of one image's ``(frames, rows, cols)`` stored values (what
    :func:`medcodec.dicom.compress` and the delivery presets plan a mapping from when no series
    mapping is given); ``padding`` the image's (:func:`dataset_padding`). ``allow_clip=False``
    gathers no content range, so neither CT padding is clipped nor a padding slot made (lossless
    targets)."""
    builder = _StatsBuilder(spec, padding, content=allow_clip)
    for frame in frames:
        builder.add(frame, spec)
    builder.images = 1
    return builder.build()
