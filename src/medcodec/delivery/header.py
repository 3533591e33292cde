"""Reading a DICOM file's header from bytes, and its DICOM JSON (PS3.18 F.2), for ingest and presets;
the transfer syntax a stored file is really in, and the PS3.10 form of a preamble-less one."""

from __future__ import annotations

import io
import warnings
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from ..errors import NotDicomError

__all__ = ["BULK_THRESHOLD", "read_header", "header_json", "stored_syntax", "as_part10"]

#: The transfer syntax of a dataset read without one in its file meta, by the encoding pydicom
#: found in its first elements: (implicit VR, little endian) -> UID (PS3.5 §A.1, A.2, A.3).
_ENCODINGS = {
    (True, True): "1.2.840.10008.1.2",
    (False, True): "1.2.840.10008.1.2.1",
    (False, False): "1.2.840.10008.1.2.2",
}

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
    if len(ds) == 0:
        raise NotDicomError(f"{source}: not a DICOM file (no data elements)")
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        if data[128:132] != b"DICM":  # forced parse of something else (text, pixels): not DICOM at all
            raise NotDicomError(f"{source}: not a DICOM file (no SOP Class/Instance UID)")
        raise NotDicomError(
            f"{source}: a DICOM dataset without SOP Class and SOP Instance UID, not a storable instance "
            "(PS3.3 C.12.1: a composite instance names both in its dataset, file meta alone is not enough)"
        )
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


def stored_syntax(ds: Dataset) -> str:
    """The transfer syntax ``ds`` was read in: its file meta's, else the encoding pydicom detected.

    A preamble-less dataset (an ACR-NEMA-era file, some tools' output) has no file meta to name
    its transfer syntax; it is not always Implicit VR Little Endian: pydicom's test file
    ``ExplVR_BigEndNoMeta.dcm`` is Explicit VR Big Endian. Until 2026-12-01 such a file was
    catalogued as Implicit VR LE whatever it was, and served under that label."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return str(meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    return _ENCODINGS.get((bool(implicit), bool(little)), _ENCODINGS[(True, True)])


def as_part10(data: bytes, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """``data`` as a PS3.10 file: unchanged when it is one, else a preamble and a file meta (the
    given UIDs; ``transfer_syntax`` as :func:`stored_syntax` found it) put before its dataset
    bytes, which stay as they are (any group 0002 elements it began with are replaced).

    DICOMweb's ``application/dicom`` and a file in an archive a viewer opens are PS3.10 files
    (PS3.18 §8.7.3.5.1; PS3.10 §7.1); a preamble-less dataset is not one."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return data
    fp = io.BytesIO(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _read_file_meta_info(fp)  # skips the group 0002 elements a preamble-less file may start with
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out = DicomBytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    out.write(data[fp.tell() :])
    return out.getvalue()
