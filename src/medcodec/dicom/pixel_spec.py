"""PixelSpec from a DICOM header: what the stored values mean, read from attributes only.

:func:`pixel_spec_from_dataset` never touches pixel data, so it works on a dataset read with
``stop_before_pixels=True`` (see :mod:`medcodec.dicom.io`), which is how series are scanned.

Where the values come from (PS3.3):

* Image Pixel module (C.7.6.3): Samples per Pixel (0028,0002), Photometric Interpretation
  (0028,0004), Bits Allocated (0028,0100), Bits Stored (0028,0101), Pixel Representation
  (0028,0103). All are Type 1: a missing one is a :class:`~medcodec.errors.DicomError`.
* Modality LUT (C.11.1): Rescale Slope/Intercept/Type (0028,1053/1052/1054); VOI LUT (C.11.2):
  Window Center/Width (0028,1050/1051). Multi-valued windows keep the first value (the
  default the modality chose). Enhanced multi-frame objects carry them in the Shared, else the
  first Per-frame, Functional Group (C.7.6.16.2.9 Pixel Value Transformation, C.7.6.16.2.10
  Frame VOI LUT); top-level attributes win when both exist.
* Missing rescale means identity (slope 1, intercept 0). A CT without Rescale Type gets
  ``"HU"``: the CT Image module defines its output units as Hounsfield units (C.8.2.1.1.6).

What medcodec refuses (:class:`~medcodec.errors.UnsupportedImageError`): colour and palette
images, Samples per Pixel other than 1, float pixel data, Bits Allocated other than 8 or 16 and
Bits Stored above 16. A dataset without any pixel data element raises
:class:`~medcodec.errors.NotAnImageError`.

``PixelSpec.extra`` carries header facts later stages need but that are not part of the pixel
meaning: ``bits_allocated``, ``high_bit``, ``rows``, ``columns``, ``number_of_frames``,
``modality``, ``transfer_syntax_uid`` (:func:`stored_syntax`), ``syntax_in_file_meta`` (False for
a file without file meta: pydicom decodes its pixels only from a dataset told the syntax) and,
for enhanced objects whose frames disagree, ``rescale_varies_per_frame=True``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import dictionary_description
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from ..errors import DicomError, InvalidInputError, NotAnImageError, UnsupportedImageError
from ..spec import PHOTOMETRIC_INTERPRETATIONS, PixelSpec

__all__ = ["pixel_spec_from_dataset", "spec_from_header", "PIXEL_DATA_TAGS", "describe_tag", "stored_syntax",
           "with_stored_syntax"]  # fmt: skip

#: The transfer syntax of a data set without file meta, by the encoding pydicom found in its first
#: elements (``original_encoding``: implicit VR, little endian; PS3.5 §A.1, A.2, A.3): :func:`stored_syntax`.
_ENCODINGS = {
    (True, True): "1.2.840.10008.1.2",
    (False, True): "1.2.840.10008.1.2.1",
    (False, False): "1.2.840.10008.1.2.2",
}


def stored_syntax(ds: Dataset) -> str:
    """The transfer syntax ``ds`` was read in: its file meta's, else the encoding pydicom detected
    (Implicit VR Little Endian, the DICOM default, for a data set made in memory).

    A preamble-less dataset (an ACR-NEMA-era file, ``dcmconv -F``'s output) has no file meta to
    name its transfer syntax; it is not always Implicit VR Little Endian: pydicom's test file
    ``ExplVR_BigEndNoMeta.dcm`` is Explicit VR Big Endian. Until 2026-12-01 such a file was
    catalogued as Implicit VR LE whatever it was, and served under that label; until 2026-12-06
    ``encode``, ``evaluate`` and the server's transcodes could not decode its pixels (an outside
    audit of input syntaxes, 2026-12-05)."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return str(meta.TransferSyntaxUID)
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None or little is None:
        return _ENCODINGS[(True, True)]
    return _ENCODINGS.get((bool(implicit), bool(little)), _ENCODINGS[(True, True)])


