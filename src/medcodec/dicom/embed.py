"""The ``dcmh`` ancillary segment: the source DICOM headers carried inside a ``.mdc``.

A ``.mdc`` made from DICOM keeps every source header (without its pixel data), so
``medcodec decode --to dicom`` can write complete derived DICOM files from the ``.mdc``
alone. The codec treats the payload as opaque bytes; this module gives it meaning
(``docs/format.md`` §dcmh)::

    COUNT:u32
    COUNT x ( FIRST_FRAME:u32  N_FRAMES:u32  LENGTH:u32  DATASET:LENGTH bytes )

``DATASET`` is a DICOM Part 10 stream of the source header without Pixel Data: the
source file's own bytes up to the Pixel Data element when the reader kept them
(:attr:`DicomImage.header_bytes`, any transfer syntax, byte for byte), else the header
re-serialised as Explicit VR Little Endian. Entries are in frame order and cover the
frames of the container without gaps.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from ..errors import CorruptStreamError
from .pixel_spec import PIXEL_DATA_TAGS

__all__ = ["SEGMENT", "pack_headers", "unpack_headers"]

SEGMENT = "dcmh"
_ENTRY = struct.Struct("<III")


def _dataset_bytes(ds: Dataset) -> bytes:
    header = Dataset()
    for elem in ds:
        if elem.tag not in PIXEL_DATA_TAGS:
            header.add(elem)
    meta = FileMetaDataset()
    src_meta = getattr(ds, "file_meta", None)
    if src_meta is not None:
        for elem in src_meta:
            meta.add(elem)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "SOPClassUID" in header:
        meta.MediaStorageSOPClassUID = header.SOPClassUID
    if "SOPInstanceUID" in header:
        meta.MediaStorageSOPInstanceUID = header.SOPInstanceUID
    header.file_meta = meta
    buf = io.BytesIO()
    header.save_as(buf, enforce_file_format=False, little_endian=True, implicit_vr=False)
    return buf.getvalue()


def pack_headers(entries: Sequence[tuple[int, Dataset, bytes | None]]) -> bytes:
    """Serialise ``(n_frames, dataset, raw header bytes or None)``, in frame order, into a ``dcmh`` payload."""
    parts = [struct.pack("<I", len(entries))]
    first = 0
    for n_frames, ds, raw in entries:
        blob = raw if raw is not None else _dataset_bytes(ds)
        parts.append(_ENTRY.pack(first, n_frames, len(blob)) + blob)
        first += n_frames
    return b"".join(parts)


def unpack_headers(payload: bytes, n_frames_total: int) -> list[tuple[int, int, Dataset]]:
    """Parse a ``dcmh`` payload into ``(first_frame, n_frames, dataset)`` entries.

    Raises
    ------
    CorruptStreamError
        Lengths that overrun the payload, gaps in the frame coverage, unreadable datasets.
    """
    try:
        (count,) = struct.unpack_from("<I", payload, 0)
    except struct.error:
        raise CorruptStreamError("dcmh shorter than its count", segment=SEGMENT) from None
    pos = 4
    out: list[tuple[int, int, Dataset]] = []
    expected_first = 0
    for i in range(count):
        if pos + _ENTRY.size > len(payload):
            raise CorruptStreamError(f"dcmh entry {i} cut off", segment=SEGMENT, offset=pos)
        first, n, length = _ENTRY.unpack_from(payload, pos)
        pos += _ENTRY.size
        if first != expected_first or n < 1 or pos + length > len(payload):
            raise CorruptStreamError(
                f"dcmh entry {i} (frames {first}+{n}, {length} bytes) is inconsistent", segment=SEGMENT, offset=pos
            )
        try:
            ds = pydicom.dcmread(io.BytesIO(payload[pos : pos + length]), force=True)
        except Exception as exc:  # pydicom raises many types on garbage
            raise CorruptStreamError(
                f"dcmh entry {i} is not a readable DICOM header: {exc}", segment=SEGMENT, offset=pos
            ) from None
        out.append((first, n, ds))
        pos += length
        expected_first = first + n
    if expected_first != n_frames_total:
        raise CorruptStreamError(
            f"dcmh covers {expected_first} frames, the container has {n_frames_total}", segment=SEGMENT
        )
    return out
