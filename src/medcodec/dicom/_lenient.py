"""One policy for pydicom's value-validation warnings on attributes medcodec only carries.

pydicom validates each value against its VR when it converts it (on first access, on copy,
and when a value is assigned). Real files break the VR rules (``singles/ct_512x512_12bit_jpeg_lossless.dcm``
has a 64-character hash as SOP Instance UID and over-long SH values). medcodec neither
repairs nor judges such attributes: it reads identifiers as they are and copies them verbatim
into derived files. So, around exactly those conversions, :func:`source_values_as_is` silences
``UserWarning`` issued from ``pydicom.*`` modules, and nothing else. Pixel attributes still
fail loudly (as :class:`~medcodec.errors.DicomError`) when they cannot be parsed.

The filter is process-global before Python 3.14: it is kept this narrow for that reason, and set
through :func:`medcodec.warnfilter.filtered`, which leaves the filter list as it found it when
readers run in several threads (``catch_warnings`` did not: an outside audit, 2026-12-05).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..warnfilter import filtered

__all__ = ["source_values_as_is"]


@contextlib.contextmanager
def source_values_as_is() -> Iterator[None]:
    """Silence pydicom's value-validation ``UserWarning`` inside the block."""
    with filtered("ignore", UserWarning, r"pydicom\."):
        yield