def with_stored_syntax(ds: Dataset) -> Dataset:
    """``ds`` itself when its file meta names its transfer syntax, else a shallow copy whose file
    meta does (:func:`stored_syntax`): what pydicom needs to decode its pixels."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return ds
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    out = copy.copy(ds)
    out.file_meta = FileMetaDataset(meta) if meta is not None else FileMetaDataset()
    out.file_meta.TransferSyntaxUID = UID(stored_syntax(ds))
    return out


#: (7FE0,0010) Pixel Data, (7FE0,0008) Float Pixel Data, (7FE0,0009) Double Float Pixel Data.
PIXEL_DATA_TAGS = (Tag(0x7FE0, 0x0010), Tag(0x7FE0, 0x0008), Tag(0x7FE0, 0x0009))

_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT")


def describe_tag(tag: int | BaseTag) -> str:
    """``"(0028,0004) Photometric Interpretation"``: a tag with its dictionary name."""
    t = Tag(tag)
    try:
        name = dictionary_description(t)
    except KeyError:
        name = "Private tag" if t.group % 2 else "Unknown tag"
    return f"({t.group:04X},{t.element:04X}) {name}"


def pixel_spec_from_dataset(ds: Dataset, *, path: str | os.PathLike[str] | None = None) -> PixelSpec:
    """Build the :class:`~medcodec.spec.PixelSpec` of a DICOM image from its header.

    Parameters
    ----------
    ds
        A pydicom dataset. It must contain a pixel data element ((7FE0,0010), or a float one,
        which is refused); the element's value is never read.
    path
        Where the dataset came from, quoted in error messages.

    Returns
    -------
    PixelSpec
        Bits, signedness, photometric interpretation, rescale and default window.

    Raises
    ------
    NotAnImageError
        The dataset has no pixel data element.
    UnsupportedImageError
        Colour, palette colour, multi-sample, float, or bit depths the codec does not handle.
    DicomError
        A required attribute is missing or has an invalid value.

    Examples
    --------
    >>> from pydicom import examples
    >>> pixel_spec_from_dataset(examples.ct).bits_stored
    16
    """
    present = [t for t in PIXEL_DATA_TAGS if t in ds]
    return spec_from_header(ds, pixel_tag=present[0] if present else None, path=path)


def spec_from_header(
    ds: Dataset, *, pixel_tag: int | BaseTag | None, path: str | os.PathLike[str] | None = None
) -> PixelSpec:
    """:func:`pixel_spec_from_dataset` for a header read without its pixel data.

    ``pixel_tag`` is the pixel data element found after the header (``None`` when the file
    has none); :mod:`medcodec.dicom.io` learns it by peeking at the element that stopped
    ``dcmread(stop_before_pixels=True)``.
    """
    where = None if path is None else str(path)
    if pixel_tag is None:
        sop_class = ds.get("SOPClassUID")
        sop_name = str(getattr(sop_class, "name", sop_class) or "")
        if ("Rows" in ds and "BitsAllocated" in ds) or "Image Storage" in sop_name:
            raise DicomError(
                f"no (7FE0,0010) Pixel Data although this is an image ({sop_name or 'Image Pixel module present'}): "
                "is the file truncated?",
                path=where,
            )
        what = f" ({sop_name})" if sop_name else ""
        raise NotAnImageError(f"no (7FE0,0010) Pixel Data: not an image{what}", path=where)
    if Tag(pixel_tag) != PIXEL_DATA_TAGS[0]:
        raise UnsupportedImageError(
            f"{describe_tag(pixel_tag)} is not supported: medcodec compresses integer pixel data only",
            path=where,
        )

    photometric = str(_required(ds, "PhotometricInterpretation", where)).strip().upper()
    if photometric == "PALETTE COLOR" or photometric in _COLOUR or photometric not in PHOTOMETRIC_INTERPRETATIONS:
        raise UnsupportedImageError(
            f"(0028,0004) Photometric Interpretation {photometric!r} is not supported yet: "
            "medcodec compresses grayscale (MONOCHROME1/2) only",
            path=where,
        )
    samples = _required_int(ds, "SamplesPerPixel", where)
    if samples != 1:
        raise UnsupportedImageError(
            f"(0028,0002) Samples per Pixel {samples} is not supported yet: "
            "medcodec compresses single-sample grayscale images only",
            path=where,
        )
    bits_allocated = _required_int(ds, "BitsAllocated", where)
    if bits_allocated not in (8, 16):
        raise UnsupportedImageError(
            f"(0028,0100) Bits Allocated {bits_allocated} is not supported: expected 8 or 16",
            path=where,
        )
    bits_stored = _required_int(ds, "BitsStored", where)
    if bits_stored > 16:
        raise UnsupportedImageError(
            f"(0028,0101) Bits Stored {bits_stored} is not supported: medcodec handles up to 16 bits",
            path=where,
        )
    if not 1 <= bits_stored <= bits_allocated:
        raise DicomError(
            f"(0028,0101) Bits Stored {bits_stored} is invalid with (0028,0100) Bits Allocated "
            f"{bits_allocated}: expected 1..{bits_allocated} (PS3.5 §8.1.1)",
            path=where,
        )
    representation = _required_int(ds, "PixelRepresentation", where)
    if representation not in (0, 1):
        raise DicomError(
            f"(0028,0103) Pixel Representation {representation} is invalid: expected 0 or 1",
            path=where,
        )

    groups = list(_functional_groups(ds))
    slope = _first_number(ds, groups, "PixelValueTransformationSequence", "RescaleSlope", where)
    intercept = _first_number(ds, groups, "PixelValueTransformationSequence", "RescaleIntercept", where)
    rescale_type = _first_value(ds, groups, "PixelValueTransformationSequence", "RescaleType")
    center = _first_number(ds, groups, "FrameVOILUTSequence", "WindowCenter", where)
    width = _first_number(ds, groups, "FrameVOILUTSequence", "WindowWidth", where)
    modality = str(ds.get("Modality", "") or "")
    if rescale_type is None and modality == "CT":
        rescale_type = "HU"
    if center is None or width is None or width <= 0:
        center = width = None

    extra: dict[str, Any] = {
        "bits_allocated": bits_allocated,
        "high_bit": _optional_int(ds, "HighBit", where),
        "rows": _required_int(ds, "Rows", where),
        "columns": _required_int(ds, "Columns", where),
        "number_of_frames": _number_of_frames(ds, where),
        "modality": modality,
        "transfer_syntax_uid": stored_syntax(ds),
        "syntax_in_file_meta": bool(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")),
    }
    if _rescale_varies_per_frame(ds, where):
        extra["rescale_varies_per_frame"] = True
    try:
        return PixelSpec(
            bits_stored=bits_stored,
            signed=bool(representation),
            photometric_interpretation=photometric,
            rescale_slope=1.0 if slope is None else slope,
            rescale_intercept=0.0 if intercept is None else intercept,
            window_center=center,
            window_width=width,
            rescale_type=str(rescale_type or "").strip(),
            extra=extra,
        )
    except InvalidInputError as exc:
        raise DicomError(f"(0028,1052)/(0028,1053) rescale is invalid: {exc}", path=where) from exc


# --------------------------------------------------------------------------- helpers


def _required(ds: Dataset, keyword: str, where: str | None) -> Any:
    value = _get(ds, keyword, where)
    if value is None or value == "":
        tag = describe_tag(Tag(keyword))
        raise DicomError(f"{tag} is missing (Type 1 in the Image Pixel module, PS3.3 C.7.6.3)", path=where)
    return value


def _required_int(ds: Dataset, keyword: str, where: str | None) -> int:
    return _as_int(_required(ds, keyword, where), keyword, where)


def _optional_int(ds: Dataset, keyword: str, where: str | None) -> int | None:
    value = _get(ds, keyword, where)
    return None if value is None or value == "" else _as_int(value, keyword, where)


def _as_int(value: Any, keyword: str, where: str | None) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise DicomError(f"{describe_tag(Tag(keyword))} {value!r} is not an integer", path=where) from exc


def _get(ds: Dataset, keyword: str, where: str | None) -> Any:
    """``ds.get(keyword)`` with pydicom's value-conversion errors turned into DicomError."""
    try:
        return ds.get(keyword)
    except Exception as exc:  # pydicom raises many kinds on malformed values
        raise DicomError(f"{describe_tag(Tag(keyword))} cannot be read: {exc}", path=where) from exc


