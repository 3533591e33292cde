"""The one exception and warning hierarchy of medcodec.

Every error medcodec raises on purpose derives from :class:`CodecError`, and each
subclass is also the matching builtin (``ValueError``, ``NotImplementedError``,
``FileNotFoundError``), so callers that already catch builtins keep working
(numcodecs / zarr style)::

    CodecError(Exception)
    ├── InvalidInputError(CodecError, ValueError)          bad array, bits_stored, option
    ├── UnsupportedFeatureError(CodecError, NotImplementedError)
    ├── CorruptStreamError(CodecError, ValueError)         .offset, .segment
    │   ├── TruncatedStreamError                           .expected, .available
    │   └── ChecksumMismatchError                          .expected, .actual
    ├── OutputError(CodecError, OSError)                   .path: an output cannot be written
    │   └── OutputExistsError(OutputError, InvalidInputError)  exists, no overwrite; or is an input
    └── DicomError(CodecError, ValueError)                 .path
        ├── NotAnImageError                                no Pixel Data
        ├── UnsupportedImageError(DicomError, NotImplementedError)  colour, palette, ...
        │   └── ImageTooLargeError                         over MEDCODEC_MAX_DECODED_MB decoded
        └── InputNotFoundError(DicomError, FileNotFoundError)
    └── DeliveryError(CodecError)                          store, presets, service (issue 9)
        ├── NotFoundError(DeliveryError, LookupError)      unknown study/series/instance (HTTP 404)
        ├── ConflictError(DeliveryError)                   same SOP Instance UID, other bytes (409)
        ├── InvalidUidError(DeliveryError, InvalidInputError)  not a DICOM UID (400)
        ├── PayloadTooLargeError(DeliveryError, ValueError)    over a size limit (413)
        ├── NotDicomError(DeliveryError, ValueError)       a body/file that is not DICOM (400/415)
        │   └── MismatchedUidError                         C-STORE data set not the one its request names (A900)
        ├── NotAcceptableError(DeliveryError, UnsupportedFeatureError)  no such rendition (406)
        ├── StoreFullError(DeliveryError, OSError)         no space left in the store (507)
        └── OutOfResourcesError(DeliveryError, OSError)    out of open files or memory, for now (503)

    NonConformantStreamWarning(UserWarning)
    ClippedValuesWarning(UserWarning)
    RateTargetWarning(UserWarning)
    DepthReducedWarning(UserWarning)
    PaddingWarning(UserWarning)
    LossySourceWarning(UserWarning)
    ClinicalUseWarning(UserWarning)

Messages say what, where, expected versus actual and, where there is one, the
section of the standard: ``"DQT at byte offset 212: Pq=2 is invalid, expected 0 or 1
(T.81 §B.2.4.1)"``.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "InvalidInputError",
    "UnsupportedFeatureError",
    "CorruptStreamError",
    "TruncatedStreamError",
    "ChecksumMismatchError",
    "OutputError",
    "OutputExistsError",
    "DicomError",
    "NotAnImageError",
    "UnsupportedImageError",
    "ImageTooLargeError",
    "InputNotFoundError",
    "NonConformantStreamWarning",
    "ClippedValuesWarning",
    "RateTargetWarning",
    "DepthReducedWarning",
    "PaddingWarning",
    "LossySourceWarning",
    "ClinicalUseWarning",
    "failure_message",
    "without_traceback",
    "DeliveryError",
    "NotFoundError",
    "ConflictError",
    "InvalidUidError",
    "PayloadTooLargeError",
    "NotDicomError",
    "MismatchedUidError",
    "NotAcceptableError",
    "StoreFullError",
    "OutOfResourcesError",
]


class CodecError(Exception):
    """Root of every error medcodec raises on purpose."""


class InvalidInputError(CodecError, ValueError):
    """The caller passed an array, ``bits_stored`` or option medcodec cannot encode."""


class UnsupportedFeatureError(CodecError, NotImplementedError):
    """Valid input that uses a feature medcodec does not implement (e.g. progressive JPEG)."""


class CorruptStreamError(CodecError, ValueError):
    """A stream is damaged or not conformant.

    Parameters
    ----------
    message
        What is wrong, expected versus actual.
    offset
        Byte offset in the stream where the problem was found, if known.
    segment
        Name of the segment or marker being read (``"HEAD"``, ``"SOS"``...), if known.
    """

    def __init__(self, message: str, *, offset: int | None = None, segment: str | None = None):
        self.offset = offset
        self.segment = segment
        where = []
        if segment is not None:
            where.append(segment)
        if offset is not None:
            where.append(f"at byte offset {offset}")
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TruncatedStreamError(CorruptStreamError):
    """The stream ends before the data its own fields announce."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        segment: str | None = None,
        expected: int | None = None,
        available: int | None = None,
    ):
        self.expected = expected
        self.available = available
        if expected is not None and available is not None:
            message = f"{message} (needs {expected} bytes, {available} available)"
        super().__init__(message, offset=offset, segment=segment)


