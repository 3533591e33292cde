"""Reading a DICOM file's header from bytes, and its DICOM JSON (PS3.18 F.2) with bulk data URIs, for
ingest, presets and WADO-RS metadata / bulkdata;
the transfer syntax a stored file is really in, and the PS3.10 form of a preamble-less one."""

from __future__ import annotations

import contextlib
import io
import json
import re
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from ..dicom.image import PIXEL_ELEMENTS, check_pixel_data, peek_pixel_tag, read_deflated
from ..dicom.pixel_spec import stored_syntax
from ..dicom.write import stamp_writer
from ..errors import DicomError, ImageTooLargeError, InvalidInputError, NotDicomError, NotFoundError
from ..registry import pixel_data_compressed
from ..warnfilter import filtered, recorded

__all__ = [
    "BULK_PREFIX",
    "BULK_THRESHOLD",
    "read_header",
    "header_json",
    "element_json",
    "pixel_data_tag",
    "bulk_path",
    "bulk_value",
    "absolute_bulk_uris",
    "stored_syntax",
    "as_part10",
]

#: Binary elements whose base64 would be longer than this (characters) get a ``BulkDataURI``
#: (pydicom's ``to_json_dict`` threshold: values over 768 bytes); shorter ones are ``InlineBinary``.
BULK_THRESHOLD = 1024


def read_header(data: bytes, source: str) -> Dataset:
    """The dataset of a DICOM file (PS3.10, or a preamble-less dataset) without its pixel data.

    Raises
    ------
    NotDicomError
        Not DICOM, no SOP Class / SOP Instance UID (not a composite object), or a damaged or cut
        deflate stream.
    ImageTooLargeError
        A deflated dataset that would inflate past :mod:`medcodec.dicom.limits`' limit.

    A deflated dataset is inflated once (:func:`medcodec.dicom.image.read_deflated`); the dataset
    keeps it until :func:`check_complete` (which releases it), and its pixel data positions are in it.
    """
    try:
        with filtered():  # pydicom's complaints: why a data set came out empty is asked for below
            try:
                deflated = read_deflated(data, source, stop_before_pixels=True)
                fp: Any
                if deflated is not None:
                    ds, fp = deflated
                    ds._medcodec_inflated = fp.getvalue()
                else:
                    fp = io.BytesIO(data)
                    ds = dcmread(fp, stop_before_pixels=True)
            except DicomError:  # the inflate's own: too large, damaged
                raise
            except Exception:
                if len(data) < 132 or data[128:132] != b"DICM":
                    # a preamble-less dataset (PS3.10 allows none for media; some tools write them)
                    fp = io.BytesIO(data)
                    ds = dcmread(fp, stop_before_pixels=True, force=True)
                else:
                    raise
            ds._medcodec_pixel_tag = peek_pixel_tag(fp, ds)  # 4 bytes: where the header read stopped
            ds._medcodec_pixel_offset = fp.tell()  # where that element starts (check_complete)
    except ImageTooLargeError:
        raise
    except DicomError as exc:  # a damaged or cut deflate stream: a file whose data set cannot be read
        raise NotDicomError(f"{exc}: not stored; send or copy the whole file") from None
    except Exception as exc:  # pydicom's many error kinds
        if data[128:132] == b"DICM":  # a DICOM file that breaks or ends inside its data set
            raise _unreadable(source, exc) from exc
        raise NotDicomError(f"{source}: not a DICOM file ({type(exc).__name__}: {exc})") from exc
    if len(ds) == 0:
        if data[128:132] == b"DICM":  # a PS3.10 file whose data set pydicom gave up on: say where it stopped
            why = _why_empty(data, source)
            raise NotDicomError(f"{source}: a DICOM file whose data set cannot be read (malformed element): {why}")
        raise NotDicomError(f"{source}: not a DICOM file (no data elements)")
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        if data[128:132] != b"DICM":  # forced parse of something else (text, pixels): not DICOM at all
            raise NotDicomError(f"{source}: not a DICOM file (no SOP Class/Instance UID)")
        if str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")).strip() == "1.2.840.10008.1.3.10":
            raise NotDicomError(
                f"{source}: a DICOMDIR (Media Storage Directory): an index of files, not an instance; "
                "give it as an input of its own to ingest the files it lists"
            )
        raise NotDicomError(
            f"{source}: a DICOM dataset without SOP Class and SOP Instance UID, not a storable instance "
            "(PS3.3 C.12.1: a composite instance names both in its dataset, file meta alone is not enough)"
        )
    try:  # every top-level element now (pydicom reads a sequence when first asked): a header cut inside
        # one is refused here; its OSError reached ingest as a storage failure and stopped a whole batch
        with filtered():
            for _ in ds:
                pass
    except Exception as exc:  # an outside audit, 2026-12-04: pydicom's rtdose.dcm cut at 1418 bytes
        raise _unreadable(source, exc) from None
    return ds


