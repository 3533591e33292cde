"""Reading a DICOM file's header from bytes, and its DICOM JSON (PS3.18 F.2), for ingest and presets."""

from __future__ import annotations

import io
import warnings
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from ..errors import NotDicomError

__all__ = ["BULK_THRESHOLD", "read_header", "header_json"]

#: Elements of the stored header JSON longer than this (bytes) are left out (bulk data).
BULK_THRESHOLD = 1024


def read_header(data: bytes, source: str) -> Dataset:
    """The dataset of a DICOM file (PS3.10, or a preamble-less dataset) without its pixel data.

    Raises
    ------
    NotDicomError
        Not DICOM, or no SOP Class / SOP Instance UID (not a composite object).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
            except Exception:
                if len(data) < 132 or data[128:132] != b"DICM":
                    # a preamble-less dataset (PS3.10 allows none for media; some tools write them)
                    ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
                else:
                    raise
    except Exception as exc:  # pydicom's many error kinds
        raise NotDicomError(f"{source}: not a DICOM file ({type(exc).__name__}: {exc})") from exc
    if len(ds) == 0 or ("SOPClassUID" not in ds and "SOPInstanceUID" not in ds):
        raise NotDicomError(f"{source}: not a DICOM file (no SOP Class/Instance UID: not a DICOM composite object)")
    return ds


def header_json(ds: Dataset) -> dict[str, Any]:
    """The header as DICOM JSON, elements longer than :data:`BULK_THRESHOLD` bytes left out."""
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for element in ds:
            if element.tag.group in (0x0002, 0x7FE0) or element.tag == 0xFFFCFFFC:
                continue
            try:
                value = element.to_json_dict(lambda e: "", BULK_THRESHOLD)
            except Exception:
                continue
            if "BulkDataURI" in value:
                continue
            out[f"{element.tag:08X}"] = value
    return out