class ChecksumMismatchError(CorruptStreamError):
    """A segment's CRC32 does not match its content."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        segment: str | None = None,
        expected: int | None = None,
        actual: int | None = None,
    ):
        self.expected = expected
        self.actual = actual
        if expected is not None and actual is not None:
            message = f"{message} (stored CRC32 0x{expected:08x}, computed 0x{actual:08x})"
        super().__init__(message, offset=offset, segment=segment)


class OutputError(CodecError, OSError):
    """An output cannot be written (read-only or missing folder, no space); ``.path`` names
    the folder or file, never a temporary file's name.

    It is not an input's fault: a batch stops on it instead of listing it as a failed input.
    """

    def __init__(self, message: str, *, path: object | None = None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def __str__(self) -> str:  # OSError's own __str__ would print the errno form
        return str(self.args[0]) if self.args else ""


class OutputExistsError(OutputError, InvalidInputError):
    """An output exists already and overwriting was not asked for, or it is one of the inputs
    (never overwritten). An :class:`OutputError` (a batch stops on it: the output is wrong, not
    an input) and, as before, an :class:`InvalidInputError` (``ValueError``).

    .. versionadded:: 0.1.0
    """


class DicomError(CodecError, ValueError):
    """A DICOM input cannot be used; ``.path`` names the file when there is one."""

    def __init__(self, message: str, *, path: object | None = None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


def failure_message(where: object, exc: BaseException) -> str:
    """One line for a failed input: ``"where: message"``, without naming ``where`` twice when the
    message already starts with it (as :class:`DicomError` messages do).

    >>> failure_message("a.dcm", DicomError("no Pixel Data", path="a.dcm"))
    'a.dcm: no Pixel Data'
    """
    text = str(exc)
    return text if text.startswith(str(where)) else f"{where}: {text}"


def without_traceback(text: str, limit: int = 2000) -> str:
    r"""A message fit for a client: cut where a Python traceback starts (pydicom puts one inside
    some of its messages, e.g. a failed element write), at most ``limit`` characters.

    >>> without_traceback("With tag (0008,0008) got exception: bad value\nTraceback (most recent call last):\n  File")
    'With tag (0008,0008) got exception: bad value'
    """
    cut = text.find("Traceback (most recent call last)")
    if cut >= 0:
        text = text[:cut]
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NotAnImageError(DicomError):
    """A DICOM file without Pixel Data (structured report, presentation state, ...)."""


class UnsupportedImageError(DicomError, NotImplementedError):
    """An image medcodec does not compress yet (colour, palette colour, float pixels...)."""


class ImageTooLargeError(UnsupportedImageError):
    """An object whose decoded pixels, inflated dataset or file would take more memory than one
    object may (:mod:`medcodec.dicom.limits`, ``MEDCODEC_MAX_DECODED_MB``): not read or decoded."""


class InputNotFoundError(DicomError, FileNotFoundError):
    """A path given as input does not exist."""


class DeliveryError(CodecError):
    """The store, a preset or the delivery service cannot do what was asked."""


class NotFoundError(DeliveryError, LookupError):
    """No study, series, instance, rendition or archive with that identifier (HTTP 404)."""


class ConflictError(DeliveryError):
    """A different object with the same SOP Instance UID is already stored (HTTP 409).

    ``.sop_instance_uid`` names it; the stored object is never overwritten.
    """

    def __init__(self, message: str, *, sop_instance_uid: str | None = None):
        self.sop_instance_uid = sop_instance_uid
        super().__init__(message)


class InvalidUidError(DeliveryError, InvalidInputError):
    """A value that is not a DICOM UID (PS3.5 §9.1) where one is required (HTTP 400)."""


class PayloadTooLargeError(DeliveryError, ValueError):
    """A request body or file over the configured size limit (HTTP 413)."""


class NotDicomError(DeliveryError, ValueError):
    """Bytes that are not a DICOM file (PS3.10) where one is required (HTTP 400/415)."""


class MismatchedUidError(NotDicomError):
    """A C-STORE data set that is another SOP Instance or SOP Class than its request names (DIMSE
    status 0xA900, PS3.4 B.2.3): nothing stored."""


class NotAcceptableError(DeliveryError, UnsupportedFeatureError):
    """A transfer syntax or preset the store cannot produce for this object (HTTP 406)."""


class StoreFullError(DeliveryError, OSError):
    """The store's storage has no space left (ENOSPC/EDQUOT); nothing half-written was kept (HTTP 507)."""


class OutOfResourcesError(DeliveryError, OSError):
    """This process ran out of something its other work shares (open files, memory): nothing is
    wrong with the request or the store; the same request later succeeds. HTTP 503 with
    Retry-After; DIMSE 0xA700 (Refused: Out of Resources)."""


class NonConformantStreamWarning(UserWarning):
    """A stream deviates from the standard in a way the decoder could recover from."""


class ClippedValuesWarning(UserWarning):
    """Pixel values were clipped to fit a target range (counted in the message). No path of this
    version issues it (values outside the declared range are refused: ``InvalidInputError``); kept
    for callers that filter it."""


class RateTargetWarning(UserWarning):
    """A rate target (``ratio``) could not be reached; the message names the ratio reached."""


class LossySourceWarning(UserWarning):
    """The source was already lossy-compressed (Lossy Image Compression "01"): errors add up."""


class ClinicalUseWarning(UserWarning):
    """A lossy copy of images that published guidance keeps lossless for primary reading (mammography:
    FDA MQSA), as the delivery presets do; written because it was asked for explicitly."""


class DepthReducedWarning(UserWarning):
    """A transfer syntax cannot hold the source's depth (e.g. 15-bit CR in 12-bit JPEG): stored
    values are divided before coding; the message names the factor and syntaxes that keep the depth."""


class PaddingWarning(UserWarning):
    """Padding could not be declared exactly after lossy coding (padding and image values overlap)."""