def frame_value_transform(ds: Dataset, number: int) -> tuple[float | None, float | None, float | None, float | None]:
    """``(rescale slope, rescale intercept, window center, window width)`` of frame ``number``
    (1-based) of ``ds``: an enhanced object's Per-frame Functional Group item of that frame, else
    its Shared one (Pixel Value Transformation, Frame VOI LUT), else the top-level attributes;
    ``None`` where none gives a usable number. pydicom's ``apply_modality_lut`` and ``apply_voi_lut``
    read the top level only: an enhanced CT rendered 176 HU off (an outside audit, 2026-12-02).
    """
    groups: list[Dataset] = []
    try:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        if 1 <= number <= len(per_frame):
            groups.append(per_frame[number - 1])
        shared = ds.get("SharedFunctionalGroupsSequence") or []
        if shared:
            groups.append(shared[0])
    except Exception:  # a malformed sequence is treated as absent
        groups = []

    def number_of(macro: str, keyword: str) -> float | None:
        for container in (*(_macro_item(g, macro) for g in groups), ds):
            if container is None or keyword not in container:
                continue
            try:
                value = container.get(keyword)
                if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
                    value = value[0] if len(value) else None
                if value is not None and value != "":
                    return float(value)
            except (TypeError, ValueError, IndexError):
                continue
        return None

    return (number_of("PixelValueTransformationSequence", "RescaleSlope"),
            number_of("PixelValueTransformationSequence", "RescaleIntercept"),
            number_of("FrameVOILUTSequence", "WindowCenter"),
            number_of("FrameVOILUTSequence", "WindowWidth"))  # fmt: skip


