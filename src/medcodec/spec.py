"""PixelSpec: what the stored pixel values mean, independent of any file format.

The codec, the ``.mdc`` header and the DICOM layer all describe pixels with this one
frozen dataclass. Field names follow pydicom's keywords in snake_case. ``bits_stored``
is always explicit: it is never guessed from a NumPy dtype (a 12-bit CT arrives in a
``uint16`` array whose dtype says 16).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InvalidInputError

__all__ = ["PixelSpec", "PHOTOMETRIC_INTERPRETATIONS", "value_range", "storage_dtype", "raw_bytes_per_pixel"]

#: Photometric interpretations the codec accepts (grayscale only).
PHOTOMETRIC_INTERPRETATIONS = ("MONOCHROME2", "MONOCHROME1")


def value_range(bits_stored: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest value representable with ``bits_stored`` bits.

    >>> value_range(12, False)
    (0, 4095)
    >>> value_range(12, True)
    (-2048, 2047)
    """
    if signed:
        return -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    return 0, (1 << bits_stored) - 1


def storage_dtype(bits_stored: int, signed: bool) -> np.dtype:
    """The NumPy dtype decoded pixels are returned in (8 bits -> 1 byte, else 2 bytes)."""
    if bits_stored <= 8:
        return np.dtype(np.int8 if signed else np.uint8)
    return np.dtype(np.int16 if signed else np.uint16)


def raw_bytes_per_pixel(bits_stored: int) -> int:
    """Bytes one uncompressed pixel takes: 1 for ``bits_stored <= 8``, else 2.

    How the pixels sit in memory (:func:`storage_dtype`) and in uncompressed DICOM: the raw
    size every compression ratio medcodec prints is computed against.

    >>> raw_bytes_per_pixel(8), raw_bytes_per_pixel(12), raw_bytes_per_pixel(16)
    (1, 2, 2)
    """
    if not 1 <= int(bits_stored) <= 16:
        raise InvalidInputError(f"bits_stored={bits_stored!r} is invalid, expected 1..16")
    return storage_dtype(int(bits_stored), False).itemsize


@dataclass(frozen=True)
class PixelSpec:
    """Meaning of stored pixel values.

    Parameters
    ----------
    bits_stored
        Significant bits per sample, 8 to 16 for the codec (DICOM (0028,0101)).
    signed
        Two's complement samples (DICOM Pixel Representation (0028,0103) = 1).
    photometric_interpretation
        ``"MONOCHROME2"`` (higher is brighter) or ``"MONOCHROME1"``.
    rescale_slope, rescale_intercept
        Output units (HU for CT) = stored * slope + intercept.
    window_center, window_width
        Default display window in output units, or ``None``.
    rescale_type
        DICOM Rescale Type (``"HU"``, ``"US"``...) or ``""``.
    """

    bits_stored: int
    signed: bool = False
    photometric_interpretation: str = "MONOCHROME2"
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    window_center: float | None = None
    window_width: float | None = None
    rescale_type: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (
            isinstance(self.bits_stored, (bool, np.bool_))
            or not isinstance(self.bits_stored, (int, np.integer))
            or not 1 <= self.bits_stored <= 16
        ):
            raise InvalidInputError(f"bits_stored={self.bits_stored!r} is invalid, expected 1..16")
        # a numpy integer (a header read by h5py or nibabel: np.uint8(12)) as a Python int: 1 << 12
        # in uint8 overflowed, and max_value / peak were 255 (an outside audit, 2026-12-03)
        object.__setattr__(self, "bits_stored", int(self.bits_stored))
        if not isinstance(self.signed, (bool, np.bool_)):
            raise InvalidInputError(f"signed={self.signed!r} must be True or False")
        object.__setattr__(self, "signed", bool(self.signed))
        if self.photometric_interpretation not in PHOTOMETRIC_INTERPRETATIONS:
            raise InvalidInputError(
                f"photometric_interpretation={self.photometric_interpretation!r} is not supported, "
                f"expected one of {PHOTOMETRIC_INTERPRETATIONS}"
            )
        if not np.isfinite(self.rescale_slope) or self.rescale_slope == 0:
            raise InvalidInputError(f"rescale_slope={self.rescale_slope!r} must be finite and non-zero")
        if not np.isfinite(self.rescale_intercept):
            raise InvalidInputError(f"rescale_intercept={self.rescale_intercept!r} must be finite")

    @property
    def pixel_representation(self) -> int:
        """DICOM (0028,0103): 1 for signed samples, 0 for unsigned."""
        return int(self.signed)

    @property
    def min_value(self) -> int:
        return value_range(self.bits_stored, self.signed)[0]

    @property
    def max_value(self) -> int:
        return value_range(self.bits_stored, self.signed)[1]

    @property
    def peak(self) -> int:
        """PSNR peak: 2**bits_stored - 1."""
        return (1 << self.bits_stored) - 1

    def to_output_units(self, stored: np.ndarray) -> np.ndarray:
        """Apply the modality rescale: stored values -> HU (or other output units), float64."""
        return stored.astype(np.float64) * self.rescale_slope + self.rescale_intercept

    def replace(self, **changes: Any) -> PixelSpec:
        return replace(self, **changes)