def _unreadable(source: str, exc: BaseException) -> NotDicomError:
    return NotDicomError(
        f"{source}: a DICOM file whose data set cannot be read: it ends or breaks inside an element "
        f"({type(exc).__name__}: {exc})"
    )


def check_complete(data: bytes, ds: Dataset, source: str) -> None:
    """Refuse a file whose pixel data ((7FE0,0010), or the float (7FE0,0008) / (7FE0,0009)) is cut
    short, for ``ds`` from :func:`read_header` (:func:`medcodec.dicom.image.check_pixel_data`):
    stored byte for byte, an interrupted copy would
    be served as the instance, and the complete file sent later refused as a conflict.

    Raises
    ------
    NotDicomError
        The pixel data is incomplete: how many bytes there are and how many are needed.
    """
    tag = getattr(ds, "_medcodec_pixel_tag", None)
    # a deflated file's positions are in its inflated dataset, kept by read_header for this check only
    data = vars(ds).pop("_medcodec_inflated", data)
    try:
        if tag is None:
            _check_cut_without_pixels(data, ds, source)
        elif tag in PIXEL_ELEMENTS:  # Pixel Data, or Float / Double Float Pixel Data (parametric maps)
            fp = io.BytesIO(data)
            fp.seek(ds._medcodec_pixel_offset)
            check_pixel_data(fp, ds, source, tag)
    except DicomError as exc:
        raise NotDicomError(
            f"{source}: an incomplete DICOM file ({str(exc).removeprefix(source + ': ')}): not stored; "
            "send or copy the whole file"
        ) from None


#: Pixel Data Provider URL (JPIP: the pixels are elsewhere) and MR Spectroscopy Data: objects with
#: image dimensions and no pixel data element that are whole.
_PIXELS_ELSEWHERE = (0x00287FE0, 0x56000020)
#: The (7FE0,0010) tag as it starts the element, little and big endian.
_PIXEL_TAG_BYTES = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def _check_cut_without_pixels(data: bytes, ds: Dataset, source: str) -> None:
    """A file without a pixel data element that ends inside an element header (bytes after its last
    element, or the pixel data tag among its last 7 bytes) is a copy cut there (an outside audit's re-check,
    2026-12-04: such cuts were stored, and blocked the whole file); ``data`` of a deflated file is its
    inflated dataset. A file that ends exactly before its pixel data,
    or inside its header, reads like a header-only file (test files, exports without pixels) and is
    stored; a whole copy sent later is a conflict whose message says so (:func:`lacks_pixels`).

    Raises
    ------
    DicomError
        What is missing.
    """
    left = len(data) - int(getattr(ds, "_medcodec_pixel_offset", len(data)))
    if 0 < left < 8:  # bytes after the last element that make no element header: the file ends in one
        raise DicomError(f"truncated: the file ends inside an element header ({left} of its bytes)", path=source)
    for tag in _PIXEL_TAG_BYTES:
        for n in range(2, 8):  # the reader took (part of) the pixel data element's tag, then met the end
            if left == 0 and (data[-n:][:4] == tag if n >= 4 else data[-n:] == tag[:n]):
                raise DicomError(
                    f"truncated: the file ends inside the (7FE0,0010) Pixel Data element header ({n} of its bytes)",
                    path=source,
                )


