"""Level shift and range handling (array -> array).

T.81 §A.3.1 shifts unsigned P-bit samples by 2**(P-1) so they are centred on zero
before the DCT. Signed samples are already centred and are not shifted. On decode the
inverse shift is applied, values are rounded and clipped to the declared range
(``bits_stored``, ``signed``), and cast to the storage dtype.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..spec import storage_dtype, value_range

__all__ = ["level_offset", "shift", "unshift", "check_range", "range_bits"]


def level_offset(bits_stored: int, signed: bool) -> int:
    """The value subtracted before the DCT: 2**(P-1) for unsigned, 0 for signed data."""
    return 0 if signed else 1 << (bits_stored - 1)


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


def shift(frame: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Integer pixels -> float64 centred on zero."""
    return frame.astype(np.float64) - level_offset(bits_stored, signed)


def unshift(values: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """float samples -> rounded, clipped, storage-dtype pixels."""
    lo, hi = value_range(bits_stored, signed)
    out = np.rint(values + level_offset(bits_stored, signed))
    np.clip(out, lo, hi, out=out)
    return out.astype(storage_dtype(bits_stored, signed))