#: VOI LUT Function values (PS3.3 C.11.2.1.3) a window is applied with; anything else is LINEAR.
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def frame_voi_function(ds: Dataset, number: int) -> str:
    """VOI LUT Function (0028,1056) of frame ``number``: the Frame VOI LUT of its Per-frame, else the
    Shared, Functional Group item, else the top level; ``"LINEAR"`` when absent or unknown."""
    containers: list[Any] = []
    try:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        if 1 <= number <= len(per_frame):
            containers.append(_macro_item(per_frame[number - 1], "FrameVOILUTSequence"))
        shared = ds.get("SharedFunctionalGroupsSequence") or []
        if shared:
            containers.append(_macro_item(shared[0], "FrameVOILUTSequence"))
    except Exception:  # a malformed sequence is treated as absent
        containers = []
    for container in (*containers, ds):
        if container is not None and container.get("VOILUTFunction"):
            value = str(container.VOILUTFunction).strip().upper()
            return value if value in VOI_FUNCTIONS else "LINEAR"
    return "LINEAR"


def voi_lut_table(
    item: Dataset, ds: Dataset, *, signed: bool | None = None
) -> tuple[int, NDArray[np.int64], int] | None:
    """``(first value mapped, entries, output bits)`` of a VOI LUT Sequence item (PS3.3 C.11.2.1.1),
    or ``None`` when it is malformed. The descriptor's 0 entries means 65536; its first value is
    signed for signed pixels (``signed``, else the Pixel Representation of ``ds``); LUT Data read as
    US values, or as OW bytes in the byte order of ``ds``; at most as many entries as the
    descriptor says."""
    try:
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        data = item["LUTData"]
        if data.VR == "OW" or isinstance(data.value, (bytes, bytearray)):
            encoding = getattr(ds, "original_encoding", (None, True))
            big = encoding[1] is False
            table = np.frombuffer(bytes(data.value), dtype=">u2" if big else "<u2").astype(np.int64)
        else:
            value = data.value if isinstance(data.value, (list, tuple, np.ndarray)) else [data.value]
            table = np.asarray(value, np.int64)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if signed is None:
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    if signed and first >= 1 << 15:
        first -= 1 << 16
    n = min(n or 65536, table.size)
    if n == 0 or not 1 <= bits <= 16:
        return None
    return first, table[:n], bits


def _functional_groups(ds: Dataset) -> Iterable[Dataset]:
    """Shared, then first per-frame, functional group item (enhanced multi-frame objects)."""
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        try:
            seq = ds.get(keyword)
            if seq:
                yield seq[0]
        except Exception:  # a malformed sequence is treated as absent
            continue


def _first_value(ds: Dataset, groups: list[Dataset], macro: str, keyword: str) -> Any:
    """Top-level value, else the value inside ``macro`` of the first functional group having it."""
    for container in (ds, *(_macro_item(g, macro) for g in groups)):
        if container is not None and keyword in container:
            value = container.get(keyword)
            if value is not None and value != "":
                return value
    return None


def _macro_item(group: Dataset, macro: str) -> Dataset | None:
    seq = group.get(macro)
    return seq[0] if seq else None


def _first_number(ds: Dataset, groups: list[Dataset], macro: str, keyword: str, where: str | None) -> float | None:
    try:
        value = _first_value(ds, groups, macro, keyword)
        if value is None:
            return None
        if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):  # multi-valued: first
            if len(value) == 0:
                return None
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise DicomError(f"{describe_tag(Tag(keyword))} cannot be read as a number: {exc}", path=where) from exc


def _number_of_frames(ds: Dataset, where: str | None) -> int:
    value = _get(ds, "NumberOfFrames", where)
    if value is None or value == "":
        return 1
    frames = _as_int(value, "NumberOfFrames", where)
    if frames < 1:
        raise DicomError(f"(0028,0008) Number of Frames {frames} is invalid: expected 1 or more", path=where)
    return frames


def _rescale_varies_per_frame(ds: Dataset, where: str | None) -> bool:
    try:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        seen = set()
        for item in per_frame:
            pvt = _macro_item(item, "PixelValueTransformationSequence")
            if pvt is not None:
                seen.add((float(pvt.get("RescaleSlope", 1.0)), float(pvt.get("RescaleIntercept", 0.0))))
        return len(seen) > 1
    except (TypeError, ValueError) as exc:
        raise DicomError(f"per-frame (0028,1052)/(0028,1053) rescale cannot be read: {exc}", path=where) from exc