def lacks_pixels(ds: Dataset) -> bool:
    """Whether ``ds`` (from :func:`read_header`) declares an image (Rows, Columns and Bits Allocated, or
    an Image Storage SOP class) but holds no pixel data element nor says where its pixels are."""
    if getattr(ds, "_medcodec_pixel_tag", None) is not None or any(tag in ds for tag in _PIXELS_ELSEWHERE):
        return False
    if all(keyword in ds for keyword in ("Rows", "Columns", "BitsAllocated")):
        return True
    sop_class = UID(str(ds.get("SOPClassUID", "") or ""))
    return sop_class.is_valid and sop_class.name.endswith("Image Storage")


def pixel_data_tag(ds: Dataset) -> int | None:
    """Which pixel data element (:data:`~medcodec.dicom.PIXEL_DATA_TAGS`) the file has, if any, for
    ``ds`` from :func:`read_header`: the element its header read stopped at (in a deflated file's
    inflated dataset). For ingest and reindex, which name the pixel data in the stored header
    (:func:`header_json`)."""
    return getattr(ds, "_medcodec_pixel_tag", None)


def header_json(ds: Dataset, pixel_tag: int | None = None) -> dict[str, Any]:
    """The header as DICOM JSON (PS3.18 F.2). A binary element (OB, OW, UN...) longer than
    :data:`BULK_THRESHOLD` bytes of base64 has a ``BulkDataURI`` instead of its value, relative to
    the instance (:data:`BULK_PREFIX` + its :func:`bulk_path`, in sequences too); the server makes
    it absolute (:func:`absolute_bulk_uris`). Group 0002 is left out; the pixel data (not in a
    :func:`read_header` dataset) is named by URI when ``pixel_tag`` (:func:`pixel_data_tag`) says
    which element the file has."""
    with filtered():
        out = _dataset_json(ds, ())
    if pixel_tag is not None:
        out[f"{pixel_tag:08X}"] = {"vr": _pixel_vr(ds, pixel_tag), "BulkDataURI": f"{BULK_PREFIX}{pixel_tag:08X}"}
    return out


def _pixel_vr(ds: Dataset, tag: int) -> str:
    """The VR of a pixel data element in DICOM JSON: OF / OD for float pixels; OB when
    encapsulated or 8-bit, else OW (PS3.5 §8.1.2, A.4)."""
    if tag != 0x7FE00010:
        return "OF" if tag == 0x7FE00008 else "OD"
    encapsulated = pixel_data_compressed(stored_syntax(ds))  # a private or unknown syntax too
    try:
        bits = int(ds.get("BitsAllocated") or 16)
    except (TypeError, ValueError):
        bits = 16
    return "OB" if encapsulated or bits <= 8 else "OW"


