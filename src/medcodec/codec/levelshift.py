"""Level shift and range handling (array -> array).

T.81 §A.3.1 shifts unsigned P-bit samples by 2**(P-1) so they are centred on zero
before the DCT. Signed samples are already centred and are not shifted. On decode the
inverse shift is applied, values are rounded and clipped to the declared range
(``bits_stored``, ``signed``), and cast to the storage dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..spec import storage_dtype, value_range
from . import _kernels

__all__ = [
    "level_offset",
    "shift",
    "unshift",
    "check_range",
    "checked_pair",
    "range_bits",
    "content_range_bits",
    "content_range_bits_reference",
    "STABLE_RANGE_BITS",
    "stable_range_floor",
    "default_range_bits",
]


def level_offset(bits_stored: int, signed: bool) -> int:
    """The value subtracted before the DCT: 2**(P-1) for unsigned, 0 for signed data."""
    return 0 if signed else 1 << (bits_stored - 1)


def checked_pair(given: Any, name: str, bits_stored: int, signed: bool, *, ordered: bool) -> tuple[int, int]:
    """Two stored values ``(low, high)`` inside the ``bits_stored`` range: ``given`` as an argument
    ``name`` of the caller (``ordered``: low must come first, else the two are sorted).

    Raises
    ------
    InvalidInputError
        Not two integers, out of order when ``ordered``, or outside the range.
    """
    try:
        pair = [int(v) for v in given]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name}={given!r} must be (low, high) stored values") from None
    if len(pair) != 2:
        raise InvalidInputError(f"{name}={given!r} must be (low, high) stored values")
    lo, hi = pair if ordered else sorted(pair)
    vmin, vmax = value_range(bits_stored, signed)
    if lo > hi:
        raise InvalidInputError(f"{name}={given!r} must be (low, high), low first")
    if not vmin <= lo <= hi <= vmax:
        raise InvalidInputError(f"{name} {lo}..{hi} is outside the {bits_stored}-bit range {vmin}..{vmax}")
    return lo, hi


def check_range(pixels: np.ndarray, bits_stored: int, signed: bool) -> tuple[int, int]:
    """Return (min, max) of ``pixels``; raise if any value lies outside the declared range.

    Raises
    ------
    InvalidInputError
        With the count of offending values and the declared range.
    """
    lo, hi = value_range(bits_stored, signed)
    if pixels.size == 0:
        raise InvalidInputError("pixels is empty")
    if pixels.dtype.kind in "iu" and pixels.dtype.isnative and pixels.flags.c_contiguous:
        lo_hi = _kernels.min_max(pixels)  # one pass (numba takes native byte order only)
        pmin, pmax = int(lo_hi[0]), int(lo_hi[1])
    else:
        pmin, pmax = int(pixels.min()), int(pixels.max())
    if pmin < lo or pmax > hi:
        bad = int(np.count_nonzero((pixels < lo) | (pixels > hi)))
        kind = "signed" if signed else "unsigned"
        raise InvalidInputError(
            f"{bad} pixel values lie outside the {kind} {bits_stored}-bit range {lo}..{hi} "
            f"(found {pmin}..{pmax}); pass the right bits_stored/signed, or mask the high bits first"
        )
    return pmin, pmax


def range_bits(vmin: int, vmax: int, bits_stored: int) -> int:
    """Bits the data actually spans: max(8, bit_length(vmax - vmin)), at most ``bits_stored``.

    The quantizer scales its steps with this, so quality 75 means the same thing for a
    12-bit CT and for an MR whose header says 16 bits but whose values span 13.
    """
    return max(min(8, bits_stored), min(bits_stored, int(vmax - vmin).bit_length()))


#: A value at either end of the range that holds more than this fraction of the pixels and
#: lies more than 1/PADDING_GAP of the range away from the next value is padding (CT
#: outside the scan field: -2000, -2048, -3024...), not content.
PADDING_FRACTION = 0.005
PADDING_GAP = 16


def content_range_bits(pixels: np.ndarray, vmin: int, vmax: int, bits_stored: int) -> int:
    """:func:`range_bits` of the image content: a padding spike at either end is left out.

    Without this, the -2000 padding around a head CT (values -2000..2492) makes the data
    span 13 bits instead of 12 and doubles every quantization step. Padding values are still
    coded, and exactly enough: flat regions cost almost nothing at any step.

    One pass of :func:`._kernels.end_counts`; twin: :func:`content_range_bits_reference`.
    """
    from . import _kernels

    lo, hi = int(vmin), int(vmax)
    spread = hi - lo
    n = pixels.size
    if spread > 0 and n > 0:
        flat = np.ascontiguousarray(pixels).reshape(-1)
        count_lo, count_hi, next_lo, next_hi = (int(v) for v in _kernels.end_counts(flat, lo, hi))
        if PADDING_FRACTION * n < count_lo < n and abs(next_lo - lo) * PADDING_GAP > spread:
            lo = next_lo
        # the reference fills the high-end pixels with the (possibly raised) low end
        nearest = max(next_hi, lo)
        if PADDING_FRACTION * n < count_hi < n and abs(nearest - hi) * PADDING_GAP > spread:
            hi = nearest
    return range_bits(lo, hi, bits_stored)


#: Up to this depth a stored unit is a stored unit: an image coded without a series' range
#: (``range_bits=None``) gets the steps of its declared ``bits_stored``, whatever it contains, as
#: libjpeg-turbo's quality scale does. Steps that followed each image's own span made one quality
#: give steps up to 4x apart on the slices of one 12-bit MR series coded one at a time (10..12
#: bits), which cost 7 points of BD-rate on the pooled series for JPEG and 3 for ``.mdc``
#: (docs/design-notes.md, "One quality, one step on every slice"). Deeper data (a 16-bit header
#: over 13 bits of values) keeps the steps of the span it fills, never finer than these bits.
STABLE_RANGE_BITS = 12


def stable_range_floor(bits_stored: int) -> int:
    """The fewest range bits an image coded on its own gets: ``min(bits_stored, 12)``."""
    return min(int(bits_stored), STABLE_RANGE_BITS)


def default_range_bits(pixels: np.ndarray, vmin: int, vmax: int, bits_stored: int) -> int:
    """Range bits for an image (or stack) coded without a series' ``range_bits``.

    ``bits_stored`` itself up to :data:`STABLE_RANGE_BITS`, so that one quality gives the same
    steps on every slice of a series coded one image at a time; above it the content's own
    (:func:`content_range_bits`), at least :data:`STABLE_RANGE_BITS`.

    >>> import numpy as np
    >>> ramp = np.arange(0, 9000, 7).reshape(1, -1)  # spans 0..8995: 14 bits
    >>> default_range_bits(ramp // 10, 0, 899, 12), default_range_bits(ramp, 0, 8995, 16)
    (12, 14)
    """
    if bits_stored <= STABLE_RANGE_BITS:
        return int(bits_stored)
    return max(stable_range_floor(bits_stored), content_range_bits(pixels, vmin, vmax, bits_stored))


def checked_range_bits(range_bits: object, bits_stored: int) -> int:
    """A caller's ``range_bits`` (bits the content spans, one value per series): an integer in
    ``min(8, bits_stored)..bits_stored``.

    Raises
    ------
    InvalidInputError
        Anything else.
    """
    lowest = min(8, bits_stored)
    if (
        isinstance(range_bits, bool)
        or not isinstance(range_bits, (int, np.integer))
        or not lowest <= range_bits <= bits_stored
    ):
        raise InvalidInputError(f"range_bits={range_bits!r} is invalid, expected {lowest}..{bits_stored}")
    return int(range_bits)


def content_range_bits_reference(pixels: np.ndarray, vmin: int, vmax: int, bits_stored: int) -> int:
    """NumPy twin of :func:`content_range_bits` (masks, ``np.where``, min / max)."""
    lo, hi = int(vmin), int(vmax)
    spread = hi - lo
    n = pixels.size
    if spread > 0 and n > 0:
        for at_low in (True, False):
            value = lo if at_low else hi
            mask = pixels == value
            count = int(np.count_nonzero(mask))
            if PADDING_FRACTION * n < count < n:
                rest = np.where(mask, hi if at_low else lo, pixels)
                nearest = int(rest.min() if at_low else rest.max())
                if abs(nearest - value) * PADDING_GAP > spread:
                    lo, hi = (nearest, hi) if at_low else (lo, nearest)
    return range_bits(lo, hi, bits_stored)


def shift(frame: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Integer pixels -> float64 centred on zero."""
    return frame.astype(np.float64) - level_offset(bits_stored, signed)


def unshift(values: np.ndarray, bits_stored: int, signed: bool, *, half_up: bool = False) -> np.ndarray:
    """float samples -> rounded (half to even; ``half_up``: an exact half up, as ISO 10918-1
    decoders round), clipped, storage-dtype pixels."""
    lo, hi = value_range(bits_stored, signed)
    shifted = values + level_offset(bits_stored, signed)
    out = np.floor(shifted + 0.5) if half_up else np.rint(shifted)
    np.clip(out, lo, hi, out=out)
    return out.astype(storage_dtype(bits_stored, signed))
