"""medcodec: block-DCT lossy compression for 8-16-bit medical images."""

from __future__ import annotations

from . import _jitcache  # noqa: F401  (first: where numba caches, before any kernel module is compiled)
from ._version import __version__
from .codec import MdcHeader, decode, encode, is_codestream, read_header
from .errors import (
    ChecksumMismatchError,
    ClippedValuesWarning,
    CodecError,
    CorruptStreamError,
    DicomError,
    InputNotFoundError,
    InvalidInputError,
    NonConformantStreamWarning,
    NotAnImageError,
    OutputError,
    OutputExistsError,
    TruncatedStreamError,
    UnsupportedFeatureError,
    UnsupportedImageError,
)
from .spec import PixelSpec

__all__ = [
    "encode",
    "decode",
    "read_header",
    "is_codestream",
    "MdcHeader",
    "PixelSpec",
    "CodecError",
    "InvalidInputError",
    "UnsupportedFeatureError",
    "CorruptStreamError",
    "TruncatedStreamError",
    "ChecksumMismatchError",
    "DicomError",
    "NotAnImageError",
    "UnsupportedImageError",
    "InputNotFoundError",
    "OutputError",
    "OutputExistsError",
    "NonConformantStreamWarning",
    "ClippedValuesWarning",
    "__version__",
]
