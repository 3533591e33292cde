"""medcodec: block-DCT lossy compression for 8-16-bit medical images.

``import medcodec`` loads the error classes only; the codec (NumPy, numba) is imported on first use
of ``medcodec.encode`` and the other names (:func:`__getattr__`), and a subpackage on first use of
``medcodec.dicom`` etc. The command line can so answer a Ctrl-C in its first second (the imports)
with "interrupted", not a traceback (an outside audit of interruption, 2026-12-05)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from . import _jitcache  # noqa: F401  (first: where numba caches, before any kernel module is compiled)
from ._version import __version__
from .errors import (
    ChecksumMismatchError,
    ClippedValuesWarning,
    CodecError,
    CorruptStreamError,
    DepthReducedWarning,
    DicomError,
    ImageTooLargeError,
    InputNotFoundError,
    InvalidInputError,
    LossySourceWarning,
    NonConformantStreamWarning,
    NotAnImageError,
    OutputError,
    OutputExistsError,
    PaddingWarning,
    RateTargetWarning,
    TruncatedStreamError,
    UnsupportedFeatureError,
    UnsupportedImageError,
)

if TYPE_CHECKING:  # imported on first use (__getattr__); named here for type checkers and readers
    from .codec import MdcHeader, decode, encode, is_codestream, read_header
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
    "ImageTooLargeError",
    "NonConformantStreamWarning",
    "ClippedValuesWarning",
    "RateTargetWarning",
    "DepthReducedWarning",
    "PaddingWarning",
    "LossySourceWarning",
    "__version__",
]

#: The names :func:`__getattr__` imports on first use, and their modules.
_LAZY = {
    "encode": ".codec",
    "decode": ".codec",
    "read_header": ".codec",
    "is_codestream": ".codec",
    "MdcHeader": ".codec",
    "PixelSpec": ".spec",
}


def __getattr__(name: str) -> Any:
    """The codec's names (:data:`_LAZY`) and the subpackages (``medcodec.dicom``...), imported on
    first use (PEP 562) and kept as module attributes."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
    elif name.isidentifier() and not name.startswith("__"):  # ("a.b", "": no attribute, not an import)
        try:
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # a subpackage that is there lacks something it imports: say what
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