def _dataset_json(ds: Dataset, path: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for element in ds:
        tag = f"{element.tag:08X}"
        if element.tag.group == 0x0002 or element.tag == 0xFFFCFFFC or (not path and element.tag.group == 0x7FE0):
            continue
        try:
            if element.VR == "SQ":
                items = [_dataset_json(item, (*path, tag, str(i))) for i, item in enumerate(element.value, 1)]
                out[tag] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
                continue
            value = element_json(element, _BulkUri(BULK_PREFIX + "/".join((*path, tag))))
        except Exception:
            continue  # a value pydicom cannot express in JSON (a damaged element) is left out
        out[tag] = value
    return out


def element_json(element: Any, bulk_handler: Any = None) -> dict[str, Any]:
    """One element as DICOM JSON (pydicom's ``to_json_dict``, values over :data:`BULK_THRESHOLD`
    bytes through ``bulk_handler``), with an empty value among several as ``null`` (PS3.18 F.2.5:
    pydicom writes ``""``, e.g. ``["", "ISO 2022 IR 87"]`` for a Specific Character Set)."""
    value = element.to_json_dict(bulk_handler, BULK_THRESHOLD)
    values = value.get("Value")
    if isinstance(values, list) and len(values) > 1 and "" in values:
        value["Value"] = [None if v == "" else v for v in values]
    return value


class _BulkUri:
    """pydicom's bulk data handler: the element's URI, known before the call."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __call__(self, _element: Any) -> str:
        return self.uri


#: What a stored header's ``BulkDataURI`` starts with: the resource relative to the instance's URL
#: (``.../instances/{sop}/bulkdata/{path}``).
BULK_PREFIX = "bulkdata/"
_BULK_PATH = re.compile(r"[0-9A-F]{8}(/[1-9][0-9]{0,5}/[0-9A-F]{8}){0,8}")  # fullmatch: no "\n" at the end


def bulk_path(text: str) -> list[tuple[int, int]]:
    """A bulk data path (``TTTTTTTT`` or ``SSSSSSSS/item/TTTTTTTT...``, tags in hex, items from 1)
    as (tag, item) pairs, the last item 0.

    Raises
    ------
    InvalidInputError
        Not such a path.
    """
    text = text.upper()
    if not _BULK_PATH.fullmatch(text):
        raise InvalidInputError(
            f"bulk data path {text[:80]!r}: expected a tag in hex, or sequence tag / item number / tag ..."
        )
    parts = text.split("/")
    return [(int(parts[i], 16), int(parts[i + 1]) if i + 1 < len(parts) else 0) for i in range(0, len(parts), 2)]


def bulk_value(ds: Dataset, path: str) -> tuple[bytes, str]:
    """The value of the binary element at ``path`` (:func:`bulk_path`) in ``ds``, little endian,
    and its VR. An Encapsulated Document is cut to its Encapsulated Document Length (PS3.3
    C.24.2: the value is padded to even length).

    Raises
    ------
    InvalidInputError
        A malformed path.
    NotFoundError
        No binary element there.
    """
    where: Dataset = ds
    steps = bulk_path(path)
    for tag, item in steps[:-1]:
        element = where.get(tag)
        if element is None or element.VR != "SQ" or not 1 <= item <= len(element.value):
            raise NotFoundError(f"no bulk data at {path}: no item {item} of ({tag >> 16:04X},{tag & 0xFFFF:04X})")
        where = element.value[item - 1]
    tag = steps[-1][0]
    element = where.get(tag)
    if element is None or not isinstance(element.value, (bytes, bytearray)):
        raise NotFoundError(f"no bulk data at {path}: no binary element ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    value = bytes(element.value)
    width = _WORD.get(element.VR, 1)
    if width > 1 and not ds.original_encoding[1] and len(value) % width == 0:  # big endian: words to LE
        value = np.frombuffer(value, f">u{width}").astype(f"<u{width}").tobytes()
    if tag == 0x00420011 and len(steps) == 1:
        length = where.get(0x00420015)
        if length is not None and isinstance(length.value, int) and 0 <= length.value <= len(value):
            value = value[: length.value]
    return value, str(element.VR)


#: Bytes per word of the binary VRs whose values a big-endian file stores swapped (PS3.5 §7.3).
_WORD = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def absolute_bulk_uris(header_text: str, instance_url: str) -> str:
    """A stored header (JSON text) with its relative ``BulkDataURI`` values made absolute under
    ``instance_url`` (``.../studies/{s}/series/{se}/instances/{sop}``). A header stored before
    2026-12-01 had none at the top level (such elements were left out) and ``""`` in sequences:
    those are left out too, not served as URIs that point nowhere. An empty ``instance_url``
    leaves the URIs relative."""
    if '"BulkDataURI":""' in header_text:
        header_text = json.dumps(_without_empty_uris(json.loads(header_text)), separators=(",", ":"))
    if not instance_url:
        return header_text
    prefix = json.dumps(instance_url.rstrip("/") + "/" + BULK_PREFIX)[1:-1]  # escaped for a JSON string
    return header_text.replace('"BulkDataURI":"' + BULK_PREFIX, '"BulkDataURI":"' + prefix)


def _why_empty(data: bytes, source: str) -> str:
    """pydicom's warning on giving up on the data set of ``data``: read once more, recording
    (:func:`medcodec.warnfilter.recorded`; a rare path)."""
    with recorded() as said:
        with contextlib.suppress(Exception):
            if read_deflated(data, source, stop_before_pixels=True) is None:
                dcmread(io.BytesIO(data), stop_before_pixels=True)
    return next((str(w.message) for w in said), "no data element could be read")


def _without_empty_uris(header: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for tag, value in header.items():
        if value.get("BulkDataURI") == "":
            continue
        if value.get("vr") == "SQ" and "Value" in value:
            value = {**value, "Value": [_without_empty_uris(item) for item in value["Value"]]}
        out[tag] = value
    return out


def as_part10(data: bytes, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """``data`` as a PS3.10 file: unchanged when it is one, else a preamble and a file meta (the
    given UIDs; ``transfer_syntax`` as :func:`stored_syntax` found it) put before its dataset
    bytes, which stay as they are (any group 0002 elements it began with are replaced).

    DICOMweb's ``application/dicom`` and a file in an archive a viewer opens are PS3.10 files
    (PS3.18 §8.7.3.5.1; PS3.10 §7.1); a preamble-less dataset is not one."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return data
    fp = io.BytesIO(data)
    with filtered():
        _read_file_meta_info(fp)  # skips the group 0002 elements a preamble-less file may start with
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    stamp_writer(meta)
    out = DicomBytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    out.write(data[fp.tell() :])
    return out.getvalue()


def relabel_syntax(data: bytes, transfer_syntax: str) -> bytes:
    """The PS3.10 file ``data`` with its file meta's Transfer Syntax UID (0002,0010) set to
    ``transfer_syntax``, every other byte as it was (the group length recomputed): for pixel data
    valid under both syntaxes, such as a lossless JPEG 2000 codestream written as .90 and asked for
    as .91, which may be lossless or lossy (PS3.5 §A.4.4; HTJ2K .201 and .203 likewise, §A.4.x)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise InvalidInputError("not a PS3.10 file: no DICM prefix")
    fp = io.BytesIO(data)
    fp.seek(132)
    with filtered():
        meta = _read_file_meta_info(fp)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    stamp_writer(meta)
    out = DicomBytesIO()
    out.write(data[:132])
    write_file_meta_info(out, meta, enforce_standard=True)
    out.write(data[fp.tell() :])
    return out.getvalue()


def baseline_as_extended(data: bytes) -> bytes:
    """The PS3.10 file ``data``, JPEG Baseline ``.50``, as JPEG Extended ``.51``: each frame's SOF0
    marker made SOF1 (:func:`medcodec.dicom.codestream.mark_extended`, as :func:`medcodec.dicom.compress`
    writes ``.51``) and the syntax relabelled (:func:`relabel_syntax`). DCMTK's ``dcmcjpeg +ee``
    writes 8-bit ``.51`` the same way; a client
    asking for ``.51`` (Orthanc answers it for 8-bit images) got 406 before 2026-12-02.

    Raises
    ------
    InvalidInputError
        ``data`` holds no encapsulated pixel data whose frames are JPEG codestreams.
    """
    from pydicom.encaps import parse_basic_offsets, parse_fragments

    from ..dicom.codestream import mark_extended
    from ..dicom.write import JPEG_EXTENDED

    with filtered():
        ds = dcmread(io.BytesIO(data), force=True)
    element = ds.get_item(0x7FE00010) if "PixelData" in ds else None
    start = getattr(element, "value_tell", None)
    if element is None or start is None or getattr(element, "length", 0) != 0xFFFFFFFF:
        raise InvalidInputError("no encapsulated pixel data to relabel as JPEG Extended")
    out = bytearray(data)
    value = memoryview(out)[start:]
    fp = io.BytesIO(value)
    parse_basic_offsets(fp)
    _, offsets = parse_fragments(fp)
    patched = 0
    for offset in offsets:  # each fragment's item tag; its value 8 bytes on
        body = value[offset + 8 :]
        if bytes(body[:2]) != b"\xff\xd8":  # a continuation fragment of a frame
            continue
        if not mark_extended(body):
            raise InvalidInputError("a frame is not a baseline or extended JPEG codestream")
        patched += 1
    if not patched:
        raise InvalidInputError("no JPEG frame in the pixel data")
    return relabel_syntax(bytes(out), JPEG_EXTENDED)
