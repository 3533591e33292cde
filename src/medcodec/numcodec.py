"""medcodec as a numcodecs codec (``codec_id = "medcodec"``), for zarr and anything else that speaks numcodecs.

Registered through the ``numcodecs.codecs`` entry point (``pyproject.toml``), so after
``pip install medcodec``::

    >>> import numcodecs
    >>> codec = numcodecs.get_codec({"id": "medcodec", "bits_stored": 12, "quality": 90})
    >>> codec.get_config()["quality"], type(codec).__name__
    (90.0, 'MedcodecCodec')

``encode`` takes an integer array (one 2-D image or a ``(frames, rows, cols)`` stack, e.g. a zarr
chunk of one slice) and returns a ``.mdc`` (or JPEG) stream; ``decode`` returns the stored values
in their storage dtype and shape, into ``out`` when given. The codec is lossy (within the rate
target): store the original elsewhere when the exact values matter.

In zarr (format 2: ``compressor=``), one chunk per slice keeps every slice independently
readable::

    import zarr
    from medcodec.numcodec import MedcodecCodec
    z = zarr.create_array(store, shape=volume.shape, chunks=(1, *volume.shape[1:]), dtype=volume.dtype,
                          zarr_format=2, compressor=MedcodecCodec(bits_stored=12, quality=90))
    z[:] = volume
    one_slice = z[42]          # decodes one chunk only

(``numcodecs`` is imported when this module is, not by ``import medcodec``; it is installed with
medcodec, which registers this codec as its ``numcodecs.codecs`` entry point.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_ndarray_like, ndarray_copy

from .codec import decode, encode
from .codec.pipeline import FORMATS
from .errors import InvalidInputError
from .ratecontrol import RateTarget

__all__ = ["MedcodecCodec"]


class MedcodecCodec(Codec):  # type: ignore[misc]  # numcodecs ships no type information
    """numcodecs codec for 8-16-bit integer images (``.mdc`` or standard JPEG streams).

    Parameters
    ----------
    bits_stored
        Significant bits of the samples, 1..16 (never taken from the dtype).
    signed
        Two's complement samples; ``None`` takes the dtype's signedness at encode.
    quality, ratio, psnr
        At most one rate target (:class:`~medcodec.ratecontrol.RateTarget`); none: quality 75.
    format
        ``"mdc"`` (default: any depth, several frames per chunk) or ``"jpeg"`` (8/12-bit,
        unsigned, one 2-D image per chunk).

    Raises
    ------
    InvalidInputError
        Bad options (at construction), or an array the codec cannot take (at encode).
    """

    codec_id = "medcodec"

    def __init__(
        self,
        bits_stored: int,
        signed: bool | None = None,
        quality: float | None = None,
        ratio: float | None = None,
        psnr: float | None = None,
        format: str = "mdc",
    ):
        if (
            isinstance(bits_stored, bool)
            or not isinstance(bits_stored, (int, np.integer))
            or not 1 <= bits_stored <= 16
        ):
            raise InvalidInputError(f"bits_stored={bits_stored!r} is invalid, expected an integer 1..16")
        if signed is not None and not isinstance(signed, (bool, np.bool_)):
            raise InvalidInputError(f"signed={signed!r} must be true, false or None")
        if format not in FORMATS:
            raise InvalidInputError(f"format={format!r} is unknown, expected one of {FORMATS}")
        RateTarget(quality=quality, ratio=ratio, psnr=psnr)  # exactly one, in range
        self.bits_stored = int(bits_stored)
        self.signed = None if signed is None else bool(signed)
        # as Python numbers: a numpy scalar made get_config() unwritable as JSON (zarr: TypeError; an audit, 2026-12-03)
        self.quality, self.ratio, self.psnr = (None if v is None else float(v) for v in (quality, ratio, psnr))
        self.format = format

    def encode(self, buf: Any) -> bytes:
        """An integer array (2-D, or ``(frames, rows, cols)``; a leading axis of 1 is kept) -> stream."""
        arr = np.asarray(ensure_ndarray_like(buf))
        if self.format == "jpeg" and arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        return bytes(
            encode(
                np.ascontiguousarray(arr),
                bits_stored=self.bits_stored,
                signed=self.signed,
                quality=self.quality,
                ratio=self.ratio,
                psnr=self.psnr,
                format=self.format,
                jobs=1,
            )
        )

    def decode(self, buf: Any, out: Any = None) -> Any:
        """Stream -> stored values (storage dtype), copied into ``out`` when given (any shape with the
        same number of elements, as numcodecs does)."""
        data = bytes(memoryview(ensure_ndarray_like(buf)).cast("B"))
        arr = decode(data, jobs=1)
        return ndarray_copy(arr, out) if out is not None else arr

    def get_config(self) -> dict[str, Any]:
        """``{"id": "medcodec", "bits_stored": ..., ...}``: only the options that are set."""
        config: dict[str, Any] = {"id": self.codec_id, "bits_stored": self.bits_stored, "format": self.format}
        for key in ("signed", "quality", "ratio", "psnr"):
            value = getattr(self, key)
            if value is not None:
                config[key] = value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MedcodecCodec:
        """Inverse of :meth:`get_config` (an ``"id"`` key, if present, is ignored)."""
        return cls(**{k: v for k, v in config.items() if k != "id"})

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "id")
        return f"MedcodecCodec({options})"
